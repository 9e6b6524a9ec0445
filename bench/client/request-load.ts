// The load of `bench:client`'s request part: ONE client, on the library under test, keeping
// `inFlight` requests outstanding (1: ask, await, ask again) against bench/ack's servers (same
// validation, same answer), for a warm-up and then a measured window.
import { connect } from 'tonijs/client';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import { percentile } from '../support.js';

/** `tonijs/client`'s request, socket.io-client's emitWithAck, or bare `ws` speaking the envelope (the floor). */
export type ClientLibrary = 'tonijs/client' | 'socket.io-client' | 'ws';
export type RequestLoadCommand = { type: 'run'; library: ClientLibrary; port: number; path: string; inFlight: number; warmupMs: number; measureMs: number };
export type RequestLoadReport =
  | { type: 'done'; requests: number; seconds: number; p50: number; p99: number; cpuMicros: number }
  | { type: 'failed'; message: string };

type Ask = (payload: { a: number; b: number; text: string }) => Promise<unknown>;

process.on('message', (command: RequestLoadCommand) => {
  run(command).then((report) => process.send!(report), (error: unknown) => process.send!({ type: 'failed', message: String(error) } satisfies RequestLoadReport));
});
process.on('disconnect', () => process.exit(0));

async function run(command: RequestLoadCommand): Promise<RequestLoadReport> {
  const { ask, close } = await open(command);
  const first = (await ask({ a: 1, b: 2, text: 'check' })) as { sum?: number };
  if (first.sum !== 3) throw new Error(`${command.library} got ${JSON.stringify(first)} for 1 + 2`);
  let measuring = false;
  let stopped = false;
  let requests = 0;
  const latencies: number[] = [];
  let n = 0;
  const loop = async () => {
    while (!stopped) {
      const started = performance.now();
      await ask({ a: n, b: n++, text: 'the quick brown fox' });
      if (measuring) {
        requests++;
        latencies.push(performance.now() - started);
      }
    }
  };
  const loops = Array.from({ length: command.inFlight }, loop);
  await delay(command.warmupMs);
  measuring = true;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await delay(command.measureMs);
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  stopped = true;
  await Promise.all(loops);
  await close();
  latencies.sort((a, b) => a - b);
  return { type: 'done', requests, seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), cpuMicros: used.user + used.system };
}

async function open(command: RequestLoadCommand): Promise<{ ask: Ask; close: () => Promise<void> }> {
  const { library, port, path } = command;
  if (library === 'tonijs/client') {
    const socket = connect(`ws://127.0.0.1:${port}${path}`);
    await socket.ready();
    return { ask: (payload) => socket.request('add', payload), close: () => socket.close() };
  }
  if (library === 'socket.io-client') {
    const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return { ask: (payload) => socket.emitWithAck('add', payload), close: async () => void socket.disconnect() };
  }
  // The floor: ids and a map of pending answers by hand, no reconnect, no timeout, no queue.
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 1;
  ws.on('message', (data: Buffer) => {
    const answer = JSON.parse(data.toString()) as { id: number; data: unknown };
    pending.get(answer.id)?.(answer.data);
    pending.delete(answer.id);
  });
  return {
    ask: (payload) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ event: 'add', data: payload, id }));
      }),
    close: async () => ws.terminate(),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
