import { stringifyJson } from './json.js';
import { isFinalStatus } from './status.js';

/** A body ready to be written: bytes or a string, with its content type. */
export type ResponseBody = string | Uint8Array;

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

  /** The response. Throws a `TypeError` when a `content-length` set by hand disagrees with the body. */
  build(): HttpResponse {
    const declared = this.#headers['content-length'];
    if (declared !== undefined) {
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

function byteLength(body: ResponseBody | undefined): number {
  if (body === undefined) return 0;
  return typeof body === 'string' ? encoder.encode(body).byteLength : body.byteLength;
}
