import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Controller, Get, HttpResponse } from 'tonijs';

// Bundled on the first request, then kept: from the tonijs/client this example runs with (its
// source under `npm start`), for browsers (the `browser` export condition: no ws, no Node).
let bundle: Promise<string> | undefined;

/**
 * Serves tonijs/client to the chat page as one ES module, `/tonijs-client.js`. The example runs
 * from TypeScript sources, which a browser cannot load; an application would rather bundle the
 * client with its own front end, or build this file once (docs/client.md).
 */
@Controller()
export class ClientModuleController {
  @Get('/tonijs-client.js')
  async clientModule() {
    bundle ??= bundleClient();
    return HttpResponse.ok().header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'no-cache').text(await bundle).build();
  }
}

async function bundleClient(): Promise<string> {
  const result = await build({
    stdin: { contents: "export * from 'tonijs/client';", resolveDir: fileURLToPath(new URL('.', import.meta.url)) },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['tonijs-source'],
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}
