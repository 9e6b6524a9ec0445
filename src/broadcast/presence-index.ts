import type { PresenceEntry } from './wire.js';

/** One member of a room: a key (e.g. a user id) and the metadata of each of its connections. */
export interface PresenceMember<M = unknown> {
  readonly key: string;
  readonly metas: M[];
}

/** A key that appeared in a room (its first connection) or left it (its last one). */
export interface PresenceChange {
  readonly room: string;
  readonly change: 'join' | 'leave';
  readonly key: string;
  readonly meta: unknown;
}

interface Tracked {
  readonly owner: string;
  readonly key: string;
  meta: unknown;
}

/**
 * Who is present where, cluster-wide: every tracked connection of this instance and of the
 * others (from their deltas), grouped by room and key, so that several connections of one key
 * are one member. Says which changes are a key's first arrival or last departure.
 */
export class PresenceIndex {
  /** room → key → client → entry */
  readonly #rooms = new Map<string, Map<string, Map<string, Tracked>>>();
  /** client → its rooms */
  readonly #clients = new Map<string, Set<string>>();
  /** owner instance → its clients */
  readonly #owners = new Map<string, Set<string>>();

  /**
   * Records that `entry.client`, of instance `owner`, is present; tracking it again replaces its
   * meta, or (with another key) moves it from its old key to the new one.
   */
  track(owner: string, entry: PresenceEntry): PresenceChange[] {
    const changes: PresenceChange[] = [];
    const existing = this.#find(entry.client, entry.room);
    if (existing !== undefined && existing.key === entry.key) {
      existing.meta = entry.meta;
      return changes;
    }
    if (existing !== undefined) {
      const leave = this.untrack(entry.client, entry.room);
      if (leave !== undefined) changes.push(leave);
    }
    let keys = this.#rooms.get(entry.room);
    if (keys === undefined) this.#rooms.set(entry.room, (keys = new Map()));
    let connections = keys.get(entry.key);
    const first = connections === undefined;
    if (connections === undefined) keys.set(entry.key, (connections = new Map()));
    connections.set(entry.client, { owner, key: entry.key, meta: entry.meta });
    addTo(this.#clients, entry.client, entry.room);
    addTo(this.#owners, owner, entry.client);
    if (first) changes.push({ room: entry.room, change: 'join', key: entry.key, meta: entry.meta });
    return changes;
  }

  /** Forgets `client` in `room`; a leave when it was its key's last connection there. */
  untrack(client: string, room: string): PresenceChange | undefined {
    const keys = this.#rooms.get(room);
    if (keys === undefined) return undefined;
    for (const [key, connections] of keys) {
      const tracked = connections.get(client);
      if (tracked === undefined) continue;
      connections.delete(client);
      removeFrom(this.#clients, client, room);
      if (this.#clients.get(client) === undefined) removeFrom(this.#owners, tracked.owner, client);
      if (connections.size > 0) return undefined;
      keys.delete(key);
      if (keys.size === 0) this.#rooms.delete(room);
      return { room, change: 'leave', key, meta: tracked.meta };
    }
    return undefined;
  }

  /** Forgets every presence of `client` (it disconnected). */
  untrackClient(client: string): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const room of [...(this.#clients.get(client) ?? [])]) {
      const change = this.untrack(client, room);
      if (change !== undefined) changes.push(change);
    }
    return changes;
  }

  /** Forgets every presence of instance `owner` (it left, or died, or is being replaced by its state). */
  dropOwner(owner: string): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const client of [...(this.#owners.get(owner) ?? [])]) changes.push(...this.untrackClient(client));
    return changes;
  }

  /**
   * Replaces every presence of `owner` with `entries` (its state arrived): only the keys that
   * really appeared or left are changes, not those that left and came back within the swap.
   */
  replaceOwner(owner: string, entries: readonly PresenceEntry[]): PresenceChange[] {
    const rooms = new Set<string>();
    for (const entry of this.entriesOf(owner)) rooms.add(entry.room);
    for (const entry of entries) rooms.add(entry.room);
    const before = this.#snapshot(rooms);
    this.dropOwner(owner);
    for (const entry of entries) this.track(owner, entry);
    const after = this.#snapshot(rooms);
    const changes: PresenceChange[] = [];
    for (const [key, meta] of after) if (!before.has(key)) changes.push({ ...split(key), change: 'join', meta });
    for (const [key, meta] of before) if (!after.has(key)) changes.push({ ...split(key), change: 'leave', meta });
    return changes;
  }

  /** The members of `room`: one per key, with each connection's metadata (of instance `owner` alone, if given). */
  list(room: string, owner?: string): PresenceMember[] {
    const keys = this.#rooms.get(room);
    if (keys === undefined) return [];
    const members: PresenceMember[] = [];
    for (const [key, connections] of keys) {
      const metas: unknown[] = [];
      for (const tracked of connections.values()) if (owner === undefined || tracked.owner === owner) metas.push(tracked.meta);
      if (metas.length > 0) members.push({ key, metas });
    }
    return members;
  }

  /** Whether `client` is tracked in `room`. */
  has(client: string, room: string): boolean {
    return this.#clients.get(client)?.has(room) === true;
  }

  /** Every presence `owner` has, as entries (for its state). */
  *entriesOf(owner: string): Generator<PresenceEntry> {
    for (const client of this.#owners.get(owner) ?? []) {
      for (const room of this.#clients.get(client) ?? []) {
        const tracked = this.#find(client, room);
        if (tracked !== undefined) yield { client, room, key: tracked.key, meta: tracked.meta };
      }
    }
  }

  /** `room\u0000key` → a meta of the key, for every key of `rooms`. */
  #snapshot(rooms: Iterable<string>): Map<string, unknown> {
    const snapshot = new Map<string, unknown>();
    for (const room of rooms) {
      for (const [key, connections] of this.#rooms.get(room) ?? []) snapshot.set(`${room}\u0000${key}`, connections.values().next().value?.meta);
    }
    return snapshot;
  }

  #find(client: string, room: string): Tracked | undefined {
    if (this.#clients.get(client)?.has(room) !== true) return undefined;
    for (const connections of this.#rooms.get(room)?.values() ?? []) {
      const tracked = connections.get(client);
      if (tracked !== undefined) return tracked;
    }
    return undefined;
  }
}

function split(roomKey: string): { room: string; key: string } {
  const at = roomKey.indexOf('\u0000');
  return { room: roomKey.slice(0, at), key: roomKey.slice(at + 1) };
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}
