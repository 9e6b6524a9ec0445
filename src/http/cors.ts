import { ToniError } from '../errors.js';
import type { IncomingHeaders } from './adapter.js';

/** Which origins may read responses: what the `cors` package's `origin` option takes. */
export type StaticCorsOrigin = boolean | string | RegExp | readonly (string | RegExp)[];

/**
 * Decides the origin per request, as in the `cors` package: call `callback(null, origin)` (or
 * return the origin, or a promise of it); `callback(error)` answers 500.
 */
export type CorsOriginFunction = (
  origin: string | undefined,
  callback: (error: Error | null, origin?: StaticCorsOrigin) => void,
) => StaticCorsOrigin | Promise<StaticCorsOrigin> | void;

/**
 * Options of `app.enableCors()`: the options of the `cors` package, with the meanings it gives them.
 *
 * @example
 * app.enableCors({ origin: ['https://app.example.com', /\.example\.com$/], credentials: true, maxAge: 600 });
 */
export interface CorsOptions {
  /**
   * `'*'` (the default): any origin, without credentials. A string other than `'*'`: that
   * origin, always. `true`: the request's origin, reflected. A RegExp or an array of strings and
   * RegExps: the request's origin when it matches, else no `Access-Control-Allow-Origin`.
   * `false`: no CORS at all (preflights then go to the routes). Or a function deciding per request.
   */
  origin?: StaticCorsOrigin | CorsOriginFunction;
  /** `Access-Control-Allow-Methods` of preflights. Default `GET,HEAD,PUT,PATCH,POST,DELETE`. */
  methods?: string | readonly string[];
  /** `Access-Control-Allow-Headers` of preflights. Default: the preflight's `Access-Control-Request-Headers`, reflected. */
  allowedHeaders?: string | readonly string[];
  /** The `cors` package's alias of `allowedHeaders`. */
  headers?: string | readonly string[];
  /** `Access-Control-Expose-Headers`: response headers the browser lets scripts read. */
  exposedHeaders?: string | readonly string[];
  /** `Access-Control-Allow-Credentials: true`: cookies and authorization may be sent. Default false. */
  credentials?: boolean;
  /** `Access-Control-Max-Age` of preflights, in seconds. */
  maxAge?: number;
  /** Let OPTIONS requests go on to the routes (with the CORS headers) instead of answering them. Default false. */
  preflightContinue?: boolean;
  /** The status of answered preflights. Default 204. */
  optionsSuccessStatus?: number;
}

/** The CORS headers one request gets: set on its response unless the response sets them itself, `vary` appended. */
export class CorsHeaders {
  readonly headers: Readonly<Record<string, string>>;
  readonly vary: string | undefined;
  /** An OPTIONS request that CORS answers itself. */
  readonly preflight: boolean;
  readonly status: number;
  // The last frozen header set merged, and the result: toni's responses reuse a few constant sets.
  #source: Readonly<Record<string, string>> | undefined;
  #merged: Record<string, string> | undefined;

  constructor(headers: Readonly<Record<string, string>>, vary: string | undefined, preflight: boolean, status: number) {
    this.headers = headers;
    this.vary = vary;
    this.preflight = preflight;
    this.status = status;
  }

  /** `headers` with these added: the response's own win; `vary` is merged as the `vary` package does. Never mutate the result. */
  applyTo(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    if (headers === this.#source) return this.#merged!;
    const merged: Record<string, string> = { ...this.headers, ...headers };
    if (this.vary !== undefined) merged['vary'] = appendVary(headers['vary'], this.vary);
    if (Object.isFrozen(headers)) {
      this.#source = headers;
      this.#merged = merged;
    }
    return merged;
  }
}

const DEFAULT_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';
/** Reflected origins whose headers are kept for reuse; past this many, the memory starts over (an attacker may send any origin). */
const MAX_REMEMBERED_ORIGINS = 256;

/**
 * `enableCors` on toni's own terms: the `cors` package's option meanings, computed without a
 * Node response object, so that every response (routes, errors, files, middleware's own)
 * carries the headers and preflights are answered for every path. What does not depend on the
 * request is computed once.
 */
export class Cors {
  readonly #origin: CorsOptions['origin'];
  readonly #credentials: boolean;
  readonly #methods: string;
  readonly #allowedHeaders: string | undefined;
  readonly #exposedHeaders: string | undefined;
  readonly #maxAge: string | undefined;
  readonly #preflightContinue: boolean;
  readonly #status: number;
  /** The answer for every request when the origin does not depend on the request (`'*'` or a fixed origin). */
  readonly #fixed: { actual: CorsHeaders; preflightBase: Readonly<Record<string, string>>; vary: string | undefined } | undefined;
  /** The answers to requests from origins seen (reflected ones), shared by their requests; bounded. */
  readonly #byOrigin = new Map<string, CorsHeaders>();

