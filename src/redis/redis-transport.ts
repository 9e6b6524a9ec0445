import { Redis, type RedisOptions } from 'ioredis';
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
import { decodePackets, encodePackets, ownEnvelopePrefix, type WirePacket, PROTOCOL_VERSION, toWire } from './codec.js';
import { SCRIPTS } from './scripts.js';

/** Options of `RedisTransport`. */
export interface RedisTransportOptions {
  /** `redis://[user:password@]host:port[/db]`; default `redis://127.0.0.1:6379`. Ignored when `client` is given. */
  url?: string | undefined;
  /**
   * An existing ioredis client to use for commands (a duplicate subscribes). toni never closes
   * a client it did not create. Give it `enableOfflineQueue: false` so calls fail fast while
   * Redis is down; toni bounds every call by `operationTimeout` either way.
   */
  client?: Redis;
  /** Prefix of every key and channel; instances with the same prefix form one cluster. Default `tonijs`. */
  keyPrefix?: string;
  /** Milliseconds between this instance's liveness heartbeats. Default 2 000. */
  heartbeatInterval?: number;
  /** Milliseconds after its last heartbeat that a silent (killed) instance's clients drop out. Default 10 000. */
  instanceTimeout?: number;
  /** Milliseconds any Redis call may take before toni gives up on it. Default 2 000. */
  operationTimeout?: number;
}

type Commands = Redis & {
  toniHeartbeat(instances: string, clients: string, rooms: string, id: string, ttl: number): Promise<number>;
  toniCount(instances: string, prefix: string, self: string, timeout: number, room: string): Promise<number>;
  toniFetch(instances: string, prefix: string, self: string, timeout: number): Promise<string[]>;
  toniLocate(instances: string, prefix: string, self: string, timeout: number, ...ids: string[]): Promise<(string | null)[]>;
  toniAdd(clients: string, rooms: string, id: string, value: string, ttl: number): Promise<number>;
  toniRemove(clients: string, rooms: string, id: string): Promise<number>;
  toniRoom(clients: string, rooms: string, id: string, room: string, joined: string, ttl: number): Promise<number>;
};

