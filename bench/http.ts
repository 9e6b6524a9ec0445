/**
 * HTTP benchmark: requests per second of a JSON GET and a JSON POST route on toni,
 * Fastify, NestJS (Express) and bare node:http, measured with wrk on this machine; then the
 * same routes behind a guard, an interceptor and CORS on toni, against Fastify doing that work
 * with @fastify/cors and two hooks. Run by hand: `npm run bench:http` (see bench/README.md for the knobs).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EchoRequest, GET_PATH, PIPELINE_ORIGIN, PIPELINE_TOKEN, POST_BODY, POST_PATH, echo, greet } from './http/workload.js';
import { expandCpuList, positiveInteger, stopProcess } from './support.js';

interface ServerSpec {
  readonly name: string;
  readonly file: string;
  /** A tsconfig.json of its own, for servers that need other compiler options (Nest's legacy decorators). */
  readonly tsconfig?: string;
  /** Imports `tonijs`, which then comes from its build or, with BENCH_TONI=source, from src/. */
  readonly usesToni?: boolean;
  /** `pipeline`: authenticated requests from another origin, to a server with a guard, an interceptor and CORS (or their peer). */
  readonly scenario: Scenario;
}

type Scenario = 'plain' | 'pipeline';

/** What each scenario's requests carry beyond the route's own headers. */
const SCENARIO_HEADERS: Readonly<Record<Scenario, Readonly<Record<string, string>>>> = {
  plain: {},
  pipeline: { authorization: PIPELINE_TOKEN, origin: PIPELINE_ORIGIN },
};

interface BenchOptions {
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly threads: number;
  /** Each round runs every server once; the table shows each server's best round. */
  readonly rounds: number;
  readonly servers: readonly ServerSpec[];
  readonly nodeArgs: readonly string[];
  readonly toniFrom: 'build' | 'source';
  /** CPUs for the server and for wrk, when pinning is possible and wanted. */
  readonly pinning: { server: number; wrk: number } | undefined;
}

interface WrkResult {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  /**
   * The server's CPU time per request, in microseconds (Linux only). Unlike req/s it hardly
   * moves when other processes share the machine, so it is the number to compare there.
   */
  readonly cpuMicrosPerRequest: number | undefined;
  /** Non-2xx answers and socket errors: a run with any is not a fair number. */
  readonly errors: string[];
}

interface ServerResult {
  readonly name: string;
  readonly scenario: Scenario;
  readonly get: WrkResult;
  readonly post: WrkResult;
}

const CLOCK_TICKS_PER_SECOND = 100;
const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');

const SERVERS: readonly ServerSpec[] = [
  { name: 'toni', file: 'http/toni-server.ts', usesToni: true, scenario: 'plain' },
  { name: 'fastify', file: 'http/fastify-server.ts', scenario: 'plain' },
  { name: 'nestjs-express', file: 'http/nest/nest-server.ts', tsconfig: 'http/nest/tsconfig.json', scenario: 'plain' },
  { name: 'node:http', file: 'http/node-server.ts', scenario: 'plain' },
  { name: 'toni-pipeline', file: 'http/toni-pipeline-server.ts', usesToni: true, scenario: 'pipeline' },
  { name: 'fastify-pipeline', file: 'http/fastify-pipeline-server.ts', scenario: 'pipeline' },
];

