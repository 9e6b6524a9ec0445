/**
 * Why a client disconnected; `onDisconnect` receives exactly one per connected client.
 *
 * @example
 * onDisconnect(client: WsClient, reason: DisconnectReason) {
 *   if (reason.kind === 'client-close') console.log(reason.code, reason.reason);
 * }
 */
export type DisconnectReason =
  /** The client closed the connection (or it dropped: code 1006). */
  | { readonly kind: 'client-close'; readonly code: number; readonly reason: string }
  /** `client.close()` was called on the server. */
  | { readonly kind: 'server-close'; readonly code: number; readonly reason: string }
  /** The application closed (`app.close()`). */
  | { readonly kind: 'server-shutdown' }
  /** The client stopped answering heartbeat pings. */
  | { readonly kind: 'timeout' }
  /** The client read too slowly: its outbound buffer passed the limit. */
  | { readonly kind: 'slow-consumer'; readonly bufferedBytes: number }
  /** The client sent faster than `onMessage` handles, past `maxInboundBytes`, although its socket was no longer read. */
  | { readonly kind: 'inbound-overflow'; readonly queuedBytes: number }
  /** A protocol error (oversized frame, invalid data) or an exception in `onConnect`. */
  | { readonly kind: 'error'; readonly error: Error };

export type DisconnectKind = DisconnectReason['kind'];
