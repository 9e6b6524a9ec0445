import { ToniError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type HistoryOptions, type KeepRequest, type KeptEntry, MemoryHistory, type Position, type ReadResult, readKept } from './history.js';
import { type PresenceChange, PresenceIndex } from './presence-index.js';
import { Replica } from './replica.js';
import { type Describe, ThrottledLog, plural } from './throttled-log.js';
import type { BroadcastTransport, Channel, ClusterOptions, HistorySnapshot, KeptBatch, TransportLink } from './transport.js';
import {
  type ClientEntry,
  type Decoded,
  type DropReason,
  type MessageFilter,
  type MessagePacket,
  type Operation,
  PROTOCOL_VERSION,
  type KeptPacket,
  type Packet,
  type PresenceEntry,
  decodeEnvelope,
  encodeEnvelope,
  envelopePrefix,
  keptEnvelopeParts,
  keptBatch,
  keptMessages,
} from './wire.js';

/** What the cluster layer needs of its own instance: the local registry. */
export interface LocalState {
  /** Every client of this instance, for the state other instances ask for. */
  clients(): Iterable<ClientEntry>;
  /** Delivers a message from another instance to the matching local clients; returns how many. */
  deliver(packet: MessagePacket): number;
  /**
   * Applies another instance's operation to the matching local clients; resolves with how many
   * matched once it is done here and what it changed is known to every live instance.
   */
  apply(filter: MessageFilter, operation: Operation): Promise<number>;
  /** Presence changed because of other instances (their deltas, states, or death). */
  presenceChanged(changes: readonly PresenceChange[]): void;
  /** Delivers a kept emit (from this instance's store, or another instance) to the matching local clients. */
  deliverKept(packet: KeptPacket): number;
}

/** What became of an emit the history was asked to keep. */
export type KeepOutcome =
  /** Kept now (an in-process store): deliver it here; the others get it from the cluster layer. */
  | { readonly kind: 'kept'; readonly packet: KeptPacket }
  /** On its way to the shared store: every instance, this one included, delivers it when the store publishes it. */
  | { readonly kind: 'queued' }
  /** The store cannot be reached: deliver it unkept; the stream's history is marked incomplete. */
  | { readonly kind: 'unkept' };

/** What the cluster layer has in flight and has dropped since it started. */
export interface ClusterStats {
  /** Publishes and sends the transport has not confirmed yet. */
  readonly pendingPublishes: number;
  /** Their size in bytes. */
  readonly pendingBytes: number;
  /** Publishes and sends dropped: while the transport was unreachable, or beyond the pending bounds. */
  readonly droppedPublishes: number;
  /** The packets those carried. */
  readonly droppedMessages: number;
  /** Envelopes from other instances dropped because they were not tonijs's of this protocol version. */
  readonly rejectedMessages: number;
  /** Other instances this one knows to be alive. */
  readonly instances: number;
  /** Of those, the ones whose state this instance has had since it (re)connected: its view of them is up to date. */
  readonly syncedInstances: number;
}

export const CLUSTER_DEFAULTS: ClusterOptions = {
  heartbeatInterval: 2_000,
  instanceTimeout: 10_000,
  operationTimeout: 2_000,
  maxPendingPublishes: 1_000,
  maxPendingBytes: 8 * 1024 * 1024,
  warningInterval: 10_000,
};

/**
 * `given` over the defaults, checked: every timing a positive integer of milliseconds, the
 * heartbeat shorter than the instance timeout. `who` names the options in the error.
 */
export function resolveClusterOptions(given: Partial<ClusterOptions>, who: string): ClusterOptions {
  const options: ClusterOptions = { ...CLUSTER_DEFAULTS, ...withoutUndefined(given) };
  for (const name of ['heartbeatInterval', 'instanceTimeout', 'operationTimeout', 'warningInterval'] as const) {
    const value = options[name];
    if (!Number.isInteger(value) || value < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `${who} option ${name} must be a positive integer of milliseconds, got ${String(value)}.`);
  }
  for (const name of ['maxPendingPublishes', 'maxPendingBytes'] as const) {
    const value = options[name];
    if (!Number.isSafeInteger(value) || value < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `${who} option ${name} must be a positive integer, got ${String(value)}.`);
  }
  if (options.heartbeatInterval >= options.instanceTimeout) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `${who} heartbeatInterval (${options.heartbeatInterval}) must be shorter than instanceTimeout (${options.instanceTimeout}).`);
  }
  return options;
}

/** Clients (or presences) per state packet: a large instance's state goes in parts. */
const STATE_PART = 1_000;
/** Deltas kept from an instance whose state is awaited; beyond, they are dropped and the state asked for again. */
const MAX_BUFFERED = 10_000;

type Health = 'up' | 'degraded' | 'down';

/** The readers of one stream waiting for a store read, and whether one is under way. */
interface PendingReads {
  waiting: { readonly after: Position; readonly resolve: (result: ReadResult) => void }[];
  busy: boolean;
}
type Problem = `drop:${DropReason}` | 'version' | 'delivery' | 'receive' | 'failed' | 'late';

