import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import {
  type BroadcastPacket,
  type BroadcastTransport,
  type ClientFilter,
  type ClientRecord,
  type ClusterNode,
  type Room,
  matchesFilter,
} from '../broadcast/transport.js';
import { ToniError } from '../errors.js';
import type { ClientId } from '../websocket/client.js';
import {
  type Decoded,
  type DropReason,
  PROTOCOL_VERSION,
  type WirePacket,
  decodeClient,
  decodePackets,
  encodeClient,
  encodePackets,
  escapeName,
  ownEnvelopePrefix,
  toWire,
} from './codec.js';
import { IDS_PER_CALL, SCRIPTS } from './scripts.js';
import { type Describe, ThrottledLog, plural } from './throttled-log.js';

/** Options of `RedisTransport`. */
export interface RedisTransportOptions {
  /** `redis://[user:password@]host:port[/db]`; default `redis://127.0.0.1:6379`. Ignored when `client` is given. */
  url?: string | undefined;
  /**
   * An existing ioredis client to use for commands (a duplicate subscribes). toni never closes
   * a client it did not create. Give it `enableOfflineQueue: false` so calls fail fast while
   * Redis is down, and no `commandTimeout`, so a publish counts as pending until Redis answers
   * it; toni bounds every call by `operationTimeout` either way.
   */
  client?: Redis;
  /** Prefix of every key and channel; instances with the same prefix form one cluster. Default `tonijs`. */
  keyPrefix?: string;
  /** Milliseconds between this instance's liveness heartbeats. Default 2 000. */
  heartbeatInterval?: number;
  /** Milliseconds after its last heartbeat that a silent (killed) instance's clients drop out. Default 10 000. */
  instanceTimeout?: number;
  /** Milliseconds any Redis call may take before toni gives up on it and reports Redis degraded. Default 2 000. */
  operationTimeout?: number;
  /**
   * Publishes sent to Redis and not answered yet beyond which new ones are dropped (and counted)
   * instead of piling up in memory while Redis stalls. Default 1 000.
   */
  maxPendingPublishes?: number;
  /**
   * Bytes of publishes sent to Redis and not answered yet beyond which new ones are dropped. A
   * single publish larger than this is still sent when nothing else is pending. Default 8 MiB.
   */
  maxPendingBytes?: number;
  /**
   * Milliseconds between two log lines about the same kind of problem (messages from Redis that
   * do not decode, operations Redis rejects); each line counts the occurrences since the
   * previous one. Default 10 000.
   */
  warningInterval?: number;
}

/** What a `RedisTransport` has in flight and has dropped since it started, e.g. for metrics. */
export interface RedisTransportStats {
  /** Publishes sent to Redis that it has not answered yet. */
  readonly pendingPublishes: number;
  /** Their size in bytes. */
  readonly pendingBytes: number;
  /** Publishes dropped: while Redis was unreachable, or beyond `maxPendingPublishes` / `maxPendingBytes`. */
  readonly droppedPublishes: number;
  /** The broadcasts and direct sends those publishes carried. */
  readonly droppedMessages: number;
  /** Messages from Redis dropped because they were not toni's packets of this protocol version. */
  readonly rejectedMessages: number;
}

type Commands = Redis & {
  toniHeartbeat(instances: string, clients: string, rooms: string, id: string, ttl: number): Promise<number>;
  toniCount(instances: string, prefix: string, self: string, timeout: number, mode: 'all' | 'room', room: string): Promise<number>;
  toniFetch(instances: string, prefix: string, self: string, timeout: number): Promise<string[]>;
  toniLocate(instances: string, prefix: string, self: string, timeout: number, ...ids: string[]): Promise<(string | null)[]>;
  toniAdd(clients: string, rooms: string, id: string, value: string, ttl: number): Promise<number>;
  toniRemove(clients: string, rooms: string, id: string): Promise<number>;
  toniRoom(clients: string, rooms: string, id: string, room: string, joined: string, ttl: number): Promise<number>;
};

/** What the transport asks of Redis, as named in its logs. */
type Operation = 'publish' | 'sendToClients' | 'clientAdded' | 'clientRemoved' | 'roomChanged' | 'remoteCount' | 'remoteIds' | 'heartbeat' | 'register';

/** Kinds of recurring problem, each logged at most once per `warningInterval`. */
type Problem = `drop:${DropReason}` | 'version' | 'delivery' | 'receive' | 'subscription-error' | 'subscription-lost' | `rejected:${Operation}`;

