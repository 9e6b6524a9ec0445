import { inject } from '../di/inject.js';
import { Injectable } from '../di/module.js';
import type { WsClient } from '../websocket/client.js';
import { assertRoomName } from '../websocket/room.js';
import { ConnectionManager } from './connection-manager.js';
import type { PresenceMember } from './presence-index.js';

/**
 * Who is here, across the cluster: connections tracked in a room under a key (a user id, say),
 * several connections of one key being one member. The room's clients receive the event
 * `presence` with `{ room, joins, leaves }` (each `{ key, meta }`) when a key first appears there
 * or its last connection goes — also when an instance dies, once its `instanceTimeout` passes.
 * A connection's presence ends when it disconnects. `list` answers from state, at once.
 * Provided by `BroadcastModule`.
 *
 * @example
 * @On('join')
 * async join(client: WsClient, room: string) {
 *   await client.join(room);
 *   const user = client.getMetadata(User)!;
 *   await this.presence.track(client, room, user.id, { name: user.name, device: 'web' });
 *   return this.presence.list(room);              // [{ key: 'u-1', metas: [{ name: 'Ada', device: 'web' }] }]
 * }
 */
@Injectable()
export class PresenceService {
  readonly #manager = inject(ConnectionManager);

  /**
   * Tracks `client` (connected to this instance) in `room` as `key`, with `meta` (JSON). Tracking
   * it again in the room replaces its meta, or moves it to another key. Resolves once every live
   * instance knows (bounded by the transport's operation timeout). A client that is gone is not tracked.
   */
  async track(client: WsClient, room: string, key: string, meta?: unknown): Promise<void> {
    assertRoomName(room);
    if (typeof key !== 'string' || key.length === 0) throw new TypeError(`A presence key must be a non-empty string, got ${JSON.stringify(key)}`);
    assertJson(meta);
    const recipient = this.#manager.recipient(client.id);
    if (recipient === undefined) return;
    await this.#manager.track(recipient, room, key, meta ?? null);
  }

  /** Ends `client`'s presence in `room`; resolves as `track` does. */
  async untrack(client: WsClient, room: string): Promise<void> {
    assertRoomName(room);
    await this.#manager.untrack(client.id, room);
  }

  /** The members of `room` across the cluster, each key once with the meta of each of its connections. */
  list<M = unknown>(room: string): PresenceMember<M>[] {
    assertRoomName(room);
    return this.#manager.presenceList(room) as PresenceMember<M>[];
  }
}

function assertJson(meta: unknown): void {
  let text: string | undefined;
  try {
    text = JSON.stringify(meta ?? null);
  } catch (error) {
    throw new TypeError(`Presence meta must be JSON: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) throw new TypeError(`Presence meta must be JSON, got a ${typeof meta}`);
}
