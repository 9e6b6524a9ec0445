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
 * Writes `request` (one string, or parts written one after the other) as it is — no URL
 * normalisation, unlike fetch — on a fresh TCP connection, and resolves with the first response
 * once the server closes the connection (add `connection: close`). For requests fetch cannot express.
 */
export async function rawRequest(port: number, request: string | readonly (string | Uint8Array)[]): Promise<RawResponse> {
  return parseRawResponse((await rawExchange(port, request)).toString('utf8'));
}

/** The bytes the server sent back to `request` until it closed the connection; rejects if it sent none. */
export function rawExchange(port: number, request: string | readonly (string | Uint8Array)[]): Promise<Buffer> {
  const parts = typeof request === 'string' ? [request] : request;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let failure: Error | undefined;
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', (error) => (failure = error));
    socket.on('close', () => {
      const bytes = Buffer.concat(received);
      if (bytes.length === 0) reject(failure ?? new Error('the server closed the connection without a response'));
      else resolve(bytes);
    });
    socket.once('connect', () => {
      for (const part of parts) socket.write(part);
    });
  });
}

function parseRawResponse(text: string): RawResponse {
  const headEnd = text.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `not an HTTP response: ${JSON.stringify(text)}`);
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n');
  const match = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
  assert.ok(match, `bad status line: ${statusLine}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = text.slice(headEnd + 4);
  const length = headers.get('content-length');
  if (length !== undefined) body = Buffer.from(body).subarray(0, Number(length)).toString('utf8');
  return { status: Number(match[1]), headers, body };
}
