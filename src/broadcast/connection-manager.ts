import { inject } from '../di/inject.js';
import { Injectable } from '../di/module.js';
import { InjectionToken } from '../di/token.js';
import { LOGGER, type Logger } from '../logger.js';
import type { ClientId, WsClient } from '../websocket/client.js';
import { eventEnvelope } from '../websocket/envelope.js';
import { CONNECTION_OBSERVER } from '../websocket/gateway-host.js';
import { WsMessage } from '../websocket/message.js';
import { closeSegment } from '../websocket/outbound.js';
import { Cluster, type ClusterStats, type LocalState } from './cluster.js';
import { InMemoryTransport } from './in-memory-transport.js';
import { EVERYONE, type HistoryOptions, type KeptEntry, type Position, assertHistoryOptions } from './history.js';
import { type PresenceChange, PresenceIndex, type PresenceMember } from './presence-index.js';
import type { Delivery, Recipient } from './recipient.js';
import { type BroadcastTransport, type ClientFilter, type Room, matchesFilter } from './transport.js';
import type { ClientEntry, KeptPacket, MessageFilter, MessagePacket, Operation } from './wire.js';

/** Options of `BroadcastModule.forRoot`. */
export interface BroadcastModuleOptions {
  /** How broadcasts reach other instances. Default: `InMemoryTransport` (this process only). */
  transport?: BroadcastTransport;
  /**
   * Keeps every `emit` to a room, or to everyone, so that a tonijs/client socket that
   * reconnects receives what it missed: the last `size` per stream, none older than `ttl` ms.
   * In memory on one instance, in the transport's store (Redis Streams) in a cluster. Off by default.
   */
  history?: HistoryOptions;
}

/** The options `BroadcastModule.forRoot` was given. */
export const BROADCAST_OPTIONS = new InjectionToken<BroadcastModuleOptions>('BROADCAST_OPTIONS');

/** A filter as a target builds it: a client filter, possibly limited to given ids or to this instance. */
export interface TargetFilter extends ClientFilter {
  readonly clientIds?: readonly ClientId[] | undefined;
  /** Only this instance's clients. */
  readonly local?: boolean | undefined;
}

/**
 * The registry of connected clients, shared by every gateway: which clients this instance
 * holds, in which rooms, on which gateway, and who is present where. It fans messages out to
 * them and, through the cluster layer, to the other instances, whose clients and presence it
 * knows from their deltas. Protocol-neutral: a recipient brings its own `Delivery`.
 */
@Injectable()
export class ConnectionManager implements LocalState {
  readonly [CONNECTION_OBSERVER] = true;
  /** This instance's id in the cluster. */
  readonly instanceId: string = globalThis.crypto.randomUUID();
  readonly #logger: Logger = inject(LOGGER);
  readonly #options: BroadcastModuleOptions = inject(BROADCAST_OPTIONS, { optional: true }) ?? {};
  readonly #transport: BroadcastTransport = this.#options.transport ?? new InMemoryTransport();
  readonly #members = new Map<ClientId, Recipient>();
  readonly #all = new Set<Recipient>();
  readonly #rooms = new Map<Room, Set<Recipient>>();
  readonly #gateways = new Map<string, Set<Recipient>>();
  /** The deliveries of the connected recipients: while there is one, a set is fanned out in one call. */
  readonly #deliveries = new Map<Delivery, number>();
  readonly #presence = new PresenceIndex();
  readonly #cluster: Cluster = new Cluster(this.#transport, this, this.#presence, this.instanceId, this.#logger);
  /** Presence changes of this turn, by room: announced once per room when the turn ends. */
  #presenceChanges: Map<Room, PresenceChange[]> | undefined;
  /** What reconnecting clients asked to recover: the streams still to replay, and how those replayed went. */
  readonly #recoveries = new Map<ClientId, Recovery>();
  /** Per stream, the clients being replayed to: the stream's live messages wait for them. */
  readonly #holding = new Map<string, Map<Recipient, Held[]>>();
  /** Per client just replayed to, per stream, the last position it has: a late live copy of what the replay sent is dropped. */
  readonly #floors = new Map<Recipient, Map<string, Floor>>();
  /**
   * Per stream with clients here, the epoch its live kept events last told all of them: the next
   * ones leave it out (a smaller frame) until it changes. A client that starts following a stream
   * is told its epoch by its position frame.
   */
  readonly #epochs = new Map<string, string>();
  /** Replayed entries' messages, shared by the clients a read serves (an entry belongs to one stream and epoch). */
  readonly #replays = new WeakMap<KeptEntry, WsMessage>();

