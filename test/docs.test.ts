import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { describe, it } from 'node:test';

const entryPoints = {
  toni: () => import('tonijs'),
  'tonijs/websocket': () => import('tonijs/websocket'),
  'tonijs/node': () => import('tonijs/node'),
  'tonijs/redis': () => import('tonijs/redis'),
  'tonijs/testing': () => import('tonijs/testing'),
  'tonijs/client': () => import('tonijs/client'),
};

describe('documentation', () => {
  it('mentions every runtime export of every entry point in docs/', async () => {
    const folder = new URL('../docs/', import.meta.url);
    const files = (await readdir(folder)).filter((name) => name.endsWith('.md'));
    const docs = (await Promise.all(files.map((name) => readFile(new URL(name, folder), 'utf8')))).join('\n');
    const missing: string[] = [];
    for (const [entry, load] of Object.entries(entryPoints)) {
      for (const name of Object.keys(await load())) {
        if (!new RegExp(`\\b${name}\\b`).test(docs)) missing.push(`${entry}: ${name}`);
      }
    }
    assert.deepEqual(missing, [], `exports not mentioned in docs/: ${missing.join(', ')}`);
  });

  it('links every docs page from the README', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const pages = (await readdir(new URL('../docs/', import.meta.url))).filter((name) => name.endsWith('.md'));
    for (const page of pages) assert.match(readme, new RegExp(`docs/${page.replace('.', '\\.')}`), `README.md does not link docs/${page}`);
  });
});
