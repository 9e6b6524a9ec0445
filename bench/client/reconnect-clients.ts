// The clients of `bench:client`'s reconnect part: N tonijs/client sockets in one process. It reports when all are open, then, after the server's
// restart, when each one was lost and open again and how many attempts it took.
import { type ReconnectOptions, type ToniSocket, connect } from 'tonijs/client';

export type ReconnectClientsCommand = { type: 'open'; url: string; count: number; reconnect: ReconnectOptions } | { type: 'check' };
export type ReconnectClientsReport =
  | { type: 'open' }
  | { type: 'reopened'; lost: number[]; reopened: number[]; attempts: number[] }
  | { type: 'checked'; answered: number }
  | { type: 'failed'; message: string };

const send = (report: ReconnectClientsReport) => process.send!(report);
let sockets: ToniSocket[] = [];

process.on('message', (command: ReconnectClientsCommand) => {
  handle(command).then(send, (error: unknown) => send({ type: 'failed', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));

async function handle(command: ReconnectClientsCommand): Promise<ReconnectClientsReport> {
  if (command.type === 'check') {
    const answers = await Promise.all(sockets.map((socket, index) => socket.request('echo', index)));
    return { type: 'checked', answered: answers.filter((answer, index) => answer === index).length };
  }
  sockets = Array.from({ length: command.count }, () => connect(command.url, { reconnect: command.reconnect }));
  await Promise.all(sockets.map((socket) => socket.ready()));
  const lost: number[] = [];
  const reopened: number[] = [];
  const attempts: number[] = [];
  let remaining = sockets.length;
  for (const socket of sockets) {
    socket.onClose(() => lost.push(Date.now()));
    socket.onReconnect((info) => {
      reopened.push(Date.now());
      attempts.push(info.attempt);
      if (--remaining === 0) send({ type: 'reopened', lost, reopened, attempts });
    });
  }
  return { type: 'open' };
}
