import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';

const execFileAsync = promisify(execFile);
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Manifest {
  name: string;
  exports: Record<string, string | { default?: string; types?: string; browser?: string; node?: string }>;
  dependencies: Record<string, string>;
}
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest;
const entries = Object.entries(manifest.exports).flatMap(([path, target]) => (typeof target === 'object' ? [{ specifier: path.replace(/^\./, 'tonijs'), ...target }] : []));

/** What each entry point must export; the docs test checks the rest of the API. */
const EXPECTED: Record<string, string[]> = {
  tonijs: [
    'Injectable', 'inject', 'InjectionToken', 'Module', 'Controller', 'Get', 'Post', 'Put', 'Patch', 'Delete', 'Options', 'All',
    'HttpResponse', 'HttpException', 'ToniFactory', 'ToniApplication', 'ToniError', 'UseGuards', 'UseInterceptors', 'UseFilters', 'Catch', 'MetadataKey',
  ],
  'tonijs/websocket': ['WsClient', 'WsMessage', 'WsHandshake', 'MetadataKey', 'BroadcastModule', 'BroadcastService', 'ConnectionManager'],
  'tonijs/node': ['NodeHttpAdapter', 'WsAdapter', 'fromNodeMiddleware'],
  'tonijs/redis': ['RedisTransport'],
  'tonijs/testing': ['Test', 'TestWsClient'],
  'tonijs/client': ['connect', 'ToniSocket', 'ToniClientError'],
};

/**
 * The environment of the npm and node children: this one's, without what `npm test` adds for its
 * own project (npm_config_local_prefix would point a child npm back at this folder) and without
 * NODE_OPTIONS, so that node runs plain, as in a user's project.
 */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && name !== 'npm_config_local_prefix' && !/^npm_(package|lifecycle)_/.test(name)),
);

async function run(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: 100_000 });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${String(error)}\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

const npmInstall = (cwd: string, ...specs: string[]) => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...specs], cwd);

/** An empty ESM project, as `npm init` would leave it. */
async function emptyProject(dir: string, extra: object = {}): Promise<string> {
  await mkdir(dir);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', ...extra }, null, 2));
  return dir;
}

/** Imports every entry point under plain `node` in `project` and checks the names each exports. */
async function assertEntryPointsImport(project: string): Promise<void> {
  const script = `
    const names = {};
    for (const specifier of ${JSON.stringify(entries.map((entry) => entry.specifier))}) names[specifier] = Object.keys(await import(specifier));
    console.log(JSON.stringify(names));`;
  const names = JSON.parse(await run(process.execPath, ['--input-type=module', '-e', script], project)) as Record<string, string[]>;
  assert.deepEqual(Object.keys(names).sort(), Object.keys(EXPECTED).sort(), 'package.json exports other entry points than this test knows');
  for (const [specifier, exported] of Object.entries(EXPECTED)) {
    for (const name of exported) assert.ok(names[specifier]!.includes(name), `${specifier} does not export ${name}`);
  }
}

/** Packages under node_modules (scoped ones as @scope/name). */
async function installedPackages(project: string): Promise<string[]> {
  const top = await readdir(join(project, 'node_modules'));
  const scoped = await Promise.all(top.filter((name) => name.startsWith('@')).map(async (scope) => (await readdir(join(project, 'node_modules', scope))).map((name) => `${scope}/${name}`)));
  return [...top.filter((name) => !name.startsWith('@') && !name.startsWith('.')), ...scoped.flat()].sort();
}

/** tonijs and the packages its dependencies need, transitively, read from what was installed. */
async function dependencyClosure(project: string): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const pkg = JSON.parse(await readFile(join(project, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(pkg.dependencies ?? {})) await visit(dependency);
  };
  await visit('tonijs');
  return [...seen].sort();
}

