import type { Logger } from '../logger.js';
import type { ClientId } from '../websocket/client.js';
import type { WsMessage } from '../websocket/message.js';

/** A room name. */
export type Room = string;

/** Which clients a send reaches. Every field narrows; an empty filter means every client. */
export interface ClientFilter {
  /** Clients in any of these rooms. */
  readonly rooms?: readonly Room[] | undefined;
  /** Never these clients. */
  readonly except?: readonly ClientId[] | undefined;
  /** Only clients of the gateway serving this path. */
  readonly gateway?: string | undefined;
}

/** A message and the clients it is for, as it crosses from one instance to others. */
export interface BroadcastPacket extends ClientFilter {
  readonly message: WsMessage;
  /** Only these clients (a `sendTo` / `sendToMany`); every matching client when absent. */
  readonly clientIds?: readonly ClientId[] | undefined;
}

/** A connected client as the cluster registry knows it. */
export interface ClientRecord {
  readonly id: ClientId;
  readonly gateway: string;
  readonly rooms: ReadonlySet<Room>;
}

/** The instance a transport serves: how it delivers to local clients and what it holds. */
export interface ClusterNode {
  /** A unique id of this instance for the transport's bookkeeping. */
  readonly instanceId: string;
  readonly logger: Logger;
  /** Delivers a packet to this instance's matching clients; returns how many it reached. */
  deliver(packet: BroadcastPacket): number;
  /** Every client connected to this instance, e.g. to register them again after a reconnect. */
  localClients(): Iterable<ClientRecord>;
}

/**
 * Carries packets and registry updates between instances. The `ConnectionManager` answers for
 * the clients of its own instance; a transport only adds the others. `InMemoryTransport` is the
 * single-process default; `RedisTransport` (in `tonijs/redis`) spans a cluster.
 *
 * Every method must settle in bounded time and never throw for a transient failure: delivery
 * is at-most-once.
 */
export interface BroadcastTransport {
  /** Joins the cluster on behalf of `node`; called once at application start. */
  attach(node: ClusterNode): Promise<void>;
  /** Leaves the cluster, removing this instance's clients from it at once. */
  detach(): Promise<void>;
  /** Sends a broadcast packet to every other instance. */
  publish(packet: BroadcastPacket): Promise<void>;
  /**
   * Sends a packet to the instances holding `packet.clientIds` (none of them local).
   * Resolves with how many of those clients the cluster holds.
   */
  sendToClients(packet: BroadcastPacket & { readonly clientIds: readonly ClientId[] }): Promise<number>;
  /** Makes a newly connected local client visible cluster-wide. */
  clientAdded(client: ClientRecord): Promise<void>;
  /** Removes a disconnected local client from the cluster's view. */
  clientRemoved(clientId: ClientId): Promise<void>;
  /** A local client joined or left a room. */
  roomChanged(clientId: ClientId, room: Room, joined: boolean): Promise<void>;
  /** How many clients on other instances match `filter`. */
  remoteCount(filter: ClientFilter): Promise<number>;
  /** The ids of clients on other instances that match `filter`. */
  remoteIds(filter: ClientFilter): Promise<ClientId[]>;
}

/** True when a client passes every narrowing of `filter`. */
export function matchesFilter(client: ClientRecord, filter: ClientFilter): boolean {
  if (filter.gateway !== undefined && client.gateway !== filter.gateway) return false;
  if (filter.except !== undefined && filter.except.includes(client.id)) return false;
  if (filter.rooms !== undefined && !filter.rooms.some((room) => client.rooms.has(room))) return false;
  return true;
}