/**
 * Makes `BroadcastService` cluster-wide through Redis: broadcasts reach clients on every
 * instance with one publish per event-loop turn, `sendTo` is routed to the one instance that
 * holds the client, and counts, ids and rooms cover the cluster. Each instance keeps its
 * clients under keys that expire unless its heartbeat renews them, so a killed instance's
 * clients drop out within `instanceTimeout`; a clean `app.close()` removes them at once.
 *
 * While Redis is unreachable, local delivery goes on, calls settle within `operationTimeout`,
 * nothing is queued, and the outage is logged once; on reconnection the instance re-subscribes
 * and registers its clients again. Delivery across instances is at-most-once.
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
  #commands: Commands | undefined;
  #subscriber: Redis | undefined;
  #node: ClusterNode | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #down = false;
  #attached = false;
  #detached = false;
  #broadcasts: WirePacket[] = [];
  #direct = new Map<string, WirePacket[]>();
  #flushScheduled = false;
  readonly #versionWarnings = new Set<string>();
  #ownPrefix: Buffer = Buffer.alloc(0);

  constructor(options: RedisTransportOptions = {}) {
    this.#options = {
      keyPrefix: 'tonijs',
      heartbeatInterval: 2_000,
      instanceTimeout: 10_000,
      operationTimeout: 2_000,
      ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
    };
    for (const name of ['heartbeatInterval', 'instanceTimeout', 'operationTimeout'] as const) {
      const value = this.#options[name];
      if (!Number.isInteger(value) || value < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport option ${name} must be a positive integer of milliseconds, got ${String(value)}.`);
    }
    if (this.#options.heartbeatInterval >= this.#options.instanceTimeout) {
      throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport heartbeatInterval (${this.#options.heartbeatInterval}) must be shorter than instanceTimeout (${this.#options.instanceTimeout}).`);
    }
  }

  /** Whether Redis is reachable right now. */
  get connected(): boolean {
    return this.#commands?.status === 'ready' && !this.#down;
  }

  async attach(node: ClusterNode): Promise<void> {
    if (this.#attached) throw new ToniError('TONI_ERR_APP_STATE', 'A RedisTransport serves one application; create one per application.');
    this.#attached = true;
    this.#node = node;
    this.#ownPrefix = Buffer.from(ownEnvelopePrefix(node.instanceId));
    const { client, url, operationTimeout } = this.#options;
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: operationTimeout,
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
    subscriber.on('error', this.#onError);
    commands.on('close', this.#onClose);
    commands.on('ready', this.#onReady);
    subscriber.on('messageBuffer', this.#onMessage);

    void subscriber.subscribe(this.#channel('broadcast'), this.#channel(`i:${node.instanceId}`)).catch(this.#onError);
    if (client === undefined || client.status === 'wait') {
      const ready = await this.#bounded(commands.connect().then(() => true, () => false), false);
      if (!ready) this.#reportDown(new Error(`no answer within ${operationTimeout} ms`));
    }
    if (subscriber.status === 'wait') void subscriber.connect().catch(this.#onError);
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
      await this.#bounded(commands.multi().zrem(this.#key('instances'), id).del(this.#clientsKey(id), this.#roomsKey(id)).exec(), null);
    }
    subscriber.off('messageBuffer', this.#onMessage);
    subscriber.disconnect();
    if (this.#options.client === undefined) {
      await this.#bounded(commands.quit().catch(() => undefined), undefined);
      commands.disconnect();
    }
    commands.off('error', this.#onError);
    commands.off('close', this.#onClose);
    commands.off('ready', this.#onReady);
  }

  async publish(packet: BroadcastPacket): Promise<void> {
    if (this.#detached) return;
    this.#broadcasts.push(toWire(packet));
    this.#scheduleFlush();
  }

  async sendToClients(packet: BroadcastPacket & { readonly clientIds: readonly ClientId[] }): Promise<number> {
    const located = await this.#call((commands) => commands.toniLocate(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout, ...packet.clientIds), []);
    const byInstance = new Map<string, ClientId[]>();
    packet.clientIds.forEach((clientId, index) => {
      const owner = located[2 * index];
      const record = owner == null ? undefined : decodeClient(clientId, located[2 * index + 1] ?? '');
      // Filtered here, where the registry knows each client's rooms and gateway, so the count is exact.
      if (owner == null || record === undefined || !matchesFilter(record, packet)) return;
      const ids = byInstance.get(owner) ?? [];
      ids.push(clientId);
      byInstance.set(owner, ids);
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
    await this.#call((commands) => commands.toniAdd(this.#clientsKey(id), this.#roomsKey(id), client.id, encodeClient(client), this.#ttl()), 0);
  }

  async clientRemoved(clientId: ClientId): Promise<void> {
    const id = this.#node!.instanceId;
    await this.#call((commands) => commands.toniRemove(this.#clientsKey(id), this.#roomsKey(id), clientId), 0);
  }

  async roomChanged(clientId: ClientId, room: Room, joined: boolean): Promise<void> {
    const id = this.#node!.instanceId;
    await this.#call((commands) => commands.toniRoom(this.#clientsKey(id), this.#roomsKey(id), clientId, room, joined ? '1' : '0', this.#ttl()), 0);
  }

  async remoteCount(filter: ClientFilter): Promise<number> {
    const simple = filter.except === undefined && filter.gateway === undefined && (filter.rooms === undefined || filter.rooms.length === 1);
    if (simple) {
      const room = filter.rooms?.[0] ?? '';
      return this.#call((commands) => commands.toniCount(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout, room), 0);
    }
    return (await this.#remoteClients(filter)).length;
  }

  async remoteIds(filter: ClientFilter): Promise<ClientId[]> {
    return this.#remoteClients(filter);
  }

  async #remoteClients(filter: ClientFilter): Promise<ClientId[]> {
    const flat = await this.#call((commands) => commands.toniFetch(this.#key('instances'), this.#options.keyPrefix, this.#node!.instanceId, this.#options.instanceTimeout), []);
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
    const commands = this.#commands;
    if (commands === undefined) return;
    const from = this.#node!.instanceId;
    const broadcasts = this.#broadcasts;
    const direct = this.#direct;
    this.#broadcasts = [];
    this.#direct = new Map();
    if (commands.status !== 'ready') return;
    if (broadcasts.length > 0) void this.#call((c) => c.publish(this.#channel('broadcast'), encodePackets(from, broadcasts)), 0);
    for (const [instance, packets] of direct) void this.#call((c) => c.publish(this.#channel(`i:${instance}`), encodePackets(from, packets)), 0);
  }

  readonly #onMessage = (_channel: Buffer, payload: Buffer): void => {
    const node = this.#node;
    if (node === undefined) return;
    // Our own broadcasts come back on the shared channel: skip them without parsing.
    if (payload.subarray(0, this.#ownPrefix.length).equals(this.#ownPrefix)) return;
    const decoded = decodePackets(payload);
    if (decoded.kind === 'invalid') {
      this.#warnOnce(`invalid:${decoded.reason}`, { reason: decoded.reason }, `Dropped a broadcast packet that is not toni's: ${decoded.reason}`);
      return;
    }
    if (decoded.kind === 'version') {
      this.#warnOnce(`version:${decoded.version}`, { version: decoded.version, from: decoded.from, expected: PROTOCOL_VERSION },
        `Dropped packets of protocol version ${String(decoded.version)} from instance ${decoded.from}; this instance speaks version ${PROTOCOL_VERSION}. Run the same toni version on every instance.`);
      return;
    }
    if (decoded.from === node.instanceId) return;
    for (const packet of decoded.packets) node.deliver(packet);
  };

  readonly #onError = (error: unknown): void => {
    this.#reportDown(error);
  };

  readonly #onClose = (): void => {
    if (!this.#detached) this.#reportDown(new Error('the connection to Redis closed'));
  };

  readonly #onReady = (): void => {
    if (!this.#down) return;
    this.#down = false;
    this.#node?.logger.info({ transport: 'redis' }, 'Redis is reachable again: cross-instance broadcasting resumes');
    void this.#registerAll();
  };

  #reportDown(error: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.#node?.logger.error({ err: error, transport: 'redis' }, 'Redis is unreachable: local delivery continues, cross-instance delivery is paused until it returns');
  }

  #warnOnce(key: string, details: object, message: string): void {
    if (this.#versionWarnings.has(key)) return;
    this.#versionWarnings.add(key);
    this.#node?.logger.warn(details, message);
  }

  /** Heartbeat: renews this instance's keys; if they were lost (Redis restarted), registers again. */
  async #beat(): Promise<void> {
    const id = this.#node!.instanceId;
    const present = await this.#call((commands) => commands.toniHeartbeat(this.#key('instances'), this.#clientsKey(id), this.#roomsKey(id), id, this.#ttl()), -1);
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
      for (const room of client.rooms) rooms.set(room, (rooms.get(room) ?? 0) + 1);
    }
    await this.#call(async (commands) => {
      const transaction = commands.multi().del(this.#clientsKey(id), this.#roomsKey(id));
      if (clients.length > 0) transaction.hset(this.#clientsKey(id), ...clients).pexpire(this.#clientsKey(id), this.#ttl());
      if (rooms.size > 0) transaction.hset(this.#roomsKey(id), ...[...rooms].flatMap(([room, count]) => [room, String(count)])).pexpire(this.#roomsKey(id), this.#ttl());
      await transaction.exec();
      return commands.toniHeartbeat(this.#key('instances'), this.#clientsKey(id), this.#roomsKey(id), id, this.#ttl());
    }, 0);
  }

  /** Runs a Redis call; never rejects, never outlasts `operationTimeout`, logs an outage once. */
  async #call<T>(operation: (commands: Commands) => Promise<T>, fallback: T): Promise<T> {
    const commands = this.#commands;
    // After detach (the application closed) calls quietly do nothing: that is not an outage.
    if (commands === undefined || this.#detached || commands.status !== 'ready') return fallback;
    try {
      return await this.#bounded(operation(commands), fallback);
    } catch (error) {
      this.#reportDown(error);
      return fallback;
    }
  }

  #bounded<T>(pending: Promise<T>, fallback: T): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<T>((resolve) => {
      timer = setTimeout(resolve, this.#options.operationTimeout, fallback);
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

function encodeClient(client: ClientRecord): string {
  return JSON.stringify({ g: client.gateway, r: [...client.rooms] });
}

function decodeClient(id: string, value: string): ClientRecord | undefined {
  try {
    const parsed = JSON.parse(value) as { g?: unknown; r?: unknown };
    if (typeof parsed.g !== 'string') return undefined;
    // Redis's cjson writes an empty Lua table, such as the rooms left after leaving the last, as {}.
    const rooms = Array.isArray(parsed.r) ? parsed.r.filter((room): room is string => typeof room === 'string') : [];
    return { id, gateway: parsed.g, rooms: new Set(rooms) };
  } catch {
    return undefined;
  }
}

function hasAny(items: Iterable<unknown>): boolean {
  for (const _ of items) return true;
  return false;
}