const options = readOptions(process.env);
assertWrkInstalled();
if (options.toniFrom === 'build' && options.servers.some((spec) => spec.usesToni)) buildToni();
const scratch = mkdtempSync(join(tmpdir(), 'toni-bench-'));
try {
  const postScripts = { plain: join(scratch, 'post.lua'), pipeline: join(scratch, 'post-pipeline.lua') };
  writeFileSync(postScripts.plain, wrkPostScript(POST_BODY, SCENARIO_HEADERS.plain));
  writeFileSync(postScripts.pipeline, wrkPostScript(POST_BODY, SCENARIO_HEADERS.pipeline));
  printSetup(options);
  const rounds: ServerResult[][] = [];
  for (let round = 1; round <= options.rounds; round++) {
    if (options.rounds > 1) console.log(`round ${round} of ${options.rounds}`);
    const results: ServerResult[] = [];
    for (const spec of options.servers) results.push(await benchServer(spec, options, postScripts[spec.scenario]));
    rounds.push(results);
  }
  const results = options.servers.map((_, index) => bestOf(rounds.map((round) => round[index]!)));
  printTable(results.filter((result) => result.scenario === 'plain'), options, 'toni', 'fastify', 'Plain routes');
  printTable(results.filter((result) => result.scenario === 'pipeline'), options, 'toni-pipeline', 'fastify-pipeline', 'With a global guard, a global interceptor and CORS (Fastify: @fastify/cors, an onRequest and a preHandler hook)');
  if (results.some((result) => result.get.errors.length > 0 || result.post.errors.length > 0)) process.exitCode = 1;
} catch (error) {
  console.error(`\nbench:http: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

async function benchServer(spec: ServerSpec, options: BenchOptions, postScript: string): Promise<ServerResult> {
  process.stdout.write(`${spec.name}: starting… `);
  const server = await startServer(spec, options);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    await checkAnswers(spec, base);
    process.stdout.write('warming up… ');
    const pid = server.child.pid!;
    const headers = SCENARIO_HEADERS[spec.scenario];
    await runWrk(pid, `${base}${GET_PATH}`, undefined, headers, options, options.warmupSeconds);
    await runWrk(pid, `${base}${POST_PATH}`, postScript, headers, options, options.warmupSeconds);
    process.stdout.write('GET… ');
    const get = await runWrk(pid, `${base}${GET_PATH}`, undefined, headers, options, options.durationSeconds);
    process.stdout.write('POST… ');
    const post = await runWrk(pid, `${base}${POST_PATH}`, postScript, headers, options, options.durationSeconds);
    process.stdout.write('done\n');
    return { name: spec.name, scenario: spec.scenario, get, post };
  } finally {
    await stopProcess(server.child);
  }
}

/** Spawns one server, pinned to its CPU, and waits for the port it prints. */
async function startServer(spec: ServerSpec, options: BenchOptions): Promise<{ child: ChildProcess; port: number }> {
  const source = spec.usesToni === true && options.toniFrom === 'source' ? ['--conditions=tonijs-source'] : [];
  const nodeArgs = [...source, '--import', 'tsx', ...options.nodeArgs, join(here, spec.file)];
  const [command, args] = pinned(process.execPath, nodeArgs, options.pinning?.server);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
  if (spec.tsconfig !== undefined) env['TSX_TSCONFIG_PATH'] = join(here, spec.tsconfig);
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.name} printed no port within 30 s.\n${stderr}`));
    }, 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^(\d+)\n/.exec(stdout);
      if (match === null) return;
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited (${signal ?? `code ${code}`}) before listening.\n${stderr}`));
    });
  });
  return { child, port };
}

/**
 * Builds toni as it ships (`npm run build`, into dist/), so that its server runs the compiled
 * JavaScript users run. Its TypeScript source run through tsx is slower than that: tsx
 * compiles with esbuild's keepNames, which adds a `__name()` call to every closure created.
 */
function buildToni(): void {
  process.stdout.write('building toni (npm run build)… ');
  const tsc = join(root, 'node_modules', 'typescript', 'lib', 'tsc.js');
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
  if (build.error !== undefined || build.status !== 0) {
    fail(`tonijs's build failed, so there is nothing to measure (BENCH_TONI=source measures src/ through tsx instead):\n${build.stdout}${build.stderr}`);
  }
  process.stdout.write('done\n');
}

/**
 * Every server must give the same answers, or the comparison means nothing. Pipeline servers
 * must also allow the origin, and refuse a request without the token: proof that the work is done.
 */
