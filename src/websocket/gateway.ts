import type { WsClient } from './client.js';
import type { DisconnectReason } from './disconnect-reason.js';
import type { WsHandshake } from './handshake.js';
import type { WsMessage } from './message.js';

/**
 * A WebSocket gateway: any provider with a string `path` and an `onMessage` method.
 * Implementing this interface types the hooks; toni finds gateways by their shape.
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
export interface Gateway {
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
  onConnect?(client: WsClient): unknown;
  /** Called exactly once per connected client, after any `onMessage` still running. */
  onDisconnect?(client: WsClient, reason: DisconnectReason): unknown;
  /** A text or binary message; one at a time per client, in arrival order. */
  onMessage(client: WsClient, message: WsMessage): unknown;
}

/** True for a provider instance that is a gateway: a string `path` and an `onMessage` method. */
export function isGateway(instance: unknown): instance is Gateway {
  return (
    typeof instance === 'object' &&
    instance !== null &&
    typeof (instance as { path?: unknown }).path === 'string' &&
    typeof (instance as { onMessage?: unknown }).onMessage === 'function'
  );
}
