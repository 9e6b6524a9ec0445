import { stringifyJson } from '../pipeline/json.js';
import { isFinalStatus } from './status.js';

/**
 * A body ready to be written: bytes, a string, or a stream of bytes (any async iterable of
 * `Uint8Array`: a Node `Readable` such as `fs.createReadStream(…)`, a web `ReadableStream`).
 */
export type ResponseBody = string | Uint8Array | AsyncIterable<Uint8Array>;

/**
 * An HTTP response a handler returns. Build one with `HttpResponse.ok()`, `.created()`, …,
 * then `.header()`, `.json()` or `.text()`, and `.build()`.
 *
 * @example
 * return HttpResponse.created().header('location', `/users/${user.id}`).json(user).build();
 */
export class HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ResponseBody | undefined;

  private constructor(status: number, headers: Record<string, string>, body: ResponseBody | undefined) {
    this.status = status;
    this.headers = Object.freeze(headers);
    this.body = body;
    Object.freeze(this);
  }

  static ok(): HttpResponseBuilder { return new HttpResponseBuilder(200); }
  static created(): HttpResponseBuilder { return new HttpResponseBuilder(201); }
  static accepted(): HttpResponseBuilder { return new HttpResponseBuilder(202); }
  static noContent(): HttpResponseBuilder { return new HttpResponseBuilder(204); }
  static badRequest(): HttpResponseBuilder { return new HttpResponseBuilder(400); }
  static unauthorized(): HttpResponseBuilder { return new HttpResponseBuilder(401); }
  static forbidden(): HttpResponseBuilder { return new HttpResponseBuilder(403); }
  static notFound(): HttpResponseBuilder { return new HttpResponseBuilder(404); }
  /** Any final status, an integer from 200 to 599; anything else throws a `RangeError`. */
  static status(status: number): HttpResponseBuilder { return new HttpResponseBuilder(status); }

  /**
   * A builder seeded with `response`'s status, headers and body: how middleware changes the
   * response `next()` resolved with.
   *
   * @example
   * app.use(async (ctx, next) => HttpResponse.from(await next()).header('x-request-id', randomUUID()).build());
   */
  static from(response: HttpResponse): HttpResponseBuilder {
    if (!(response instanceof HttpResponse)) {
      throw new TypeError(`HttpResponse.from() takes an HttpResponse (what next() resolves with), got ${describeValue(response)}`);
    }
    return HttpResponseBuilder.seeded(response.status, response.headers, response.body);
  }

  /** @internal used by the builder */
  static fromBuilder(status: number, headers: Record<string, string>, body: ResponseBody | undefined): HttpResponse {
    return new HttpResponse(status, headers, body);
  }
}

/**
 * Builds an `HttpResponse`; each method returns the builder, `build()` the response.
 * The framing of the body is toni's: `content-length` is computed from the body, and the
 * hop-by-hop headers (`connection`, `keep-alive`, `transfer-encoding`, `upgrade`, …) cannot be set.
 */
export class HttpResponseBuilder {
  #status: number;
  #headers: Record<string, string> = {};
  #body: ResponseBody | undefined;

  constructor(status: number) {
    if (!isFinalStatus(status)) {
      throw new RangeError(`HTTP status must be a final status, an integer from 200 to 599 (1xx are interim responses), got ${String(status)}`);
    }
    this.#status = status;
  }

  /** @internal `HttpResponse.from`: headers are taken as they are, also those `header()` refuses (toni's own `connection: close`). */
  static seeded(status: number, headers: Readonly<Record<string, string>>, body: ResponseBody | undefined): HttpResponseBuilder {
    const builder = new HttpResponseBuilder(status);
    builder.#headers = { ...headers };
    builder.#body = body;
    return builder;
  }

  /** Replaces the status (a final status, 200 to 599). */
  status(status: number): this {
    if (!isFinalStatus(status)) {
      throw new RangeError(`HTTP status must be a final status, an integer from 200 to 599 (1xx are interim responses), got ${String(status)}`);
    }
    this.#status = status;
    return this;
  }

  /** Removes a header (names are case-insensitive). */
  removeHeader(name: string): this {
    delete this.#headers[name.toLowerCase()];
    return this;
  }

