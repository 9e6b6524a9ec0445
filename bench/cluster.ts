/**
 * Cluster benchmark: two instances on one Redis, clients split between them, broadcasts made on
 * the first instance. Measures how fast each framework fans out across instances — toni with
 * RedisTransport next to Socket.IO 4 with @socket.io/redis-adapter — on this machine.
 * Run by hand: `npm run bench:cluster` (BENCH_QUICK=1 for a short run; see bench/README.md).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '../test/support/redis-server.js';
import { Child, startNode } from './broadcast/child.js';
import type { BurstMode, LoadCommand, LoadReport, ServerCommand, ServerReport } from './broadcast/protocol.js';
import { formatRate, median, percentile, positiveInteger } from './support.js';

interface SystemSpec {
  readonly name: string;
  readonly file: string;
  readonly env?: Readonly<Record<string, string>>;
}

interface ClusterResult {
  readonly name: string;
  /** Deliveries per second over both instances, by mode. */
  readonly total: ReadonlyMap<BurstMode, number>;
  /** Deliveries per second at the second instance's clients alone (every one crossed Redis). */
  readonly crossing: ReadonlyMap<BurstMode, number>;
  readonly latency: { readonly p50: number; readonly p99: number };
}

type Server = Child<ServerCommand, ServerReport>;
type Load = Child<LoadCommand, LoadReport>;

const here = fileURLToPath(new URL('.', import.meta.url));
const ALL_SYSTEMS: readonly SystemSpec[] = [
  { name: 'toni', file: 'broadcast/toni-server.ts' },
  // Gateway events, then the same events kept in Redis Streams (history on): every emit goes
  // through Redis, to instance A's clients too, so that every instance delivers the stream's order.
  { name: 'toni-emit', file: 'broadcast/toni-server.ts', env: { BENCH_TONI_EMIT: '1' } },
  { name: 'toni-history', file: 'broadcast/toni-server.ts', env: { BENCH_TONI_HISTORY: '1' } },
  { name: 'socket.io', file: 'broadcast/socketio-server.ts' },
];
const BASELINE = 'socket.io';
const SYSTEMS = selectSystems(process.env['BENCH_SERVERS']);
const MODES: readonly BurstMode[] = ['fire', 'await'];

const quick = process.env['BENCH_QUICK'] === '1';
const clients = positiveInteger(process.env, 'BENCH_CLIENTS', quick ? 500 : 1000, fail);
const messages = positiveInteger(process.env, 'BENCH_MESSAGES', quick ? 200 : 1000, fail);
const repeats = positiveInteger(process.env, 'BENCH_REPEATS', quick ? 2 : 3, fail);
const samples = positiveInteger(process.env, 'BENCH_LATENCY_SAMPLES', quick ? 50 : 200, fail);
const half = Math.floor(clients / 2);

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const redis = await RedisServer.start();
// The broadcast benchmark's servers join a cluster over this Redis when they see it.
process.env['BENCH_REDIS_URL'] = redis.url;
console.log(`node ${process.version}; redis-server on port ${redis.port}; two instances, ${half} clients each; ` +
  `bursts of ${messages} 64-byte broadcasts made on instance A, median of ${repeats}; latency over ${samples} single broadcasts, A → B's last client`);
const loadA: Load = new Child('load client A', startNode(join(here, 'broadcast/load-client.ts'), [], undefined));
const loadB: Load = new Child('load client B', startNode(join(here, 'broadcast/load-client.ts'), [], undefined));
try {
  const results: ClusterResult[] = [];
  for (const system of SYSTEMS) results.push(await benchSystem(system));
  printTable(results);
} finally {
  await Promise.all([loadA.stop(), loadB.stop()]);
  await redis.stop();
}

async function benchSystem(system: SystemSpec): Promise<ClusterResult> {
  const a: Server = new Child(`${system.name} A`, startNode(join(here, system.file), ['--expose-gc'], undefined, system.env));
  const b: Server = new Child(`${system.name} B`, startNode(join(here, system.file), ['--expose-gc'], undefined, system.env));
  let finished = false;
  try {
    const [readyA, readyB] = await Promise.all([a.next('ready', 60_000), b.next('ready', 60_000)]);
    await Promise.all([
      loadA.request({ type: 'connect', port: readyA.port, path: readyA.path, protocol: readyA.protocol, count: half }, 'connected', 120_000),
      loadB.request({ type: 'connect', port: readyB.port, path: readyB.path, protocol: readyB.protocol, count: half }, 'connected', 120_000),
    ]);
    await Promise.all([a.request({ type: 'wait-clients', count: half }, 'clients', 70_000), b.request({ type: 'wait-clients', count: half }, 'clients', 70_000)]);
    for (const mode of MODES) await burst(a, Math.max(50, messages / 5), mode);
    const total = new Map<BurstMode, number>();
    const crossing = new Map<BurstMode, number>();
    for (const mode of MODES) {
      const runs = [];
      for (let repeat = 0; repeat < repeats; repeat++) runs.push(await burst(a, messages, mode));
      total.set(mode, median(runs.map((run) => run.total)));
      crossing.set(mode, median(runs.map((run) => run.crossing)));
      console.log(`  ${system.name.padEnd(9)} ${mode.padEnd(5)} ${runs.map((run) => `${formatRate(run.total)} (B ${formatRate(run.crossing)})`).join(', ')} deliveries/s`);
    }
    const latency = await crossingLatency(a);
    console.log(`  ${system.name.padEnd(9)} single broadcast A → B: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms`);
    finished = true;
    return { name: system.name, total, crossing, latency };
  } finally {
    if (finished) await Promise.all([loadA.request({ type: 'release' }, 'released'), loadB.request({ type: 'release' }, 'released')]);
    await Promise.all([a.stop(), b.stop()]);
    if (finished) await Promise.all([loadA.request({ type: 'close' }, 'closed'), loadB.request({ type: 'close' }, 'closed')]);
  }
}

