import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { AbstractClass } from '../di/token.js';
import type { Logger } from '../logger.js';
import { type Chain, filterFor, runGuards, runInterceptors } from '../pipeline/chain.js';
import { HttpExecution } from '../pipeline/execution-context.js';
import { hasPoisonedKey, silentLoss, stringifyFailure } from '../pipeline/json.js';
import { type ValidationOutcome, validate } from '../pipeline/validation.js';
import type { HttpExchange, IncomingHeaders, StaticAssets } from './adapter.js';
import { type HttpContext, RequestContext, queryObject } from './context.js';
import type { Cors, CorsHeaders } from './cors.js';
import { HttpException, INTERNAL_ERROR_BODY, JSON_HEADERS } from './http-exception.js';
import { HttpResponse, HttpResponseBuilder, type ResponseBody, isStream } from './http-response.js';
import type { Middleware } from './middleware.js';
import { MiddlewareChain } from './middleware.js';
import type { Router } from './router.js';

/** A route bound to its controller instance, ready to serve. */
export interface BoundRoute {
  /** `Controller.method`, for logs. */
  readonly name: string;
  /** The controller class and the route's method, for execution contexts. */
  readonly type: AbstractClass<unknown>;
  readonly handler: Function;
  readonly invoke: (ctx: RequestContext) => unknown;
  readonly bodySchema: StandardSchemaV1 | undefined;
  readonly paramsSchema: StandardSchemaV1 | undefined;
  readonly querySchema: StandardSchemaV1 | undefined;
  readonly bodyLimit: number;
  /**
   * Guards, interceptors and filters, composed at startup; undefined for a route with none, which
   * (without params or query schemas) takes the path that allocates nothing for them.
   */
  chain: Chain | undefined;
  /** True for a route with no chain and no params or query schema: the fast path. */
  plain: boolean;
}

/** What runs around routing, fixed when the application starts listening. */
export interface RequestPipeline {
  readonly middleware: readonly Middleware[];
  readonly cors: Cors | undefined;
  readonly statics: readonly StaticMount[];
}

/** A folder served under a path prefix. */
export interface StaticMount {
  /** Normalised: a leading slash, no trailing one (`/` for the root). */
  readonly prefix: string;
  readonly assets: StaticAssets;
}

const CLOSE_JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...JSON_HEADERS, connection: 'close' });
const BYTES_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/octet-stream' });
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Serves one request: middleware, CORS and static files when the application has them, then
 * routing, guards, interceptors, reading and validating the request, the handler, and writing
 * what it returns. Every failure becomes a JSON error; nothing reaches the adapter as an exception.
 */
export class RequestHandler {
  readonly #router: Router<BoundRoute>;
  readonly #logger: Logger;
  #middleware: MiddlewareChain | undefined;
  #cors: Cors | undefined;
  #statics: readonly StaticMount[] = [];
  /** No middleware or CORS: requests go straight to routing (static files are served from there, where no route matches). */
  #direct = true;

  constructor(router: Router<BoundRoute>, logger: Logger) {
    this.#router = router;
    this.#logger = logger;
  }

  /** Sets what runs around routing; called once, when the application starts listening. */
  configure(pipeline: RequestPipeline): void {
    this.#middleware = pipeline.middleware.length === 0 ? undefined : new MiddlewareChain(pipeline.middleware, this.#logger);
    this.#cors = pipeline.cors;
    this.#statics = pipeline.statics;
    this.#direct = this.#middleware === undefined && this.#cors === undefined;
  }