async function checkAnswers(spec: ServerSpec, base: string): Promise<void> {
  const { name } = spec;
  const headers = SCENARIO_HEADERS[spec.scenario];
  const get = await fetch(`${base}${GET_PATH}`, { headers });
  const post = await fetch(`${base}${POST_PATH}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: POST_BODY });
  if (spec.scenario === 'pipeline') {
    for (const [route, response] of [[`GET ${GET_PATH}`, get], [`POST ${POST_PATH}`, post]] as const) {
      const allowed = response.headers.get('access-control-allow-origin');
      if (allowed !== PIPELINE_ORIGIN) throw new Error(`${name} answered ${route} with access-control-allow-origin ${String(allowed)}; expected ${PIPELINE_ORIGIN}.`);
    }
    const anonymous = await fetch(`${base}${GET_PATH}`, { headers: { origin: PIPELINE_ORIGIN } });
    await anonymous.arrayBuffer();
    if (anonymous.status !== 401) throw new Error(`${name} answered GET ${GET_PATH} without a token with ${anonymous.status}; expected 401.`);
  }
  await expectJson(name, `GET ${GET_PATH}`, get, greet());
  await expectJson(name, `POST ${POST_PATH}`, post, echo(JSON.parse(POST_BODY) as EchoRequest));
}

async function expectJson(name: string, route: string, response: Response, expected: unknown): Promise<void> {
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  if (response.status !== 200 || !type.startsWith('application/json') || !isDeepStrictEqual(JSON.parse(text), expected)) {
    throw new Error(`${name} answered ${route} with ${response.status} (${type}) ${text}; expected 200 with ${JSON.stringify(expected)}.`);
  }
}

async function runWrk(serverPid: number, url: string, script: string | undefined, headers: Readonly<Record<string, string>>, options: BenchOptions, seconds: number): Promise<WrkResult> {
  const wrkArgs = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${seconds}s`, '--latency'];
  if (script !== undefined) wrkArgs.push('-s', script);
  else for (const [name, value] of Object.entries(headers)) wrkArgs.push('-H', `${name}: ${value}`);
  wrkArgs.push(url);
  const [command, args] = pinned('wrk', wrkArgs, options.pinning?.wrk);
  const cpuBefore = cpuSeconds(serverPid);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const cpuAfter = cpuSeconds(serverPid);
  if (code !== 0) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${output}`);
  const { requests, ...result } = parseWrk(output);
  const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1e6) / requests;
  return { ...result, cpuMicrosPerRequest: cpu };
}

/** User and system CPU seconds of a process so far, from /proc; undefined elsewhere. */
function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which sits in parentheses and may contain spaces:
  // utime and stime are the 14th and 15th fields, in clock ticks (100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * On a shared machine other processes only ever take time away, so the best round is the
 * least disturbed one; a server's GET and POST may come from different rounds.
 */
function bestOf(runs: readonly ServerResult[]): ServerResult {
  const best = (route: 'get' | 'post') => runs.map((run) => run[route]).reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
  return { name: runs[0]!.name, scenario: runs[0]!.scenario, get: best('get'), post: best('post') };
}

function parseWrk(output: string): Omit<WrkResult, 'cpuMicrosPerRequest'> & { requests: number } {
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const requests = /^\s+(\d+) requests in/m.exec(output);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\b/m.exec(output);
  if (rate === null || p99 === null || requests === null) throw new Error(`Cannot read wrk's output:\n${output}`);
  const errors: string[] = [];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (non2xx !== null) errors.push(`${non2xx[1]} non-2xx answers`);
  const socket = /Socket errors: (.+)/.exec(output);
  if (socket !== null) errors.push(`socket errors: ${socket[1]}`);
  const scale = { us: 0.001, ms: 1, s: 1000 }[p99[2] as 'us' | 'ms' | 's'];
  return { requestsPerSecond: Number(rate[1]), p99Ms: Number(p99[1]) * scale, errors, requests: Number(requests[1]) };
}

function wrkPostScript(body: string, headers: Readonly<Record<string, string>>): string {
  // Lua long strings, so the JSON and the header values need no escaping.
  const extra = Object.entries(headers).map(([name, value]) => `wrk.headers["${name}"] = [==[${value}]==]\n`).join('');
  return `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n${extra}wrk.body = [==[${body}]==]\n`;
}

function pinned(command: string, args: readonly string[], cpu: number | undefined): [string, string[]] {
  return cpu === undefined ? [command, [...args]] : ['taskset', ['-c', String(cpu), command, ...args]];
}

function printSetup(options: BenchOptions): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const pin = options.pinning === undefined ? 'not pinned' : `server on CPU ${options.pinning.server}, wrk on CPU ${options.pinning.wrk}`;
  const toni = options.toniFrom === 'build' ? "tonijs's build (dist/)" : "tonijs's source (src/ through tsx)";
  console.log(`node ${process.version}, ${availableParallelism()} × ${cpu}; ${pin}; ${toni}`);
  const rounds = options.rounds > 1 ? `, best of ${options.rounds} rounds` : '';
  console.log(
    `wrk -t${options.threads} -c${options.connections} -d${options.durationSeconds}s per route after ${options.warmupSeconds}s of warm-up; ` +
      `GET ${GET_PATH}, POST ${POST_PATH} with ${Buffer.byteLength(POST_BODY)} bytes of JSON${rounds}\n`,
  );
}

