/**
 * The codes tonijs/client rejects and reports with itself. A server's error keeps its own code
 * (`invalid_payload`, `unknown_event`, `forbidden`, `internal`, or a `WsException`'s).
 *
 * - `timeout`: a request got no answer within its `timeout`.
 * - `disconnected`: a request was sent, and the connection was lost before its answer came
 *   (the server may or may not have handled it).
 * - `queue_full`: the socket is not open and `maxQueue` calls already wait.
 * - `closed`: the socket is closed (`close()`, or it gave up); nothing was sent.
 * - `refused`: the server refused the handshake (HTTP 4xx, `status`): the socket stopped retrying.
 * - `unreachable`: `reconnect.maxAttempts` attempts in a row failed, or the connection was lost with `reconnect: false`.
 * - `handler_error`: an `on` handler or a listener threw (`cause`), reported to `onError`.
 * - `query_failed`: the `query` function threw (`cause`); the attempt is retried.
 */
export type ToniClientErrorCode = 'timeout' | 'disconnected' | 'queue_full' | 'closed' | 'refused' | 'unreachable' | 'handler_error' | 'query_failed';

/** One reason the server's validator gave for `invalid_payload`. */
export interface ToniClientIssue {
  readonly message: string;
  /** Where in the data it applies, e.g. `['room']`. */
  readonly path?: readonly (string | number)[];
}

/**
 * What a `ToniSocket` rejects with (and reports to `onError`): a `code` to branch on, a
 * `message` to show, the server's `issues` for `invalid_payload`, and what else the server sent
 * beside them in `details`. Throw one from an `on` handler to answer a server's request with
 * that error.
 *
 * @example
 * try {
 *   await socket.request('send', { room: 'lobby', text });
 * } catch (error) {
 *   if (error instanceof ToniClientError && error.code === 'invalid_payload') showIssues(error.issues);
 *   else throw error;
 * }
 */
export class ToniClientError extends Error {
  override readonly name = 'ToniClientError';
  /** A stable, machine-readable code: one of `ToniClientErrorCode`, or the server's. */
  readonly code: ToniClientErrorCode | (string & {});
  /** The validator's issues, for `invalid_payload`. */
  readonly issues: readonly ToniClientIssue[] | undefined;
  /** The HTTP status: of a refused handshake, or of an `HttpException` the server's handler threw. */
  readonly status: number | undefined;
  /** Every field the server's error carried beside `code` and `message` (`issues` and `status` included). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ToniClientErrorCode | (string & {}), message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
    this.issues = Array.isArray(details.issues) ? (details.issues as ToniClientIssue[]) : undefined;
    this.status = typeof details.status === 'number' ? details.status : undefined;
  }

  /** The error object sent to the server when this answers its request. */
  toJSON(): { code: string; message: string; [detail: string]: unknown } {
    return { ...this.details, code: this.code, message: this.message };
  }
}