  readonly handle = (exchange: HttpExchange): void => {
    if (this.#direct) this.#route(exchange, undefined);
    else void this.#aroundRouting(exchange);
  };

  /** Middleware and CORS around routing. */
  async #aroundRouting(exchange: HttpExchange): Promise<void> {
    const url = exchange.url;
    const queryStart = url.indexOf('?');
    const ctx = new RequestContext(exchange, queryStart < 0 ? url : url.slice(0, queryStart), queryStart);
    let cors: CorsHeaders | undefined;
    if (this.#cors !== undefined) {
      try {
        const decided = this.#cors.headersFor(exchange.method, exchange.headers);
        cors = decided instanceof Promise ? await decided : decided;
      } catch (error) {
        this.#fail(exchange, error, undefined);
        return;
      }
    }
    const target = cors === undefined ? exchange : new CorsExchange(exchange, cors);
    const middleware = this.#middleware;
    if (middleware === undefined) {
      this.#inner(target, ctx, cors);
      return;
    }
    const response = await middleware.run(ctx as unknown as HttpContext, () => new Promise<HttpResponse>((resolve) => this.#inner(new CapturingExchange(exchange, resolve), ctx, cors)));
    try {
      target.respond(response.status, response.headers, response.body);
    } catch (error) {
      this.#fail(target, error, undefined);
    }
  }

  /** What middleware wraps: the CORS preflight, or routing (and static files). */
  #inner(exchange: HttpExchange, ctx: RequestContext, cors: CorsHeaders | undefined): void {
    if (cors?.preflight === true) exchange.respond(cors.status, NO_HEADERS, undefined);
    else this.#route(exchange, ctx);
  }

  #route(exchange: HttpExchange, given: RequestContext | undefined): void {
    let path: string;
    let queryStart: number;
    if (given === undefined) {
      const url = exchange.url;
      queryStart = url.indexOf('?');
      path = queryStart < 0 ? url : url.slice(0, queryStart);
    } else {
      path = given.path;
      queryStart = -1;
    }
    let lookup;
    try {
      lookup = this.#router.find(exchange.method, path);
    } catch (error) {
      this.#fail(exchange, new HttpException(400, (error as Error).message), undefined);
      return;
    }
    if (lookup.kind === 'not-found') {
      if (this.#statics.length > 0 && (exchange.method === 'GET' || exchange.method === 'HEAD')) void this.#serveStatic(exchange, path);
      else this.#notFound(exchange, path);
      return;
    }
    if (lookup.kind === 'method-not-allowed') {
      const error = new HttpException(405, `${exchange.method} is not allowed on ${path}; allowed: ${lookup.allowed.join(', ')}`);
      exchange.respond(405, { ...JSON_HEADERS, allow: lookup.allowed.join(', ') }, JSON.stringify(error));
      return;
    }
    const route = lookup.value;
    let ctx: RequestContext;
    if (given === undefined) ctx = new RequestContext(exchange, path, queryStart, lookup.params);
    else {
      ctx = given;
      ctx.params = lookup.params;
    }
    if (!route.plain) void this.#runPipelined(exchange, route, ctx);
    else if (exchange.method !== 'GET' && exchange.method !== 'HEAD' && exchange.hasBody) this.#withBody(exchange, route, ctx);
    else if (route.bodySchema !== undefined) this.#validate(exchange, route, ctx, undefined);
    else this.#run(exchange, route, ctx);
  }

  #notFound(exchange: HttpExchange, path: string): void {
    this.#fail(exchange, new HttpException(404, `Cannot ${exchange.method} ${path}`), undefined);
  }

