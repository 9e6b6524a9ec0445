import { inject } from '../di/inject.js';
import { Injectable } from '../di/module.js';
import { InjectionToken } from '../di/token.js';
import { LOGGER, type Logger } from '../logger.js';
import type { ClientId, WsClient } from '../websocket/client.js';
import { frameOf } from '../websocket/frame.js';
import { CONNECTION_OBSERVER, type ClientSession, type ConnectionObserver } from '../websocket/gateway-host.js';
import type { WsMessage } from '../websocket/message.js';
import { type Outbound, broadcastFrame, closeSegment } from '../websocket/outbound.js';
import { InMemoryTransport } from './in-memory-transport.js';
import {
  type BroadcastPacket,
  type BroadcastTransport,
  type ClientFilter,
  type ClientRecord,
  type ClusterNode,
  type Room,
  matchesFilter,
} from './transport.js';

/** Options of `BroadcastModule.forRoot`. */
export interface BroadcastModuleOptions {
  /** How broadcasts reach other instances. Default: `InMemoryTransport` (this process only). */
  transport?: BroadcastTransport;
}

/** The options `BroadcastModule.forRoot` was given. */
export const BROADCAST_OPTIONS = new InjectionToken<BroadcastModuleOptions>('BROADCAST_OPTIONS');

/** A local client as the registry indexes it: its session (which is a `ClientRecord`). */
type Member = ClientSession;

/**
 * The registry of connected clients, shared by every gateway: which clients this instance
 * holds, in which rooms, on which gateway. It fans messages out to them and hands the rest to
 * the transport, which adds the clients of other instances.
 */
