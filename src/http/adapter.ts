import type { ResponseBody } from './http-response.js';

/** Request headers as HTTP servers parse them: lower-case names. */
export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * One request and its response, as an `HttpAdapter` presents them to toni's core.
 * Implementations wrap a server's native request and response.
 */
export interface HttpExchange {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly url: string;
  readonly headers: IncomingHeaders;
  readonly remoteAddress: string | undefined;
  /** True when the request announces a body (content-length > 0 or chunked). */
  readonly hasBody: boolean;
  /** The server's native request object (e.g. `http.IncomingMessage`). */
  readonly raw: unknown;
  /**
   * Reads the whole body. Rejects with `HttpException(413)` once more than `limit` bytes
   * arrive (or are announced), without buffering past the limit.
   */
  readBody(limit: number): Promise<Uint8Array>;
  /**
   * Writes the response. The adapter frames the body itself (`content-length`, none for 204 and
   * 304) and never writes a `content-length` or `transfer-encoding` found in `headers`, so that a
   * response has one framing. `connection: close` closes the connection after it. Calls after the first are ignored.
   */
  respond(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): void;
}

/** Where a server listens once `listen` resolves. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Options of `HttpAdapter.close`. */
export interface HttpCloseOptions {
  /** After this many milliseconds, requests still in flight are cut off. */
  timeoutMs: number;
}

/**
 * What toni needs from an HTTP server. `NodeHttpAdapter` (in `tonijs/node`) implements it on
 * `node:http`; a Fastify or Express adapter would implement the same four members.
 */
export interface HttpAdapter {
  /** Starts serving; `handler` is called once per request. Port 0 picks a free port. */
  listen(handler: (exchange: HttpExchange) => void, port: number, host?: string): Promise<ListenAddress>;
  /** Stops accepting, lets in-flight requests finish (up to the timeout), then releases the port. */
  close(options: HttpCloseOptions): Promise<void>;
}
