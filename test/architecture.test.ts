import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { describe, it } from 'node:test';

/** Files under `folder` (recursively) with the module specifiers they import. */
async function imports(folder: string): Promise<{ file: string; specifiers: string[] }[]> {
  const root = new URL(`../src/${folder}/`, import.meta.url);
  const files = (await readdir(root, { recursive: true })).filter((name) => name.endsWith('.ts'));
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(new URL(file, root), 'utf8');
      const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((match) => match[1] ?? match[2]!);
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
});
