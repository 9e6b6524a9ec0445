// The clients of `bench:history`: N tonijs/client sockets in one process, each counting the
// events `m` it receives (and checking they come in order, once). Driven over IPC.
import { type ToniSocket, connect } from 'tonijs/client';

export type HistoryClientsCommand =
  | { type: 'open'; url: string; count: number }
  | { type: 'expect'; messages: number; reconnect: boolean }
  | { type: 'lost' }
  | { type: 'close' };
export type HistoryClientsReport =
  | { type: 'open' }
  | { type: 'lost' }
  | { type: 'armed' }
  | { type: 'done'; lastAt: number; reconnectedAt: number; recovered: number; cpuMicros: number; outOfOrder: number }
  | { type: 'closed' }
  | { type: 'failed'; message: string };

interface Follower {
  readonly socket: ToniSocket;
  received: number;
  last: number;
  reconnected: boolean;
  recovered: boolean;
}

const send = (report: HistoryClientsReport) => process.send!(report);
let followers: Follower[] = [];
let outOfOrder = 0;
let waiting: { messages: number; reconnect: boolean; resolve: () => void } | undefined;
let reconnects = 0;
let reconnectedAt = 0;

process.on('message', (command: HistoryClientsCommand) => {
  handle(command).then(send, (error: unknown) => send({ type: 'failed', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));

function check(): void {
  if (waiting === undefined) return;
  for (const each of followers) if (each.received < waiting.messages || (waiting.reconnect && !each.reconnected)) return;
  const { resolve } = waiting;
  waiting = undefined;
  resolve();
}

async function handle(command: HistoryClientsCommand): Promise<HistoryClientsReport> {
  switch (command.type) {
    case 'open': {
      followers = Array.from({ length: command.count }, () => {
        const socket = connect(command.url, { reconnect: { minDelay: 10, maxDelay: 100 }, heartbeat: false });
        const each: Follower = { socket, received: 0, last: -1, reconnected: false, recovered: false };
        socket.on('m', (index) => {
          if (index !== each.last + 1) outOfOrder++;
          each.last = index as number;
          each.received++;
          check();
        });
        socket.onReconnect((info) => {
          each.reconnected = true;
          each.recovered = info.recovered;
          if (++reconnects === followers.length) reconnectedAt = Date.now();
          check();
        });
        return each;
      });
      await Promise.all(followers.map((each) => each.socket.ready()));
      return { type: 'open' };
    }
    case 'lost':
      while (followers.some((each) => each.socket.state === 'open')) await new Promise((resolve) => setTimeout(resolve, 5));
      return { type: 'lost' };
    case 'expect': {
      for (const each of followers) {
        each.received = 0;
        each.reconnected = false;
        each.recovered = false;
      }
      outOfOrder = 0;
      reconnects = 0;
      reconnectedAt = 0;
      const cpu = process.cpuUsage();
      await new Promise<void>((resolve) => {
        waiting = { messages: command.messages, reconnect: command.reconnect, resolve };
        send({ type: 'armed' });
        check();
      });
      const used = process.cpuUsage(cpu);
      return { type: 'done', lastAt: Date.now(), reconnectedAt, recovered: followers.filter((each) => each.recovered).length, cpuMicros: used.user + used.system, outOfOrder };
    }
    case 'close':
      await Promise.all(followers.map((each) => each.socket.close()));
      return { type: 'closed' };
  }
}
