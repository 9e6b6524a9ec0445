// The load client of bench/ack.ts: N WebSocket clients, each asking, awaiting the answer, and
// asking again, for a warm-up and then a measured window. Every protocol is spoken on the same
// `ws` client library (Socket.IO's packets written by hand, as its client would), so the
// client's cost is the same for every server.
import { WebSocket } from 'ws';
import { percentile } from '../support.js';
import type { AckProtocol } from './work.js';

export type LoadCommand = { type: 'run'; port: number; path: string; protocol: AckProtocol; clients: number; warmupMs: number; measureMs: number };
export type LoadReport =
  | { type: 'measuring' }
  | { type: 'done'; acks: number; seconds: number; p50: number; p99: number; loadBusy: number }
  | { type: 'failed'; message: string };

const send = (report: LoadReport) => process.send!(report);

process.on('message', (command: LoadCommand) => {
  run(command).then(send, (error: unknown) => send({ type: 'failed', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));

async function run(command: LoadCommand): Promise<LoadReport> {
  const clients = await Promise.all(Array.from({ length: command.clients }, (_, index) => open(command, index)));
  let measuring = false;
  let stopped = false;
  const latencies: number[] = [];
  let acks = 0;
  for (const client of clients) {
    client.onAnswer = (ms) => {
      if (measuring) {
        acks++;
        latencies.push(ms);
      }
      if (!stopped) client.ask();
    };
    client.ask();
  }
  await delay(command.warmupMs);
  measuring = true;
  send({ type: 'measuring' });
  const cpu = process.cpuUsage();
  const started = performance.now();
  await delay(command.measureMs);
  measuring = false;
  stopped = true;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  for (const client of clients) client.ws.terminate();
  latencies.sort((a, b) => a - b);
  return { type: 'done', acks, seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), loadBusy: (used.user + used.system) / 1e6 / seconds };
}

interface Asker {
  readonly ws: WebSocket;
  onAnswer: (ms: number) => void;
  ask(): void;
}

async function open(command: LoadCommand, index: number): Promise<Asker> {
  const ws = new WebSocket(`ws://127.0.0.1:${command.port}${command.path}`);
  let next = 1;
  let sentAt = 0;
  const payload = (n: number) => ({ a: index, b: n, text: 'the quick brown fox' });
  const asker: Asker = {
    ws,
    onAnswer: () => {},
    ask() {
      const n = next++;
      sentAt = performance.now();
      if (command.protocol === 'tonijs') ws.send(JSON.stringify({ event: 'add', data: payload(n), id: n }));
      else if (command.protocol === 'nestjs') ws.send(JSON.stringify({ event: 'add', data: payload(n) }));
      else ws.send(`42${n}${JSON.stringify(['add', payload(n)])}`);
    },
  };
  let connected: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  ws.on('message', (data: Buffer) => {
    const text = data.toString();
    if (command.protocol === 'socket.io') {
      if (text === '2') return ws.send('3');                   // Engine.IO ping → pong
      if (text.startsWith('0{')) return ws.send('40');          // open → connect to the main namespace
      if (text.startsWith('40')) return connected();
      if (text.startsWith('43')) return asker.onAnswer(performance.now() - sentAt);
      return;
    }
    asker.onAnswer(performance.now() - sentAt);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  if (command.protocol === 'socket.io') await ready;
  return asker;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