function printTable(results: readonly ServerResult[], options: BenchOptions, toniName: string, fastifyName: string, title: string): void {
  if (results.length === 0) return;
  console.log(`\n${title}:`);
  const baseline = results.find((result) => result.name === toniName);
  const columns = (run: WrkResult, base: number | undefined) => [
    formatRate(run.requestsPerSecond),
    base === undefined ? '—' : `${(run.requestsPerSecond / base).toFixed(2)}×`,
    `${run.p99Ms.toFixed(2)} ms`,
    run.cpuMicrosPerRequest === undefined ? '—' : `${run.cpuMicrosPerRequest.toFixed(1)} µs`,
  ];
  const rows = results.map((result) => [
    result.name,
    ...columns(result.get, baseline?.get.requestsPerSecond),
    ...columns(result.post, baseline?.post.requestsPerSecond),
  ]);
  const header = ['server', 'GET req/s', 'vs toni', 'p99', 'CPU/req', 'POST req/s', 'vs toni', 'p99', 'CPU/req'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  console.log(`\n${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}`);
  for (const row of rows) console.log(line(row));
  for (const result of results) {
    for (const [route, run] of [['GET', result.get], ['POST', result.post]] as const) {
      if (run.errors.length > 0) console.log(`! ${result.name} ${route}: ${run.errors.join(', ')}`);
    }
  }
  const fastify = results.find((result) => result.name === fastifyName);
  if (baseline !== undefined && fastify !== undefined) {
    const ratio = (route: 'get' | 'post') => (baseline[route].requestsPerSecond / fastify[route].requestsPerSecond).toFixed(2);
    const cpu = (route: 'get' | 'post') => {
      const ours = baseline[route].cpuMicrosPerRequest;
      const theirs = fastify[route].cpuMicrosPerRequest;
      return ours === undefined || theirs === undefined ? '' : `, CPU/req ${(theirs / ours).toFixed(2)}×`;
    };
    console.log(
      `\n${toniName} vs ${fastifyName}: GET ${ratio('get')}×${cpu('get')}, POST ${ratio('post')}×${cpu('post')} ` +
        `(req/s ratio, and ${fastifyName}'s CPU per request over ${toniName}'s; ${options.rounds > 1 ? `best of ${options.rounds} rounds` : 'one round'} of ${options.durationSeconds}s per route; differences under ~5% are noise)`,
    );
  }
}

function formatRate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function readOptions(env: NodeJS.ProcessEnv): BenchOptions {
  const servers = selectServers(env['BENCH_SERVERS']);
  return {
    durationSeconds: positiveInteger(env, 'BENCH_DURATION', 10, fail),
    warmupSeconds: positiveInteger(env, 'BENCH_WARMUP', 3, fail),
    connections: positiveInteger(env, 'BENCH_CONNECTIONS', 50, fail),
    threads: positiveInteger(env, 'BENCH_THREADS', 1, fail),
    rounds: positiveInteger(env, 'BENCH_ROUNDS', 1, fail),
    servers,
    nodeArgs: (env['BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((arg) => arg !== ''),
    pinning: env['BENCH_PIN'] === '0' ? undefined : choosePinning(),
    toniFrom: toniFrom(env['BENCH_TONI']),
  };
}

function toniFrom(value: string | undefined): 'build' | 'source' {
  if (value === undefined || value === '' || value === 'build') return 'build';
  if (value === 'source') return 'source';
  fail(`BENCH_TONI must be "build" (the default: toni's compiled dist/) or "source" (src/ through tsx), got "${value}".`);
}

function selectServers(list: string | undefined): readonly ServerSpec[] {
  if (list === undefined || list.trim() === '') return SERVERS;
  const names = list.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !SERVERS.some((spec) => spec.name === name));
  if (unknown.length > 0) {
    fail(`BENCH_SERVERS names unknown servers: ${unknown.join(', ')}. Known: ${SERVERS.map((spec) => spec.name).join(', ')}.`);
  }
  return SERVERS.filter((spec) => names.includes(spec.name));
}

/**
 * With two CPUs or more and `taskset`, the server gets one CPU and wrk another, so that
 * neither steals the other's time: the same split for every server.
 */
function choosePinning(): { server: number; wrk: number } | undefined {
  const probe = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  const list = /:\s*([\d,\s-]+)$/.exec(probe.stdout.trim())?.[1];
  const allowed = list === undefined ? [] : expandCpuList(list);
  if (allowed.length < 2) return undefined;
  return { server: allowed[allowed.length - 1]!, wrk: allowed[0]! };
}

function assertWrkInstalled(): void {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) {
    fail('The HTTP benchmark needs wrk (https://github.com/wg/wrk) on the PATH. Install it with `apt-get install wrk` (or `brew install wrk`).');
  }
}

function fail(message: string): never {
  console.error(`bench:http: ${message}`);
  process.exit(1);
}
