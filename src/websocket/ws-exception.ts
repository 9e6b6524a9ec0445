/** The error codes toni itself answers events with; applications add their own. */
export type WsErrorCode = 'invalid_payload' | 'unknown_event' | 'invalid_message' | 'forbidden' | 'timeout' | 'internal' | 'disconnected';

/**
 * An error an event handler throws to answer the client with `{ code, message, …details }`
 * instead of its acknowledgement. The connection stays open. Also what `client.request()`
 * rejects with (code `timeout`, `disconnected`, or the client's own code).
 *
 * @example
 * @On('send', { payload: Send })
 * send(client: WsClient, data: z.output<typeof Send>) {
 *   if (!client.rooms.has(data.room)) throw new WsException('not_in_room', `Join ${data.room} first`);
 *   …
 * }
 */
export class WsException extends Error {
  override readonly name = 'WsException';
  /** A stable, machine-readable code, e.g. `not_in_room`. */
  readonly code: string;
  /** Extra fields sent beside `code` and `message` (e.g. `issues` for `invalid_payload`). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: WsErrorCode | (string & {}), message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    if (typeof code !== 'string' || code.length === 0) throw new TypeError(`A WsException code must be a non-empty string, got ${JSON.stringify(code)}`);
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /** The error object sent to the client. */
  toJSON(): { code: string; message: string; [detail: string]: unknown } {
    if (this.details === undefined) return { code: this.code, message: this.message };
    const { code: _code, message: _message, ...details } = this.details;
    return { code: this.code, message: this.message, ...details };
  }
}
