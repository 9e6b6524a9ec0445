#!/usr/bin/env node
/**
 * Runs the benchmarks: `node scripts/bench.mjs <http|broadcast|cluster|flood|ack|presence|client|history|typecheck>...`, which is
 * what `npm run bench`, `npm run bench:http`, … and `npm run bench:typecheck` do.
 *
 * The frameworks the benchmarks compare tonijs with (NestJS, Fastify, Socket.IO, …) are
 * bench/package.json's dependencies, not the root's, so that `npm ci` at the root installs only
 * what tonijs and its tests need. This script installs them (`npm ci` in bench/) when
 * bench/node_modules is missing or was installed from another bench/package-lock.json, then
 * type-checks bench/ and runs each benchmark named, in order; it stops at the first failure.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const bench = join(root, 'bench');
const BENCHMARKS = { http: 'http.ts', broadcast: 'broadcast.ts', cluster: 'cluster.ts', flood: 'flood.ts', ack: 'ack.ts', presence: 'presence.ts', client: 'client.ts', history: 'history.ts' };
// Written after a successful install: the hash of the lockfile bench/node_modules came from.
const STAMP = join(bench, 'node_modules', '.tonijs-bench-lock-hash');

const names = process.argv.slice(2);
const unknown = names.filter((name) => name !== 'typecheck' && !Object.hasOwn(BENCHMARKS, name));
if (names.length === 0 || unknown.length > 0) {
  fail(`usage: node scripts/bench.mjs <${[...Object.keys(BENCHMARKS), 'typecheck'].join('|')}>...${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`);
}

// The benchmarks run through the root's tsx and are type-checked by the root's TypeScript.
if (!existsSync(join(root, 'node_modules', 'tsx')) || !existsSync(join(root, 'node_modules', 'typescript'))) {
  fail(`the root's dependencies are not installed: run \`npm ci\` in ${root} first.`);
}
installBenchDependencies();
run('type-checking bench/', [join(root, 'node_modules', 'typescript', 'lib', 'tsc.js'), '-p', join(bench, 'tsconfig.json')]);
run('type-checking bench/http/nest/', [join(root, 'node_modules', 'typescript', 'lib', 'tsc.js'), '-p', join(bench, 'http', 'nest', 'tsconfig.json')]);
for (const name of names) {
  if (name === 'typecheck') continue;
  run(undefined, ['--conditions=tonijs-source', '--import', 'tsx', join(bench, BENCHMARKS[name])], {
    // tsx takes one tsconfig.json, found from the working directory (the root's, which leaves
    // bench/ out): hand it bench/'s, which extends the root's and includes bench/ and src/.
    TSX_TSCONFIG_PATH: join(bench, 'tsconfig.json'),
  });
}

function installBenchDependencies() {
  const lock = readFileSync(join(bench, 'package-lock.json'));
  const hash = createHash('sha256').update(lock).digest('hex');
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash) return;
  console.log('bench: installing the benchmarks\' dependencies (npm ci in bench/)…');
  // In bench/ itself rather than with --prefix: npm reads bench/package.json's allowScripts entry
  // "file:.." (tonijs, linked) relative to the working directory.
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: bench, stdio: 'inherit', shell: process.platform === 'win32' });
  if (npm.error !== undefined || npm.status !== 0) fail(`\`npm ci\` in ${bench} failed${npm.error === undefined ? '' : `: ${npm.error.message}`}.`);
  writeFileSync(STAMP, hash);
}

function run(label, args, env = {}) {
  if (label !== undefined) console.log(`bench: ${label}`);
  const child = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (child.error !== undefined) throw child.error;
  // Interrupted (Ctrl-C reaches the whole process group) or failed: stop here, with its status.
  if (child.status !== 0) process.exit(child.status ?? 1);
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
