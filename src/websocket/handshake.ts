import { requestHeaders } from '../http/request-headers.js';
import type { IncomingHeaders } from '../http/adapter.js';
import type { MetadataReader, MetadataToken } from './metadata.js';

/**
 * The HTTP request that asks to open a WebSocket, as a gateway's `onHandshake` sees it.
 *
 * @example
 * async onHandshake(handshake: WsHandshake) {
 *   const token = handshake.headers.get('authorization') ?? handshake.query.get('token');
 *   if (!token || !this.auth.verify(token)) return false;   // HTTP 401, never upgraded
 *   handshake.setMetadata(User, this.auth.userFor(token));
 *   return true;
 * }
 */
export class WsHandshake implements MetadataReader {
  /** The request target as sent, e.g. `/chat?room=x`. */
  readonly url: string;
  /** The path of `url`, without the query string. */
  readonly path: string;
  /** The peer's IP address. */
  readonly remoteAddress: string | undefined;
  readonly #rawHeaders: IncomingHeaders;
  readonly #queryStart: number;
  #metadata: Map<unknown, unknown> | undefined;
  #headers: Headers | undefined;
  #query: URLSearchParams | undefined;
  // Made on first use of `signal`: most connections never need one.
  #controller: AbortController | undefined;
  #abandoned: Error | undefined;

  constructor(init: { url: string; headers: IncomingHeaders; remoteAddress: string | undefined }) {
    this.url = init.url;
    this.#queryStart = init.url.indexOf('?');
    this.path = this.#queryStart < 0 ? init.url : init.url.slice(0, this.#queryStart);
    this.#rawHeaders = init.headers;
    this.remoteAddress = init.remoteAddress;
  }

  /** The request headers (WHATWG `Headers`: `get` is case-insensitive). */
  get headers(): Headers {
    this.#headers ??= requestHeaders(this.#rawHeaders);
    return this.#headers;
  }

  /** The query string, percent-decoded. */
  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.#queryStart < 0 ? '' : this.url.slice(this.#queryStart + 1));
    return this.#query;
  }

  /**
   * Aborted once the connection is over: the client left, or the upgrade was refused for
   * `handshakeTimeout` or a shutdown, while `onHandshake` ran — or, after the upgrade, the
   * connection closed. Pass it to the work `onHandshake` (or a handler) starts, so that work
   * stops when nobody waits for it.
   *
   * @example
   * async onHandshake(handshake: WsHandshake) {
   *   const user = await this.auth.lookup(handshake.query.get('token'), { signal: handshake.signal });
   *   …
   * }
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abandoned !== undefined) this.#controller.abort(this.#abandoned);
    }
    return this.#controller.signal;
  }

  /** @internal the adapter or gateway host gives up on this connection; aborts `signal` once */
  abandon(reason: Error): void {
    if (this.#abandoned !== undefined) return;
    this.#abandoned = reason;
    reason.name = 'AbortError';
    this.#controller?.abort(reason);
  }

  /** Attaches a value to the client this handshake opens; read it with `client.getMetadata(key)`. */
  setMetadata<T>(key: MetadataToken<T>, value: T): void {
    (this.#metadata ??= new Map()).set(key, value);
  }

  getMetadata<T>(key: MetadataToken<T>): T | undefined {
    return this.#metadata?.get(key) as T | undefined;
  }
}
