import { fileURLToPath } from 'node:url';
import { type BuildResult, build } from 'esbuild';

/**
 * tonijs/client bundled for browsers as an application's bundler makes it: esbuild, the `browser`
 * export condition (from the sources), minified ESM, with its metafile.
 */
export function buildBrowserClient(): Promise<BuildResult<{ write: false; metafile: true }>> {
  return build({
    stdin: { contents: "export * from 'tonijs/client';", resolveDir: fileURLToPath(new URL('.', import.meta.url)) },
    bundle: true, format: 'esm', platform: 'browser', conditions: ['tonijs-source'], minify: true, write: false, metafile: true, logLevel: 'silent',
  });
}
