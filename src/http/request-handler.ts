import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Logger } from '../logger.js';
import type { HttpExchange } from './adapter.js';
import { RequestContext } from './context.js';
import { HttpException } from './http-exception.js';
import { HttpResponse, HttpResponseBuilder } from './http-response.js';
import { silentLoss, stringifyFailure } from './json.js';
import type { Router } from './router.js';
import { statusText } from './status.js';

/** A route bound to its controller instance, ready to serve. */
export interface BoundRoute {
  /** `Controller.method`, for logs. */
  readonly name: string;
  readonly invoke: (ctx: RequestContext) => unknown;
  readonly bodySchema: StandardSchemaV1 | undefined;
  readonly bodyLimit: number;
}

const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json; charset=utf-8' });
const CLOSE_JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...JSON_HEADERS, connection: 'close' });
const BYTES_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/octet-stream' });
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const INTERNAL_ERROR_BODY = JSON.stringify({ statusCode: 500, message: statusText(500), error: statusText(500) });
// A key can spell its letters as \u escapes (`"\u005f_proto__"`), so any escape also triggers the full check.
const POISON_KEYS = /"(?:__proto__|constructor)"\s*:|\\u/;
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Serves one request: routes it, reads and validates the body, calls the handler and writes
 * what it returns. Every failure becomes a JSON error; nothing reaches the adapter as an exception.
 */
export class RequestHandler {
  readonly #router: Router<BoundRoute>;
  readonly #logger: Logger;

  constructor(router: Router<BoundRoute>, logger: Logger) {
    this.#router = router;
    this.#logger = logger;
  }

  readonly handle = (exchange: HttpExchange): void => {
    const url = exchange.url;
    const queryStart = url.indexOf('?');
    const path = queryStart < 0 ? url : url.slice(0, queryStart);
    let lookup;
    try {
      lookup = this.#router.find(exchange.method, path);
    } catch (error) {
      this.#fail(exchange, new HttpException(400, (error as Error).message), undefined);
      return;
    }
    if (lookup.kind === 'not-found') {
      this.#fail(exchange, new HttpException(404, `Cannot ${exchange.method} ${path}`), undefined);
      return;
    }
    if (lookup.kind === 'method-not-allowed') {
      const error = new HttpException(405, `${exchange.method} is not allowed on ${path}; allowed: ${lookup.allowed.join(', ')}`);
      exchange.respond(405, { ...JSON_HEADERS, allow: lookup.allowed.join(', ') }, JSON.stringify(error));
      return;
    }
    const route = lookup.value;
    const ctx = new RequestContext(exchange, path, queryStart, lookup.params);
    if (exchange.method !== 'GET' && exchange.method !== 'HEAD' && exchange.hasBody) {
      this.#withBody(exchange, route, ctx);
    } else if (route.bodySchema !== undefined) {
      this.#validate(exchange, route, ctx, undefined);
    } else {
      this.#run(exchange, route, ctx);
    }
  };

  #withBody(exchange: HttpExchange, route: BoundRoute, ctx: RequestContext): void {
    if (!isJsonContentType(exchange.headers['content-type'])) {
      const type = exchange.headers['content-type'] ?? 'none';
      // The unread body would otherwise be parsed as the next request on this connection.
      const error = new HttpException(415, `Expected a JSON body (content-type: application/json), got content-type ${String(type)}`);
      exchange.respond(415, CLOSE_JSON_HEADERS, JSON.stringify(error));
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
    const apply = (result: StandardSchemaV1.Result<unknown>): void => {
      if (result.issues !== undefined) {
        const issues = result.issues.map(toIssue);
        this.#fail(exchange, new HttpException(400, 'Validation failed', { details: { issues } }), route);
        return;
      }
      ctx.body = result.value;
      this.#run(exchange, route, ctx);
    };
    try {
      const result = route.bodySchema!['~standard'].validate(value);
      if (result instanceof Promise) result.then(apply, (error: unknown) => this.#fail(exchange, error, route));
      else apply(result);
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

  #fail(exchange: HttpExchange, error: unknown, route: BoundRoute | undefined): void {
    if (error instanceof HttpException) {
      exchange.respond(error.status, error.status === 413 ? CLOSE_JSON_HEADERS : JSON_HEADERS, JSON.stringify(error));
      return;
    }
    this.#logger.error(
      { err: error, method: exchange.method, url: exchange.url, handler: route?.name },
      `Unhandled error in ${route?.name ?? 'the request handler'}`,
    );
    exchange.respond(500, JSON_HEADERS, INTERNAL_ERROR_BODY);
  }
}

function isJsonContentType(header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const semicolon = header.indexOf(';');
  const type = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
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
  if (POISON_KEYS.test(text) && hasPoisonedKey(value)) {
    return new HttpException(400, 'Forbidden key in JSON body: "__proto__" and "constructor.prototype" are not accepted');
  }
  return value;
}

/** True when a parsed value carries a key that would pollute prototypes if merged into an object. */
function hasPoisonedKey(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item !== 'object' || item === null) continue;
    if (Object.hasOwn(item, '__proto__')) return true;
    const ctor: unknown = Object.hasOwn(item, 'constructor') ? (item as { constructor: unknown }).constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true;
    for (const child of Object.values(item)) pending.push(child);
  }
  return false;
}

function toIssue(issue: StandardSchemaV1.Issue): { message: string; path?: (string | number)[] } {
  if (issue.path === undefined) return { message: issue.message };
  const path = issue.path.map((segment) => {
    const key = typeof segment === 'object' ? segment.key : segment;
    return typeof key === 'symbol' ? String(key) : key;
  });
  return { message: issue.message, path };
}
