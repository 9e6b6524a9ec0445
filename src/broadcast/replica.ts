import type { ClientEntry } from './wire.js';
import { type ClientFilter, type ClientRecord, type Room, matchesFilter } from './transport.js';

/** A client of another instance, as this instance's replica holds it. */
export interface RemoteClient extends ClientRecord {
  readonly instance: string;
  readonly rooms: Set<Room>;
}

/**
 * This instance's copy of who is connected to the other instances of the cluster, kept up to
 * date by their deltas: counts, ids and routing answer from it at once, never by asking every
 * instance and waiting. Indexed by id, room and gateway, as the local registry is.
 */
export class Replica {
  readonly #byId = new Map<string, RemoteClient>();
  readonly #byInstance = new Map<string, Set<RemoteClient>>();
  readonly #rooms = new Map<Room, Set<RemoteClient>>();
  readonly #gateways = new Map<string, Set<RemoteClient>>();

  get size(): number {
    return this.#byId.size;
  }

  /** The instance holding `id`, with its record; undefined when no other instance does. */
  locate(id: string): RemoteClient | undefined {
    return this.#byId.get(id);
  }

  add(instance: string, entry: ClientEntry): void {
    this.remove(entry.id);
    const client: RemoteClient = { id: entry.id, gateway: entry.gateway, rooms: new Set(entry.rooms), instance };
    this.#byId.set(client.id, client);
    addTo(this.#byInstance, instance, client);
    addTo(this.#gateways, client.gateway, client);
    for (const room of client.rooms) addTo(this.#rooms, room, client);
  }

  remove(id: string): RemoteClient | undefined {
    const client = this.#byId.get(id);
    if (client === undefined) return undefined;
    this.#byId.delete(id);
    removeFrom(this.#byInstance, client.instance, client);
    removeFrom(this.#gateways, client.gateway, client);
    for (const room of client.rooms) removeFrom(this.#rooms, room, client);
    return client;
  }

  room(instance: string, id: string, room: Room, joined: boolean): void {
    const client = this.#byId.get(id);
    if (client === undefined || client.instance !== instance) return;
    if (joined) {
      client.rooms.add(room);
      addTo(this.#rooms, room, client);
    } else if (client.rooms.delete(room)) {
      removeFrom(this.#rooms, room, client);
    }
  }

  /** Replaces what is known of `instance` with `entries` (its whole state). */
  reset(instance: string, entries: Iterable<ClientEntry>): void {
    this.drop(instance);
    for (const entry of entries) this.add(instance, entry);
  }

  /** Forgets every client of `instance` (it left, or died). */
  drop(instance: string): void {
    for (const client of [...(this.#byInstance.get(instance) ?? [])]) this.remove(client.id);
  }

  count(filter: ClientFilter): number {
    if (filter.rooms === undefined && filter.except === undefined && filter.gateway === undefined) return this.#byId.size;
    let count = 0;
    for (const client of this.#candidates(filter)) if (matchesFilter(client, filter)) count++;
    return count;
  }

  *clients(filter: ClientFilter): Generator<RemoteClient> {
    for (const client of this.#candidates(filter)) if (matchesFilter(client, filter)) yield client;
  }

  /** The smallest indexed set that holds every client `filter` can match. */
  #candidates(filter: ClientFilter): Iterable<RemoteClient> {
    if (filter.rooms !== undefined) {
      if (filter.rooms.length === 1) return this.#rooms.get(filter.rooms[0]!) ?? [];
      const union = new Set<RemoteClient>();
      for (const room of filter.rooms) for (const client of this.#rooms.get(room) ?? []) union.add(client);
      return union;
    }
    if (filter.gateway !== undefined) return this.#gateways.get(filter.gateway) ?? [];
    return this.#byId.values();
  }
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}