  constructor(options: CorsOptions) {
    assertOptions(options);
    this.#origin = options.origin ?? '*';
    this.#credentials = options.credentials === true;
    this.#methods = list(options.methods) ?? DEFAULT_METHODS;
    this.#allowedHeaders = list(options.allowedHeaders ?? options.headers);
    this.#exposedHeaders = list(options.exposedHeaders);
    this.#maxAge = options.maxAge === undefined ? undefined : String(options.maxAge);
    this.#preflightContinue = options.preflightContinue === true;
    this.#status = options.optionsSuccessStatus ?? 204;
    const origin = this.#origin;
    if (typeof origin === 'string') {
      const vary = origin === '*' ? undefined : 'Origin';
      this.#fixed = { actual: this.#actual(origin, vary), preflightBase: this.#preflightHeaders(origin), vary };
    }
  }

  /** The CORS headers of a request, or undefined when CORS does not apply to it (`origin: false`, or the origin function said so). */
  headersFor(method: string, headers: IncomingHeaders): CorsHeaders | undefined | Promise<CorsHeaders | undefined> {
    const preflight = method === 'OPTIONS';
    const fixed = this.#fixed;
    if (fixed !== undefined) return preflight ? this.#preflight(fixed.preflightBase, fixed.vary, headers) : fixed.actual;
    const requestOrigin = single(headers['origin']);
    const origin = this.#origin;
    if (typeof origin !== 'function') return this.#forOrigin(origin, requestOrigin, preflight, headers);
    return resolveOrigin(origin, requestOrigin).then((decided) => this.#forOrigin(decided, requestOrigin, preflight, headers));
  }

  #forOrigin(origin: StaticCorsOrigin | undefined, requestOrigin: string | undefined, preflight: boolean, headers: IncomingHeaders): CorsHeaders | undefined {
    if (origin === undefined || origin === false || origin === '') return undefined;
    let allowed: string | undefined;
    let vary: string | undefined = 'Origin';
    if (origin === '*') {
      allowed = '*';
      vary = undefined;
    } else if (typeof origin === 'string') allowed = origin;
    else allowed = requestOrigin !== undefined && isOriginAllowed(requestOrigin, origin) ? requestOrigin : undefined;
    if (preflight) return this.#preflight(this.#preflightHeaders(allowed), vary, headers);
    if (allowed !== requestOrigin || allowed === undefined) return this.#actual(allowed, vary);
    let shared = this.#byOrigin.get(allowed);
    if (shared === undefined) {
      shared = this.#actual(allowed, vary);
      if (this.#byOrigin.size >= MAX_REMEMBERED_ORIGINS) this.#byOrigin.clear();
      this.#byOrigin.set(allowed, shared);
    }
    return shared;
  }

  #actual(allowedOrigin: string | undefined, vary: string | undefined): CorsHeaders {
    const headers: Record<string, string> = {};
    if (allowedOrigin !== undefined) headers['access-control-allow-origin'] = allowedOrigin;
    if (this.#credentials) headers['access-control-allow-credentials'] = 'true';
    if (this.#exposedHeaders !== undefined) headers['access-control-expose-headers'] = this.#exposedHeaders;
    return new CorsHeaders(headers, vary, false, 0);
  }

  #preflightHeaders(allowedOrigin: string | undefined): Readonly<Record<string, string>> {
    const headers: Record<string, string> = {};
    if (allowedOrigin !== undefined) headers['access-control-allow-origin'] = allowedOrigin;
    if (this.#credentials) headers['access-control-allow-credentials'] = 'true';
    headers['access-control-allow-methods'] = this.#methods;
    if (this.#allowedHeaders !== undefined) headers['access-control-allow-headers'] = this.#allowedHeaders;
    if (this.#maxAge !== undefined) headers['access-control-max-age'] = this.#maxAge;
    if (this.#exposedHeaders !== undefined) headers['access-control-expose-headers'] = this.#exposedHeaders;
    return headers;
  }

  #preflight(base: Readonly<Record<string, string>>, vary: string | undefined, request: IncomingHeaders): CorsHeaders {
    let headers = base;
    if (this.#allowedHeaders === undefined) {
      // Not configured: the requested headers are reflected, so the answer varies with them.
      vary = vary === undefined ? 'Access-Control-Request-Headers' : `${vary}, Access-Control-Request-Headers`;
      const requested = single(request['access-control-request-headers']);
      if (requested !== undefined && requested !== '') headers = { ...base, 'access-control-allow-headers': requested };
    }
    return new CorsHeaders(headers, vary, !this.#preflightContinue, this.#status);
  }
}

/** `Vary` with `fields` added once each (case-insensitive); `*` stays `*`. */
export function appendVary(existing: string | undefined, fields: string): string {
  if (existing === undefined || existing.trim() === '') return fields;
  if (existing.trim() === '*') return '*';
  const present = new Set(existing.split(',').map((field) => field.trim().toLowerCase()));
  const added = fields.split(',').map((field) => field.trim()).filter((field) => field !== '' && !present.has(field.toLowerCase()));
  return added.length === 0 ? existing : `${existing}, ${added.join(', ')}`;
}

function isOriginAllowed(origin: string, allowed: StaticCorsOrigin): boolean {
  if (Array.isArray(allowed)) return allowed.some((candidate: string | RegExp) => isOriginAllowed(origin, candidate));
  if (typeof allowed === 'string') return origin === allowed;
  if (allowed instanceof RegExp) {
    allowed.lastIndex = 0;
    return allowed.test(origin);
  }
  return allowed === true;
}

function resolveOrigin(decide: CorsOriginFunction, requestOrigin: string | undefined): Promise<StaticCorsOrigin | undefined> {
  return new Promise((resolve, reject) => {
    const returned = decide(requestOrigin, (error, origin) => (error ? reject(error) : resolve(origin)));
    if (returned !== undefined) Promise.resolve(returned).then(resolve, reject);
  });
}

function list(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.join(',');
  return text === '' ? undefined : text;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function assertOptions(options: CorsOptions): void {
  const fail = (message: string): never => {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `enableCors(): ${message}.`);
  };
  if (typeof options !== 'object' || options === null) fail(`options must be an object (the cors package's options), got ${String(options)}`);
  const { origin, maxAge, optionsSuccessStatus } = options;
  const validOrigin = (value: unknown): boolean => typeof value === 'string' || value instanceof RegExp;
  if (
    origin !== undefined &&
    typeof origin !== 'boolean' &&
    typeof origin !== 'function' &&
    !validOrigin(origin) &&
    !(Array.isArray(origin) && origin.every(validOrigin))
  ) {
    fail('origin must be a boolean, a string, a RegExp, an array of strings and RegExps, or a function');
  }
  for (const name of ['methods', 'allowedHeaders', 'headers', 'exposedHeaders'] as const) {
    const value: unknown = options[name];
    if (value !== undefined && typeof value !== 'string' && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
      fail(`${name} must be a string or an array of strings`);
    }
  }
  if (maxAge !== undefined && (!Number.isInteger(maxAge) || maxAge < 0)) fail(`maxAge must be a whole number of seconds, got ${String(maxAge)}`);
  if (optionsSuccessStatus !== undefined && (!Number.isInteger(optionsSuccessStatus) || optionsSuccessStatus < 200 || optionsSuccessStatus > 299)) {
    fail(`optionsSuccessStatus must be a 2xx status, got ${String(optionsSuccessStatus)}`);
  }
}
