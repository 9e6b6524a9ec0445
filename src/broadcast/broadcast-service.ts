import { inject } from '../di/inject.js';
import { Injectable } from '../di/module.js';
import type { ClientId } from '../websocket/client.js';
import { assertEventName, eventEnvelope } from '../websocket/envelope.js';
import type { AnyEvents, EventArgs, EventMap, EventName } from '../websocket/event-map.js';
import { WsMessage } from '../websocket/message.js';
import { ConnectionManager, type TargetFilter } from './connection-manager.js';
import { joinPaths } from '../http/router.js';
import { assertRoomName } from '../websocket/room.js';
import { assertCloseFrame } from '../websocket/close-code.js';
import type { Room } from './transport.js';

/**
 * A set of clients to send to and act on: everyone, narrowed by `to(room)`, `except(clientId)`,
 * `gateway(path)`, `only(clientIds)` and `local`. Immutable: each narrowing returns a new
 * target. `E`, an event map, types `emit`.
 *
 * @example
 * await broadcast.to('room:42').except(client.id).broadcastText('someone joined');
 * const online = await broadcast.gateway('/chat').getClientCount();
 * await broadcast.only(userSockets).join('vip');          // wherever they are connected
 */
export class BroadcastTarget<E extends EventMap = AnyEvents> {
  readonly #manager: ConnectionManager;
  readonly #filter: TargetFilter;

  /** @internal */
  constructor(manager: ConnectionManager, filter: TargetFilter) {
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

  /** Only these clients (wherever they are connected); chained calls keep the clients in both. */
  only(clientId: ClientId | readonly ClientId[]): BroadcastTarget<E> {
    const ids = typeof clientId === 'string' ? [clientId] : [...clientId];
    for (const id of ids) if (typeof id !== 'string' || id.length === 0) throw new TypeError(`A client id must be a non-empty string, got ${JSON.stringify(id)}`);
    const previous = this.#filter.clientIds;
    return this.#with({ clientIds: previous === undefined ? [...new Set(ids)] : previous.filter((id) => ids.includes(id)) });
  }

  /**
   * This target, limited to the clients of this instance: nothing crosses to the others. For
   * work every instance does for its own clients (a per-instance background job).
   *
   * @example
   * setInterval(() => void broadcast.local.emit('tick', Date.now()), 1_000);   // on each instance
   */
  get local(): BroadcastTarget<E> {
    return this.#with({ local: true });
  }

  /**
   * Adds this target's clients to `room`, wherever they are connected. Resolves with how many
   * clients joined once every live instance has applied it (bounded by the transport's operation
   * timeout; a dead instance is never waited for).
   *
   * @example
   * await broadcast.only(await users.socketsOf(userId)).join(`team:${teamId}`);
   */
  join(room: Room): Promise<number> {
    assertRoomName(room);
    return this.#manager.operate(this.#filter, { kind: 'join', room });
  }

  /** Removes this target's clients from `room`, wherever they are connected; resolves as `join` does. */
  leave(room: Room): Promise<number> {
    assertRoomName(room);
    return this.#manager.operate(this.#filter, { kind: 'leave', room });
  }

  /**
   * Closes the connections of this target's clients, wherever they are (their `onDisconnect`
   * sees kind `server-close`); resolves as `join` does, with how many were closed.
   *
   * @example
   * await broadcast.only(bannedSockets).disconnect(4003, 'Banned');
   */
  disconnect(code = 1000, reason = ''): Promise<number> {
    assertCloseFrame(code, reason);
    return this.#manager.operate(this.#filter, { kind: 'disconnect', code, reason });
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
    return this.#manager.emit(this.#filter, eventEnvelope(event, data[0]));
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

  #with(change: TargetFilter): BroadcastTarget<E> {
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
