import { inject } from '../di/inject.js';
import { Injectable } from '../di/module.js';
import type { ClientId } from '../websocket/client.js';
import { assertEventName, eventEnvelope } from '../websocket/envelope.js';
import type { AnyEvents, EventArgs, EventMap, EventName } from '../websocket/event-map.js';
import { WsMessage } from '../websocket/message.js';
import { ConnectionManager } from './connection-manager.js';
import { joinPaths } from '../http/router.js';
import { assertRoomName } from '../websocket/room.js';
import type { ClientFilter, Room } from './transport.js';

/**
 * A set of clients to send to: everyone, narrowed by `to(room)`, `except(clientId)` and
 * `gateway(path)`. Immutable: each narrowing returns a new target. `E`, an event map, types `emit`.
 *
 * @example
 * await broadcast.to('room:42').except(client.id).broadcastText('someone joined');
 * const online = await broadcast.gateway('/chat').getClientCount();
 */
export class BroadcastTarget<E extends EventMap = AnyEvents> {
  readonly #manager: ConnectionManager;
  readonly #filter: ClientFilter;

  /** @internal */
  constructor(manager: ConnectionManager, filter: ClientFilter) {
    this.#manager = manager;
    this.#filter = filter;
  }

  /** Clients in `room` (or any of `rooms`); chained calls add rooms. */
  to(room: Room | readonly Room[]): BroadcastTarget<E> {
    const rooms = typeof room === 'string' ? [room] : [...room];
    for (const name of rooms) assertRoomName(name);
    return this.#with({ rooms: [...(this.#filter.rooms ?? []), ...rooms] });
  }

  /** Everyone but `clientId` (or `clientIds`); chained calls add exclusions. */
  except(clientId: ClientId | readonly ClientId[]): BroadcastTarget<E> {
    const ids = typeof clientId === 'string' ? [clientId] : [...clientId];
    return this.#with({ except: [...(this.#filter.except ?? []), ...ids] });
  }

  /** Only clients of the gateway serving `path`. */
  gateway(path: string): BroadcastTarget<E> {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError(`A gateway path must be a string starting with "/", got ${JSON.stringify(path)}`);
    return this.#with({ gateway: joinPaths('', path) });
  }

  /** Sends a text message to every client of this target. */
  broadcastText(text: string): Promise<void> {
    return this.#manager.broadcast(this.#filter, WsMessage.text(text));
  }

  /**
   * Sends the event `{"event":…,"data":…}` to every client of this target, cluster-wide: serialised
   * and framed once, however many clients it reaches. Throws a `TypeError` at once for data JSON
   * cannot carry.
   *
   * @example
   * await this.broadcast.to(data.room).emit('message', { from: client.id, text: data.text });
   */
  emit<K extends EventName<E, 'server'>>(event: K, ...data: EventArgs<E, 'server', K>): Promise<void> {
    assertEventName(event);
    return this.#manager.broadcast(this.#filter, WsMessage.text(eventEnvelope(event, data[0])));
  }

  /** Sends any message kind to every client of this target. */
  broadcast(message: WsMessage): Promise<void> {
    return this.#manager.broadcast(this.#filter, message);
  }

  /** Sends to one client of this target; false when no instance holds it (or it is filtered out). */
  async sendTo(clientId: ClientId, message: WsMessage | string): Promise<boolean> {
    return (await this.#manager.sendToClients(this.#filter, [clientId], toMessage(message))) > 0;
  }

  /** Sends to several clients of this target; resolves with how many were reached. */
  sendToMany(clientIds: Iterable<ClientId>, message: WsMessage | string): Promise<number> {
    return this.#manager.sendToClients(this.#filter, [...new Set(clientIds)], toMessage(message));
  }

  /** How many clients this target holds, cluster-wide. */
  getClientCount(): Promise<number> {
    return this.#manager.count(this.#filter);
  }

  /** The ids of this target's clients, cluster-wide. */
  getClientIds(): Promise<ClientId[]> {
    return this.#manager.ids(this.#filter);
  }

  #with(change: ClientFilter): BroadcastTarget<E> {
    return new BroadcastTarget<E>(this.#manager, { ...this.#filter, ...change });
  }
}

/**
 * Sends messages to connected WebSocket clients from anywhere: providers, controllers,
 * gateways, background jobs (`app.get(BroadcastService)`). Cluster-wide with a transport such
 * as `RedisTransport`. Provided by `BroadcastModule`.
 *
 * @example
 * @Injectable()
 * export class NotificationService {
 *   private readonly broadcast = inject(BroadcastService);
 *   async notifyAll(message: string) { await this.broadcast.broadcastText(message); }
 *   async notifyClient(clientId: string, message: string) {
 *     await this.broadcast.sendTo(clientId, WsMessage.text(message));
 *   }
 * }
 *
 * // Typed by an event map: `inject(BroadcastService<ChatEvents>)` (an instantiation expression).
 * private readonly chat = inject(BroadcastService<ChatEvents>);
 */
@Injectable()
export class BroadcastService<E extends EventMap = AnyEvents> extends BroadcastTarget<E> {
  constructor(manager: ConnectionManager = inject(ConnectionManager)) {
    super(manager, {});
  }
}

function toMessage(message: WsMessage | string): WsMessage {
  return typeof message === 'string' ? WsMessage.text(message) : message;
}