  /** A GET or HEAD that no route serves: the first mount with a file for it, else 404. */
  async #serveStatic(exchange: HttpExchange, path: string): Promise<void> {
    const request = { method: exchange.method, headers: exchange.headers, path };
    for (const mount of this.#statics) {
      const relative = relativeTo(mount.prefix, path);
      if (relative === undefined) continue;
      let response: HttpResponse | undefined;
      try {
        response = await mount.assets.serve(request, relative);
      } catch (error) {
        this.#fail(exchange, error, undefined);
        return;
      }
      if (response === undefined) continue;
      try {
        exchange.respond(response.status, response.headers, response.body);
      } catch (error) {
        this.#fail(exchange, error, undefined);
      }
      return;
    }
    this.#notFound(exchange, path);
  }

  // ---------------------------------------------------------------------------------------
  // The fast path: a route without guards, interceptors, filters, params or query schemas.
  // Callbacks rather than async functions, so that a synchronous handler costs no promise.

  #withBody(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext): void {
    if (!isJsonContentType(exchange.headers['content-type'])) {
      this.#fail(exchange, unsupportedType(exchange.headers), route, true);
      return;
    }
    exchange.readBody(route.bodyLimit).then(
      (bytes) => {
        const parsed = parseJson(bytes);
        if (parsed instanceof HttpException) this.#fail(exchange, parsed, route);
        else if (route.bodySchema !== undefined) this.#validate(exchange, route, ctx, parsed);
        else {
          ctx.body = parsed;
          this.#run(exchange, route, ctx);
        }
      },
      (error: unknown) => this.#fail(exchange, error, route),
    );
  }

  #validate(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext, value: unknown): void {
    const apply = (outcome: ValidationOutcome): void => {
      if (!outcome.ok) {
        this.#fail(exchange, new HttpException(400, 'Validation failed', { details: { issues: outcome.issues } }), route);
        return;
      }
      ctx.body = outcome.value;
      this.#run(exchange, route, ctx);
    };
    try {
      const outcome = validate(route.bodySchema!, value);
      if (outcome instanceof Promise) outcome.then(apply, (error: unknown) => this.#fail(exchange, error, route));
      else apply(outcome);
    } catch (error) {
      this.#fail(exchange, error, route);
    }
  }

  #run(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext): void {
    let result: unknown;
    try {
      result = route.invoke(ctx);
    } catch (error) {
      this.#fail(exchange, error, route);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => this.#send(exchange, value, route),
        (error: unknown) => this.#fail(exchange, error, route),
      );
    } else {
      this.#send(exchange, result, route);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The pipelined path: guards → interceptors → validation (params, query, body) → handler,
  // and exception filters around all of it.

  async #runPipelined(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext): Promise<void> {
    const chain = route.chain;
    // Guards and interceptors run before validation: the context's params and query are still the router's strings.
    const execution = chain === undefined ? undefined : new HttpExecution(ctx as unknown as HttpContext & RequestContext, route.type, route.handler);
    let result: unknown;
    try {
      if (chain !== undefined && chain.guards.length > 0) {
        const verdict = runGuards(chain.guards, execution!);
        if (!(verdict instanceof Promise ? await verdict : verdict)) throw new HttpException(403, 'Forbidden');
      }
      result = chain !== undefined && chain.interceptors.length > 0
        ? await runInterceptors(chain.interceptors, execution!, () => this.#produce(exchange, route, ctx))
        : await this.#produce(exchange, route, ctx);
    } catch (error) {
      const entry = chain === undefined ? undefined : filterFor(chain.filters, error);
      if (entry === undefined) {
        this.#fail(exchange, error, route, unreadBody(exchange, ctx));
        return;
      }
      try {
        result = await entry.filter.catch(error, execution!);
      } catch (failure) {
        this.#fail(exchange, failure, route, unreadBody(exchange, ctx));
        return;
      }
      if (result instanceof HttpException) {
        this.#fail(exchange, result, route, unreadBody(exchange, ctx));
        return;
      }
    }
    this.#send(exchange, result, route);
  }

  /** Validation and the handler, as a promise of the handler's result: what interceptors wrap. */
  async #produce(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext): Promise<unknown> {
    if (route.paramsSchema !== undefined) ctx.params = await validated(route.paramsSchema, ctx.params, 'Invalid path parameters');
    if (route.querySchema !== undefined) ctx.query = await validated(route.querySchema, queryObject(ctx.searchParams()), 'Invalid query string');
    if (exchange.method !== 'GET' && exchange.method !== 'HEAD' && exchange.hasBody) {
      if (!isJsonContentType(exchange.headers['content-type'])) throw unsupportedType(exchange.headers);
      ctx.bodyRead = true;
      const parsed = parseJson(await exchange.readBody(route.bodyLimit));
      if (parsed instanceof HttpException) throw parsed;
      ctx.body = route.bodySchema === undefined ? parsed : await validated(route.bodySchema, parsed, 'Validation failed');
    } else if (route.bodySchema !== undefined) {
      ctx.body = await validated(route.bodySchema, undefined, 'Validation failed');
    }
    return route.invoke(ctx);
  }

  // ---------------------------------------------------------------------------------------
  // Writing what handlers return, and errors.

  #send(exchange: HttpExchange, result: unknown, route: BoundRoute): void {
    if (typeof result === 'object' && result !== null) {
      // Plain objects and arrays, what most routes return, go straight to JSON.stringify.
      const proto: unknown = Object.getPrototypeOf(result);
      if (proto !== Object.prototype && proto !== Array.prototype) {
        this.#sendInstance(exchange, result, route);
        return;
      }
    } else if (result === undefined) {
      exchange.respond(204, NO_HEADERS, undefined);
      return;
    }
    this.#sendJson(exchange, result, route);
  }

  /** An object of some class: a response, bytes, or a value JSON.stringify would render as something else. */
  #sendInstance(exchange: HttpExchange, result: object, route: BoundRoute): void {
    let response: HttpResponse | undefined;
    if (result instanceof HttpResponse) response = result;
    else if (result instanceof HttpResponseBuilder) {
      try {
        response = result.build();
      } catch (error) {
        this.#fail(exchange, error, route);
        return;
      }
    }
    if (response !== undefined) {
      try {
        exchange.respond(response.status, response.headers, response.body);
      } catch (error) {
        // A header the server refuses (e.g. a value with a line break) must not escape to the adapter.
        this.#fail(exchange, error, route);
      }
      return;
    }
    // Bytes are sent as they are (as the Fetch API's Response does), not as JSON.stringify's {"type":"Buffer",…}.
    if (ArrayBuffer.isView(result)) {
      const bytes = result instanceof Uint8Array ? result : new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
      exchange.respond(200, BYTES_HEADERS, bytes);
      return;
    }
    if (result instanceof ArrayBuffer) {
      exchange.respond(200, BYTES_HEADERS, new Uint8Array(result));
      return;
    }
    const lost = silentLoss(result, 'return');
    if (lost !== undefined) {
      this.#unserialisable(exchange, route, `${route.name} returned ${lost}`, undefined);
      return;
    }
    this.#sendJson(exchange, result, route);
  }

  #sendJson(exchange: HttpExchange, result: unknown, route: BoundRoute): void {
    let body: string | undefined;
    try {
      body = JSON.stringify(result);
    } catch (error) {
      this.#unserialisable(exchange, route, `${route.name} returned ${stringifyFailure(result, error, 'return')}`, error);
      return;
    }
    if (body === undefined) {
      this.#unserialisable(exchange, route, `${route.name} returned ${stringifyFailure(result, undefined, 'return')}`, undefined);
      return;
    }
    exchange.respond(200, JSON_HEADERS, body);
  }

  /** A 500 for a return value that has no JSON text; the log says why and what to return instead. */
  #unserialisable(exchange: HttpExchange, route: BoundRoute, message: string, cause: unknown): void {
    const err = new TypeError(message, cause === undefined ? undefined : { cause });
    this.#logger.error({ err, method: exchange.method, url: exchange.url, handler: route.name }, `The return value could not be serialised: ${message}`);
    exchange.respond(500, JSON_HEADERS, INTERNAL_ERROR_BODY);
  }

  /**
   * Answers an error. `close`: the request's body was not read, so the connection is closed
   * rather than left to read (and discard) a body that nobody wants.
   */
  #fail(exchange: HttpExchange, error: unknown, route: BoundRoute | undefined, close = false): void {
    if (error instanceof HttpException) {
      exchange.respond(error.status, close || error.status === 413 ? CLOSE_JSON_HEADERS : JSON_HEADERS, JSON.stringify(error));
      return;
    }
    this.#logger.error(
      { err: error, method: exchange.method, url: exchange.url, handler: route?.name },
      `Unhandled error in ${route?.name ?? 'the request handler'}`,
    );
    try {
      exchange.respond(500, JSON_HEADERS, INTERNAL_ERROR_BODY);
    } catch {
      // Only a broken adapter gets here; the error is logged above.
    }
  }
}

