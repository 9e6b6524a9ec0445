/**
 * tonijs/client, measured three ways (`npm run bench:client`; CLIENT_PARTS picks some of them):
 *
 * - size: the browser build, minified and gzipped (esbuild, the `browser` condition), next to
 *   socket.io-client's, bundled the same way;
 * - reconnect: RECONNECT_CLIENTS (1 000) Node clients on one server, which is killed (every link
 *   drops at the same instant: the worst case for a herd) and started again on the same port: how
 *   long from the new server listening until every client is open again, how the jitter spread
 *   them, and what the wave did to the server (handshakes per 100 ms, event-loop delay), next to
 *   the same restart without jitter;
 * - requests: ONE client asking bench/ack's server (zod validation, a small answer), with 1 and
 *   with REQUEST_IN_FLIGHT (64) requests outstanding: tonijs/client's `request` against
 *   socket.io-client's `emitWithAck`, and bare `ws` speaking the envelope by hand as the floor.
 *
 *   npm run bench:client      CLIENT_PARTS=size,reconnect,requests RECONNECT_CLIENTS=1000 REQUEST_SECONDS=5 REQUEST_ROUNDS=3
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { ReconnectOptions } from 'tonijs/client';
import { Child, startNode } from './broadcast/child.js';
import type { AckServerCommand, AckServerReport } from './ack/work.js';
import type { ReconnectClientsCommand, ReconnectClientsReport } from './client/reconnect-clients.js';
import type { ReconnectServerCommand, ReconnectServerReport } from './client/reconnect-server.js';
import type { ClientLibrary, RequestLoadCommand, RequestLoadReport } from './client/request-load.js';
import { expandCpuList, percentile, positiveInteger } from './support.js';

const fail = (message: string): never => {
  console.error(`bench:client: ${message}`);
  process.exit(1);
};
const PARTS = (process.env['CLIENT_PARTS'] ?? 'size,reconnect,requests').split(',');
const CLIENTS = positiveInteger(process.env, 'RECONNECT_CLIENTS', 1_000, fail);
const SECONDS = positiveInteger(process.env, 'REQUEST_SECONDS', 5, fail);
const IN_FLIGHT = positiveInteger(process.env, 'REQUEST_IN_FLIGHT', 64, fail);
const ROUNDS = positiveInteger(process.env, 'REQUEST_ROUNDS', 3, fail);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const pinning = choosePinning();

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; ${pinning === undefined ? 'not pinned' : `servers on CPU ${pinning.server}, clients on CPU ${pinning.load}`}`);
if (PARTS.includes('size')) await size();
if (PARTS.includes('reconnect')) await reconnect();
if (PARTS.includes('requests')) await requests();

async function size(): Promise<void> {
  console.log('\nsize of the browser build (esbuild --bundle --minify --platform=browser, ESM):');
  for (const [name, contents] of [['tonijs/client', "export * from 'tonijs/client';"], ['socket.io-client', "export { io } from 'socket.io-client';"]] as const) {
    const result = await build({
      stdin: { contents, resolveDir: here('.') }, bundle: true, format: 'esm', platform: 'browser', minify: true, write: false,
      conditions: ['tonijs-source'], logLevel: 'silent',
    });
    const bytes = result.outputFiles[0]!.contents;
    console.log(`  ${name.padEnd(17)} ${kb(bytes.byteLength)} minified, ${kb(gzipSync(bytes, { level: 9 }).byteLength)} min+gzip`);
  }
}

async function reconnect(): Promise<void> {
  console.log(`\nreconnect: ${CLIENTS.toLocaleString('en-US')} tonijs/client sockets through a server crash and restart (SIGKILL: every link drops at once; then a new process on the same port)`);
  await restart('with the default backoff (minDelay 500 ms, maxDelay 10 s, jitter)', {});
  // minDelay = maxDelay leaves the random draw no room: every client retries in lockstep.
  await restart('for comparison, without jitter (minDelay = maxDelay = 1 s)', { minDelay: 1_000, maxDelay: 1_000 });
}

async function restart(label: string, options: ReconnectOptions): Promise<void> {
  console.log(`  ${label}:`);
  const first = startNode(here('client/reconnect-server.ts'), [], pinning?.server);
  let server = new Child<ReconnectServerCommand, ReconnectServerReport>('reconnect server', first);
  const clients = new Child<ReconnectClientsCommand, ReconnectClientsReport>('reconnect clients', startNode(here('client/reconnect-clients.ts'), [], pinning?.load));
  try {
    const { port } = await server.next('ready', 60_000);
    await clients.request({ type: 'open', url: `ws://127.0.0.1:${port}/live`, count: CLIENTS, reconnect: options }, 'open', 60_000);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGKILL');
    await exited;
    const downAt = Date.now();
    server = new Child('restarted server', startNode(here('client/reconnect-server.ts'), [], pinning?.server, { PORT: String(port) }));
    const { at: upAt } = await server.next('ready', 60_000);
    const { lost, reopened, attempts } = await clients.next('reopened', 120_000);
    const checked = await clients.request({ type: 'check' }, 'checked', 60_000);
    const stats = await server.request({ type: 'stats' }, 'stats');
    const sorted = [...reopened].sort((a, b) => a - b);
    const since = (time: number) => `${((time - upAt) / 1000).toFixed(2)} s`;
    const perWindow = new Map<number, number>();
    for (const time of stats.connects) perWindow.set(Math.floor(time / 100), (perWindow.get(Math.floor(time / 100)) ?? 0) + 1);
    const failed = attempts.reduce((total, count) => total + count - 1, 0);
    console.log(`    all ${lost.length} clients saw the loss within ${Math.max(...lost) - Math.min(...lost)} ms; the new server listened ${upAt - downAt} ms after the kill`);
    console.log(`    every client open again ${since(sorted.at(-1)!)} after the new server listened: first ${since(sorted[0]!)}, p50 ${since(percentile(sorted, 0.5))}, p90 ${since(percentile(sorted, 0.9))}; spread ${((sorted.at(-1)! - sorted[0]!) / 1000).toFixed(2)} s`);
    console.log(`    attempts per client: p50 ${percentile([...attempts].sort((a, b) => a - b), 0.5)}, max ${Math.max(...attempts)} (${failed.toLocaleString('en-US')} refused while the server was down)`);
    console.log(`    the new server: ${stats.connects.length} handshakes, ${checked.answered} clients answered a request after; at most ${Math.max(...perWindow.values())} handshakes in any 100 ms; its event loop's delay during the wave p99 ${stats.lagP99Ms.toFixed(1)} ms, max ${stats.lagMaxMs.toFixed(1)} ms; disconnects ${JSON.stringify(stats.disconnectKinds)}`);
  } finally {
    await clients.stop();
    await server.stop();
  }
}

async function requests(): Promise<void> {
  console.log(`\nrequests of ONE client against bench/ack's server (zod-validated payload, small answer), ${SECONDS} s after 1 s of warm-up, best of ${ROUNDS} interleaved rounds:`);
  const servers = { tonijs: 'ack/toni-server.ts', 'socket.io': 'ack/socketio-server.ts' };
  const rows: { library: ClientLibrary; server: keyof typeof servers }[] = [
    { library: 'tonijs/client', server: 'tonijs' },
    { library: 'socket.io-client', server: 'socket.io' },
    { library: 'ws', server: 'tonijs' },
  ];
  const best = new Map<string, { rate: number; p50: number; p99: number; cpu: number }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const inFlight of [1, IN_FLIGHT]) {
      for (const row of rows) {
        const server = new Child<AckServerCommand, AckServerReport>(row.server, startNode(here(servers[row.server]), [], pinning?.server));
        const load = new Child<RequestLoadCommand, RequestLoadReport>('request load', startNode(here('client/request-load.ts'), [], pinning?.load));
        try {
          const ready = await server.next('ready', 60_000);
          const path = row.server === 'tonijs' ? ready.path : '';
          const done = await load.request({ type: 'run', library: row.library, port: ready.port, path, inFlight, warmupMs: 1_000, measureMs: SECONDS * 1_000 }, 'done', SECONDS * 1_000 + 60_000);
          const result = { rate: done.requests / done.seconds, p50: done.p50, p99: done.p99, cpu: done.cpuMicros / done.requests };
          const key = `${row.library} ${inFlight}`;
          console.log(`  round ${round + 1}: ${key.padEnd(20)} ${Math.round(result.rate).toLocaleString('en-US')} requests/s`);
          if ((best.get(key)?.rate ?? 0) < result.rate) best.set(key, result);
        } finally {
          await load.stop();
          await server.stop();
        }
      }
    }
  }
  console.log('client              in flight   requests/s   p50        p99        client CPU/request');
  for (const inFlight of [1, IN_FLIGHT]) {
    for (const row of rows) {
      const result = best.get(`${row.library} ${inFlight}`)!;
      const name = row.library === 'ws' ? 'ws (by hand)' : row.library;
      console.log(`${name.padEnd(19)} ${String(inFlight).padStart(9)}   ${Math.round(result.rate).toLocaleString('en-US').padStart(10)}   ${`${result.p50.toFixed(3)} ms`.padStart(9)}  ${`${result.p99.toFixed(3)} ms`.padStart(9)}  ${result.cpu.toFixed(1)} µs`);
    }
  }
  for (const inFlight of [1, IN_FLIGHT]) {
    const ratio = best.get(`tonijs/client ${inFlight}`)!.rate / best.get(`socket.io-client ${inFlight}`)!.rate;
    console.log(`  ${inFlight} in flight: tonijs/client makes ${ratio.toFixed(2)}× socket.io-client's requests/s`);
  }
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`.padStart(8);
}

function choosePinning(): { server: number; load: number } | undefined {
  if (process.env['BENCH_PIN'] === '0') return undefined;
  const probe = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  const list = /:\s*([\d,\s-]+)$/.exec(probe.stdout.trim())?.[1];
  const allowed = list === undefined ? [] : expandCpuList(list);
  return allowed.length < 2 ? undefined : { server: allowed[0]!, load: allowed[1]! };
}
