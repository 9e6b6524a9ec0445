import type { HttpResponse, ResponseBody } from './http-response.js';

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
   * response has one framing; a streamed body is sent with the `content-length` in `headers` when
   * there is one, else chunked. `connection: close` closes the connection after it. Calls after
   * the first are ignored (a streamed body passed to them is destroyed).
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

/** Options of `app.useStaticAssets(dir, options)`. */
export interface StaticAssetsOptions {
  /** The URL path the files are served under, e.g. `/static`. Default `/`. */
  prefix?: string;
  /** Files served for a directory's URL (with its trailing slash); `false` for none. Default `['index.html']`. */
  index?: string | readonly string[] | false;
  /** `Cache-Control: public, max-age=…`, in milliseconds. Default 0. */
  maxAge?: number;
  /** Adds `immutable` to `Cache-Control` (for fingerprinted file names, with a long `maxAge`). Default false. */
  immutable?: boolean;
  /** Files and folders whose name starts with a dot (`.env`, `.git/`): `'ignore'` (not found, the default) or `'allow'`. */
  dotfiles?: 'ignore' | 'allow';
  /** Extensions tried for a path without one, e.g. `['html']` serves `/about` from `about.html`. Default none. */
  extensions?: readonly string[];
  /** Send `ETag` and answer `If-None-Match` with 304. Default true. */
  etag?: boolean;
  /** Send `Last-Modified` and answer `If-Modified-Since` with 304. Default true. */
  lastModified?: boolean;
}

/** What static files see of a request. */
export interface StaticRequest {
  readonly method: string;
  readonly headers: IncomingHeaders;
  /** The request's path as sent (percent-encoded), for redirects. */
  readonly path: string;
}

/** Files of one folder, served by an adapter (`app.useStaticAssets`). */
export interface StaticAssets {
  /**
   * The response for `relativePath` (percent-encoded, below the prefix): the file with its type,
   * validators, 304 or 206, or a redirect for a folder; `undefined` when there is no such file,
   * so that the routes are tried.
   */
  serve(request: StaticRequest, relativePath: string): Promise<HttpResponse | undefined>;
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
  /**
   * Files of the folder `root`, for `app.useStaticAssets()`; optional. Throws a `ToniError` when
   * `root` is not a readable folder.
   */
  staticAssets?(root: string | URL, options: StaticAssetsOptions): StaticAssets;
}
