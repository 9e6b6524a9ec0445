import type { MetadataToken } from '../websocket/metadata.js';
import type { HttpExchange } from './adapter.js';
import { requestHeaders } from './request-headers.js';

/** Path parameters as the router finds them: percent-decoded strings. */
export type RouteParams = Readonly<Record<string, string>>;

/**
 * What a route handler (and middleware) receives: the parsed request. `TBody` is the type of the
 * JSON body, `TParams` of the path parameters, `TQuery` of the query: each the output of the
 * route's schema when it declares one (`{ body, params, query }`), asserted by the handler otherwise.
 *
 * @example
 * @Get('/users/:id')
 * find(ctx: HttpContext) { return this.users.find(ctx.params.id, ctx.query.get('fields')); }
 *
 * @Get('/users/:id', { params: z.object({ id: z.coerce.number() }) })
 * byNumber(ctx: HttpContext<unknown, { id: number }>) { return this.users.byNumber(ctx.params.id); }
 */
export interface HttpContext<TBody = unknown, TParams = RouteParams, TQuery = URLSearchParams> {
  readonly method: string;
  /** The path without the query string, as sent (percent-encoded). */
  readonly path: string;
  /** The request target as sent: path and query. */
  readonly url: string;
  /**
   * Path parameters (`/users/:id` → `params.id`), percent-decoded; the schema's output when the
   * route declares `{ params: schema }`. Empty in middleware, which runs before routing.
   */
  readonly params: TParams;
  /**
   * The query string, percent-decoded, as `URLSearchParams`; with `{ query: schema }`, the
   * schema's output for the query as an object (a key sent once is a string, several times an array).
   */
  readonly query: TQuery;
  /** Request headers; `get` is case-insensitive. */
  readonly headers: Headers;
  /** The JSON body, validated when the route declares `{ body: schema }`; `undefined` without a body. */
  readonly body: TBody;
  readonly remoteAddress: string | undefined;
  /** The HTTP server's native request (an `http.IncomingMessage` with `NodeHttpAdapter`). */
  readonly raw: unknown;
  /**
   * A value set for this request by a guard (`ctx.set(key, value)` on its `ExecutionContext`) or
   * by middleware; keys are classes or `MetadataKey`s.
   *
   * @example
   * @Get('/me')
   * me(ctx: HttpContext) { return ctx.get(User); }   // User | undefined
   */
  get<T>(key: MetadataToken<T>): T | undefined;
  /** Passes a typed value on to the guards and the handler of this request. */
  set<T>(key: MetadataToken<T>, value: T): void;
}

const NO_PARAMS: RouteParams = Object.freeze({});

/** The one implementation of `HttpContext`: query, headers and the value store are built on first use. */
export class RequestContext implements HttpContext<unknown, unknown, unknown> {
  readonly #exchange: HttpExchange;
  readonly #queryStart: number;
  readonly path: string;
  /** Set once routed (and replaced by the schema's output when the route validates them). */
  params: unknown;
  body: unknown = undefined;
  /** True once the body was asked for: an error answered before leaves it unread. */
  bodyRead = false;
  #query: unknown;
  #headers: Headers | undefined;
  #values: Map<unknown, unknown> | undefined;

  constructor(exchange: HttpExchange, path: string, queryStart: number, params: RouteParams = NO_PARAMS) {
    this.#exchange = exchange;
    this.path = path;
    this.#queryStart = queryStart;
    this.params = params;
  }

  /** The native exchange, for adapters' own middleware (`fromNodeMiddleware`). */
  get exchange(): HttpExchange { return this.#exchange; }

  get method(): string { return this.#exchange.method; }
  get url(): string { return this.#exchange.url; }
  get remoteAddress(): string | undefined { return this.#exchange.remoteAddress; }
  get raw(): unknown { return this.#exchange.raw; }

  get query(): unknown {
    this.#query ??= this.searchParams();
    return this.#query;
  }

  /** The query's schema output replaces the `URLSearchParams`. */
  set query(value: unknown) {
    this.#query = value;
  }

  /** The query string as sent, decoded. */
  searchParams(): URLSearchParams {
    return this.#query instanceof URLSearchParams ? this.#query : new URLSearchParams(this.#queryStart < 0 ? '' : this.#exchange.url.slice(this.#queryStart + 1));
  }

  get<T>(key: MetadataToken<T>): T | undefined {
    return this.#values?.get(key) as T | undefined;
  }

  set<T>(key: MetadataToken<T>, value: T): void {
    (this.#values ??= new Map()).set(key, value);
  }

  get headers(): Headers {
    this.#headers ??= requestHeaders(this.#exchange.headers);
    return this.#headers;
  }
}

/** The query as a schema sees it: a key sent once is a string, several times an array of strings. */
export function queryObject(search: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of search) {
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (typeof existing === 'string') query[key] = [existing, value];
    else existing.push(value);
  }
  return query;
}
