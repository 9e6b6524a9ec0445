import type { WsClient } from './client.js';
import type { DisconnectReason } from './disconnect-reason.js';
import type { AnyEvents, EventMap } from './event-map.js';
import type { WsHandshake } from './handshake.js';
import type { WsMessage } from './message.js';

/**
 * A WebSocket gateway: any provider with a string `path` and an `onMessage` method or at least
 * one `@On` handler. Implementing this interface types the hooks (with your event map, if you
 * give one); toni finds gateways by their shape.
 *
 * @example
 * @Injectable()
 * export class ChatGateway implements Gateway {
 *   readonly path = '/chat';
 *   async onMessage(client: WsClient, message: WsMessage) {
 *     const text = message.asText();
 *     if (text !== undefined) await client.send(WsMessage.text(`You said: ${text}`));
 *   }
 * }
 */
export interface Gateway<E extends EventMap = AnyEvents> {
  /** The path clients connect to, e.g. `/chat`. */
  readonly path: string;
  /** Serve this gateway on its own port instead of the HTTP server's (0 picks a free port). */
  readonly port?: number;
  /**
   * Decides whether the upgrade is accepted, before any WebSocket exists: `false` answers
   * HTTP 401, a thrown `HttpException` its status, any other exception 500.
   */
  onHandshake?(handshake: WsHandshake): boolean | Promise<boolean>;
  /** The client is registered; messages wait until this resolves. */
  onConnect?(client: WsClient<E>): unknown;
  /** Called exactly once per connected client, after any `onMessage` still running. */
  onDisconnect?(client: WsClient<E>, reason: DisconnectReason): unknown;
  /**
   * A text or binary message; one at a time per client, in arrival order. On a gateway with
   * `@On` handlers it receives only the frames that are not event envelopes.
   */
  onMessage?(client: WsClient<E>, message: WsMessage): unknown;
}

/** A provider instance with a string `path`: a gateway if it also handles messages or events. */
export function hasGatewayPath(instance: unknown): instance is Gateway {
  return typeof instance === 'object' && instance !== null && typeof (instance as { path?: unknown }).path === 'string';
}