describe('the published package', () => {
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'toni-package-'));
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('npm pack builds dist/ and packs no tests, benchmarks or examples; the tarball installs lean and imports under plain node, types included', { timeout: 120_000 }, async () => {
    // `npm pack` runs the prepare script, which builds dist/: nothing is built by hand first.
    const packed = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', scratch], root)) as [{ filename: string; files: { path: string }[] }];
    const files = packed[0].files.map((file) => file.path);
    const unwanted = files.filter((path) => /^(test|bench|examples|scripts|docs)\/|\.test\.[cm]?[jt]s$|(^|\/)(test|tests|__tests__|fixtures)\//.test(path));
    assert.deepEqual(unwanted, [], 'the tarball holds files users do not need');
    assert.deepEqual(files.filter((path) => !/^(dist|src)\//.test(path)).sort(), ['README.md', 'package.json']);
    for (const entry of entries) {
      for (const target of [entry.default, entry.types, entry.browser, entry.node]) {
        if (target !== undefined) assert.ok(files.includes(target.replace(/^\.\//, '')), `the tarball lacks ${target}, which package.json exports`);
      }
    }

    const project = await emptyProject(join(scratch, 'from-tarball'));
    await npmInstall(project, join(scratch, packed[0].filename));
    // Only tonijs and what its dependencies need: no TypeScript, tsx, test tools or benchmark frameworks.
    assert.deepEqual(await installedPackages(project), await dependencyClosure(project));
    assert.deepEqual(Object.keys(manifest.dependencies).sort(), ['@fastify/send', '@standard-schema/spec', 'ws']);

    // tonijs/redis needs the optional peer ioredis, which a user installs to use it.
    const ioredis = JSON.parse(await readFile(join(root, 'node_modules', 'ioredis', 'package.json'), 'utf8')) as { version: string };
    await npmInstall(project, `ioredis@${ioredis.version}`);
    await assertEntryPointsImport(project);

    // A bundler building for browsers gets tonijs/client's browser build, which needs neither ws nor Node.
    const bundle = await build({
      stdin: { contents: "export { connect } from 'tonijs/client';", resolveDir: project },
      absWorkingDir: project,
      bundle: true, format: 'esm', platform: 'browser', write: false, metafile: true, logLevel: 'silent',
    });
    const inputs = Object.keys(bundle.metafile.inputs);
    assert.ok(inputs.includes('node_modules/tonijs/dist/client/index.js'), `the browser bundle took ${inputs.join(', ')}`);
    assert.deepEqual(inputs.filter((input) => /node_modules\/ws\/|^node:|client\/node\.js/.test(input)), []);

    // A TypeScript user's view: every entry point's declarations resolve and type-check, with
    // nothing installed besides tonijs, ioredis and Node's types, which every TypeScript project
    // on Node has (skipLibCheck off, so the .d.ts are checked too; no ws types needed).
    const nodeTypes = JSON.parse(await readFile(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string };
    await npmInstall(project, `@types/node@${nodeTypes.version}`);
    await writeFile(join(project, 'index.ts'), entries.map((entry, index) => `import * as entry${index} from '${entry.specifier}';\nexport { entry${index} };\n`).join(''));
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['index.ts'] }),
    );
    await run(process.execPath, [join(root, 'node_modules', 'typescript', 'lib', 'tsc.js'), '-p', project], project);
  });

  it('a file: dependency on this folder links it, and npm builds its dist/ (the prepare script)', { timeout: 120_000 }, async () => {
    // With no dist/ at all, the imports below work only if npm ran prepare in the linked folder.
    await rm(join(root, 'dist'), { recursive: true, force: true });
    // npm 12 runs a linked folder's prepare only when allowScripts lets it; npm 11 does either way.
    const project = await emptyProject(join(scratch, 'from-folder'), { dependencies: { tonijs: `file:${root}` }, allowScripts: { [`file:${root}`]: true } });
    await npmInstall(project);
    const link = join(project, 'node_modules', 'tonijs');
    assert.ok((await lstat(link)).isSymbolicLink(), 'npm copied the folder instead of linking it');
    assert.equal(await realpath(link), await realpath(root));
    await assertEntryPointsImport(project);
  });
});
