import type { Logger } from '../logger.js';
import type { HttpContext } from './context.js';
import { HttpException, INTERNAL_ERROR_BODY, JSON_HEADERS } from './http-exception.js';
import { HttpResponse, HttpResponseBuilder } from './http-response.js';

/**
 * Runs around every HTTP request, before routing: unknown routes, CORS preflights and static
 * files included, in the order `app.use()` registered them (the first is outermost). `next()`
 * runs the rest of the chain and resolves with its response; it never rejects (errors further
 * in are already answered: an `HttpException` with its status, anything else 500, logged).
 * Return that response, a changed copy (`HttpResponse.from(response)`), or your own.
 *
 * @example
 * app.use(async (ctx, next) => {
 *   if (ctx.path === '/maintenance') return HttpResponse.status(503).text('Back soon').build();
 *   const response = await next();
 *   return HttpResponse.from(response).header('x-request-id', randomUUID()).build();
 * });
 */
export type Middleware = (ctx: HttpContext, next: () => Promise<HttpResponse>) => HttpResponse | Promise<HttpResponse>;


/** The chain of `app.use()` middleware around `inner` (routing and everything after it). */
export class MiddlewareChain {
  readonly #list: readonly Middleware[];
  readonly #names: readonly string[];
  readonly #logger: Logger;

  constructor(list: readonly Middleware[], logger: Logger) {
    this.#list = list;
    this.#names = list.map((middleware, index) => (middleware.name === '' ? `middleware #${index + 1}` : `middleware ${middleware.name} (#${index + 1})`));
    this.#logger = logger;
  }

  /** Runs the chain for one request; resolves with the response to write, never rejects. */
  run(ctx: HttpContext, inner: () => Promise<HttpResponse>): Promise<HttpResponse> {
    return this.#dispatch(0, ctx, inner);
  }

  #dispatch(index: number, ctx: HttpContext, inner: () => Promise<HttpResponse>): Promise<HttpResponse> {
    if (index === this.#list.length) return inner();
    let called = false;
    const next = (): Promise<HttpResponse> => {
      if (called) return Promise.reject(new Error(`next() was called twice by ${this.#names[index]}: call it once, and return (a copy of) the response it resolves with`));
      called = true;
      return this.#dispatch(index + 1, ctx, inner);
    };
    let result: HttpResponse | Promise<HttpResponse>;
    try {
      result = this.#list[index]!(ctx, next);
    } catch (error) {
      return Promise.resolve(this.#answer(error, index, ctx));
    }
    if (result instanceof Promise) return result.then((value) => this.#checked(value, index, ctx), (error: unknown) => this.#answer(error, index, ctx));
    return Promise.resolve(this.#checked(result, index, ctx));
  }

  /** What a middleware returned, as a response: a builder is built; anything else is a 500 that the log explains. */
  #checked(value: unknown, index: number, ctx: HttpContext): HttpResponse {
    if (value instanceof HttpResponse) return value;
    if (value instanceof HttpResponseBuilder) {
      try {
        return value.build();
      } catch (error) {
        return this.#answer(error, index, ctx);
      }
    }
    const what = value === undefined ? 'undefined' : value === null ? 'null' : typeof value === 'object' ? `an instance of ${value.constructor?.name ?? 'Object'}` : typeof value;
    return this.#answer(
      new TypeError(`${this.#names[index]} returned ${what} instead of an HttpResponse: return the response next() resolves with, a copy (HttpResponse.from(response)…build()), or one you build`),
      index,
      ctx,
    );
  }

  /** An error a middleware threw (or rejected with), answered as handlers' errors are. */
  #answer(error: unknown, index: number, ctx: HttpContext): HttpResponse {
    if (error instanceof HttpException) return HttpResponse.fromBuilder(error.status, { ...JSON_HEADERS }, JSON.stringify(error));
    this.#logger.error({ err: error, method: ctx.method, path: ctx.path, middleware: this.#names[index] }, `Unhandled error in ${this.#names[index]}`);
    return HttpResponse.fromBuilder(500, { ...JSON_HEADERS }, INTERNAL_ERROR_BODY);
  }
}
