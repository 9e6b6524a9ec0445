import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ToniError } from '../../errors.js';
import type { HttpAdapter, HttpCloseOptions, HttpExchange, IncomingHeaders, ListenAddress } from '../../http/adapter.js';
import { HttpException } from '../../http/http-exception.js';
import { statusText } from '../../http/status.js';
import { listenFailed } from './listen-error.js';
import { writeRawError } from './raw-response.js';
import { type Duplex, Readable } from 'node:stream';
import type { StaticAssets, StaticAssetsOptions } from '../../http/adapter.js';
import { type ResponseBody, isStream } from '../../http/http-response.js';
import { FolderAssets } from './static-assets.js';

/** Options of `NodeHttpAdapter`. */
export interface NodeHttpAdapterOptions {
  /** Milliseconds an idle keep-alive connection stays open (node's default: 5000). */
  keepAliveTimeout?: number;
  /** Milliseconds allowed to receive a request's headers (node's default: 60000). */
  headersTimeout?: number;
  /** Milliseconds allowed to receive a whole request (node's default: 300000). */
  requestTimeout?: number;
}

/**
 * toni's default HTTP adapter, on `node:http`. Pass it to `ToniFactory.create` explicitly to
 * set options, or to reach the `http.Server` (e.g. for another upgrade handler).
 *
 * @example
 * const app = await ToniFactory.create(AppModule, new NodeHttpAdapter({ keepAliveTimeout: 10_000 }));
 */