/** Another instance, as this one sees it. */
interface Peer {
  readonly id: string;
  lastSeen: number;
  /** The last of its deltas applied here. */
  seq: number;
  /** Whether its state has been received (its deltas apply on top of it). */
  synced: boolean;
  /** When its state was last asked for; 0 when not awaited. */
  syncAskedAt: number;
  /** Its deltas received while its state is awaited, in order. */
  buffered: (Packet & { seq: number })[];
  /** The parts of its state received so far. */
  state: { seq: number; parts: number; received: Map<number, Extract<Packet, { type: 'state' }>> } | undefined;
  /** The last of this instance's deltas it has applied. */
  acked: number;
}

interface Waiter {
  readonly seq: number;
  readonly peers: Set<string>;
  readonly resolve: () => void;
  readonly timer: NodeJS.Timeout;
}

interface Request {
  readonly pending: Set<string>;
  count: number;
  readonly resolve: (count: number) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The shared half of every cluster transport: it batches what an instance sends in one
 * event-loop turn into one publish (and one send per destination), bounds every call and what
 * waits on the transport, rides out outages, and keeps a replica of every other instance's
 * clients and presence from their deltas — so counts, ids, routing and presence lists answer
 * from state at once, and a killed instance drops out after `instanceTimeout`. A transport only
 * carries payloads (`BroadcastTransport`).
 */
export class Cluster {
  readonly replica = new Replica();
  readonly #transport: BroadcastTransport;
  readonly #local: LocalState;
  readonly #presence: PresenceIndex;
  readonly #logger: Logger;
  readonly #options: ClusterOptions;
  readonly #instanceId: string;
  readonly #ownPrefix: string;
  readonly #problems: ThrottledLog<Problem>;
  readonly #peers = new Map<string, Peer>();
  readonly #link: TransportLink;
  #seq = 0;
  /** What this turn sends, in order: to every instance (`to` undefined), or to one. */
  #queued: { to: string | undefined; packet: Packet }[] = [];
  #scheduled = false;
  #health: Health = 'down';
  #attached = false;
  #detached = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #troubleSince = Date.now();
  #droppedAtTrouble = { publishes: 0, messages: 0 };
  #downReported = false;
  #pendingPublishes = 0;
  #pendingBytes = 0;
  #droppedPublishes = 0;
  #droppedMessages = 0;
  #rejectedMessages = 0;
  readonly #waiters = new Set<Waiter>();
  readonly #requests = new Map<number, Request>();
  #nextRequest = 1;
  #history: HistoryOptions | undefined;
  #memory: MemoryHistory | undefined;
  #expiry: ReturnType<typeof setInterval> | undefined;
  /** Per stream, the readers waiting for a store read (`read`). */
  readonly #reads = new Map<string, PendingReads>();
  /** Records for the shared store, kept and published once per turn. */
  #keep: KeepRequest[] = [];
  /** Streams whose emits went out unkept while the store was unreachable: their epoch changes on its return. */
  readonly #broken = new Set<string>();
  /** While starting: called when a state arrives, until every instance already there has sent its own. */
  #discovered: (() => boolean) | undefined;

  constructor(transport: BroadcastTransport, local: LocalState, presence: PresenceIndex, instanceId: string, logger: Logger) {
    this.#transport = transport;
    this.#local = local;
    this.#presence = presence;
    this.#instanceId = instanceId;
    this.#logger = logger;
    this.#options = resolveClusterOptions(transport.clusterOptions ?? {}, `The cluster options of transport ${transport.name}`);
    this.#ownPrefix = envelopePrefix(instanceId);
    this.#problems = new ThrottledLog(this.#options.warningInterval, () => this.#logger);
    this.#link = {
      instanceId,
      logger,
      receive: (payload, channel) => this.#onPayload(payload, channel),
      connected: () => this.#onConnected(),
      disconnected: (error) => this.#onDisconnected(error),
    };
  }

  /**
   * What this instance knows of the others' clients, when it can reach them: while the transport
   * is down, cluster-wide counts, ids and sends cover this instance alone (the replica is kept,
   * and brought up to date when the transport is back).
   */
  get reachable(): Replica {
    return this.#health === 'down' ? UNREACHABLE : this.replica;
  }

  /** False while the transport is down (the others cannot be reached). */
  get canReach(): boolean {
    return this.#health !== 'down';
  }

  /** True for the default transport: there is no one else, so nothing is encoded or sent. */
  get solo(): boolean {
    return this.#transport.solo === true;
  }

  /** Whether the transport reaches the other instances and keeps up right now. */
  get connected(): boolean {
    return this.#health === 'up';
  }

