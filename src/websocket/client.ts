import type { FrameSink } from './outbound.js';
import { assertEventName, eventEnvelope } from './envelope.js';
import type { AnyEvents, EventAck, EventArgs, EventMap, EventName } from './event-map.js';
import type { WsHandshake } from './handshake.js';
import type { MetadataReader, MetadataToken } from './metadata.js';
import { WsMessage } from './message.js';

/** A unique client id (a UUID). */
export type ClientId = string;

/**
 * The transport side of one WebSocket connection, implemented by a WebSocket adapter. toni
 * frames messages itself and writes them to `sink`; the adapter reads, answers pings, and
 * performs the closing handshake.
 */
export interface WsConnection {
  /** True while frames can be sent. */
  readonly isOpen: boolean;
  /** The subprotocol the upgrade agreed on (`tonijs.v1` for tonijs/client), `''` for none. */
  readonly protocol: string;
  /** The raw byte stream under the WebSocket (after the upgrade). */
  readonly sink: FrameSink;
  /** Sends a close frame with `code` and `reason` and completes the closing handshake. */
  close(code: number, reason: string): void;
  /** Destroys the connection at once, without a closing handshake. */
  terminate(): void;
  /** Stops reading from the socket (inbound backpressure): TCP then slows the sender. */
  pause(): void;
  /** Reads from the socket again. */
  resume(): void;
}

/** What a `WsClient` delegates to: its session in the gateway host. */
export interface ClientChannel {
  readonly isOpen: boolean;
  readonly rooms: ReadonlySet<string>;
  send(message: WsMessage): boolean;
  requestClose(code: number, reason: string): Promise<void>;
  join(room: string): Promise<void>;
  leave(room: string): Promise<void>;
  request(event: string, data: unknown, timeout: number): Promise<unknown>;
}

/** Options of `client.request`. */
export interface RequestOptions {
  /** Milliseconds to wait for the answer before rejecting with code `timeout`. Default 10 000. */
  timeout?: number;
}

const DEFAULT_REQUEST_TIMEOUT = 10_000;

/**
 * One connected WebSocket client, as gateways and `BroadcastService` see it. `E`, an event map,
 * types `emit` and `request` (see `EventMap`).
 *
 * @example
 * async onConnect(client: WsClient) {
 *   const user = client.getMetadata(User);
 *   await client.join(`user:${user?.id}`);
 *   await client.send(`Welcome, ${user?.name}`);
 * }
 */
export class WsClient<E extends EventMap = AnyEvents> implements MetadataReader {
  /** A unique id (UUID), stable for the connection's life. */
  readonly id: ClientId;
  /** The handshake the client connected with. */
  readonly handshake: WsHandshake;
  readonly #channel: ClientChannel;

  /** @internal created by the gateway host */
  constructor(handshake: WsHandshake, channel: ClientChannel, id: ClientId = newClientId()) {
    this.id = id;
    this.handshake = handshake;
    this.#channel = channel;
  }

  /** True until the connection starts closing. */
  get isOpen(): boolean {
    return this.#channel.isOpen;
  }

  /** The rooms this client is in. */
  get rooms(): ReadonlySet<string> {
    return this.#channel.rooms;
  }

  /**
   * Sends a message (a string is sent as text). Resolves true once it is accepted for
   * delivery — written, or queued behind earlier frames — and false if the client is gone.
   */
  send(message: WsMessage | string): Promise<boolean> {
    return this.#channel.send(typeof message === 'string' ? WsMessage.text(message) : message) ? TRUE : FALSE;
  }

  /**
   * Closes the connection (default code 1000). Resolves once it is closed and `onDisconnect`
   * (which sees kind `server-close`) has run — or, called from one of this client's own hooks,
   * once it is closed (its `onDisconnect` then runs after that hook).
   */
  close(code = 1000, reason = ''): Promise<void> {
    return this.#channel.requestClose(code, reason);
  }

  /**
   * Adds the client to a room: `broadcast.to(room)` reaches it, cluster-wide. Rooms are
   * created on first join and removed when their last client leaves or disconnects.
   */
  join(room: string): Promise<void> {
    return this.#channel.join(room);
  }

  /** Removes the client from a room. */
  leave(room: string): Promise<void> {
    return this.#channel.leave(room);
  }

  /**
   * Sends the event `{"event":…,"data":…}`. Resolves like `send`. Throws a `TypeError` at once
   * for data JSON cannot carry (a BigInt, a circular structure).
   *
   * @example
   * await client.emit('message', { from: 'server', text: 'welcome' });
   */
  emit<K extends EventName<E, 'server'>>(event: K, ...data: EventArgs<E, 'server', K>): Promise<boolean> {
    assertEventName(event);
    return this.send(WsMessage.text(eventEnvelope(event, data[0])));
  }

  /**
   * Asks the client: sends the event with an id and resolves with the client's answer. Rejects
   * with a `WsException`: code `timeout` after `options.timeout` ms (default 10 000),
   * `disconnected` if the connection ends first, or the code of the client's error.
   *
   * @example
   * const ok = await client.request('confirm', 'Leave the room?', { timeout: 5_000 });
   */
  request<K extends EventName<E, 'server'>>(event: K, ...args: [...EventArgs<E, 'server', K>, options?: RequestOptions]): Promise<EventAck<E, 'server', K>> {
    assertEventName(event);
    const options = (args.length > 1 ? args[1] : undefined) as RequestOptions | undefined;
    const timeout = options?.timeout ?? DEFAULT_REQUEST_TIMEOUT;
    if (!Number.isFinite(timeout) || timeout <= 0) throw new RangeError(`client.request() timeout must be a positive number of milliseconds, got ${String(timeout)}`);
    return this.#channel.request(event, args[0], timeout) as Promise<EventAck<E, 'server', K>>;
  }

  /** Metadata set by `handshake.setMetadata(key, value)` during the handshake. */
  getMetadata<T>(key: MetadataToken<T>): T | undefined {
    return this.handshake.getMetadata(key);
  }
}

/** randomUUID() returns a rope of 14 pieces (~450 B kept per client); toLowerCase() copies it flat (~56 B). */
function newClientId(): ClientId {
  return globalThis.crypto.randomUUID().toLowerCase();
}

const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);