/** An exchange that passes everything to another but its response, which subclasses change. */
abstract class WrappedExchange implements HttpExchange {
  protected readonly inner: HttpExchange;

  constructor(inner: HttpExchange) {
    this.inner = inner;
  }

  get method(): string { return this.inner.method; }
  get url(): string { return this.inner.url; }
  get headers(): IncomingHeaders { return this.inner.headers; }
  get remoteAddress(): string | undefined { return this.inner.remoteAddress; }
  get hasBody(): boolean { return this.inner.hasBody; }
  get raw(): unknown { return this.inner.raw; }
  readBody(limit: number): Promise<Uint8Array> { return this.inner.readBody(limit); }

  abstract respond(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): void;
}

/** An exchange whose responses carry the request's CORS headers. */
class CorsExchange extends WrappedExchange {
  readonly #cors: CorsHeaders;

  constructor(inner: HttpExchange, cors: CorsHeaders) {
    super(inner);
    this.#cors = cors;
  }

  respond(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): void {
    this.inner.respond(status, this.#cors.applyTo(headers), body);
  }
}

/** An exchange whose response becomes the `HttpResponse` that middleware's `next()` resolves with. */
class CapturingExchange extends WrappedExchange {
  #resolve: ((response: HttpResponse) => void) | undefined;