  get stats(): ClusterStats {
    return {
      pendingPublishes: this.#pendingPublishes,
      pendingBytes: this.#pendingBytes,
      droppedPublishes: this.#droppedPublishes,
      droppedMessages: this.#droppedMessages,
      rejectedMessages: this.#rejectedMessages,
      instances: this.#peers.size,
      syncedInstances: [...this.#peers.values()].filter((peer) => peer.synced).length,
    };
  }

  /** The ids of the other instances known to be alive. */
  instances(): string[] {
    return [...this.#peers.keys()];
  }

  async attach(): Promise<void> {
    this.#attached = true;
    if (this.#memory !== undefined) {
      // Entries past their ttl leave an in-memory history, and streams long unused go with them.
      const memory = this.#memory;
      const ttl = this.#history!.ttl;
      this.#expiry = setInterval(() => memory.expire(ttl), Math.min(ttl, 60_000));
      this.#expiry.unref();
    }
    await this.#transport.attach(this.#link);
    if (this.solo) return;
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatInterval);
    this.#heartbeat.unref();
    await this.#discover();
  }

  /** Waits (bounded) for the states of the instances already there, when the transport can count them. */
  async #discover(): Promise<void> {
    if (this.#health === 'down' || this.#transport.instances === undefined) return;
    const others = (await this.#bounded(this.#transport.instances()).catch(() => 1)) - 1;
    if (others <= 0) return;
    await new Promise<void>((resolve) => {
      const check = () => {
        if ([...this.#peers.values()].filter((peer) => peer.synced).length < others) return false;
        clearTimeout(timer);
        this.#discovered = undefined;
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.#discovered = undefined;
        resolve();
      }, this.#options.operationTimeout);
      timer.unref();
      this.#discovered = check;
      check();
    });
  }

  async detach(): Promise<void> {
    if (!this.#attached || this.#detached) return;
    clearInterval(this.#heartbeat);
    clearInterval(this.#expiry);
    if (!this.solo && this.#health !== 'down') {
      this.#queued.push({ to: undefined, packet: { type: 'bye' } });
      await this.#bounded(this.#flush()).catch(() => undefined);
    }
    this.#detached = true;
    for (const waiter of this.#waiters) this.#release(waiter);
    for (const [id, request] of this.#requests) this.#finish(id, request);
    await this.#transport.detach();
    this.#problems.flush();
  }

  /** Turns on the history (`BroadcastModule.forRoot({ history })`). */
  enableHistory(options: HistoryOptions): void {
    this.#history = options;
    if (this.#transport.history === undefined) this.#memory = this.#transport.memoryHistory ?? new MemoryHistory();
  }

  /** Whether `enableHistory` was called. */
  get keepsHistory(): boolean {
    return this.#history !== undefined;
  }

  /** Keeps an emit to a stream (a room, or everyone) in the history; says who delivers it. */
  keep(request: KeepRequest): KeepOutcome {
    const history = this.#history!;
    if (this.#memory !== undefined) {
      const position = this.#memory.append(request, history.size);
      const packet: KeptPacket = { stream: request.stream, offset: position.offset, epoch: position.epoch, body: request.body, except: request.except, gateway: request.gateway };
      if (!this.solo && !this.#detached) this.#queue({ type: 'kept', packet });
      return { kind: 'kept', packet };
    }
    if (this.#detached || this.#health === 'down' || this.#backlogFull(0)) {
      this.#broken.add(request.stream);
      return { kind: 'unkept' };
    }
    this.#keep.push(request);
    this.#schedule();
    return { kind: 'queued' };
  }

  /**
   * The entries of `stream` after `after`; `lost` when the history cannot say (gone, or the store
   * unreachable). Reads of one stream share one store read: those asked while one is in flight go
   * together once it is back (a herd of reconnecting clients costs a few reads, not one each).
   * Only reads asked before a store read is issued share it, so each covers everything up to the
   * moment its reader began holding the live messages.
   */
  read(stream: string, after: Position): Promise<ReadResult> {
    const history = this.#history!;
    if (this.#memory !== undefined) return Promise.resolve(this.#memory.read(stream, after, history.ttl));
    if (this.#health === 'down') return Promise.resolve({ kind: 'lost', epoch: '', offset: 0 });
    return new Promise((resolve) => {
      let reads = this.#reads.get(stream);
      if (reads === undefined) this.#reads.set(stream, (reads = { waiting: [], busy: false }));
      reads.waiting.push({ after, resolve });
      if (!reads.busy) {
        reads.busy = true;
        // The turn's other readers join this one.
        setImmediate(() => void this.#readTogether(stream, reads));
      }
    });
  }

  async #readTogether(stream: string, reads: PendingReads): Promise<void> {
    const history = this.#history!;
    const batch = reads.waiting;
    reads.waiting = [];
    const from = Math.min(...batch.map((reader) => reader.after.offset));
    let snapshot: HistorySnapshot | undefined;
    try {
      // At most `size + 1` batches: enough for `size + 1` messages however they were batched.
      if (this.#health !== 'down') snapshot = await this.#bounded(this.#transport.history!.read(stream, from, history.size + 1));
    } catch (error) {
      if (!(error instanceof OperationTimeout)) this.#problems.report('failed', this.#describeFailure(error, 'read the history of'));
    }
    const entries = snapshot === undefined ? [] : entriesOf(stream, snapshot, history.size);
    // More than `size` batches after the oldest reader: it is beyond the history, and the read may
    // not reach the others' entries; those the window still holds are read again, from further on.
    const truncated = snapshot !== undefined && snapshot.batches.length > history.size && entries.at(-1)?.offset !== snapshot.last;
    for (const reader of batch) {
      if (snapshot === undefined) {
        reader.resolve({ kind: 'lost', epoch: '', offset: 0 });
        continue;
      }
      const result = readKept(snapshot.epoch, snapshot.last, entries, reader.after, snapshot.now - history.ttl);
      if (result.kind === 'lost' && truncated && reader.after.offset > from && reader.after.offset >= snapshot.last - history.size) reads.waiting.push(reader);
      else reader.resolve(result);
    }
    if (reads.waiting.length > 0) return this.#readTogether(stream, reads);
    reads.busy = false;
    this.#reads.delete(stream);
  }

  /** Where `stream` is now: its epoch and last offset (`''` and 0 for a stream nothing was kept in, or when the store cannot say). */
  async head(stream: string): Promise<Position> {
    if (this.#memory !== undefined) return this.#memory.head(stream);
    if (this.#health === 'down') return NO_POSITION;
    try {
      return await this.#bounded(this.#transport.history!.head(stream));
    } catch (error) {
      if (!(error instanceof OperationTimeout)) this.#problems.report('failed', this.#describeFailure(error, 'read the head of'));
      return NO_POSITION;
    }
  }

  /** Sends a message to the matching clients of every other instance. */
  publish(packet: MessagePacket): void {
    if (this.solo || this.#detached) return;
    this.#queue({ type: 'broadcast', packet });
  }

  /**
   * Sends to the clients of `packet.clientIds` that other instances hold (and that match the
   * filter, which the replica knows); returns how many it found there.
   */
  sendTo(packet: MessagePacket & { readonly clientIds: readonly string[] }, matches: (client: { id: string; gateway: string; rooms: ReadonlySet<string> }) => boolean): number {
    if (this.solo || this.#detached) return 0;
    // Said now rather than dropped later: the caller learns these clients were not reached.
    if (this.#health === 'down' || this.#backlogFull(0)) {
      void this.#drop(1);
      return 0;
    }
    const byInstance = new Map<string, string[]>();
    for (const id of packet.clientIds) {
      const client = this.reachable.locate(id);
      if (client === undefined || !matches(client)) continue;
      const ids = byInstance.get(client.instance);
      if (ids === undefined) byInstance.set(client.instance, [id]);
      else ids.push(id);
    }
    let found = 0;
    for (const [instance, clientIds] of byInstance) {
      found += clientIds.length;
      this.#queueDirect(instance, { type: 'direct', packet: { ...packet, clientIds } });
    }
    return found;
  }

  /** A local client connected; resolves once every live instance knows it (bounded by `operationTimeout`). */
  clientAdded(client: ClientEntry): Promise<void> {
    return this.#delta({ type: 'added', seq: 0, client });
  }

  clientRemoved(id: string): Promise<void> {
    return this.#delta({ type: 'removed', seq: 0, id });
  }

  roomChanged(id: string, room: string, joined: boolean): Promise<void> {
    return this.#delta({ type: 'room', seq: 0, id, room, joined });
  }

  tracked(entry: PresenceEntry): Promise<void> {
    return this.#delta({ type: 'tracked', seq: 0, entry });
  }

  untracked(client: string, room: string): Promise<void> {
    return this.#delta({ type: 'untracked', seq: 0, client, room });
  }

  /**
   * Has every other live instance apply `operation` to its matching clients; resolves with how
   * many they matched, once all have answered — an instance that dies meanwhile is not waited
   * for, and after `operationTimeout` the answers so far count.
   */
  operate(filter: MessageFilter, operation: Operation): Promise<number> {
    if (this.solo || this.#detached || this.#health === 'down') return Promise.resolve(0);
    const pending = new Set(this.#peers.keys());
    if (pending.size === 0) return Promise.resolve(0);
    const id = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const request = this.#requests.get(id);
        if (request === undefined) return;
        this.#problems.report('late', (count) => ({
          level: 'warn',
          details: { transport: this.#transport.name, operation: operation.kind, instances: [...request.pending], count },
          message: `${plural(request.pending.size, 'instance')} did not confirm a cluster ${operation.kind} within ${this.#options.operationTimeout} ms${count === 1 ? '' : ` (${plural(count, 'operation')} since the last warning)`}; it resolved without them`,
        }));
        this.#finish(id, request);
      }, this.#options.operationTimeout);
      timer.unref();
      this.#requests.set(id, { pending, count: 0, resolve, timer });
      this.#queue({ type: 'operation', request: id, filter, operation });
    });
  }

  #delta(packet: Packet & { seq: number }): Promise<void> {
    if (this.solo || this.#detached) return DONE;
    const seq = ++this.#seq;
    this.#queue({ ...packet, seq } as Packet);
    // The others learn of it with the next publish; wait until they applied it, as registration promises.
    if (this.#health === 'down') return DONE;
    const peers = new Set([...this.#peers.values()].filter((peer) => peer.acked < seq).map((peer) => peer.id));
    if (peers.size === 0) return DONE;
    return new Promise((resolve) => {
      const waiter: Waiter = { seq, peers, resolve, timer: setTimeout(() => this.#release(waiter), this.#options.operationTimeout) };
      waiter.timer.unref();
      this.#waiters.add(waiter);
    });
  }

  #queue(packet: Packet): void {
    this.#queued.push({ to: undefined, packet });
    this.#schedule();
  }

  #queueDirect(instance: string, packet: Packet): void {
    this.#queued.push({ to: instance, packet });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => void this.#flush());
  }

  /**
   * What the turn queued, in as few envelopes as keep its order: a run of packets for every
   * instance is one publish, a run of packets for given instances one send each. Payloads leave
   * in order, so each instance receives this one's packets in the order they were sent.
   */
  #flush(): Promise<unknown> {
    this.#scheduled = false;
    const queued = this.#queued;
    this.#queued = [];
    const sent: Promise<unknown>[] = [];
    let run: Packet[] = [];
    let direct = new Map<string, Packet[]>();
    const publishRun = () => {
      if (run.length === 0) return;
      const packets = run;
      run = [];
      sent.push(this.#carry(packets, (payload) => this.#transport.publish(payload)));
    };
    const sendDirect = () => {
      for (const [instance, packets] of direct) sent.push(this.#carry(packets, (payload) => this.#transport.send(instance, payload)));
      direct = new Map();
    };
    for (const { to, packet } of queued) {
      if (to === undefined) {
        sendDirect();
        run.push(packet);
      } else {
        publishRun();
        const packets = direct.get(to);
        if (packets === undefined) direct.set(to, [packet]);
        else packets.push(packet);
      }
    }
    publishRun();
    sendDirect();
    if (this.#keep.length > 0) sent.push(this.#keepNow());
    return Promise.all(sent);
  }

  /** The turn's kept emits, in one call to the shared store (which publishes them to every instance). */
  #keepNow(): Promise<unknown> {
    const records = this.#keep;
    this.#keep = [];
    if (this.#health === 'down') {
      for (const record of records) this.#broken.add(record.stream);
      return this.#drop(records.length);
    }
    const { head, tail } = keptEnvelopeParts(this.#instanceId);
    const bytes = records.reduce((sum, record) => sum + record.body.length, 0);
    const store = this.#transport.history!;
    return this.#pending(bytes, () => store.keep(batchesOf(records), head, tail, this.#history!)).catch((error: unknown) => {
      if (this.#detached) return;
      // Whether or not the store kept them, their delivery is no longer sure: the history of these streams is not whole.
      for (const record of records) this.#broken.add(record.stream);
      if (error instanceof OperationTimeout) this.#degrade(`it did not keep ${plural(records.length, 'message')} within ${this.#options.operationTimeout} ms`);
      else this.#problems.report('failed', this.#describeFailure(error, 'keep'));
    });
  }

  /**
   * Calls the transport with `bytes` of payload, bounded by the operation timeout. It counts as
   * pending until the transport answers, not until the timeout: until then it holds the payload,
   * and the pending bound is about that memory.
   */
  #pending(bytes: number, call: () => Promise<void>): Promise<void> {
    this.#pendingPublishes++;
    this.#pendingBytes += bytes;
    let answer: Promise<void>;
    try {
      answer = call();
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      () => {
        this.#settled(bytes);
        this.#answered();
      },
      () => this.#settled(bytes),
    );
    return this.#bounded(answer);
  }

  /** Hands an envelope to the transport unless it is down or too much awaits it: then drops and counts. */
  #carry(packets: readonly Packet[], carry: (payload: string) => Promise<void>): Promise<unknown> {
    if (this.#health === 'down' || this.#backlogFull(0)) return this.#drop(packets.length);
    let payload: string;
    try {
      payload = encodeEnvelope(this.#instanceId, packets);
    } catch (error) {
      this.#problems.report('failed', this.#describeFailure(error, 'encode'));
      return this.#drop(packets.length);
    }
    const bytes = payload.length;
    if (this.#backlogFull(bytes)) return this.#drop(packets.length);
    return this.#pending(bytes, () => carry(payload)).catch((error: unknown) => {
      if (this.#detached) return;
      if (error instanceof OperationTimeout) {
        this.#degrade(`it did not take a publish within ${this.#options.operationTimeout} ms`);
        return;
      }
      // A publish cut off by a lost connection is the outage's, which the transport reports
      // around the same moment: decided once that report had its turn.
      setImmediate(() => {
        if (!this.#detached && this.#health !== 'down') this.#problems.report('failed', this.#describeFailure(error, 'publish'));
      });
    });
  }

  #backlogFull(bytes: number): boolean {
    const { maxPendingPublishes, maxPendingBytes } = this.#options;
    const pending = this.#pendingPublishes;
    // A publish larger than the byte bound still goes when nothing else is pending.
    if (pending < maxPendingPublishes && (pending === 0 || this.#pendingBytes + bytes <= maxPendingBytes)) return false;
    this.#degrade(`${plural(pending, 'publish', 'publishes')} (${plural(this.#pendingBytes, 'byte')}) await it, the most maxPendingPublishes (${maxPendingPublishes}) and maxPendingBytes (${maxPendingBytes}) allow`);
    return true;
  }

  #settled(bytes: number): void {
    this.#pendingPublishes--;
    this.#pendingBytes -= bytes;
  }

  #drop(messages: number): Promise<void> {
    this.#droppedPublishes++;
    this.#droppedMessages += messages;
    return DONE;
  }

  // ---------------------------------------------------------------------------------------------
  // What arrives

  #onPayload(payload: string, channel: Channel): void {
    // Inside the transport's socket handler: anything thrown here could crash the process.
    try {
      this.#receive(payload, channel);
    } catch (error) {
      this.#problems.report('receive', (count) => ({
        level: 'error',
        details: { err: error, transport: this.#transport.name, count },
        message: `Failed to handle ${plural(count, 'message')} from other instances; ${count === 1 ? 'it was' : 'they were'} dropped`,
      }));
    }
  }

  #receive(payload: string, channel: Channel): void {
    if (this.#detached) return;
    // Our own publishes may come back (Redis echoes them): skipped without parsing.
    if (payload.startsWith(this.#ownPrefix)) return;
    const decoded = decodeEnvelope(payload, channel);
    if (decoded.kind !== 'ok') {
      this.#rejectedMessages++;
      if (decoded.kind === 'invalid') this.#problems.report(`drop:${decoded.reason}`, this.#describeInvalid(decoded));
      else this.#problems.report('version', this.#describeVersion(decoded));
      return;
    }
    if (decoded.kept) {
      // Published by the shared store: every instance delivers it, its sender too, in the store's order.
      for (const packet of decoded.packets) if (packet.type === 'kept') this.#deliverKept(packet.packet, decoded.from);
      return;
    }
    if (decoded.from === this.#instanceId) return;
    const peer = this.#peerOf(decoded.from);
    let applied = false;
    for (const packet of decoded.packets) {
      try {
        if (this.#handle(peer, packet)) applied = true;
      } catch (error) {
        this.#problems.report('delivery', (count) => ({
          level: 'error',
          details: { err: error, transport: this.#transport.name, from: decoded.from, count },
          message: `Failed to apply ${plural(count, 'packet')} from instance ${decoded.from} (the last one); the others were applied`,
        }));
      }
    }
    if (applied && this.#peers.has(peer.id)) this.#queueDirect(peer.id, { type: 'applied', seq: peer.seq });
  }

  /** Applies one packet from `peer`; true when it applied a delta or a state (to be acknowledged). */
  #handle(peer: Peer, packet: Packet): boolean {
    switch (packet.type) {
      case 'broadcast':
      case 'direct':
        this.#local.deliver(packet.packet);
        return false;
      case 'kept':
        this.#local.deliverKept(packet.packet);
        return false;
      case 'added':
      case 'removed':
      case 'room':
      case 'tracked':
      case 'untracked':
        return this.#onDelta(peer, packet);
      case 'heartbeat':
        // Its state is still awaited (the request may have been lost in an outage), or deltas went missing.
        if (!peer.synced || (packet.seq > peer.seq && peer.buffered.length === 0)) this.#askState(peer);
        return false;
      case 'state':
        return this.#onState(peer, packet);
      case 'sync':
        this.#sendState(peer.id);
        return false;
      case 'applied':
        this.#onApplied(peer, packet.seq);
        return false;
      case 'operation':
        void this.#local.apply(packet.filter, packet.operation).then((count) => {
          if (!this.#detached && this.#peers.has(peer.id)) this.#queueDirect(peer.id, { type: 'done', request: packet.request, count });
        });
        return false;
      case 'done': {
        const request = this.#requests.get(packet.request);
        if (request === undefined || !request.pending.delete(peer.id)) return false;
        request.count += packet.count;
        if (request.pending.size === 0) this.#finish(packet.request, request);
        return false;
      }
      case 'bye':
        this.#removePeer(peer.id);
        return false;
    }
  }

  #deliverKept(packet: KeptPacket, from: string): void {
    try {
      this.#local.deliverKept(packet);
    } catch (error) {
      this.#problems.report('delivery', (count) => ({
        level: 'error',
        details: { err: error, transport: this.#transport.name, from, count },
        message: `Failed to deliver ${plural(count, 'kept message')} (the last from instance ${from}); the others were delivered`,
      }));
    }
  }

  #onDelta(peer: Peer, delta: Packet & { seq: number }): boolean {
    if (delta.seq <= peer.seq) return false;
    if (!peer.synced || delta.seq !== peer.seq + 1) {
      // Its state is awaited, or deltas went missing (an outage): keep this one for after the state.
      this.#askState(peer);
      if (peer.buffered.length >= MAX_BUFFERED) {
        peer.buffered = [];
        this.#askState(peer);
      }
      peer.buffered.push(delta);
      return false;
    }
    this.#apply(peer, delta);
    return true;
  }

  #apply(peer: Peer, delta: Packet & { seq: number }): void {
    peer.seq = delta.seq;
    switch (delta.type) {
      case 'added':
        this.replica.add(peer.id, delta.client);
        return;
      case 'removed': {
        this.replica.remove(delta.id);
        const changes = this.#presence.untrackClient(delta.id);
        if (changes.length > 0) this.#local.presenceChanged(changes);
        return;
      }
      case 'room':
        this.replica.room(peer.id, delta.id, delta.room, delta.joined);
        return;
      case 'tracked': {
        const changes = this.#presence.track(peer.id, delta.entry);
        if (changes.length > 0) this.#local.presenceChanged(changes);
        return;
      }
      case 'untracked': {
        const change = this.#presence.untrack(delta.client, delta.room);
        if (change !== undefined) this.#local.presenceChanged([change]);
        return;
      }
      default:
        return;
    }
  }

  #onState(peer: Peer, part: Extract<Packet, { type: 'state' }>): boolean {
    if (peer.state === undefined || peer.state.seq !== part.seq || peer.state.parts !== part.parts) peer.state = { seq: part.seq, parts: part.parts, received: new Map() };
    peer.state.received.set(part.part, part);
    if (peer.state.received.size < part.parts) return false;
    const parts = [...peer.state.received.values()];
    peer.state = undefined;
    // A state older than what was applied since (asked for twice, answered in order) would undo it.
    if (part.seq < peer.seq) return false;
    peer.syncAskedAt = 0;
    this.replica.reset(peer.id, parts.flatMap((each) => each.clients));
    const changes = this.#presence.replaceOwner(peer.id, parts.flatMap((each) => each.presence));
    peer.seq = part.seq;
    peer.synced = true;
    // What arrived while the state was on its way applies on top of it, in order, until a gap.
    const buffered = peer.buffered.sort((a, b) => a.seq - b.seq);
    peer.buffered = [];
    for (const delta of buffered) {
      if (delta.seq <= peer.seq) continue;
      if (delta.seq !== peer.seq + 1) {
        peer.buffered.push(delta);
        continue;
      }
      this.#apply(peer, delta);
    }
    if (changes.length > 0) this.#local.presenceChanged(changes);
    if (peer.buffered.length > 0) this.#askState(peer);
    this.#discovered?.();
    return true;
  }

  #onApplied(peer: Peer, seq: number): void {
    if (seq <= peer.acked) return;
    peer.acked = seq;
    for (const waiter of this.#waiters) {
      if (waiter.seq <= seq && waiter.peers.delete(peer.id) && waiter.peers.size === 0) this.#release(waiter);
    }
  }

  #peerOf(id: string): Peer {
    let peer = this.#peers.get(id);
    if (peer === undefined) {
      peer = { id, lastSeen: Date.now(), seq: 0, synced: false, syncAskedAt: 0, buffered: [], state: undefined, acked: 0 };
      this.#peers.set(id, peer);
      this.#askState(peer);
    }
    peer.lastSeen = Date.now();
    return peer;
  }

  #askState(peer: Peer): void {
    // Asked already and not long ago: the answer is on its way.
    if (peer.syncAskedAt !== 0 && Date.now() - peer.syncAskedAt < this.#options.operationTimeout) return;
    peer.syncAskedAt = Date.now();
    peer.synced = false;
    this.#queueDirect(peer.id, { type: 'sync' });
  }

  /** This instance's whole state, as of its last delta, to `instance` (in parts for a large one). */
  #sendState(instance: string): void {
    const clients = [...this.#local.clients()];
    const presence = [...this.#presence.entriesOf(this.#instanceId)];
    const parts = Math.max(1, Math.ceil(clients.length / STATE_PART), Math.ceil(presence.length / STATE_PART));
    for (let part = 0; part < parts; part++) {
      this.#queueDirect(instance, {
        type: 'state',
        seq: this.#seq,
        part,
        parts,
        clients: clients.slice(part * STATE_PART, (part + 1) * STATE_PART),
        presence: presence.slice(part * STATE_PART, (part + 1) * STATE_PART),
      });
    }
  }

  #removePeer(id: string): void {
    const peer = this.#peers.get(id);
    if (peer === undefined) return;
    this.#peers.delete(id);
    this.replica.drop(id);
    const changes = this.#presence.dropOwner(id);
    if (changes.length > 0) this.#local.presenceChanged(changes);
    for (const waiter of this.#waiters) if (waiter.peers.delete(id) && waiter.peers.size === 0) this.#release(waiter);
    for (const [request, pending] of this.#requests) if (pending.pending.delete(id) && pending.pending.size === 0) this.#finish(request, pending);
  }

  #beat(): void {
    if (this.#detached) return;
    this.#queue({ type: 'heartbeat', seq: this.#seq });
    // While this instance cannot hear anyone, silence says nothing about the others.
    if (this.#health === 'down') return;
    const deadline = Date.now() - this.#options.instanceTimeout;
    for (const peer of [...this.#peers.values()]) if (peer.lastSeen < deadline) this.#removePeer(peer.id);
  }

  #release(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiters.delete(waiter);
    waiter.resolve();
  }

  #finish(id: number, request: Request): void {
    clearTimeout(request.timer);
    this.#requests.delete(id);
    request.resolve(request.count);
  }

  // ---------------------------------------------------------------------------------------------
  // Health

  #onConnected(): void {
    if (this.#detached) return;
    if (this.#health !== 'down') return;
    if (this.#downReported) this.#recovered(true);
    this.#downReported = false;
    this.#health = 'up';
    // Whatever was published meanwhile is lost: everyone resends its state, and the others get a
    // grace period to be heard from before they are taken for dead.
    for (const peer of this.#peers.values()) {
      peer.lastSeen = Date.now();
      peer.syncAskedAt = 0;
      peer.synced = false;
    }
    this.#queue({ type: 'sync' });
    void this.#resetBroken();
  }

  /** The streams that lost emits meanwhile get a new epoch: a client that missed them learns it was not recovered. */
  async #resetBroken(): Promise<void> {
    const store = this.#transport.history;
    if (store === undefined || this.#history === undefined || this.#broken.size === 0) return;
    const streams = [...this.#broken];
    this.#broken.clear();
    for (const stream of streams) {
      await this.#bounded(store.reset(stream, this.#history)).catch((error: unknown) => {
        this.#broken.add(stream);
        this.#problems.report('failed', this.#describeFailure(error, 'reset the history of'));
      });
    }
  }

  #onDisconnected(error: unknown): void {
    if (this.#detached || this.#downReported) return;
    if (this.#health !== 'degraded') this.#troubleBegins();
    this.#health = 'down';
    this.#downReported = true;
    for (const waiter of this.#waiters) this.#release(waiter);
    this.#logger.error(
      { err: error, transport: this.#transport.name },
      `${this.#transport.name} is unreachable: local delivery continues, cross-instance delivery is paused until it returns`,
    );
  }

  #degrade(why: string): void {
    if (this.#health !== 'up') return;
    this.#troubleBegins();
    this.#health = 'degraded';
    const { maxPendingPublishes, maxPendingBytes } = this.#options;
    this.#logger.warn(
      { transport: this.#transport.name, pendingPublishes: this.#pendingPublishes, pendingBytes: this.#pendingBytes, maxPendingPublishes, maxPendingBytes },
      `${this.#transport.name} is degraded: ${why}. Local delivery continues; publishes beyond ${maxPendingPublishes} (or ${maxPendingBytes} bytes) awaiting it are dropped until it catches up`,
    );
  }

  /** The transport confirmed a publish: a degraded cluster recovers once nothing awaits it. */
  #answered(): void {
    if (this.#health !== 'degraded' || this.#pendingPublishes > 0) return;
    this.#recovered(false);
    this.#health = 'up';
  }

  #recovered(fromOutage: boolean): void {
    const publishes = this.#droppedPublishes - this.#droppedAtTrouble.publishes;
    const messages = this.#droppedMessages - this.#droppedAtTrouble.messages;
    const after = Date.now() - this.#troubleSince;
    const dropped = publishes === 0 ? 'nothing was dropped' : `${plural(messages, 'message')} in ${plural(publishes, 'publish', 'publishes')} did not reach other instances`;
    const name = this.#transport.name;
    this.#logger.info(
      { transport: name, droppedPublishes: publishes, droppedMessages: messages, durationMs: after },
      fromOutage
        ? `${name} is reachable again after ${after} ms: cross-instance delivery resumes; ${dropped}`
        : `${name} keeps up again after ${after} ms: cross-instance delivery is back to normal; ${dropped}`,
    );
  }

  #troubleBegins(): void {
    this.#troubleSince = Date.now();
    this.#droppedAtTrouble = { publishes: this.#droppedPublishes, messages: this.#droppedMessages };
  }

  /** `pending`, or a rejection with OperationTimeout after `operationTimeout`. */
  #bounded<T>(pending: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationTimeout()), this.#options.operationTimeout);
    });
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }

  #describeFailure(error: unknown, what: string): Describe {
    return (count) => ({
      level: 'error',
      details: { err: error, transport: this.#transport.name, count },
      message: `${this.#transport.name} failed to ${what} ${plural(count, 'envelope')} (${error instanceof Error ? error.message : String(error)}); ${count === 1 ? 'it was' : 'they were'} dropped`,
    });
  }

  #describeInvalid(decoded: Extract<Decoded, { kind: 'invalid' }>): Describe {
    return (count) => ({
      level: 'warn',
      details: { transport: this.#transport.name, reason: decoded.reason, from: decoded.from, count },
      message: count === 1
        ? `Dropped a message that is not a tonijs cluster envelope (${decoded.reason}, from instance ${decoded.from})`
        : `Dropped ${plural(count, 'message')} that are not tonijs cluster envelopes (${decoded.reason}) since the last warning; the last from instance ${decoded.from}`,
    });
  }

  #describeVersion(decoded: Extract<Decoded, { kind: 'version' }>): Describe {
    const advice = `this instance speaks version ${PROTOCOL_VERSION}. Run the same tonijs version on every instance.`;
    return (count) => ({
      level: 'warn',
      details: { transport: this.#transport.name, version: decoded.version, from: decoded.from, expected: PROTOCOL_VERSION, count },
      message: count === 1
        ? `Dropped packets of protocol version ${decoded.version} from instance ${decoded.from}; ${advice}`
        : `Dropped ${plural(count, 'message')} of other protocol versions since the last warning, the last of version ${decoded.version} from instance ${decoded.from}; ${advice}`,
    });
  }
}

class OperationTimeout extends Error {}

const UNREACHABLE = new Replica();
const NO_POSITION: Position = { epoch: '', offset: 0 };

const DONE = Promise.resolve();

function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** The turn's kept emits as runs of consecutive emits to one stream: their order across streams holds. */
function batchesOf(requests: readonly KeepRequest[]): KeptBatch[] {
  const batches: KeptBatch[] = [];
  let start = 0;
  for (let index = 1; index <= requests.length; index++) {
    if (index < requests.length && requests[index]!.stream === requests[start]!.stream) continue;
    batches.push(keptBatch(requests[start]!.stream, requests.slice(start, index)));
    start = index;
  }
  return batches;
}

/**
 * A store read's messages as entries, the oldest first, within the last `size` (a batch may reach
 * further back). A batch that cannot be read, or offsets that do not follow on, leave a gap: what
 * came before it is dropped, so that a reader who needed what the gap held is told it did not
 * recover (`readKept` wants the entries to start right after the reader's offset), while readers
 * past the gap still are.
 */
function entriesOf(stream: string, snapshot: HistorySnapshot, size: number): KeptEntry[] {
  const entries: KeptEntry[] = [];
  const oldest = snapshot.last - size;
  let next: number | undefined;
  for (const batch of snapshot.batches) {
    let data: unknown;
    try {
      data = batch.data === '' ? undefined : JSON.parse(batch.data);
    } catch {
      data = undefined;
    }
    const messages = Number.isFinite(batch.at) ? keptMessages(stream, batch.first, snapshot.epoch || 'none', data) : undefined;
    if (messages === undefined || (next !== undefined && batch.first !== next)) entries.length = 0;
    next = messages === undefined ? undefined : batch.first + messages.length;
    for (const message of messages ?? []) {
      if (message.offset <= oldest) continue;
      entries.push({ offset: message.offset, at: batch.at, body: message.body, except: message.except, gateway: message.gateway });
    }
  }
  return entries;
}
