#!/usr/bin/env node
/**
 * Makes sure the system packages the test suite talks to are installed, before any test runs:
 * `npm test` runs it first. When something is missing it installs it with apt-get if it can (as
 * root, or with passwordless sudo); otherwise it stops at once and prints the command to run.
 * When everything is there it prints nothing and takes a few tens of milliseconds.
 *
 * TONIJS_TEST_DEPS_ASSUME_MISSING=<package>,… makes it treat those packages as missing (so that
 * its tests can take the paths a bare machine takes, here, where everything is installed).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian packages, each with how the tests use it and how to tell it is there. */
const REQUIREMENTS = [
  {
    name: 'chromium',
    use: 'test/browser.test.ts drives the example app in it, at /usr/bin/chromium',
    present: () => isExecutable('/usr/bin/chromium'),
  },
  {
    name: 'python3-websockets',
    use: "test/gateways.test.ts talks to a gateway with Python's websockets library, run by /usr/bin/python3",
    present: () => spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0,
  },
  {
    name: 'redis-server',
    use: 'the Redis tests start their own redis-server, found on the PATH',
    present: () => onPath('redis-server') !== undefined,
  },
];

const assumedMissing = parseAssumedMissing(process.env['TONIJS_TEST_DEPS_ASSUME_MISSING']);
const missing = findMissing();
if (missing.length === 0) process.exit(0);

const names = missing.map((requirement) => requirement.name);
const installer = findInstaller();
if (installer === undefined) stop(missing, 'apt-get is not on the PATH');
if (installer.sudo === undefined) stop(missing, 'installing needs root, and this is neither root nor allowed passwordless sudo');

console.log(`npm test: installing the system packages the tests need: ${names.join(' ')}`);
const aptGet = (args) => {
  const command = installer.sudo === '' ? ['apt-get', ...args] : [installer.sudo, '-n', 'apt-get', ...args];
  console.log(`$ ${command.join(' ')}`);
  const child = spawnSync(command[0], command.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (child.error !== undefined || child.status !== 0) {
    const why = child.error?.message ?? (child.status === null ? `killed by ${child.signal}` : `exit code ${child.status}`);
    stop(missing, `\`${command.join(' ')}\` failed (${why})`);
  }
};
aptGet(['update']);
aptGet(['install', '-y', '--no-install-recommends', ...names]);
const still = findMissing();
if (still.length > 0) stop(still, 'apt-get installed them, yet the tests still cannot find them');

function findMissing() {
  return REQUIREMENTS.filter((requirement) => assumedMissing.has(requirement.name) || !requirement.present());
}

/** apt-get, and how to run it as root: '' (already root), the path of sudo, or undefined (no way). */
function findInstaller() {
  if (onPath('apt-get') === undefined) return undefined;
  if (process.getuid?.() === 0) return { sudo: '' };
  const sudo = onPath('sudo');
  if (sudo !== undefined && spawnSync(sudo, ['-n', 'true'], { stdio: 'ignore' }).status === 0) return { sudo };
  return { sudo: undefined };
}

/** Stops before any test runs: what is missing, why it could not be installed, the command that installs it. */
function stop(requirements, reason) {
  const width = Math.max(...requirements.map((requirement) => requirement.name.length));
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const list = requirements.map((requirement) => requirement.name).join(' ');
  console.error(
    [
      'npm test: the tests need system packages that are missing:',
      ...requirements.map((requirement) => `  ${requirement.name.padEnd(width)}  ${requirement.use}`),
      `They were not installed: ${reason}.`,
      'Install them (Debian, Ubuntu), then run npm test again:',
      '',
      `  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${list}`,
      '',
      'Elsewhere, install the equivalents where the tests look for them (above).',
    ].join('\n'),
  );
  process.exit(1);
}

function parseAssumedMissing(value) {
  const names = new Set((value ?? '').split(',').map((name) => name.trim()).filter((name) => name !== ''));
  const known = REQUIREMENTS.map((requirement) => requirement.name);
  const unknown = [...names].filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    console.error(`npm test: TONIJS_TEST_DEPS_ASSUME_MISSING names ${unknown.join(', ')}; the packages it can name are ${known.join(', ')}.`);
    process.exit(1);
  }
  return names;
}

function onPath(command) {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, command);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
