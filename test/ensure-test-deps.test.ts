import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { withTimeout } from './support/async.js';

const script = fileURLToPath(new URL('../scripts/ensure-test-deps.mjs', import.meta.url));
const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
const installCommand = (packages: string) => `  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages}`;

/** Runs scripts/ensure-test-deps.mjs as `npm test` does, in a child process, with `env` only. */
async function ensure(env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [status] = (await withTimeout(once(child, 'close'), 10_000, 'ensure-test-deps.mjs to exit')) as [number | null];
  return { status, stdout, stderr };
}

/**
 * A folder to be the whole PATH, holding stand-ins for apt-get and sudo (node scripts) so that
 * the install path can run here, where the real packages are installed. The stand-in apt-get
 * appends each call to calls.log and runs `onInstall(dir)` (a JS snippet) for `install`.
 */
async function fakeBin(onInstall: (dir: string) => string): Promise<{ dir: string; calls: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'toni-deps-'));
  const log = join(dir, 'calls.log');
  const aptGet = `#!${process.execPath}
const fs = require('node:fs'), path = require('node:path');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args, frontend: process.env.DEBIAN_FRONTEND }) + '\\n');
if (args[0] === 'install') { ${onInstall(dir)} }
`;
  // Only used when the tests do not run as root: `sudo -n true` succeeds, `sudo -n cmd …` runs cmd.
  const fakeSudo = `#!${process.execPath}
const args = process.argv.slice(2).filter((arg) => arg !== '-n');
const result = require('node:child_process').spawnSync(args[0] === 'true' ? process.execPath : args[0], args[0] === 'true' ? ['-e', ''] : args.slice(1), { stdio: 'inherit' });
process.exit(result.status ?? 1);
`;
  for (const [name, text] of [['apt-get', aptGet], ['sudo', fakeSudo]] as const) {
    await writeFile(join(dir, name), text);
    await chmod(join(dir, name), 0o755);
  }
  const calls = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
  return { dir, calls };
}

describe('scripts/ensure-test-deps.mjs (run by npm test before any test)', () => {
  const folders: string[] = [];
  let empty: string;

  before(async () => {
    empty = await mkdtemp(join(tmpdir(), 'toni-deps-empty-'));
    folders.push(empty);
  });

  after(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  it('prints nothing and exits 0 when chromium, Python websockets and redis-server are installed', async () => {
    const result = await ensure({ PATH: process.env['PATH'] ?? '' });
    assert.deepEqual(result, { status: 0, stdout: '', stderr: '' });
  });

  it('stops at once, printing the exact apt-get command, when packages are missing and apt-get is not there', async () => {
    // redis-server is really missing from this PATH; the other two are made to look missing.
    const result = await ensure({ PATH: empty, TONIJS_TEST_DEPS_ASSUME_MISSING: 'chromium,python3-websockets' });
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.split('\n');
    assert.equal(lines[0], 'npm test: the tests need system packages that are missing:');
    assert.match(lines[1]!, /^ {2}chromium {12}test\/browser\.test\.ts .*\/usr\/bin\/chromium$/);
    assert.match(lines[2]!, /^ {2}python3-websockets {2}test\/gateways\.test\.ts .*\/usr\/bin\/python3$/);
    assert.match(lines[3]!, /^ {2}redis-server {8}the Redis tests .*PATH$/);
    assert.equal(lines[4], 'They were not installed: apt-get is not on the PATH.');
    assert.ok(lines.includes(installCommand('chromium python3-websockets redis-server')), result.stderr);
  });

  it('names only what is missing in the command', async () => {
    const result = await ensure({ PATH: empty });
    assert.equal(result.status, 1);
    assert.ok(result.stderr.split('\n').includes(installCommand('redis-server')), result.stderr);
    assert.doesNotMatch(result.stderr, /chromium|python3-websockets/);
  });

  it('installs what is missing with apt-get (update, then install), then finds it', async () => {
    const installRedis = (dir: string) => `const file = path.join(${JSON.stringify(dir)}, 'redis-server'); fs.writeFileSync(file, '#!/bin/sh\\n'); fs.chmodSync(file, 0o755);`;
    const bin = await fakeBin(installRedis);
    folders.push(bin.dir);
    const result = await ensure({ PATH: bin.dir });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^npm test: installing the system packages the tests need: redis-server\n/);
    assert.deepEqual((await bin.calls()).map((line) => JSON.parse(line) as unknown), [
      { args: ['update'], frontend: 'noninteractive' },
      { args: ['install', '-y', '--no-install-recommends', 'redis-server'], frontend: 'noninteractive' },
    ]);
  });

  it('stops with the command when apt-get fails', async () => {
    const bin = await fakeBin(() => 'process.exit(100);');
    folders.push(bin.dir);
    const result = await ensure({ PATH: bin.dir });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /They were not installed: `(\S+ -n )?apt-get install -y --no-install-recommends redis-server` failed \(exit code 100\)\./);
    assert.ok(result.stderr.split('\n').includes(installCommand('redis-server')), result.stderr);
  });

  it('stops with the command when apt-get succeeds but the tests still cannot find the package', async () => {
    const bin = await fakeBin(() => '');
    folders.push(bin.dir);
    const result = await ensure({ PATH: bin.dir });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /They were not installed: apt-get installed them, yet the tests still cannot find them\./);
    assert.ok(result.stderr.split('\n').includes(installCommand('redis-server')), result.stderr);
    assert.equal((await bin.calls()).length, 2);
  });

  it('rejects an assumed-missing name it does not know', async () => {
    const result = await ensure({ PATH: process.env['PATH'] ?? '', TONIJS_TEST_DEPS_ASSUME_MISSING: 'chromium,redis' });
    assert.equal(result.status, 1);
    assert.equal(result.stderr, 'npm test: TONIJS_TEST_DEPS_ASSUME_MISSING names redis; the packages it can name are chromium, python3-websockets, redis-server.\n');
  });
});
