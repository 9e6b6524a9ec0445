#!/usr/bin/env node
/**
 * `npm run size`: the size of tonijs/client's browser build, as an application's bundler makes
 * it (esbuild, the `browser` export condition, minified ESM), raw and gzipped. The budget is
 * 5 KB min+gzip; test/architecture.test.ts fails beyond it. `npm run bench:client` prints
 * socket.io-client's next to it.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const result = await build({
  stdin: { contents: "export * from 'tonijs/client';", resolveDir: root },
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  conditions: ['tonijs-source'],
  minify: true,
  write: false,
  metafile: true,
});
const bytes = result.outputFiles[0].contents;
const gzipped = gzipSync(bytes, { level: 9 }).byteLength;
console.log(`tonijs/client (browser build): ${bytes.byteLength} bytes minified, ${gzipped} bytes (${(gzipped / 1024).toFixed(2)} KB) min+gzip; budget 5 KB`);
const [output] = Object.values(result.metafile.outputs);
const parts = Object.entries(output.inputs).filter(([input, { bytesInOutput }]) => input !== '<stdin>' && bytesInOutput > 0);
console.log(`  ${parts.map(([input, { bytesInOutput }]) => `${input} ${bytesInOutput}`).join(', ')}`);