export class NodeHttpAdapter implements HttpAdapter {
  readonly #options: NodeHttpAdapterOptions;
  #server: Server | undefined;
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: NodeHttpAdapterOptions = {}) {
    this.#options = options;
  }

  /**
   * The files of `root` for `app.useStaticAssets()`, on `@fastify/send`: MIME types, `ETag` and
   * `Last-Modified` with 304, `Range` with 206, streamed from disk; nothing outside `root`.
   */
  staticAssets(root: string | URL, options: StaticAssetsOptions): StaticAssets {
    return new FolderAssets(root, options);
  }

  /** The underlying `http.Server`, once `listen` was called. */
  get server(): Server | undefined {
    return this.#server;
  }

  async listen(handler: (exchange: HttpExchange) => void, port: number, host?: string): Promise<ListenAddress> {
    if (this.#server !== undefined) throw new ToniError('TONI_ERR_APP_STATE', 'NodeHttpAdapter.listen() was called twice; create one adapter per application.');
    const server = createServer((req, res) => {
      this.#inFlight++;
      res.on('close', this.#onResponseClosed);
      if (this.#closing) res.shouldKeepAlive = false;
      handler(new NodeExchange(req, res));
    });
    server.on('clientError', onClientError);
    if (this.#options.keepAliveTimeout !== undefined) server.keepAliveTimeout = this.#options.keepAliveTimeout;
    if (this.#options.headersTimeout !== undefined) server.headersTimeout = this.#options.headersTimeout;
    if (this.#options.requestTimeout !== undefined) server.requestTimeout = this.#options.requestTimeout;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.#server = undefined;
        reject(listenFailed(error, 'http', host, port));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    return { host: host ?? address.address, port: address.port };
  }

  async close(options: HttpCloseOptions): Promise<void> {
    const server = this.#server;
    if (server === undefined || this.#closing) return;
    this.#closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    server.closeAllConnections();
    await closed;
  }

  readonly #onResponseClosed = (): void => {
    this.#inFlight--;
    if (this.#closing) {
      this.#server?.closeIdleConnections();
      if (this.#inFlight === 0) this.#drained?.();
    }
  };
}

/** @internal one request of `NodeHttpAdapter`; `fromNodeMiddleware` reaches its native objects. */
export class NodeExchange implements HttpExchange {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
  }

  get method(): string { return this.#req.method ?? 'GET'; }
  get url(): string { return this.#req.url ?? '/'; }
  get headers(): IncomingHeaders { return this.#req.headers; }
  get remoteAddress(): string | undefined { return this.#req.socket.remoteAddress; }
  get raw(): IncomingMessage { return this.#req; }
  get rawResponse(): ServerResponse { return this.#res; }

  get hasBody(): boolean {
    const headers = this.#req.headers;
    const length = headers['content-length'];
    return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
  }

  readBody(limit: number): Promise<Uint8Array> {
    const req = this.#req;
    if (req.readableDidRead || req.readableEnded) {
      // Something else (a Node body parser run through fromNodeMiddleware) consumed the stream: what is left is not the body.
      return Promise.reject(new Error('The request body was already read by a Node middleware (a body parser such as express.json()?): toni parses JSON bodies itself, so remove the body parser.'));
    }
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return Promise.reject(tooLarge(limit));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        if (received > limit) {
          cleanup();
          // Stop buffering; the 413 response closes the connection and discards the rest.
          req.pause();
          reject(tooLarge(limit));
          return;
        }
        chunks.push(chunk);
      };
      // After 'end' nothing else is emitted that matters (a later 'error' finds a settled promise).
      const onEnd = () => {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
      };
      const onError = (error: Error) => {
        cleanup();
        reject(error);
      };
      const onAborted = () => {
        cleanup();
        // The client went away mid-body: nothing to answer, nothing for the error log.
        reject(new HttpException(400, 'The request body was aborted by the client'));
      };
      const cleanup = () => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('aborted', onAborted);
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('aborted', onAborted);
    });
  }

  respond(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): void {
    const res = this.#res;
    const streamed = isStream(body);
    if (res.headersSent || res.destroyed) {
      if (streamed) destroyStream(body);
      return;
    }
    if (status === 413 || headers['connection'] === 'close') res.shouldKeepAlive = false;
    // One writeHead() with a flat [name, value, …] list: node validates and serialises the
    // headers in one pass, without the header map that each setHeader() call maintains.
    // The body's framing is the adapter's alone: a content-length or transfer-encoding in `headers`
    // beside the one written here would give the response two framings (request smuggling).
    const flat: string[] = [];
    for (const name in headers) if (name !== 'content-length' && name !== 'transfer-encoding') flat.push(name, headers[name]!);
    // 204 and 304 have no body and no content-length; any other status without a body says 0 rather than chunked nothing.
    const bodiless = status === 204 || status === 304;
    if (!bodiless) {
      const length = streamed ? streamLength(headers['content-length']) : body === undefined ? '0' : String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
      if (length !== undefined) flat.push('content-length', length);
    }
    try {
      res.writeHead(status, statusText(status), flat);
    } catch (error) {
      // Nothing was written; forget the status line writeHead() chose, so that the caller can still answer with an error.
      res.statusMessage = '';
      throw error;
    }
    if (streamed) {
      if (bodiless || this.#req.method === 'HEAD') {
        destroyStream(body);
        res.end();
      } else pipeBody(body, res);
    } else if (bodiless || body === undefined) res.end();
    else res.end(body);
  }
}

/** A streamed body's declared length, when it is a byte count. */
function streamLength(declared: string | undefined): string | undefined {
  return declared !== undefined && /^\d{1,15}$/.test(declared) ? declared : undefined;
}

/**
 * Streams a body with backpressure. A source that fails mid-way cannot be answered with an
 * error any more (the status is sent): the response is cut off, so the client sees it is incomplete.
 */
function pipeBody(body: AsyncIterable<Uint8Array>, res: ServerResponse): void {
  const source = body instanceof Readable ? body : Readable.from(body, { objectMode: false });
  source.once('error', (error) => res.destroy(error));
  res.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(res);
}

function destroyStream(body: AsyncIterable<Uint8Array>): void {
  const destroy = (body as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') (destroy as () => void).call(body);
  else void body[Symbol.asyncIterator]().return?.();
}

/** A request node could not parse gets toni's JSON error instead of node's bare 400. */
function onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  writeRawError(socket, status, status === 400 ? `Malformed HTTP request (${error.code ?? 'parse error'})` : statusText(status));
}

function tooLarge(limit: number): HttpException {
  return new HttpException(413, `Request body is larger than the limit of ${limit} bytes`);
}