/** One burst on instance A; the time runs until both halves of the clients counted every frame. */
async function burst(a: Server, count: number, mode: BurstMode): Promise<{ total: number; crossing: number }> {
  const perHalf = half * count;
  const timeout = 30_000 + perHalf / 5;
  await Promise.all([loadA.request({ type: 'expect', frames: perHalf }, 'armed'), loadB.request({ type: 'expect', frames: perHalf }, 'armed')]);
  a.send({ type: 'burst', messages: count, mode });
  const sent = await a.next('burst-sent', timeout);
  const [countedA, countedB] = await Promise.all([loadA.next('counted', timeout), loadB.next('counted', timeout)]);
  await a.request({ type: 'cpu' }, 'cpu');
  const last = Math.max(countedA.at, countedB.at);
  return { total: (2 * perHalf) / ((last - sent.startedAt) / 1000), crossing: perHalf / ((countedB.at - sent.startedAt) / 1000) };
}

/** Single broadcasts from A, one at a time; latency until B's last client has it. */
async function crossingLatency(a: Server): Promise<{ p50: number; p99: number }> {
  await Promise.all([loadA.request({ type: 'expect-samples', samples }, 'armed'), loadB.request({ type: 'expect-samples', samples }, 'armed')]);
  const latencies: number[] = [];
  for (let sequence = 0; sequence < samples; sequence++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const { sentAt } = await a.request({ type: 'single', sequence }, 'single-sent');
    const [, atB] = await Promise.all([loadA.next('sample'), loadB.next('sample')]);
    latencies.push(atB.at - sentAt);
  }
  latencies.sort((x, y) => x - y);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

function printTable(results: readonly ClusterResult[]): void {
  const baseline = results.find((result) => result.name === BASELINE);
  const header = ['system'];
  for (const mode of MODES) header.push(`${mode} deliv/s`, 'of which via Redis', `vs ${BASELINE}`);
  header.push('p50 A→B', 'p99 A→B');
  const rows = results.map((result) => {
    const row = [result.name];
    for (const mode of MODES) {
      row.push(formatRate(result.total.get(mode)!), formatRate(result.crossing.get(mode)!));
      row.push(baseline === undefined ? '—' : `${(result.total.get(mode)! / baseline.total.get(mode)!).toFixed(1)}×`);
    }
    row.push(`${result.latency.p50.toFixed(2)} ms`, `${result.latency.p99.toFixed(2)} ms`);
    return row;
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  console.log(`\nN = ${2 * half} clients over two instances, M = ${messages}: median of ${repeats} bursts`);
  console.log(`${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}`);
  for (const row of rows) console.log(line(row));
  console.log('deliv/s = N·M / (first call on A → last frame counted on either instance); "via Redis" = deliveries/s at B\'s clients alone; ' +
    'p50/p99 = one broadcast, call on A → B\'s last client has it. Five processes share the machine: servers, load clients and Redis are not pinned.');
}


/** BENCH_SERVERS=toni-emit,toni-history runs some of them; all by default. */
function selectSystems(names: string | undefined): readonly SystemSpec[] {
  if (names === undefined || names.trim() === '') return ALL_SYSTEMS;
  const wanted = names.split(',').map((name) => name.trim());
  const unknown = wanted.filter((name) => !ALL_SYSTEMS.some((system) => system.name === name));
  if (unknown.length > 0) fail(`BENCH_SERVERS names unknown systems: ${unknown.join(', ')}. Known: ${ALL_SYSTEMS.map((system) => system.name).join(', ')}.`);
  return ALL_SYSTEMS.filter((system) => wanted.includes(system.name));
}

function fail(message: string): never {
  console.error(`bench:cluster: ${message}`);
  process.exit(1);
}
