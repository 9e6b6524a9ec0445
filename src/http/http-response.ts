import { isValidStatus } from './status.js';

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
  static status(status: number): HttpResponseBuilder { return new HttpResponseBuilder(status); }

  /** @internal used by the builder */
  static fromBuilder(status: number, headers: Record<string, string>, body: ResponseBody | undefined): HttpResponse {
    return new HttpResponse(status, headers, body);
  }
}

/** Builds an `HttpResponse`; each method returns the builder, `build()` the response. */
export class HttpResponseBuilder {
  #status: number;
  #headers: Record<string, string> = {};
  #body: ResponseBody | undefined;

  constructor(status: number) {
    if (!isValidStatus(status)) throw new RangeError(`HTTP status must be an integer from 200 to 999, got ${status}`);
    this.#status = status;
  }

  /** Sets a header (names are case-insensitive; the last value wins). */
  header(name: string, value: string | number): this {
    this.#headers[name.toLowerCase()] = String(value);
    return this;
  }

  /** A JSON body; sets `content-type: application/json; charset=utf-8` unless set. */
  json(value: unknown): this {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError('HttpResponse.json() needs a JSON-serialisable value');
    this.#body = text;
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

  build(): HttpResponse {
    return HttpResponse.fromBuilder(this.#status, { ...this.#headers }, this.#body);
  }
}