/**
 * `up`: Redis answers. `degraded`: connected, but an operation timed out or publishes pile up
 * beyond the bound. `down`: the connection is lost.
 */
type Health = 'up' | 'degraded' | 'down';

/** Fields and values per HSET when registering every local client at once. */
const FIELDS_PER_CALL = 2 * IDS_PER_CALL;

class OperationTimeout extends Error {}

// ioredis types its re-export of redis-errors' ReplyError as `any`.
const ReplyErrorClass = ReplyError as abstract new (...args: never[]) => Error;

/**
 * Makes `BroadcastService` cluster-wide through Redis: broadcasts reach clients on every
 * instance with one publish per event-loop turn, `sendTo` is routed to the one instance that
 * holds the client, and counts, ids and rooms cover the cluster. Each instance keeps its
 * clients under keys that expire unless its heartbeat renews them, so a killed instance's
 * clients drop out within `instanceTimeout`; a clean `app.close()` removes them at once.
 *
 * Delivery across instances is at-most-once. While Redis is unreachable, local delivery goes
 * on, calls settle within `operationTimeout`, nothing is queued, and the outage is logged once;
 * on reconnection the instance re-subscribes and registers its clients again. While Redis is
 * slow, at most `maxPendingPublishes` / `maxPendingBytes` of publishes wait for it; beyond,
 * publishes are dropped and counted, and the degraded state is logged once, with the count
 * when it ends. Nothing received from Redis can throw into the application: a message that is
 * not toni's is dropped with a rate-limited warning.
 *
 * @example
 * @Module({
 *   imports: [BroadcastModule.forRoot({ transport: new RedisTransport({ url: process.env.REDIS_URL }) })],
 *   providers: [ChatGateway],
 * })
 * export class AppModule {}
 */
export class RedisTransport implements BroadcastTransport {
  readonly #options: Required<Omit<RedisTransportOptions, 'client' | 'url'>> & Pick<RedisTransportOptions, 'client' | 'url'>;
  readonly #problems: ThrottledLog<Problem>;
  #commands: Commands | undefined;
  #subscriber: Redis | undefined;
  #node: ClusterNode | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #health: Health = 'up';
  #troubleSince = 0;
  #droppedBeforeTrouble = { publishes: 0, messages: 0 };
  #attached = false;
  #detached = false;
  #broadcasts: WirePacket[] = [];
  #direct = new Map<string, WirePacket[]>();
  #flushScheduled = false;
  #ownPrefix: Buffer = Buffer.alloc(0);
  #broadcastChannel: Buffer = Buffer.alloc(0);
  #pendingPublishes = 0;
  #pendingBytes = 0;
  #droppedPublishes = 0;
  #droppedMessages = 0;
  #rejectedMessages = 0;
  #outages = 0;
  /** When the subscription was lost while Redis was otherwise up, and the outage count then. */
  #subscriptionLost: { at: number; outages: number } | undefined;

