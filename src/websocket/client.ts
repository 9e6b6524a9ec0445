import type { WsHandshake } from './handshake.js';
import type { MetadataReader, MetadataToken } from './metadata.js';
import { WsMessage } from './message.js';

/** A unique client id (a UUID). */
export type ClientId = string;

/**
 * The transport side of one WebSocket connection, implemented by a WebSocket adapter.
 */
export interface WsConnection {
  /** True while frames can be sent. */
  readonly isOpen: boolean;
  /** Queues a message; false when the connection is no longer open. */
  send(message: WsMessage): boolean;
  /** Starts the closing handshake with `code` and `reason`. */
  close(code: number, reason: string): void;
  /** Destroys the connection at once, without a closing handshake. */
  terminate(): void;
}

/** Called by `WsClient.close()` so the session records who closed the connection. */
export interface CloseRequester {
  requestClose(code: number, reason: string): Promise<void>;
}

/**
 * One connected WebSocket client, as gateways and `BroadcastService` see it.
 *
 * @example
 * async onConnect(client: WsClient) {
 *   const user = client.getMetadata(User);
 *   await client.send(`Welcome, ${user?.name} (${client.id})`);
 * }
 */
export class WsClient implements MetadataReader {
  /** A unique id (UUID), stable for the connection's life. */
  readonly id: ClientId;
  /** The handshake the client connected with. */
  readonly handshake: WsHandshake;
  readonly #connection: WsConnection;
  readonly #closer: CloseRequester;

  /** @internal created by the gateway host */
  constructor(handshake: WsHandshake, connection: WsConnection, closer: CloseRequester, id: ClientId = globalThis.crypto.randomUUID()) {
    this.id = id;
    this.handshake = handshake;
    this.#connection = connection;
    this.#closer = closer;
  }

  /** True until the connection closes. */
  get isOpen(): boolean {
    return this.#connection.isOpen;
  }

  /**
   * Sends a message (a string is sent as text). Resolves true once it is accepted for
   * delivery — written, or queued behind earlier frames — and false if the client is gone.
   */
  send(message: WsMessage | string): Promise<boolean> {
    const accepted = this.#connection.send(typeof message === 'string' ? WsMessage.text(message) : message);
    return accepted ? TRUE : FALSE;
  }

  /**
   * Closes the connection (default code 1000). Resolves once it is closed and `onDisconnect`
   * (which sees kind `server-close`) has run.
   */
  close(code = 1000, reason = ''): Promise<void> {
    return this.#closer.requestClose(code, reason);
  }

  /** Metadata set by `handshake.setMetadata(key, value)` during the handshake. */
  getMetadata<T>(key: MetadataToken<T>): T | undefined {
    return this.handshake.getMetadata(key);
  }
}

const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);
