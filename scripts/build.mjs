#!/usr/bin/env node
/**
 * Builds dist/ from src/ with TypeScript (tsconfig.build.json): `npm run build`.
 *
 * npm also runs it as the `prepare` script: after `npm ci` / `npm install` in this folder, before
 * `npm pack` and `npm publish`, when a project installs tonijs from git, and when a project links
 * this folder (`npm install ../tonijs`, a `file:` dependency). The package's exports point to
 * dist/, so each of these ends with a package that imports under plain `node`.
 *
 * dist/ is emptied first, so that a module removed from src/ does not live on in the tarball.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = join(root, 'dist');

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/lib/tsc.js');
} catch {
  // A folder linked with `npm install <folder>` (a `file:` dependency) is used as it is: npm
  // installs none of its dependencies, so TypeScript is there only if someone installed it.
  if (existsSync(join(dist, 'index.js'))) {
    console.warn(`tonijs: TypeScript is not installed in ${root}, so dist/ is left as it is (run \`npm install\` there, then \`npm run build\`, to rebuild it).`);
    process.exit(0);
  }
  console.error(
    `tonijs: cannot build dist/: TypeScript, a devDependency, is not installed in ${root}.\n` +
      `Run \`npm ci\` (or \`npm install\`) in that folder first: it installs TypeScript and tonijs's dependencies, and builds dist/.\n` +
      `(npm links a \`file:\` folder as it is, without installing its dependencies.)`,
  );
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (build.error !== undefined) throw build.error;
process.exit(build.status ?? 1);
