import { isErrorStatus, statusText } from './status.js';

/** Options of `HttpException`. */
export interface HttpExceptionOptions {
  /** The underlying error, kept for logs; never sent to the client. */
  cause?: unknown;
  /** Extra fields merged into the JSON error body, e.g. `{ issues }` for validation errors. */
  details?: Record<string, unknown>;
}

/**
 * An error that becomes an HTTP response: `{ statusCode, message, error }` with its status.
 * Throw it from a handler, or from a gateway's `onHandshake` to refuse with that status.
 * The status must be an error status, an integer from 400 to 599 (anything else throws a
 * `RangeError`); `error` is its reason phrase (`418` → `"I'm a Teapot"`).
 *
 * @example
 * throw new HttpException(404, `No user ${ctx.params.id}`);
 */
export class HttpException extends Error {
  override readonly name = 'HttpException';
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(status: number, message?: string, options?: HttpExceptionOptions) {
    if (!isErrorStatus(status)) throw new RangeError(invalidStatus(status));
    super(message ?? statusText(status), options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.details = options?.details;
  }

  /** The JSON body sent for this exception. */
  toJSON(): Record<string, unknown> {
    return { statusCode: this.status, message: this.message, error: statusText(this.status), ...withoutReserved(this.details) };
  }
}

function withoutReserved(details: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> | undefined {
  if (details === undefined) return undefined;
  const { statusCode: _status, message: _message, error: _error, ...rest } = details;
  return rest;
}

function invalidStatus(status: number): string {
  const base = `HttpException status must be an error status, an integer from 400 to 599, got ${String(status)}`;
  if (!Number.isInteger(status) || status < 200 || status > 399) return base;
  return `${base}: to answer ${status}, return HttpResponse.status(${status}) (with .header('location', …) for a redirect) instead of throwing`;
}

/** @internal the headers of every JSON error answer */
export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': 'application/json; charset=utf-8' });

/** @internal the body of a 500: nothing of the error that caused it */
export const INTERNAL_ERROR_BODY = JSON.stringify({ statusCode: 500, message: statusText(500), error: statusText(500) });