  constructor(options: RedisTransportOptions = {}) {
    this.#options = {
      keyPrefix: 'tonijs',
      heartbeatInterval: 2_000,
      instanceTimeout: 10_000,
      operationTimeout: 2_000,
      maxPendingPublishes: 1_000,
      maxPendingBytes: 8 * 1024 * 1024,
      warningInterval: 10_000,
      ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
    };
    for (const name of ['heartbeatInterval', 'instanceTimeout', 'operationTimeout', 'warningInterval'] as const) {
      const value = this.#options[name];
      if (!Number.isInteger(value) || value < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport option ${name} must be a positive integer of milliseconds, got ${String(value)}.`);
    }
    for (const name of ['maxPendingPublishes', 'maxPendingBytes'] as const) {
      const value = this.#options[name];
      if (!Number.isSafeInteger(value) || value < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport option ${name} must be a positive integer, got ${String(value)}.`);
    }
    if (this.#options.heartbeatInterval >= this.#options.instanceTimeout) {
      throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport heartbeatInterval (${this.#options.heartbeatInterval}) must be shorter than instanceTimeout (${this.#options.instanceTimeout}).`);
    }
    this.#problems = new ThrottledLog(this.#options.warningInterval, () => this.#node?.logger);
  }

  /** Whether Redis is reachable and answering in time right now. */
  get connected(): boolean {
    return this.#commands?.status === 'ready' && this.#health === 'up';
  }

  /**
   * Publishes awaiting Redis and what was dropped so far.
   *
   * @example
   * const { pendingPublishes, droppedMessages } = transport.stats;
   */
  get stats(): RedisTransportStats {
    return {
      pendingPublishes: this.#pendingPublishes,
      pendingBytes: this.#pendingBytes,
      droppedPublishes: this.#droppedPublishes,
      droppedMessages: this.#droppedMessages,
      rejectedMessages: this.#rejectedMessages,
    };
  }

  async attach(node: ClusterNode): Promise<void> {
    if (this.#attached) throw new ToniError('TONI_ERR_APP_STATE', 'A RedisTransport serves one application; create one per application.');
    this.#attached = true;
    this.#node = node;
    this.#ownPrefix = Buffer.from(ownEnvelopePrefix(node.instanceId));
    this.#broadcastChannel = Buffer.from(this.#channel('broadcast'));
    const { client, url, operationTimeout } = this.#options;
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // No commandTimeout: ioredis keeps a timed-out command queued until Redis answers, so a
      // publish stays pending (and counted against maxPending*) until then. #bounded gives up
      // on it for the caller after operationTimeout.
      connectTimeout: operationTimeout,
      enableAutoPipelining: true,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    };
    const commands = (client ?? (url === undefined ? new Redis(options) : new Redis(url, options))) as Commands;
    for (const [name, script] of Object.entries(SCRIPTS)) commands.defineCommand(name, script);
    const subscriber = commands.duplicate({ lazyConnect: true, enableOfflineQueue: true, enableAutoPipelining: false, commandTimeout: undefined, maxRetriesPerRequest: null });
    this.#commands = commands;
    this.#subscriber = subscriber;

    commands.on('error', this.#onError);
    subscriber.on('error', this.#onSubscriberError);
    commands.on('close', this.#onClose);
    commands.on('ready', this.#onReady);
    subscriber.on('messageBuffer', this.#onMessage);
    subscriber.on('close', this.#onSubscriberClose);
    subscriber.on('ready', this.#onSubscriberReady);

    void subscriber.subscribe(this.#channel('broadcast'), this.#channel(`i:${node.instanceId}`)).catch(this.#onSubscriberError);
    if (client === undefined || client.status === 'wait') {
      const ready = await this.#bounded(commands.connect()).then(() => true, () => false);
      if (!ready) this.#reportDown(new Error(`no answer within ${operationTimeout} ms`));
    }
    if (subscriber.status === 'wait') void subscriber.connect().catch(this.#onSubscriberError);
    if (commands.status === 'ready') await this.#registerAll();
    this.#heartbeat = setInterval(() => void this.#beat(), this.#options.heartbeatInterval);
    this.#heartbeat.unref();
  }

  async detach(): Promise<void> {
    clearInterval(this.#heartbeat);
    const commands = this.#commands;
    const subscriber = this.#subscriber;
    if (commands === undefined || subscriber === undefined) return;
    this.#flush();
    this.#detached = true;
    if (commands.status === 'ready') {
      const id = this.#node!.instanceId;
      await this.#bounded(commands.multi().zrem(this.#key('instances'), id).del(this.#clientsKey(id), this.#roomsKey(id)).exec()).catch(() => undefined);
    }
    subscriber.off('messageBuffer', this.#onMessage);
    subscriber.off('close', this.#onSubscriberClose);
    subscriber.off('ready', this.#onSubscriberReady);
    subscriber.disconnect();
    if (this.#options.client === undefined) {
      await this.#bounded(commands.quit()).catch(() => undefined);
      commands.disconnect();
    }
    commands.off('error', this.#onError);
    commands.off('close', this.#onClose);
    commands.off('ready', this.#onReady);
    // What was counted but not yet logged is logged now, not lost with the instance.
    this.#problems.flush();
  }

  async publish(packet: BroadcastPacket): Promise<void> {
    if (this.#detached) return;
    this.#broadcasts.push(toWire(packet));
    this.#scheduleFlush();
  }

  async sendToClients(packet: BroadcastPacket & { readonly clientIds: readonly ClientId[] }): Promise<number> {
    if (this.#backlogFull(0)) {
      // Said now rather than dropped later: the caller learns these clients were not reached.
      this.#drop(1);
      return 0;
    }
    const chunks: ClientId[][] = [];
    for (let start = 0; start < packet.clientIds.length; start += IDS_PER_CALL) chunks.push(packet.clientIds.slice(start, start + IDS_PER_CALL));
    const answers = await Promise.all(chunks.map((chunk) => this.#call('sendToClients', (commands) => commands.toniLocate(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout, ...chunk), [])));
    const byInstance = new Map<string, ClientId[]>();
    chunks.forEach((chunk, at) => {
      const located = answers[at]!;
      chunk.forEach((clientId, index) => {
        const owner = located[2 * index];
        const record = owner == null ? undefined : decodeClient(clientId, located[2 * index + 1] ?? '');
        // Filtered here, where the registry knows each client's rooms and gateway, so the count is exact.
        if (owner == null || record === undefined || !matchesFilter(record, packet)) return;
        const ids = byInstance.get(owner) ?? [];
        ids.push(clientId);
        byInstance.set(owner, ids);
      });
    });
    let found = 0;
    for (const [instance, clientIds] of byInstance) {
      found += clientIds.length;
      const queue = this.#direct.get(instance) ?? [];
      queue.push(toWire({ ...packet, clientIds }));
      this.#direct.set(instance, queue);
    }
    if (found > 0) this.#scheduleFlush();
    return found;
  }

  async clientAdded(client: ClientRecord): Promise<void> {
    const id = this.#node!.instanceId;
    await this.#call('clientAdded', (commands) => commands.toniAdd(this.#clientsKey(id), this.#roomsKey(id), client.id, encodeClient(client), this.#ttl()), 0);
  }

  async clientRemoved(clientId: ClientId): Promise<void> {
    const id = this.#node!.instanceId;
    await this.#call('clientRemoved', (commands) => commands.toniRemove(this.#clientsKey(id), this.#roomsKey(id), clientId), 0);
  }

  async roomChanged(clientId: ClientId, room: Room, joined: boolean): Promise<void> {
    const id = this.#node!.instanceId;
    await this.#call('roomChanged', (commands) => commands.toniRoom(this.#clientsKey(id), this.#roomsKey(id), clientId, escapeName(room), joined ? '1' : '0', this.#ttl()), 0);
  }

  async remoteCount(filter: ClientFilter): Promise<number> {
    const simple = filter.except === undefined && filter.gateway === undefined && (filter.rooms === undefined || filter.rooms.length === 1);
    if (simple) {
      const room = filter.rooms?.[0];
      return this.#call('remoteCount', (commands) => commands.toniCount(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout, room === undefined ? 'all' : 'room', room === undefined ? '' : escapeName(room)), 0);
    }
    return (await this.#remoteClients('remoteCount', filter)).length;
  }

  async remoteIds(filter: ClientFilter): Promise<ClientId[]> {
    return this.#remoteClients('remoteIds', filter);
  }

  async #remoteClients(operation: Operation, filter: ClientFilter): Promise<ClientId[]> {
    const flat = await this.#call(operation, (commands) => commands.toniFetch(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout), []);
    const ids: ClientId[] = [];
    for (let index = 0; index + 1 < flat.length; index += 2) {
      const record = decodeClient(flat[index]!, flat[index + 1]!);
      if (record !== undefined && matchesFilter(record, filter)) ids.push(record.id);
    }
    return ids;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  /** One publish per channel per turn, carrying every packet of the turn. */
  #flush(): void {
    this.#flushScheduled = false;
    const broadcasts = this.#broadcasts;
    const direct = this.#direct;
    this.#broadcasts = [];
    this.#direct = new Map();
    if (this.#commands === undefined) return;
    if (broadcasts.length > 0) this.#publishNow(this.#channel('broadcast'), broadcasts);
    for (const [instance, packets] of direct) this.#publishNow(this.#channel(`i:${instance}`), packets);
  }

  /** Publishes unless Redis is unreachable or the publishes awaiting it are at the bound: then drops and counts. */
  #publishNow(channel: string, packets: readonly WirePacket[]): void {
    const commands = this.#commands!;
    if (commands.status !== 'ready' || this.#backlogFull(0)) {
      this.#drop(packets.length);
      return;
    }
    const payload = encodePackets(this.#node!.instanceId, packets);
    const bytes = Buffer.byteLength(payload);
    if (this.#backlogFull(bytes)) {
      this.#drop(packets.length);
      return;
    }
    this.#pendingPublishes++;
    this.#pendingBytes += bytes;
    const reply = commands.publish(channel, payload);
    // Settled by Redis's answer (or the connection's end), not by operationTimeout: until then
    // ioredis holds the payload, and the bound is about that memory.
    reply.then(
      () => {
        this.#settled(bytes);
        this.#answered();
      },
      () => this.#settled(bytes),
    );
    void this.#call('publish', () => reply, 0);
  }

  /** Whether a publish of `bytes` more must be dropped; entering that state is logged once. */
  #backlogFull(bytes: number): boolean {
    const { maxPendingPublishes, maxPendingBytes } = this.#options;
    const pending = this.#pendingPublishes;
    // A publish larger than the byte bound still goes when nothing else is pending.
    if (pending < maxPendingPublishes && (pending === 0 || this.#pendingBytes + bytes <= maxPendingBytes)) return false;
    this.#degrade(`${plural(pending, 'publish', 'publishes')} (${plural(this.#pendingBytes, 'byte')}) await Redis, the most maxPendingPublishes (${maxPendingPublishes}) and maxPendingBytes (${maxPendingBytes}) allow`);
    return true;
  }

  #settled(bytes: number): void {
    this.#pendingPublishes--;
    this.#pendingBytes -= bytes;
  }

  #drop(messages: number): void {
    this.#droppedPublishes++;
    this.#droppedMessages += messages;
  }

  readonly #onMessage = (channel: Buffer, payload: Buffer): void => {
    // This runs inside ioredis's socket handler: anything thrown here would crash the process.
    try {
      this.#receive(channel, payload);
    } catch (error) {
      this.#problems.report('receive', (count) => ({
        level: 'error',
        details: { err: error, transport: 'redis', count },
        message: `Failed to handle ${plural(count, 'message')} from Redis; ${count === 1 ? 'it was' : 'they were'} dropped`,
      }));
    }
  };

  #receive(channel: Buffer, payload: Buffer): void {
    const node = this.#node;
    if (node === undefined) return;
    // Our own broadcasts come back on the shared channel: skip them without parsing.
    if (payload.subarray(0, this.#ownPrefix.length).equals(this.#ownPrefix)) return;
    const decoded = decodePackets(payload, channel.equals(this.#broadcastChannel) ? 'broadcast' : 'direct');
    if (decoded.kind !== 'ok') {
      this.#rejectedMessages++;
      if (decoded.kind === 'invalid') this.#problems.report(`drop:${decoded.reason}`, describeInvalid(decoded));
      else this.#problems.report('version', describeVersion(decoded));
      return;
    }
    if (decoded.from === node.instanceId) return;
    for (const packet of decoded.packets) {
      try {
        node.deliver(packet);
      } catch (error) {
        this.#problems.report('delivery', (count) => ({
          level: 'error',
          details: { err: error, transport: 'redis', from: decoded.from, count },
          message: `Failed to deliver ${plural(count, 'packet')} from Redis to this instance's clients (the last from instance ${decoded.from}); the other packets were delivered`,
        }));
      }
    }
  }

  readonly #onError = (error: unknown): void => {
    this.#reportDown(error);
  };

  readonly #onClose = (): void => {
    if (!this.#detached) this.#reportDown(new Error('the connection to Redis closed'));
  };

  readonly #onReady = (): void => {
    this.#recover();
  };

  /** Only the subscription failing (commands go on) is said here; an outage is said by #reportDown. */
  readonly #onSubscriberError = (error: unknown): void => {
    if (this.#detached || this.#health === 'down') return;
    this.#problems.report('subscription-error', (count) => ({
      level: 'warn',
      details: { err: error, transport: 'redis', count },
      message: `The subscription to Redis failed${count === 1 ? '' : ` ${plural(count, 'time')}`} (${error instanceof Error ? error.message : String(error)}); until it is back, what other instances publish does not reach this one`,
    }));
  };

  readonly #onSubscriberClose = (): void => {
    if (this.#health !== 'down') this.#subscriptionLost ??= { at: Date.now(), outages: this.#outages };
  };

  /**
   * The subscription can drop while commands go on, e.g. when Redis disconnects a subscriber
   * that fell behind (its `client-output-buffer-limit pubsub`): what was published meanwhile
   * never reached this instance. An outage says so already; this says it when nothing else did.
   */
  readonly #onSubscriberReady = (): void => {
    const lost = this.#subscriptionLost;
    this.#subscriptionLost = undefined;
    if (lost === undefined || this.#detached || lost.outages !== this.#outages) return;
    const after = Date.now() - lost.at;
    this.#problems.report('subscription-lost', (count) => ({
      level: 'warn',
      details: { transport: 'redis', durationMs: after, count },
      message: `The subscription to Redis was lost ${count === 1 ? 'once' : plural(count, 'time')} while Redis stayed reachable (the last for ${after} ms), e.g. because Redis disconnected this subscriber for falling behind (client-output-buffer-limit pubsub); what other instances published meanwhile did not reach this one`,
    }));
  };

  #reportDown(error: unknown): void {
    if (this.#health === 'down') return;
    if (this.#health === 'up') this.#troubleBegins();
    this.#health = 'down';
    this.#outages++;
    this.#node?.logger.error({ err: error, transport: 'redis' }, 'Redis is unreachable: local delivery continues, cross-instance delivery is paused until it returns');
  }

  /** Connected, but Redis does not keep up: said once, until it does again. */
  #degrade(why: string): void {
    if (this.#health !== 'up') return;
    this.#troubleBegins();
    this.#health = 'degraded';
    const { maxPendingPublishes, maxPendingBytes } = this.#options;
    this.#node?.logger.warn(
      { transport: 'redis', pendingPublishes: this.#pendingPublishes, pendingBytes: this.#pendingBytes, maxPendingPublishes, maxPendingBytes },
      `Redis is degraded: ${why}. Local delivery continues; publishes beyond ${maxPendingPublishes} (or ${maxPendingBytes} bytes) awaiting Redis are dropped until it catches up`,
    );
  }

  /** Redis answered: a degraded transport recovers once nothing it published awaits an answer. */
  #answered(): void {
    if (this.#health === 'up' || (this.#health === 'degraded' && this.#pendingPublishes > 0)) return;
    this.#recover();
  }

  #recover(): void {
    if (this.#health === 'up') return;
    const wasDown = this.#health === 'down';
    this.#health = 'up';
    const publishes = this.#droppedPublishes - this.#droppedBeforeTrouble.publishes;
    const messages = this.#droppedMessages - this.#droppedBeforeTrouble.messages;
    const after = Date.now() - this.#troubleSince;
    const dropped = publishes === 0 ? 'nothing was dropped' : `${plural(messages, 'message')} in ${plural(publishes, 'publish', 'publishes')} did not reach other instances`;
    this.#node?.logger.info(
      { transport: 'redis', droppedPublishes: publishes, droppedMessages: messages, durationMs: after },
      wasDown
        ? `Redis is reachable again after ${after} ms: cross-instance broadcasting resumes; ${dropped}`
        : `Redis keeps up again after ${after} ms: cross-instance delivery is back to normal; ${dropped}`,
    );
    if (wasDown) void this.#registerAll();
  }

  #troubleBegins(): void {
    this.#troubleSince = Date.now();
    this.#droppedBeforeTrouble = { publishes: this.#droppedPublishes, messages: this.#droppedMessages };
  }

  /** Heartbeat: renews this instance's keys; if they were lost (Redis restarted), registers again. */
  async #beat(): Promise<void> {
    const id = this.#node!.instanceId;
    const present = await this.#call('heartbeat', (commands) => commands.toniHeartbeat(this.#key('instances'), this.#clientsKey(id), this.#roomsKey(id), id, this.#ttl()), -1);
    if (present === 0 && hasAny(this.#node!.localClients())) await this.#registerAll();
  }

  /** Writes every local client and room count afresh. */
  async #registerAll(): Promise<void> {
    const node = this.#node!;
    const id = node.instanceId;
    const clients: string[] = [];
    const rooms = new Map<Room, number>();
    for (const client of node.localClients()) {
      clients.push(client.id, encodeClient(client));
      for (const room of client.rooms) {
        const name = escapeName(room);
        rooms.set(name, (rooms.get(name) ?? 0) + 1);
      }
    }
    const counts = [...rooms].flatMap(([room, count]) => [room, String(count)]);
    await this.#call('register', async (commands) => {
      const transaction = commands.multi().del(this.#clientsKey(id), this.#roomsKey(id));
      // In slices: one call with every client's fields as arguments could exceed what a call takes.
      for (let start = 0; start < clients.length; start += FIELDS_PER_CALL) transaction.hset(this.#clientsKey(id), ...clients.slice(start, start + FIELDS_PER_CALL));
      for (let start = 0; start < counts.length; start += FIELDS_PER_CALL) transaction.hset(this.#roomsKey(id), ...counts.slice(start, start + FIELDS_PER_CALL));
      transaction.pexpire(this.#clientsKey(id), this.#ttl()).pexpire(this.#roomsKey(id), this.#ttl());
      await transaction.exec();
      return commands.toniHeartbeat(this.#key('instances'), this.#clientsKey(id), this.#roomsKey(id), id, this.#ttl());
    }, 0);
  }

  /**
   * Runs a Redis call; never rejects, never outlasts `operationTimeout`. What went wrong decides
   * what is reported: Redis rejecting the call (a script error) is a failed operation, logged as
   * such; no answer in time means Redis is degraded; a connection error means it is unreachable.
   */
  async #call<T>(operation: Operation, run: (commands: Commands) => Promise<T>, fallback: T): Promise<T> {
    const commands = this.#commands;
    // After detach (the application closed) calls quietly do nothing: that is not an outage.
    if (commands === undefined || this.#detached || commands.status !== 'ready') return fallback;
    try {
      const result = await this.#bounded(run(commands));
      this.#answered();
      return result;
    } catch (error) {
      if (this.#detached) return fallback;
      if (error instanceof ReplyErrorClass) {
        this.#answered();
        this.#problems.report(`rejected:${operation}`, describeRejection(operation, error));
      } else if (error instanceof OperationTimeout || (error instanceof Error && error.message === 'Command timed out')) {
        this.#degrade(`it did not answer ${operation} within ${this.#options.operationTimeout} ms`);
      } else {
        this.#reportDown(error);
      }
      return fallback;
    }
  }

  /** `pending`, or a rejection with OperationTimeout after `operationTimeout`. */
  #bounded<T>(pending: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationTimeout(`no answer within ${this.#options.operationTimeout} ms`)), this.#options.operationTimeout);
    });
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }

  #ttl(): number {
    return this.#options.instanceTimeout;
  }

  #key(name: string): string {
    return `${this.#options.keyPrefix}:${name}`;
  }

  #channel(name: string): string {
    return `${this.#options.keyPrefix}:ch:${name}`;
  }

  #clientsKey(instanceId: string): string {
    return `${this.#options.keyPrefix}:i:${instanceId}:clients`;
  }

  #roomsKey(instanceId: string): string {
    return `${this.#options.keyPrefix}:i:${instanceId}:rooms`;
  }
}

function describeInvalid(decoded: Extract<Decoded, { kind: 'invalid' }>): Describe {
  return (count) => ({
    level: 'warn',
    details: { transport: 'redis', reason: decoded.reason, from: decoded.from, count },
    message: count === 1
      ? `Dropped a message from Redis that is not a toni packet (${decoded.reason}, from instance ${decoded.from})`
      : `Dropped ${plural(count, 'message')} from Redis that are not toni packets (${decoded.reason}) since the last warning; the last from instance ${decoded.from}`,
  });
}

function describeVersion(decoded: Extract<Decoded, { kind: 'version' }>): Describe {
  const advice = `this instance speaks version ${PROTOCOL_VERSION}. Run the same toni version on every instance.`;
  return (count) => ({
    level: 'warn',
    details: { transport: 'redis', version: decoded.version, from: decoded.from, expected: PROTOCOL_VERSION, count },
    message: count === 1
      ? `Dropped packets of protocol version ${decoded.version} from instance ${decoded.from}; ${advice}`
      : `Dropped ${plural(count, 'message')} of other protocol versions since the last warning, the last of version ${decoded.version} from instance ${decoded.from}; ${advice}`,
  });
}

function describeRejection(operation: Operation, error: Error): Describe {
  return (count) => ({
    level: 'error',
    details: { err: error, transport: 'redis', operation, count },
    message: `Redis rejected ${plural(count, `${operation} call`)} (${count === 1 ? '' : 'the last: '}${error.message}); Redis itself is reachable, so this is not an outage: ${count === 1 ? 'the call was' : 'the calls were'} skipped`,
  });
}

function hasAny(items: Iterable<unknown>): boolean {
  for (const _ of items) return true;
  return false;
}
