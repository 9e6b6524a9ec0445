import type { ClientId, WsClient } from '../websocket/client.js';
import type { WsMessage } from '../websocket/message.js';
import type { ClientRecord, Room } from './transport.js';

/**
 * How messages reach the recipients of one protocol (WebSocket today; Server-Sent Events could
 * be another): the registry picks recipients, the delivery frames and writes. One object serves
 * every recipient of its protocol.
 */
export interface Delivery {
  /**
   * Sends `message` to every recipient, framed once for all. `key` identifies the set of
   * recipients: a call with the same key as the previous one, and nothing sent in between,
   * may append to that call's batch in O(1). Pass a new object (or undefined) whenever the set may differ.
   */
  fanOut(key: object | undefined, recipients: Iterable<Recipient>, message: WsMessage): void;
  /** Sends `message` to one recipient; false when it is gone. */
  send(recipient: Recipient, message: WsMessage): boolean;
}

/**
 * A connected client as the registry holds it, whatever its protocol: what it is (its id,
 * gateway and rooms), how it is reached, and what cluster operations do to it.
 */
export interface Recipient extends ClientRecord {
  readonly delivery: Delivery;
  /** The client as application code sees it. */
  readonly client: WsClient;
  /** Whether it understands tonijs's control frames (the welcome, recovery). */
  readonly speaksTonijs: boolean;
  join(room: Room): Promise<void>;
  leave(room: Room): Promise<void>;
  requestClose(code: number, reason: string): Promise<void>;
}

export type { ClientId };