  /**
   * Sets a header (names are case-insensitive; the last value wins). Throws a `TypeError` for a
   * hop-by-hop header, and for a `content-length` that is not a byte count; `build()` throws if
   * a `content-length` disagrees with the body.
   *
   * @example
   * HttpResponse.ok().header('cache-control', 'no-store').json(user)
   */
  header(name: string, value: string | number): this {
    const key = name.toLowerCase();
    const refusal = HOP_BY_HOP.get(key);
    if (refusal !== undefined) throw new TypeError(`HttpResponse.header(): "${name}" cannot be set: ${refusal}.`);
    const text = String(value);
    if (key === 'content-length' && !/^\d{1,15}$/.test(text)) {
      throw new TypeError(`HttpResponse.header(): content-length must be a byte count, got "${text}"; leave it out and toni sets it from the body.`);
    }
    this.#headers[key] = text;
    return this;
  }

  /** A JSON body; sets `content-type: application/json; charset=utf-8` unless set. Throws a `TypeError` for a value JSON cannot carry (a Map, a BigInt, a cycle, …). */
  json(value: unknown): this {
    this.#body = stringifyJson(value, 'HttpResponse.json() got', 'pass');
    this.#headers['content-type'] ??= 'application/json; charset=utf-8';
    return this;
  }

  /** A text body; sets `content-type: text/plain; charset=utf-8` unless set. */
  text(value: string): this {
    this.#body = value;
    this.#headers['content-type'] ??= 'text/plain; charset=utf-8';
    return this;
  }

  /** A binary body; sets `content-type: application/octet-stream` unless set. */
  bytes(value: Uint8Array): this {
    this.#body = value;
    this.#headers['content-type'] ??= 'application/octet-stream';
    return this;
  }

  /**
   * A streamed body: the bytes of `source` (a Node `Readable` such as `fs.createReadStream(path)`,
   * a web `ReadableStream`, any async iterable of `Uint8Array`) as they come, without holding them
   * in memory. With `length` it is sent with that `content-length`, else chunked. Sets
   * `content-type: application/octet-stream` unless set.
   *
   * @example
   * return HttpResponse.ok().header('content-type', 'text/csv').stream(createReadStream(file), { length: size }).build();
   */
  stream(source: AsyncIterable<Uint8Array>, options: { length?: number } = {}): this {
    if (typeof (source as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`HttpResponse.stream() takes an async iterable of bytes (a Readable, a ReadableStream), got ${describeValue(source)}`);
    }
    const { length } = options;
    if (length !== undefined) {
      if (!Number.isSafeInteger(length) || length < 0) throw new TypeError(`HttpResponse.stream(): length must be a byte count, got ${String(length)}`);
      this.#headers['content-length'] = String(length);
    } else {
      delete this.#headers['content-length'];
    }
    this.#body = source;
    this.#headers['content-type'] ??= 'application/octet-stream';
    return this;
  }

  /** The response. Throws a `TypeError` when a `content-length` set by hand disagrees with the body. */
  build(): HttpResponse {
    const declared = this.#headers['content-length'];
    if (declared !== undefined && !isStream(this.#body)) {
      const actual = byteLength(this.#body);
      if (Number(declared) !== actual) {
        throw new TypeError(
          `HttpResponse: content-length ${declared} disagrees with the body, which is ${actual} bytes; ` +
            'leave content-length out and toni sets it from the body.',
        );
      }
    }
    return HttpResponse.fromBuilder(this.#status, { ...this.#headers }, this.#body);
  }
}

/**
 * Headers that describe one connection rather than the response (RFC 9110 §7.6.1), with why
 * toni refuses them. The adapter frames the body with content-length and manages connection
 * reuse; a second framing beside it lets a proxy and the client read different responses.
 */
const HOP_BY_HOP: ReadonlyMap<string, string> = new Map([
  ['transfer-encoding', 'toni frames every body with content-length, and a transfer-encoding beside it would give the response two framings (a proxy that trusts one and a client that trusts the other read different responses)'],
  ['connection', 'it is a hop-by-hop header; toni keeps or closes connections itself'],
  ['keep-alive', 'it is a hop-by-hop header; toni keeps or closes connections itself (NodeHttpAdapter option keepAliveTimeout sets how long)'],
  ['proxy-connection', 'it is a hop-by-hop header; toni keeps or closes connections itself'],
  ['upgrade', 'it is a hop-by-hop header; WebSocket upgrades are served by gateways'],
  ['te', 'it is a request header that describes one connection'],
  ['trailer', 'toni sends no trailer fields'],
]);

const encoder = new TextEncoder();

function byteLength(body: string | Uint8Array | undefined): number {
  if (body === undefined) return 0;
  return typeof body === 'string' ? encoder.encode(body).byteLength : body.byteLength;
}

/** True for a streamed body (neither bytes nor a string). */
export function isStream(body: ResponseBody | undefined): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && !(body instanceof Uint8Array);
}

/** @internal a value as an error message names it: `null`, `string abc`, `an instance of Map` */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return `${typeof value} ${String(value)}`;
  return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
}
