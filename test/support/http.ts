import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { type Class, Module, type ToniApplication, type ToniApplicationOptions, ToniFactory } from 'tonijs';
import { NodeHttpAdapter } from 'tonijs/node';
import { captureLogger } from './async.js';

/** An application listening on a free port of 127.0.0.1, with the logger that records what it logged. */
export interface ServedApp {
  readonly app: ToniApplication;
  readonly url: string;
  readonly port: number;
  readonly logger: ReturnType<typeof captureLogger>;
}

/**
 * Creates an application for `module`, lets `configure` set it up (middleware, guards, …) and
 * listens; every app is pushed to `apps`, for the test's `afterEach` to close.
 */
export async function serveApp(
  apps: ToniApplication[],
  module: Class,
  configure: (app: ToniApplication) => void = () => {},
  options: ToniApplicationOptions = {},
): Promise<ServedApp> {
  const logger = captureLogger();
  const app = await ToniFactory.create(module, new NodeHttpAdapter(), { logger, ...options });
  apps.push(app);
  configure(app);
  const url = await app.listen(0, '127.0.0.1');
  return { app, url, port: Number(new URL(url).port), logger };
}

/** A module with these controllers and providers. */
export function moduleOf(controllers: Class[], providers: Class[] = []): Class {
  @Module({ controllers, providers })
  class TestModule {}
  return TestModule;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/**
 * Sends `request` as it is written (no URL normalisation, unlike fetch) on a fresh connection
 * and resolves with the response once the server closes it; add `connection: close`.
 */
export function rawRequest(port: number, request: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      assert.ok(headEnd > 0, `not an HTTP response: ${JSON.stringify(text)}`);
      const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(headEnd + 4) });
    });
    socket.once('connect', () => socket.write(request));
  });
}
