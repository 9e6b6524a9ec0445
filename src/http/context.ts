import type { HttpExchange } from './adapter.js';

/**
 * What a route handler receives: the parsed request. `TBody` is the type of the JSON body —
 * inferred from the route's schema when it declares one, asserted by the handler otherwise.
 *
 * @example
 * @Get('/users/:id')
 * find(ctx: HttpContext) { return this.users.find(ctx.params.id, ctx.query.get('fields')); }
 */
export interface HttpContext<TBody = unknown> {
  readonly method: string;
  /** The path without the query string, as sent (percent-encoded). */
  readonly path: string;
  /** The request target as sent: path and query. */
  readonly url: string;
  /** Path parameters (`/users/:id` → `params.id`), percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The query string, percent-decoded. */
  readonly query: URLSearchParams;
  /** Request headers; `get` is case-insensitive. */
  readonly headers: Headers;
  /** The JSON body, validated when the route declares `{ body: schema }`; `undefined` without a body. */
  readonly body: TBody;
  readonly remoteAddress: string | undefined;
  /** The HTTP server's native request (an `http.IncomingMessage` with `NodeHttpAdapter`). */
  readonly raw: unknown;
}

/** The one implementation of `HttpContext`: query and headers are built on first use. */
export class RequestContext implements HttpContext<unknown> {
  readonly #exchange: HttpExchange;
  readonly #queryStart: number;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  body: unknown = undefined;
  #query: URLSearchParams | undefined;
  #headers: Headers | undefined;

  constructor(exchange: HttpExchange, path: string, queryStart: number, params: Readonly<Record<string, string>>) {
    this.#exchange = exchange;
    this.path = path;
    this.#queryStart = queryStart;
    this.params = params;
  }

  get method(): string { return this.#exchange.method; }
  get url(): string { return this.#exchange.url; }
  get remoteAddress(): string | undefined { return this.#exchange.remoteAddress; }
  get raw(): unknown { return this.#exchange.raw; }

  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.#queryStart < 0 ? '' : this.#exchange.url.slice(this.#queryStart + 1));
    return this.#query;
  }

  get headers(): Headers {
    this.#headers ??= toHeaders(this.#exchange.headers);
    return this.#headers;
  }
}

/** WHATWG `Headers` from a Node-style header record. */
export function toHeaders(source: Readonly<Record<string, string | string[] | undefined>>): Headers {
  const headers = new Headers();
  for (const name in source) {
    const value = source[name];
    if (value === undefined) continue;
    try {
      if (typeof value === 'string') headers.append(name, value);
      else for (const item of value) headers.append(name, item);
    } catch {
      // A header the WHATWG grammar rejects (Node accepts more) is left out rather than failing the request.
    }
  }
  return headers;
}