@Injectable()
export class ConnectionManager implements ConnectionObserver {
  readonly [CONNECTION_OBSERVER] = true;
  /** This instance's id in the cluster. */
  readonly instanceId: string = globalThis.crypto.randomUUID();
  readonly #logger: Logger = inject(LOGGER);
  readonly #transport: BroadcastTransport = inject(BROADCAST_OPTIONS, { optional: true })?.transport ?? new InMemoryTransport();
  readonly #members = new Map<ClientId, Member>();
  readonly #all = new Set<Member>();
  readonly #rooms = new Map<Room, Set<Member>>();
  readonly #gateways = new Map<string, Set<Member>>();
  readonly #node: ClusterNode = {
    instanceId: this.instanceId,
    logger: this.#logger,
    deliver: (packet) => this.deliverLocal(packet),
    localClients: () => this.#members.values(),
  };

  /** The transport this registry publishes through. */
  get transport(): BroadcastTransport {
    return this.#transport;
  }

  async onModuleInit(): Promise<void> {
    await this.#transport.attach(this.#node);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#transport.detach();
  }

  /** A client connected to this instance, or undefined. */
  getLocalClient(id: ClientId): WsClient | undefined {
    return this.#members.get(id)?.client;
  }

  /** Number of clients connected to this instance. */
  get localCount(): number {
    return this.#members.size;
  }

  /** The rooms that have clients on this instance. */
  localRooms(): IterableIterator<Room> {
    return this.#rooms.keys();
  }

  /** Clients of this instance that match `filter`. */
  *localClients(filter: ClientFilter = {}): Generator<WsClient> {
    for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) yield member.client;
  }

  /** Sends to every matching client here and through the transport. */
  broadcast(filter: ClientFilter, message: WsMessage): Promise<void> {
    const packet: BroadcastPacket = { message, rooms: filter.rooms, except: filter.except, gateway: filter.gateway };
    this.deliverLocal(packet);
    return this.#transport.publish(packet).then(undefined, this.#publishFailed);
  }

  /** Sends to the given clients that match `filter`, wherever they are; resolves with how many were reached. */
  async sendToClients(filter: ClientFilter, ids: readonly ClientId[], message: WsMessage): Promise<number> {
    const packet: BroadcastPacket = { message, rooms: filter.rooms, except: filter.except, gateway: filter.gateway };
    const reached = this.#deliverToIds(packet, ids);
    const remote = ids.filter((id) => !this.#members.has(id));
    if (remote.length === 0) return reached;
    return reached + (await this.#guard('sendToClients', this.#transport.sendToClients({ ...packet, clientIds: remote }), 0));
  }

  /** How many clients match `filter` across the cluster. */
  async count(filter: ClientFilter): Promise<number> {
    let local = 0;
    if (isEmpty(filter)) local = this.#members.size;
    else for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) local++;
    return local + (await this.#guard('remoteCount', this.#transport.remoteCount(filter), 0));
  }

  /** The ids of the clients that match `filter` across the cluster. */
  async ids(filter: ClientFilter): Promise<ClientId[]> {
    const ids: ClientId[] = [];
    for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) ids.push(member.id);
    const remote = await this.#guard('remoteIds', this.#transport.remoteIds(filter), []);
    return remote.length === 0 ? ids : [...ids, ...remote];
  }

  /** @internal delivers a packet to this instance's matching clients; returns how many it reached */
  deliverLocal(packet: BroadcastPacket): number {
    if (packet.clientIds !== undefined) return this.#deliverToIds(packet, packet.clientIds);
    const frame = frameOf(packet.message);
    const { rooms, except, gateway } = packet;
    if (except === undefined && (rooms === undefined || rooms.length === 1)) {
      const set = rooms === undefined ? (gateway === undefined ? this.#all : this.#gateways.get(gateway)) : this.#rooms.get(rooms[0]!);
      if (set === undefined) return 0;
      if (rooms === undefined || gateway === undefined) {
        // The set itself identifies the recipients: consecutive broadcasts to it share one segment.
        broadcastFrame(set, set, frame);
        return set.size;
      }
    }
    const recipients: Member[] = [];
    for (const member of this.#candidates(packet)) if (matchesFilter(member, packet)) recipients.push(member);
    if (recipients.length > 0) broadcastFrame(undefined, recipients, frame);
    return recipients.length;
  }

  async clientConnected(session: ClientSession): Promise<void> {
    const member: Member = session;
    closeSegment();
    this.#members.set(member.id, member);
    this.#all.add(member);
    addTo(this.#gateways, member.gateway, member);
    for (const room of member.rooms) addTo(this.#rooms, room, member);
    await this.#guard('clientAdded', this.#transport.clientAdded(member), undefined);
  }

  async clientDisconnected(session: ClientSession): Promise<void> {
    const member = this.#members.get(session.client.id);
    if (member === undefined) return;
    closeSegment();
    this.#members.delete(member.id);
    this.#all.delete(member);
    removeFrom(this.#gateways, member.gateway, member);
    for (const room of member.rooms) removeFrom(this.#rooms, room, member);
    await this.#guard('clientRemoved', this.#transport.clientRemoved(member.id), undefined);
  }

  async roomChanged(session: ClientSession, room: Room, joined: boolean): Promise<void> {
    const member = this.#members.get(session.client.id);
    if (member === undefined) return;
    closeSegment();
    if (joined) addTo(this.#rooms, room, member);
    else removeFrom(this.#rooms, room, member);
    await this.#guard('roomChanged', this.#transport.roomChanged(member.id, room, joined), undefined);
  }

  #deliverToIds(packet: BroadcastPacket, ids: readonly ClientId[]): number {
    const frame = frameOf(packet.message);
    let reached = 0;
    for (const id of ids) {
      const member = this.#members.get(id);
      if (member !== undefined && matchesFilter(member, packet) && member.outbound.push(frame)) reached++;
    }
    return reached;
  }

  /** The smallest indexed set that holds every client `filter` can match. */
  #candidates(filter: ClientFilter): Iterable<Member> {
    if (filter.rooms !== undefined) {
      if (filter.rooms.length === 1) return this.#rooms.get(filter.rooms[0]!) ?? [];
      const union = new Set<Member>();
      for (const room of filter.rooms) for (const member of this.#rooms.get(room) ?? []) union.add(member);
      return union;
    }
    if (filter.gateway !== undefined) return this.#gateways.get(filter.gateway) ?? [];
    return this.#all;
  }

  readonly #publishFailed = (error: unknown): void => this.#reportFailure('publish', error);

  /** Transport calls never reject into application code: a failure is logged and `fallback` used. */
  async #guard<T>(operation: string, pending: Promise<T>, fallback: T): Promise<T> {
    try {
      return await pending;
    } catch (error) {
      this.#reportFailure(operation, error);
      return fallback;
    }
  }

  #reportFailure(operation: string, error: unknown): void {
    this.#logger.error({ err: error, operation }, `Broadcast transport failed to ${operation}; continuing with local clients only`);
  }
}

function addTo(index: Map<string, Set<Member>>, key: string, member: Member): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(member);
}

function removeFrom(index: Map<string, Set<Member>>, key: string, member: Member): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(member);
  if (set.size === 0) index.delete(key);
}

function isEmpty(filter: ClientFilter): boolean {
  return filter.rooms === undefined && filter.except === undefined && filter.gateway === undefined;
}