  constructor(inner: HttpExchange, resolve: (response: HttpResponse) => void) {
    super(inner);
    this.#resolve = resolve;
  }

  respond(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): void {
    const resolve = this.#resolve;
    if (resolve === undefined) {
      if (isStream(body)) (body as { destroy?: () => void }).destroy?.();
      return;
    }
    this.#resolve = undefined;
    resolve(HttpResponse.fromBuilder(status, headers as Record<string, string>, body));
  }
}

/** The schema's output for `value`, or the 400 to answer. */
async function validated(schema: StandardSchemaV1, value: unknown, message: string): Promise<unknown> {
  const outcome = await validate(schema, value);
  if (!outcome.ok) throw new HttpException(400, message, { details: { issues: outcome.issues } });
  return outcome.value;
}

/** True when the request announced a body that nobody read (an error came first). */
function unreadBody(exchange: HttpExchange, ctx: RequestContext): boolean {
  return !ctx.bodyRead && exchange.hasBody && exchange.method !== 'GET' && exchange.method !== 'HEAD';
}

/** The part of `path` below `prefix` (with its leading slash, or empty for the prefix itself), or undefined when `path` is not under it. */
function relativeTo(prefix: string, path: string): string | undefined {
  if (prefix === '/') return path;
  if (!path.startsWith(prefix)) return undefined;
  if (path.length === prefix.length) return '';
  return path.charCodeAt(prefix.length) === 47 ? path.slice(prefix.length) : undefined;
}

function isJsonContentType(header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const semicolon = header.indexOf(';');
  const type = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

function unsupportedType(headers: IncomingHeaders): HttpException {
  const type = headers['content-type'] ?? 'none';
  // Answered with connection: close: the unread body would otherwise be parsed as the next request on this connection.
  return new HttpException(415, `Expected a JSON body (content-type: application/json), got content-type ${String(type)}`);
}

/** The parsed body, or the HttpException to answer (JSON.parse never yields one). */
function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return new HttpException(400, 'Malformed JSON body: it is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (text.trim() === '') return undefined;
    return new HttpException(400, `Malformed JSON body: ${(error as Error).message}`);
  }
  if (hasPoisonedKey(text, value)) {
    return new HttpException(400, 'Forbidden key in JSON body: "__proto__" and "constructor.prototype" are not accepted');
  }
  return value;
}