  constructor() {
    const history = this.#options.history;
    if (history !== undefined) {
      assertHistoryOptions(history);
      this.#cluster.enableHistory(history);
    }
  }

  /** The transport this registry publishes through. */
  get transport(): BroadcastTransport {
    return this.#transport;
  }

  /** What the cluster layer has in flight and has dropped; zeros on one instance. */
  get clusterStats(): ClusterStats {
    return this.#cluster.stats;
  }

  /** Whether the transport reaches the other instances right now (always true on one instance). */
  get clusterConnected(): boolean {
    return this.#cluster.solo || this.#cluster.connected;
  }

  async onModuleInit(): Promise<void> {
    await this.#cluster.attach();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#cluster.detach();
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

  /** The rooms that have clients anywhere in the cluster. */
  rooms(): Room[] {
    const rooms = new Set(this.#rooms.keys());
    for (const client of this.#cluster.reachable.clients({})) for (const room of client.rooms) rooms.add(room);
    return [...rooms];
  }

  /** Clients of this instance that match `filter`. */
  *localClients(filter: ClientFilter = {}): Generator<WsClient> {
    for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) yield member.client;
  }

  /** Sends to every matching client here and, unless the filter is local, on every other instance. */
  broadcast(filter: TargetFilter, message: WsMessage): Promise<void> {
    if (filter.clientIds !== undefined) return this.sendToClients(filter, filter.clientIds, message).then(() => undefined);
    const packet: MessagePacket = { message, rooms: filter.rooms, except: filter.except, gateway: filter.gateway };
    this.deliver(packet);
    if (filter.local !== true) this.#cluster.publish(packet);
    return DONE;
  }

  /**
   * Sends an event envelope (`{"event":…,"data":…}`) like `broadcast`; with a history, an emit to
   * everyone or to one room is kept, and carries its position (`room`, `offset`, `epoch`).
   */
  emit(filter: TargetFilter, body: string): Promise<void> {
    if (!this.#cluster.keepsHistory || !keepable(filter)) return this.broadcast(filter, WsMessage.text(body));
    const stream = filter.rooms?.[0] ?? EVERYONE;
    const outcome = this.#cluster.keep({ stream, body, except: filter.except, gateway: filter.gateway });
    if (outcome.kind === 'kept') this.deliverKept(outcome.packet);
    else if (outcome.kind === 'unkept') this.deliver({ message: WsMessage.text(body), rooms: filter.rooms, except: filter.except, gateway: filter.gateway });
    return DONE;
  }

  /** Sends to the given clients that match `filter`, wherever they are; resolves with how many were reached. */
  async sendToClients(filter: TargetFilter, ids: readonly ClientId[], message: WsMessage): Promise<number> {
    const narrowed = narrow(filter, ids);
    const packet: MessagePacket & { clientIds: readonly ClientId[] } = { message, rooms: filter.rooms, except: filter.except, gateway: filter.gateway, clientIds: narrowed };
    const reached = this.#deliverToIds(packet, narrowed);
    if (filter.local === true || reached === narrowed.length) return reached;
    const remote = narrowed.filter((id) => !this.#members.has(id));
    return reached + this.#cluster.sendTo({ ...packet, clientIds: remote }, (client) => matchesFilter(client, packet));
  }

  /** How many clients match `filter` across the cluster (this instance's only, for a local filter). */
  async count(filter: TargetFilter): Promise<number> {
    let local = 0;
    if (filter.clientIds !== undefined) return this.#matchingIds(filter).length;
    if (isEmpty(filter)) local = this.#members.size;
    else for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) local++;
    return filter.local === true ? local : local + this.#cluster.reachable.count(filter);
  }

  /** The ids of the clients that match `filter` across the cluster. */
  async ids(filter: TargetFilter): Promise<ClientId[]> {
    if (filter.clientIds !== undefined) return this.#matchingIds(filter);
    const ids: ClientId[] = [];
    for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) ids.push(member.id);
    if (filter.local !== true) for (const client of this.#cluster.reachable.clients(filter)) ids.push(client.id);
    return ids;
  }

  /**
   * Applies `operation` to the matching clients here and on every other live instance; resolves
   * with how many clients it applied to, once every live instance has (bounded by the
   * transport's operation timeout; a dead instance is never waited for).
   */
  async operate(filter: TargetFilter, operation: Operation): Promise<number> {
    const local = this.#applyLocal(filter, operation);
    if (filter.local === true) {
      await local.done;
      return local.count;
    }
    const remoteFilter: MessageFilter = { rooms: filter.rooms, except: filter.except, gateway: filter.gateway, clientIds: filter.clientIds };
    const [remote] = await Promise.all([this.#cluster.operate(remoteFilter, operation), local.done]);
    return local.count + remote;
  }

  // ---------------------------------------------------------------------------------------------
  // Presence

  /** `client` (of this instance) is present in `room` as `key`, with `meta`; announced if `key` is new there. */
  async track(recipient: Recipient, room: Room, key: string, meta: unknown): Promise<void> {
    const entry = { client: recipient.id, room, key, meta };
    this.#announce(this.#presence.track(this.instanceId, entry));
    await this.#cluster.tracked(entry);
  }

  async untrack(clientId: ClientId, room: Room): Promise<void> {
    if (!this.#presence.has(clientId, room)) return;
    const change = this.#presence.untrack(clientId, room);
    if (change !== undefined) this.#announce([change]);
    await this.#cluster.untracked(clientId, room);
  }

  /** The members of `room` across the cluster, from state: one per key, with each connection's meta. */
  presenceList(room: Room): PresenceMember[] {
    // While the others cannot be reached, only this instance's members are known to be here.
    return this.#presence.list(room, this.#cluster.canReach || this.#cluster.solo ? undefined : this.instanceId);
  }

  /** A local recipient by id (for `PresenceService`). */
  recipient(id: ClientId): Recipient | undefined {
    return this.#members.get(id);
  }

  // ---------------------------------------------------------------------------------------------
  // LocalState: what the cluster layer asks of this instance

  /** @internal delivers a packet to this instance's matching clients; returns how many it reached */
  deliver(packet: MessagePacket): number {
    if (packet.clientIds !== undefined) return this.#deliverToIds(packet, packet.clientIds);
    const { rooms, except, gateway, message } = packet;
    if (except === undefined && (rooms === undefined || rooms.length === 1)) {
      const set = rooms === undefined ? (gateway === undefined ? this.#all : this.#gateways.get(gateway)) : this.#rooms.get(rooms[0]!);
      if (set === undefined) return 0;
      if (rooms === undefined || gateway === undefined) {
        // The set itself identifies the recipients: consecutive broadcasts to it share one batch.
        this.#fanOut(set, set, message);
        return set.size;
      }
    }
    const recipients: Recipient[] = [];
    for (const member of this.#candidates(packet)) if (matchesFilter(member, packet)) recipients.push(member);
    if (recipients.length > 0) this.#fanOut(undefined, recipients, message);
    return recipients.length;
  }

  /** @internal delivers a kept emit to this instance's matching clients, holding it for those being replayed to */
  deliverKept(packet: KeptPacket): number {
    const { stream, offset, epoch } = packet;
    const told = this.#epochs.get(stream) === epoch;
    const message = WsMessage.text(positioned(packet.body, stream, offset, told ? undefined : epoch));
    // Only an event to the whole stream tells every client here the new epoch.
    if (!told && packet.except === undefined && packet.gateway === undefined && (stream === EVERYONE ? this.#all.size > 0 : this.#rooms.has(stream))) this.#epochs.set(stream, epoch);
    const filter: MessagePacket = { message, rooms: stream === EVERYONE ? undefined : [stream], except: packet.except, gateway: packet.gateway };
    const holders = this.#holding.get(stream);
    if ((holders === undefined || holders.size === 0) && this.#floors.size === 0) return this.deliver(filter);
    const recipients: Recipient[] = [];
    for (const member of this.#candidates(filter)) {
      if (!matchesFilter(member, filter)) continue;
      const held = holders?.get(member);
      if (held !== undefined) {
        held.push({ offset, epoch, message });
        continue;
      }
      const floors = this.#floors.get(member);
      const floor = floors?.get(stream);
      if (floor !== undefined) {
        // Its copy came late (the store's offsets grow across a reset too) — unless the stream
        // began again, which only a stream unused for longer than the ttl does, offsets from 1.
        if (offset <= floor.offset && (epoch === floor.epoch || performance.now() - floor.at < this.#options.history!.ttl)) continue;
        // Past what the replay sent, the store's order holds again.
        floors!.delete(stream);
        if (floors!.size === 0) this.#floors.delete(member);
      }
      recipients.push(member);
    }
    if (recipients.length > 0) this.#fanOut(undefined, recipients, message);
    return recipients.length;
  }

  /** @internal */
  *clients(): Generator<ClientEntry> {
    for (const member of this.#members.values()) yield { id: member.id, gateway: member.gateway, rooms: [...member.rooms] };
  }

  /** @internal applies another instance's operation here; resolves once the others know what it changed */
  async apply(filter: MessageFilter, operation: Operation): Promise<number> {
    const { count, done } = this.#applyLocal(filter, operation);
    try {
      await done;
    } catch (error) {
      this.#logger.error({ err: error, operation: operation.kind }, 'A cluster operation failed on this instance');
    }
    return count;
  }

  /** @internal presence changed because of other instances: tell this instance's members of the room */
  presenceChanged(changes: readonly PresenceChange[]): void {
    this.#announce(changes);
  }

  // ---------------------------------------------------------------------------------------------
  // ConnectionObserver: what the gateway host reports

  async clientConnected(recipient: Recipient): Promise<void> {
    closeSegment();
    this.#members.set(recipient.id, recipient);
    this.#all.add(recipient);
    addTo(this.#gateways, recipient.gateway, recipient);
    for (const room of recipient.rooms) addTo(this.#rooms, room, recipient);
    this.#deliveries.set(recipient.delivery, (this.#deliveries.get(recipient.delivery) ?? 0) + 1);
    const recovery = this.#cluster.keepsHistory && recipient.speaksTonijs ? readRecovery(recipient.client.handshake.query.get(RECOVERY_PARAMETER)) : undefined;
    if (recovery !== undefined) this.#recoveries.set(recipient.id, recovery);
    // The broadcasts to everyone it missed come first, before any live one.
    const replayed = this.#follows(recipient) ? this.#follow(recipient, EVERYONE) : DONE;
    await Promise.all([this.#cluster.clientAdded({ id: recipient.id, gateway: recipient.gateway, rooms: [...recipient.rooms] }), replayed]);
  }

  /**
   * The gateway's `onConnect` finished: whether a reconnecting tonijs client was replayed
   * everything it missed in the streams it follows again (joined while connecting), for its
   * welcome. A room joined later by a handler says so in its own position frame.
   */
  clientReady(recipient: Recipient): boolean {
    const recovery = this.#recoveries.get(recipient.id);
    return recovery !== undefined && [...recovery.outcomes.values()].every((outcome) => outcome);
  }

  async clientDisconnected(recipient: Recipient): Promise<void> {
    const member = this.#members.get(recipient.id);
    if (member === undefined) return;
    closeSegment();
    this.#members.delete(member.id);
    this.#all.delete(member);
    removeFrom(this.#gateways, member.gateway, member);
    for (const room of member.rooms) if (removeFrom(this.#rooms, room, member)) this.#epochs.delete(room);
    const remaining = (this.#deliveries.get(member.delivery) ?? 1) - 1;
    if (remaining === 0) this.#deliveries.delete(member.delivery);
    else this.#deliveries.set(member.delivery, remaining);
    // Its presence ends with it, and is announced; the others learn both from one delta.
    this.#announce(this.#presence.untrackClient(member.id));
    this.#recoveries.delete(member.id);
    this.#floors.delete(member);
    for (const [stream, holders] of this.#holding) if (holders.delete(member) && holders.size === 0) this.#holding.delete(stream);
    await this.#cluster.clientRemoved(member.id);
  }

  async roomChanged(recipient: Recipient, room: Room, joined: boolean): Promise<void> {
    const member = this.#members.get(recipient.id);
    if (member === undefined) return;
    closeSegment();
    if (joined) addTo(this.#rooms, room, member);
    else if (removeFrom(this.#rooms, room, member)) this.#epochs.delete(room);
    // A tonijs client learns where it starts in the room (and, joined again after a reconnect, gets
    // what it missed first), before the room's live messages; leaving, that it stops following it.
    let followed: Promise<void> = DONE;
    if (this.#follows(member)) {
      if (joined) followed = this.#follow(member, room);
      else member.delivery.send(member, WsMessage.text(`{"left":${JSON.stringify(room)}}`));
    }
    await Promise.all([this.#cluster.roomChanged(member.id, room, joined), followed]);
  }

  // ---------------------------------------------------------------------------------------------

  /** Whether `recipient` follows its streams' positions: a tonijs client, with a history kept. */
  #follows(recipient: Recipient): boolean {
    return recipient.speaksTonijs && this.#cluster.keepsHistory;
  }

  /**
   * Starts `recipient` on `stream`: from its position after a reconnect — what it missed is
   * replayed first, exactly once and in order — or from the stream's head, which it is told
   * (`{"position":…}`). Meanwhile the stream's live messages are held for it, then those past
   * what it has are sent: none is lost or doubled.
   */
  async #follow(recipient: Recipient, stream: string): Promise<void> {
    const recovery = this.#recoveries.get(recipient.id);
    const from = recovery?.positions.get(stream);
    recovery?.positions.delete(stream);
    // Held from now on, synchronously: nothing live of the stream passes the replay.
    let holders = this.#holding.get(stream);
    if (holders === undefined) this.#holding.set(stream, (holders = new Map()));
    const held: Held[] = [];
    holders.set(recipient, held);
    const result = from === undefined ? undefined : await this.#cluster.read(stream, from);
    const head = result?.kind === 'entries' ? undefined : await this.#cluster.head(stream);
    // Only its own hold: the recipient may have left and joined again meanwhile, and the map may
    // have been replaced (emptied by a disconnect, dropped, made anew for the next follower).
    if (holders.get(recipient) === held) holders.delete(recipient);
    if (holders.size === 0 && this.#holding.get(stream) === holders) this.#holding.delete(stream);
    if (!this.#members.has(recipient.id)) return;
    let last: number;
    let epoch: string;
    if (result?.kind === 'entries') {
      epoch = result.epoch;
      last = from!.offset;
      for (const entry of result.entries) {
        last = entry.offset;
        if (entry.gateway !== undefined && entry.gateway !== recipient.gateway) continue;
        if (entry.except !== undefined && (entry.except.includes(recipient.id) || (recovery?.previousId !== undefined && entry.except.includes(recovery.previousId)))) continue;
        recipient.delivery.send(recipient, this.#replayed(entry, stream, result.epoch));
      }
      // Where it is now, even when nothing came after what it had (or all of it was for others).
      recipient.delivery.send(recipient, WsMessage.text(positionFrame(stream, result.epoch, last, true)));
    } else {
      last = head!.offset;
      epoch = head!.epoch;
      recipient.delivery.send(recipient, WsMessage.text(positionFrame(stream, epoch, last, from === undefined ? undefined : false)));
    }
    for (const live of held) {
      // Older than where it starts (the store's offsets only grow, across epochs too): it has it.
      if (live.offset <= last) continue;
      // Of an epoch it was not told (the stream was reset meanwhile): it learns it first.
      if (live.epoch !== epoch) recipient.delivery.send(recipient, WsMessage.text(positionFrame(stream, (epoch = live.epoch), live.offset - 1)));
      recipient.delivery.send(recipient, live.message);
      last = live.offset;
    }
    let floors = this.#floors.get(recipient);
    if (floors === undefined) this.#floors.set(recipient, (floors = new Map()));
    floors.set(stream, { epoch, offset: last, at: performance.now() });
    // Told an epoch the others here were not (a newer one, or none when the store could not say):
    // the next event tells them all.
    if (this.#epochs.get(stream) !== epoch) this.#epochs.delete(stream);
    if (from !== undefined) recovery!.outcomes.set(stream, result?.kind === 'entries');
  }

  /** A kept entry's message, made (and framed) once for every client it is replayed to. */
  #replayed(entry: KeptEntry, stream: string, epoch: string): WsMessage {
    let message = this.#replays.get(entry);
    if (message === undefined) this.#replays.set(entry, (message = WsMessage.text(positioned(entry.body, stream, entry.offset, epoch))));
    return message;
  }

  #fanOut(key: object | undefined, recipients: Iterable<Recipient>, message: WsMessage): void {
    if (this.#deliveries.size <= 1) {
      const delivery = this.#deliveries.keys().next().value;
      if (delivery !== undefined) delivery.fanOut(key, recipients, message);
      return;
    }
    // Recipients of several protocols: each delivery frames once for its own.
    const groups = new Map<Delivery, Recipient[]>();
    for (const recipient of recipients) {
      const group = groups.get(recipient.delivery);
      if (group === undefined) groups.set(recipient.delivery, [recipient]);
      else group.push(recipient);
    }
    for (const [delivery, group] of groups) delivery.fanOut(undefined, group, message);
  }

  #deliverToIds(packet: MessagePacket, ids: readonly ClientId[]): number {
    let reached = 0;
    for (const id of ids) {
      const member = this.#members.get(id);
      if (member !== undefined && matchesFilter(member, packet) && member.delivery.send(member, packet.message)) reached++;
    }
    return reached;
  }

  /** The local clients an operation's filter matches. */
  *#matching(filter: MessageFilter): Generator<Recipient> {
    if (filter.clientIds !== undefined) {
      for (const id of filter.clientIds) {
        const member = this.#members.get(id);
        if (member !== undefined && matchesFilter(member, filter)) yield member;
      }
      return;
    }
    for (const member of this.#candidates(filter)) if (matchesFilter(member, filter)) yield member;
  }

  /** Starts `operation` on every matching local client: how many, and when all are done. */
  #applyLocal(filter: MessageFilter, operation: Operation): { count: number; done: Promise<unknown> } {
    const members = [...this.#matching(filter)];
    const done = Promise.all(
      members.map((member) => {
        switch (operation.kind) {
          case 'join':
            return member.join(operation.room);
          case 'leave':
            return member.leave(operation.room);
          case 'disconnect':
            return member.requestClose(operation.code, operation.reason);
        }
      }),
    );
    return { count: members.length, done };
  }

  #matchingIds(filter: TargetFilter): ClientId[] {
    const ids: ClientId[] = [];
    for (const id of new Set(filter.clientIds)) {
      const member = this.#members.get(id);
      if (member !== undefined) {
        if (matchesFilter(member, filter)) ids.push(id);
        continue;
      }
      if (filter.local === true) continue;
      const remote = this.#cluster.reachable.locate(id);
      if (remote !== undefined && matchesFilter(remote, filter)) ids.push(id);
    }
    return ids;
  }

  /** Queues presence changes; at the end of the turn each room's members hear its changes once. */
  #announce(changes: readonly PresenceChange[]): void {
    if (changes.length === 0) return;
    if (this.#presenceChanges === undefined) {
      this.#presenceChanges = new Map();
      setImmediate(() => this.#flushPresence());
    }
    for (const change of changes) {
      const list = this.#presenceChanges.get(change.room);
      if (list === undefined) this.#presenceChanges.set(change.room, [change]);
      else list.push(change);
    }
  }

  #flushPresence(): void {
    const pending = this.#presenceChanges;
    this.#presenceChanges = undefined;
    if (pending === undefined) return;
    for (const [room, changes] of pending) {
      const { joins, leaves } = net(changes);
      if (joins.length === 0 && leaves.length === 0) continue;
      let message: WsMessage;
      try {
        message = WsMessage.text(eventEnvelope('presence', { room, joins, leaves }));
      } catch (error) {
        this.#logger.error({ err: error, room }, `The presence metadata of room ${room} cannot be sent as JSON; its presence event was dropped`);
        continue;
      }
      // Every instance tells its own members: each client hears each change once.
      this.deliver({ message, rooms: [room] });
    }
  }

  /** The smallest indexed set that holds every client `filter` can match. */
  #candidates(filter: ClientFilter): Iterable<Recipient> {
    if (filter.rooms !== undefined) {
      if (filter.rooms.length === 1) return this.#rooms.get(filter.rooms[0]!) ?? [];
      const union = new Set<Recipient>();
      for (const room of filter.rooms) for (const member of this.#rooms.get(room) ?? []) union.add(member);
      return union;
    }
    if (filter.gateway !== undefined) return this.#gateways.get(filter.gateway) ?? [];
    return this.#all;
  }
}

/** A key that left and came back within one turn did not change; nor did one that came and went. */
function net(changes: readonly PresenceChange[]): { joins: { key: string; meta: unknown }[]; leaves: { key: string; meta: unknown }[] } {
  const last = new Map<string, { first: PresenceChange['change']; change: PresenceChange }>();
  for (const change of changes) {
    const seen = last.get(change.key);
    if (seen === undefined) last.set(change.key, { first: change.change, change });
    else seen.change = change;
  }
  const joins: { key: string; meta: unknown }[] = [];
  const leaves: { key: string; meta: unknown }[] = [];
  for (const { first, change } of last.values()) {
    // join…join or leave…leave cannot follow each other: an odd sequence ends where it began otherwise.
    if (first !== change.change) continue;
    (change.change === 'join' ? joins : leaves).push({ key: change.key, meta: change.meta ?? null });
  }
  return { joins, leaves };
}

/** What a reconnecting client asked to recover: its previous id, and its position in each stream it followed. */
interface Recovery {
  readonly previousId: string | undefined;
  readonly positions: Map<string, Position>;
  readonly outcomes: Map<string, boolean>;
}

/** The query parameter in which tonijs/client sends what it has: `{"id":"<previous id>","s":{"<stream>":["<epoch>",<offset>]}}`. */
export const RECOVERY_PARAMETER = 'tonijs-recover';
const MAX_RECOVERED_STREAMS = 256;

/** The recovery request of a handshake, or undefined when there is none or it is malformed (nothing is then recovered). */
function readRecovery(raw: string | null): Recovery | undefined {
  if (raw === null || raw.length > 64 * 1024) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, s: streams } = value as { id?: unknown; s?: unknown };
  if (typeof streams !== 'object' || streams === null || Array.isArray(streams)) return undefined;
  const positions = new Map<string, Position>();
  for (const [stream, position] of Object.entries(streams)) {
    if (positions.size >= MAX_RECOVERED_STREAMS) return undefined;
    if (!Array.isArray(position) || position.length !== 2) return undefined;
    const [epoch, offset] = position as unknown[];
    if (typeof epoch !== 'string' || !Number.isSafeInteger(offset) || (offset as number) < 0) return undefined;
    positions.set(stream, { epoch, offset: offset as number });
  }
  return { previousId: typeof id === 'string' ? id : undefined, positions, outcomes: new Map() };
}

/**
 * Tells a tonijs client where it is in a stream: `{"position":{"room":…,"epoch":…,"offset":…}}`,
 * with `"recovered"` when it had asked to resume there: whether what it missed was replayed.
 */
function positionFrame(stream: string, epoch: string, offset: number, recovered?: boolean): string {
  const outcome = recovered === undefined ? '' : `,"recovered":${recovered}`;
  return `{"position":{"room":${JSON.stringify(stream)},"epoch":${JSON.stringify(epoch)},"offset":${offset}${outcome}}}`;
}

/**
 * A kept event's envelope with its position: `{"event":…,"data":…,"room":…,"offset":…}`, and
 * `"epoch":…` when it is one its recipients may not have been told.
 */
function positioned(body: string, stream: string, offset: number, epoch: string | undefined): string {
  const told = epoch === undefined ? '' : `,"epoch":${JSON.stringify(epoch)}`;
  return `${body.slice(0, -1)},"room":${JSON.stringify(stream)},"offset":${offset}${told}}`;
}

/** Where a client just replayed to is in a stream, and since when. */
interface Floor {
  readonly epoch: string;
  readonly offset: number;
  readonly at: number;
}

/** A live kept event held for a client being replayed to. */
interface Held {
  readonly offset: number;
  readonly epoch: string;
  readonly message: WsMessage;
}

/** What the history keeps: an emit to everyone or to one room, not a local one nor one to given clients. */
function keepable(filter: TargetFilter): boolean {
  return filter.local !== true && filter.clientIds === undefined && (filter.rooms === undefined || filter.rooms.length === 1);
}

function narrow(filter: TargetFilter, ids: readonly ClientId[]): readonly ClientId[] {
  if (filter.clientIds === undefined) return ids;
  const allowed = new Set(filter.clientIds);
  return ids.filter((id) => allowed.has(id));
}

function addTo(index: Map<string, Set<Recipient>>, key: string, member: Recipient): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(member);
}

/** Removes `member` from `index[key]`; true when that emptied it (and it went). */
function removeFrom(index: Map<string, Set<Recipient>>, key: string, member: Recipient): boolean {
  const set = index.get(key);
  if (set === undefined) return false;
  set.delete(member);
  if (set.size > 0) return false;
  index.delete(key);
  return true;
}

function isEmpty(filter: ClientFilter): boolean {
  return filter.rooms === undefined && filter.except === undefined && filter.gateway === undefined;
}

const DONE = Promise.resolve();
