import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { buildBrowserClient } from './support/browser-client.js';

/** Files under `folder` (recursively) with the module specifiers they import. */
async function imports(folder: string): Promise<{ file: string; specifiers: string[] }[]> {
  const root = new URL(`../src/${folder}/`, import.meta.url);
  const files = (await readdir(root, { recursive: true })).filter((name) => name.endsWith('.ts'));
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(new URL(file, root), 'utf8');
      const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)].map((match) => match[1] ?? match[2] ?? match[3]!);
      return { file: `src/${folder}/${file}`, specifiers };
    }),
  );
}

describe('architecture', () => {
  it('keeps the core free of node:http, ws and Redis: adapters depend on the core, never the reverse', async () => {
    const forbidden = /^(node:http|node:https|node:net|ws|ioredis|redis)$|platform\/|\/redis\//;
    for (const folder of ['di', 'pipeline', 'http', 'websocket', 'broadcast']) {
      for (const { file, specifiers } of await imports(folder)) {
        const wrong = specifiers.filter((specifier) => forbidden.test(specifier));
        assert.deepEqual(wrong, [], `${file} imports ${wrong.join(', ')}`);
      }
    }
  });

  it('lets only tonijs/redis load the Redis client', async () => {
    for (const folder of ['di', 'pipeline', 'http', 'websocket', 'broadcast', 'app', 'platform', 'testing']) {
      for (const { file, specifiers } of await imports(folder)) {
        assert.ok(!specifiers.includes('ioredis'), `${file} imports ioredis`);
      }
    }
  });

  it('keeps tonijs/client browser-safe: only node.ts imports ws, no file a Node built-in, and nothing of the server but the envelope and the event-map types', async () => {
    const shared = new Set(['../websocket/envelope.js', '../websocket/protocol.js', '../websocket/event-map.js']);
    for (const { file, specifiers } of await imports('client')) {
      const allowed = file === 'src/client/node.ts' ? ['ws'] : [];
      const wrong = specifiers.filter((specifier) => !specifier.startsWith('./') && !shared.has(specifier) && !allowed.includes(specifier));
      assert.deepEqual(wrong, [], `${file} imports ${wrong.join(', ')}`);
      const text = await readFile(new URL(`../${file}`, import.meta.url), 'utf8');
      assert.doesNotMatch(text, /^import \{[^}]*\} from '\.\.\/websocket\/event-map\.js'/m, `${file} imports the event-map types as values`);
    }
  });

  it('builds tonijs/client for browsers (the browser condition) without ws or node:*, within 5 KB min+gzip', async () => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, Record<string, unknown>> };
    const client = manifest.exports['./client']!;
    assert.equal(client.browser, './dist/client/index.js');
    assert.equal((client['tonijs-source'] as Record<string, string>).browser, './src/client/index.ts');
    const result = await buildBrowserClient();
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.includes('src/client/index.ts') && !inputs.includes('src/client/node.ts'), `the browser build took ${inputs.join(', ')}`);
    assert.deepEqual(inputs.filter((input) => /node_modules|^node:|platform\/|\/redis\//.test(input)), []);
    const [output] = Object.values(result.metafile.outputs);
    assert.deepEqual(output!.imports, [], 'the browser build imports modules it does not bundle');
    const size = gzipSync(result.outputFiles[0]!.contents, { level: 9 }).byteLength;
    assert.ok(size <= 5 * 1024, `tonijs/client is ${size} bytes min+gzip, over its 5 KB budget`);
  });
});
