/**
 * Broadcast benchmark: how fast toni, a naive `ws` loop, NestJS (platform-ws) and Socket.IO fan
 * 64-byte messages out to N connected WebSocket clients on this machine. Each server runs alone
 * in a child process on one CPU; one load client process on another CPU holds the N clients.
 * Run by hand: `npm run bench:broadcast` (see bench/README-broadcast.md for the knobs).
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, startNode } from './broadcast/child.js';
import type { BurstMode, LoadCommand, LoadReport, ServerCommand, ServerReport } from './broadcast/protocol.js';
import { expandCpuList, formatRate, median, percentile, positiveInteger } from './support.js';

interface ServerSpec {
  readonly name: string;
  readonly file: string;
  /** Extra environment of the server process. */
  readonly env?: Readonly<Record<string, string>>;
}

interface BenchOptions {
  readonly clientCounts: readonly number[];
  readonly messages: number;
  readonly warmupMessages: number;
  /** Bursts per mode: `repeats`, or fewer (never under `minRepeats`) once they took `budgetMs`. */
  readonly repeats: number;
  readonly minRepeats: number;
  readonly budgetMs: number;
  readonly modes: readonly BurstMode[];
  readonly latencyClientCounts: readonly number[];
  readonly latencySamples: number;
  readonly latencyIntervalMs: number;
  readonly servers: readonly ServerSpec[];
  readonly serverNodeArgs: readonly string[];
  readonly pinning: { readonly server: number; readonly load: number } | undefined;
}

interface BurstResult {
  /** Deliveries per second: N·M over the time from the first call to the last frame counted. */
  readonly rate: number;
  /** Server CPU milliseconds per million deliveries. */
  readonly cpuMsPerMillion: number;
  /** The load client's CPU time over the burst's duration: near 1, it is the bottleneck. */
  readonly loadBusy: number;
  /** How long the server's loop of M calls took to return. */
  readonly loopMs: number;
}

