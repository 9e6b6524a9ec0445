/**
 * Request/acknowledgement benchmark: ACK_CLIENTS clients (default 100) each loop "ask with a
 * validated payload, await the answer, ask again" against tonijs (@On with a payload schema,
 * the return value as acknowledgement), Socket.IO (emitWithAck and an ack callback) and NestJS
 * (platform-ws @SubscribeMessage returning a value). Same zod validation and answer everywhere;
 * every server alone on one CPU, the load client on another. Prints answers/s, p50/p99 latency
 * and the ratio to the better peer.
 *
 *   npm run bench:ack        ACK_CLIENTS=100 ACK_SECONDS=5 ACK_ROUNDS=2 BENCH_SERVERS=toni,socket.io,nestjs
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Child, startNode } from './broadcast/child.js';
import type { LoadCommand, LoadReport } from './ack/load.js';
import type { AckServerCommand, AckServerReport } from './ack/work.js';
import { expandCpuList, positiveInteger } from './support.js';

const fail = (message: string): never => {
  console.error(`bench:ack: ${message}`);
  process.exit(1);
};
const CLIENTS = positiveInteger(process.env, 'ACK_CLIENTS', 100, fail);
const SECONDS = positiveInteger(process.env, 'ACK_SECONDS', 5, fail);
const ROUNDS = positiveInteger(process.env, 'ACK_ROUNDS', 2, fail);
// Extra node flags for the servers (e.g. --cpu-prof), as in bench:broadcast.
const SERVER_NODE_ARGS = (process.env['BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((arg) => arg !== '');
const SERVERS = [
  { name: 'toni', file: 'ack/toni-server.ts' },
  { name: 'socket.io', file: 'ack/socketio-server.ts' },
  { name: 'nestjs', file: 'ack/nest-server.ts' },
].filter((spec) => process.env['BENCH_SERVERS'] === undefined || process.env['BENCH_SERVERS'].split(',').includes(spec.name));
const pinning = choosePinning();
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; ${pinning === undefined ? 'not pinned' : `servers on CPU ${pinning.server}, load client on CPU ${pinning.load}`}`);
console.log(`${CLIENTS} clients, each: ask → answer → ask; ${SECONDS} s measured after 1 s of warm-up; best of ${ROUNDS} rounds`);

const results: { name: string; rate: number; p50: number; p99: number; cpuPerAck: number; loadBusy: number }[] = [];
for (const spec of SERVERS) {
  let best: (typeof results)[number] | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const result = await measure(spec);
    console.log(`  ${spec.name.padEnd(9)} ${Math.round(result.rate).toLocaleString('en-US')} answers/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, server CPU ${result.cpuPerAck.toFixed(1)} µs/answer, load client busy ${Math.round(result.loadBusy * 100)}%`);
    if (best === undefined || result.rate > best.rate) best = result;
  }
  results.push(best!);
}
const toni = results.find((result) => result.name === 'toni');
const peers = results.filter((result) => result.name !== 'toni');
const bestPeer = peers.sort((a, b) => b.rate - a.rate)[0];
console.log('\nserver     answers/s   vs toni    p50        p99        CPU/answer');
for (const result of results) {
  const ratio = toni === undefined ? '—' : `${(result.rate / toni.rate).toFixed(2)}×`;
  console.log(`${result.name.padEnd(10)} ${Math.round(result.rate).toLocaleString('en-US').padStart(9)}   ${ratio.padStart(6)}   ${`${result.p50.toFixed(2)} ms`.padStart(8)}   ${`${result.p99.toFixed(2)} ms`.padStart(8)}   ${result.cpuPerAck.toFixed(1)} µs`);
}
if (toni !== undefined && bestPeer !== undefined) {
  console.log(`\ntoni vs the better peer (${bestPeer.name}): ${(toni.rate / bestPeer.rate).toFixed(2)}× the answers/s, p99 ${toni.p99.toFixed(2)} vs ${bestPeer.p99.toFixed(2)} ms`);
}

async function measure(spec: { name: string; file: string }) {
  const server = new Child<AckServerCommand, AckServerReport>(spec.name, startNode(here(spec.file), SERVER_NODE_ARGS, pinning?.server));
  const load = new Child<LoadCommand, LoadReport>('load client', startNode(here('ack/load.ts'), [], pinning?.load));
  try {
    const ready = await server.next('ready', 60_000);
    load.send({ type: 'run', port: ready.port, path: ready.path, protocol: ready.protocol, clients: CLIENTS, warmupMs: 1_000, measureMs: SECONDS * 1_000 });
    await load.next('measuring', 60_000);
    server.send({ type: 'mark' });
    const done = await load.next('done', SECONDS * 1_000 + 30_000);
    const cpu = await server.request({ type: 'cpu' }, 'cpu');
    const rate = done.acks / done.seconds;
    return { name: spec.name, rate, p50: done.p50, p99: done.p99, cpuPerAck: cpu.micros / done.acks, loadBusy: done.loadBusy };
  } finally {
    await load.stop();
    await server.stop();
  }
}

function choosePinning(): { server: number; load: number } | undefined {
  if (process.env['BENCH_PIN'] === '0') return undefined;
  const probe = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  const list = /:\s*([\d,\s-]+)$/.exec(probe.stdout.trim())?.[1];
  const allowed = list === undefined ? [] : expandCpuList(list);
  return allowed.length < 2 ? undefined : { server: allowed[0]!, load: allowed[1]! };
}
