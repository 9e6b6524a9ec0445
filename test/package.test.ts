import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('the published package', () => {
  it('npm run build produces every export the package.json points to, importable without TypeScript', { timeout: 120_000 }, async () => {
    await run('npm', ['run', 'build'], { cwd: root });
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { default?: string; types?: string }> };
    const entries = Object.entries(manifest.exports).filter(([, target]) => typeof target === 'object');
    const script = `
      const names = {};
      for (const path of ${JSON.stringify(entries.map(([path]) => path.replace(/^\./, 'tonijs')))}) names[path] = Object.keys(await import(path)).sort();
      console.log(JSON.stringify(names));`;
    // No tonijs-source condition: the package resolves to dist/, as it does for users.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    const names = JSON.parse(stdout) as Record<string, string[]>;
    const expected: Record<string, string[]> = {
      tonijs: ['Injectable', 'inject', 'InjectionToken', 'Module', 'Controller', 'Get', 'Post', 'Put', 'Patch', 'Delete', 'HttpResponse', 'HttpException', 'ToniFactory', 'ToniApplication', 'ToniError'],
      'tonijs/websocket': ['WsClient', 'WsMessage', 'WsHandshake', 'MetadataKey', 'BroadcastModule', 'BroadcastService', 'ConnectionManager'],
      'tonijs/node': ['NodeHttpAdapter', 'WsAdapter'],
      'tonijs/redis': ['RedisTransport'],
      'tonijs/testing': ['Test', 'TestWsClient'],
    };
    for (const [path, exports] of Object.entries(expected)) {
      for (const name of exports) assert.ok(names[path]?.includes(name), `${path} does not export ${name}`);
    }
    for (const [, target] of entries) {
      await readFile(new URL(`../${target.types}`, import.meta.url));
    }
  });
});