interface ServerResult {
  readonly name: string;
  readonly bursts: ReadonlyMap<BurstMode, readonly BurstResult[]>;
  readonly heapPerClient: number;
  readonly rssPerClient: number;
  readonly latency: { readonly p50: number; readonly p99: number } | undefined;
  readonly connectMs: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const BASELINE = 'ws';
const SERVERS: readonly ServerSpec[] = [
  { name: 'toni', file: 'broadcast/toni-server.ts' },
  // The same server sending gateway events: broadcast.emit('m', text), the envelope serialised once.
  { name: 'toni-emit', file: 'broadcast/toni-server.ts', env: { BENCH_TONI_EMIT: '1' } },
  // The same events, kept: BroadcastModule.forRoot({ history: { size: 1000, ttl: 60_000 } }).
  { name: 'toni-history', file: 'broadcast/toni-server.ts', env: { BENCH_TONI_HISTORY: '1' } },
  { name: 'ws', file: 'broadcast/ws-server.ts' },
  { name: 'nestjs', file: 'broadcast/nest-server.ts' },
  { name: 'socket.io', file: 'broadcast/socketio-server.ts' },
];
/** Run only when named in BENCH_SERVERS: not a peer, the least any Node server can do (see its file). */
const YARDSTICKS: readonly ServerSpec[] = [{ name: 'ceiling', file: 'broadcast/ceiling-server.ts' }];
/** Sockets each process may need beyond the clients: stdio, IPC, listeners, files. */
const SPARE_FILE_DESCRIPTORS = 64;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\nbench:broadcast: ${signal}, stopping the servers and the load client.`);
    process.exit(130);
  });
}

const options = readOptions(process.env);
checkFileLimit(Math.max(...options.clientCounts));
if (options.pinning !== undefined) spawnSync('taskset', ['-cp', String(options.pinning.load), String(process.pid)], { stdio: 'ignore' });
printSetup(options);

const load = new Child<LoadCommand, LoadReport>('load client', startNode(join(here, 'broadcast/load-client.ts'), [], options.pinning?.load));
try {
  for (const clients of options.clientCounts) {
    console.log(`\nN = ${clients.toLocaleString('en-US')} clients`);
    const results: ServerResult[] = [];
    for (const spec of options.servers) results.push(await benchServer(spec, clients, options));
    printTable(clients, results, options);
  }
} finally {
  await load.stop();
}

async function benchServer(spec: ServerSpec, clients: number, options: BenchOptions): Promise<ServerResult> {
  const server = new Child<ServerCommand, ServerReport>(spec.name, startNode(join(here, spec.file), ['--expose-gc', ...options.serverNodeArgs], options.pinning?.server, spec.env));
  let finished = false;
  try {
    const ready = await server.next('ready', 60_000);
    const before = await server.request({ type: 'memory' }, 'memory');
    const connected = await load.request({ type: 'connect', port: ready.port, path: ready.path, protocol: ready.protocol, count: clients }, 'connected', 120_000);
    await server.request({ type: 'wait-clients', count: clients }, 'clients', 70_000);
    const after = await server.request({ type: 'memory' }, 'memory');
    const line = (text: string) => console.log(`  ${spec.name.padEnd(9)} ${text}`);
    line(`${clients} clients connected in ${Math.round(connected.ms)} ms`);

    for (const mode of options.modes) await burst(server, clients, options.warmupMessages, mode);
    const bursts = new Map<BurstMode, BurstResult[]>();
    for (const mode of options.modes) {
      const runs: BurstResult[] = [];
      const started = Date.now();
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        if (repeat >= options.minRepeats && Date.now() - started > options.budgetMs) break;
        runs.push(await burst(server, clients, options.messages, mode));
      }
      bursts.set(mode, runs);
      line(
        `${mode.padEnd(5)} ${runs.map((run) => formatRate(run.rate)).join(' ')} deliveries/s; ` +
          `loop returned after ${runs.map((run) => run.loopMs.toFixed(1)).join(' ')} ms; ` +
          `load client busy ${runs.map((run) => `${Math.round(run.loadBusy * 100)}%`).join(' ')}`,
      );
    }

    let latency: ServerResult['latency'];
    if (options.latencyClientCounts.includes(clients)) {
      latency = await singleBroadcastLatency(server, options);
      line(`single broadcast to all: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms (${options.latencySamples} samples)`);
    }
    finished = true;
    return {
      name: spec.name,
      bursts,
      heapPerClient: (after.heapUsed - before.heapUsed) / clients,
      rssPerClient: (after.rss - before.rss) / clients,
      latency,
      connectMs: connected.ms,
    };
  } finally {
    // After a failure the run is over: stop the server and let the error through as it is.
    // Otherwise the server goes first, so that closed connections wait out TIME_WAIT on its side.
    if (finished) await load.request({ type: 'release' }, 'released');
    await server.stop();
    if (finished) await load.request({ type: 'close' }, 'closed');
  }
}

/** One burst of `messages` broadcasts to every client; the time runs until the last frame is counted. */
async function burst(server: Child<ServerCommand, ServerReport>, clients: number, messages: number, mode: BurstMode): Promise<BurstResult> {
  const deliveries = clients * messages;
  // Generous: a server slower than 10 000 deliveries/s fails loudly instead of hanging the run.
  const timeout = 30_000 + deliveries / 10;
  await load.request({ type: 'expect', frames: deliveries }, 'armed');
  server.send({ type: 'burst', messages, mode });
  const sent = await server.next('burst-sent', timeout);
  const counted = await load.next('counted', timeout);
  const cpu = await server.request({ type: 'cpu' }, 'cpu');
  const elapsedMs = counted.at - sent.startedAt;
  return {
    rate: deliveries / (elapsedMs / 1000),
    cpuMsPerMillion: cpu.micros / 1000 / (deliveries / 1e6),
    loadBusy: counted.cpuMicros / 1000 / elapsedMs,
    loopMs: sent.returnedAt - sent.startedAt,
  };
}

/**
 * Single broadcasts, one at a time: each is sent `latencyIntervalMs` after the previous one
 * reached every client, so none waits behind another. Latency: from the call in the server to
 * the moment the load client has the frame on its last connection.
 */
async function singleBroadcastLatency(server: Child<ServerCommand, ServerReport>, options: BenchOptions): Promise<{ p50: number; p99: number }> {
  await load.request({ type: 'expect-samples', samples: options.latencySamples }, 'armed');
  const latencies: number[] = [];
  for (let sequence = 0; sequence < options.latencySamples; sequence++) {
    await new Promise((resolve) => setTimeout(resolve, options.latencyIntervalMs));
    const { sentAt } = await server.request({ type: 'single', sequence }, 'single-sent');
    const { index, at } = await load.next('sample');
    if (index !== sequence) throw new Error(`The load client completed broadcast ${index} where ${sequence} was expected.`);
    latencies.push(at - sentAt);
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

function printSetup(options: BenchOptions): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const pin = options.pinning === undefined ? 'not pinned' : `servers on CPU ${options.pinning.server}, load client on CPU ${options.pinning.load}`;
  console.log(`node ${process.version}, ${cpus().length} × ${cpu}; ${pin}`);
  console.log(
    `bursts of ${options.messages} broadcasts of 64 bytes, ${options.modes.join(' and ')}, median of ${formatRepeats(options)} ` +
      `(after ${options.warmupMessages} to warm up); single-broadcast latency at N = ${options.latencyClientCounts.join(', ') || '—'} ` +
      `over ${options.latencySamples} broadcasts, each ${options.latencyIntervalMs} ms after the previous one arrived`,
  );
}

function printTable(clients: number, results: readonly ServerResult[], options: BenchOptions): void {
  const baseline = results.find((result) => result.name === BASELINE);
  const rate = (result: ServerResult, mode: BurstMode) => median((result.bursts.get(mode) ?? []).map((run) => run.rate));
  const cpu = (result: ServerResult, mode: BurstMode) => median((result.bursts.get(mode) ?? []).map((run) => run.cpuMsPerMillion));
  const busy = (result: ServerResult) => Math.max(...[...result.bursts.values()].flat().map((run) => run.loadBusy));
  const header = ['server'];
  for (const mode of options.modes) header.push(`${mode} deliv/s`, `vs ${BASELINE}`, 'CPU/1M', `CPU vs ${BASELINE}`);
  header.push('heap/conn', 'RSS/conn', 'p50', 'p99', 'p99 vs ws', 'load busy');
  const rows = results.map((result) => {
    const row = [result.name];
    for (const mode of options.modes) {
      row.push(formatRate(rate(result, mode)));
      row.push(baseline === undefined ? '—' : `${(rate(result, mode) / rate(baseline, mode)).toFixed(1)}×`);
      row.push(`${Math.round(cpu(result, mode))} ms`);
      row.push(baseline === undefined ? '—' : `${(cpu(baseline, mode) / cpu(result, mode)).toFixed(1)}×`);
    }
    row.push(formatBytes(result.heapPerClient), formatBytes(result.rssPerClient));
    row.push(result.latency === undefined ? '—' : `${result.latency.p50.toFixed(2)} ms`);
    row.push(result.latency === undefined ? '—' : `${result.latency.p99.toFixed(2)} ms`);
    row.push(result.latency === undefined || baseline?.latency === undefined ? '—' : `${(result.latency.p99 / baseline.latency.p99).toFixed(2)}×`);
    row.push(`${Math.round(busy(result) * 100)}%`);
    return row;
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  console.log(`\nN = ${clients.toLocaleString('en-US')}, M = ${options.messages}: median of ${formatRepeats(options)} bursts`);
  console.log(`${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}`);
  for (const row of rows) console.log(line(row));
  console.log(
    'deliv/s = N·M / (first call → last frame counted); CPU/1M = server CPU per million deliveries (CPU vs ws: how many times less; it moves little when other processes share the machine); heap and RSS per idle connection ' +
      'after GC; p50/p99 = one broadcast, call → last client has it; load busy = the load client\'s CPU over the burst (near 100%: it limits).',
  );
}

function formatRepeats(options: BenchOptions): string {
  if (options.minRepeats === options.repeats) return String(options.repeats);
  return `${options.repeats} (${options.minRepeats} once a mode's bursts took ${options.budgetMs / 1000} s)`;
}

function formatBytes(value: number): string {
  return value >= 1024 ? `${(value / 1024).toFixed(1)} KB` : `${Math.round(value)} B`;
}

function readOptions(env: NodeJS.ProcessEnv): BenchOptions {
  const quick = env['BENCH_QUICK'] === '1';
  const clientCounts = integerList(env, 'BENCH_CLIENTS', quick ? [500] : [1000, 5000]);
  const latencyDefault = clientCounts.includes(1000) ? [1000] : [clientCounts[0]!];
  const repeats = positiveInteger(env, 'BENCH_REPEATS', quick ? 2 : 5, fail);
  return {
    clientCounts,
    messages: positiveInteger(env, 'BENCH_MESSAGES', quick ? 200 : 1000, fail),
    warmupMessages: positiveInteger(env, 'BENCH_WARMUP_MESSAGES', quick ? 50 : 200, fail),
    repeats,
    minRepeats: Math.min(repeats, 3),
    budgetMs: positiveInteger(env, 'BENCH_BUDGET', 60, fail) * 1000,
    modes: ['fire', 'await'],
    latencyClientCounts: integerList(env, 'BENCH_LATENCY_CLIENTS', latencyDefault),
    latencySamples: positiveInteger(env, 'BENCH_LATENCY_SAMPLES', quick ? 50 : 200, fail),
    latencyIntervalMs: positiveInteger(env, 'BENCH_LATENCY_INTERVAL', 10, fail),
    servers: selectServers(env['BENCH_SERVERS']),
    serverNodeArgs: (env['BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((arg) => arg !== ''),
    pinning: env['BENCH_PIN'] === '0' ? undefined : choosePinning(),
  };
}

function selectServers(list: string | undefined): readonly ServerSpec[] {
  if (list === undefined || list.trim() === '') return SERVERS;
  const names = list.split(',').map((name) => name.trim());
  const known = [...SERVERS, ...YARDSTICKS];
  const unknown = names.filter((name) => !known.some((spec) => spec.name === name));
  if (unknown.length > 0) fail(`BENCH_SERVERS names unknown servers: ${unknown.join(', ')}. Known: ${known.map((spec) => spec.name).join(', ')}.`);
  return known.filter((spec) => names.includes(spec.name));
}

function integerList(env: NodeJS.ProcessEnv, name: string, fallback: readonly number[]): readonly number[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isSafeInteger(value) || value <= 0)) fail(`${name} must be a comma-separated list of positive integers, got "${raw}".`);
  return values;
}

/** Both the server and the load client hold one socket per client; each needs that many descriptors. */
function checkFileLimit(clients: number): void {
  const probe = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const limit = probe.stdout.trim();
  if (probe.status !== 0 || limit === 'unlimited') return;
  if (Number(limit) < clients + SPARE_FILE_DESCRIPTORS) {
    fail(`${clients} clients need ${clients + SPARE_FILE_DESCRIPTORS} open files per process, but ulimit -n is ${limit}. Raise it (ulimit -n 65536) or lower BENCH_CLIENTS.`);
  }
}

/** With two CPUs or more and `taskset`, the server gets the first CPU and the load client the second. */
function choosePinning(): { server: number; load: number } | undefined {
  const probe = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  const list = /:\s*([\d,\s-]+)$/.exec(probe.stdout.trim())?.[1];
  const allowed = list === undefined ? [] : expandCpuList(list);
  if (allowed.length < 2) return undefined;
  return { server: allowed[0]!, load: allowed[1]! };
}

function fail(message: string): never {
  console.error(`bench:broadcast: ${message}`);
  process.exit(1);
}
