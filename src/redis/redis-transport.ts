import { Redis, type RedisOptions } from 'ioredis';
import { resolveClusterOptions } from '../broadcast/cluster.js';
import type { BroadcastTransport, ClusterOptions, HistoryStore, TransportLink } from '../broadcast/transport.js';
import { ToniError } from '../errors.js';
import { RedisHistory } from './history-store.js';

/** Options of `RedisTransport`. */
export interface RedisTransportOptions extends Partial<ClusterOptions> {
  /** `redis://[user:password@]host:port[/db]`; default `redis://127.0.0.1:6379`. Ignored when `client` is given. */
  url?: string | undefined;
  /**
   * An existing ioredis client to publish with (a duplicate subscribes). tonijs never closes a
   * client it did not create. Give it `enableOfflineQueue: false` so that publishes fail fast
   * while Redis is down, and no `commandTimeout`: tonijs bounds every call itself and counts a
   * publish as pending until Redis answers it.
   */
  client?: Redis;
  /** Prefix of every channel; instances with the same prefix form one cluster. Default `tonijs`. */
  keyPrefix?: string;
}

/**
 * Makes `BroadcastService` cluster-wide through Redis pub/sub: what an instance sends in one
 * event-loop turn crosses in one `PUBLISH` (on a shared channel, or on the channel of the one
 * instance a `sendTo` is for). Everything else — the replica of who is connected where, presence,
 * heartbeats and the timeout after which a killed instance's clients drop out, cluster
 * operations, bounded calls and outages — is tonijs's cluster layer, the same for every
 * transport; the options of that layer (`heartbeatInterval`, `instanceTimeout`, …) can be set here.
 *
 * Delivery across instances is at-most-once. While Redis is unreachable, local delivery goes on,
 * nothing is queued, and the outage is logged once; when it is back, the instances exchange
 * their state again.
 *
 * @example
 * @Module({
 *   imports: [BroadcastModule.forRoot({ transport: new RedisTransport({ url: process.env.REDIS_URL }) })],
 *   providers: [ChatGateway],
 * })
 * export class AppModule {}
 */
export class RedisTransport implements BroadcastTransport {
  readonly name = 'Redis';
  readonly clusterOptions: ClusterOptions;
  /** Where `BroadcastModule.forRoot({ history })` keeps messages: Redis Streams, shared by every instance. */
  readonly history: HistoryStore;
  readonly #options: { url: string | undefined; client: Redis | undefined; keyPrefix: string };
  #publisher: Redis | undefined;
  #subscriber: Redis | undefined;
  #link: TransportLink | undefined;
  #broadcastChannel = '';
  #detached = false;
  #up = false;

  constructor(options: RedisTransportOptions = {}) {
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as RedisTransportOptions;
    const { url, client, keyPrefix = 'tonijs', ...cluster } = given;
    this.#options = { url, client, keyPrefix };
    this.clusterOptions = resolveClusterOptions(cluster, 'RedisTransport');
    this.history = new RedisHistory(() => this.#publisher, keyPrefix, () => this.#broadcastChannel);
    if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) throw new ToniError('TONI_ERR_INVALID_OPTION', `RedisTransport option keyPrefix must be a non-empty string, got ${JSON.stringify(keyPrefix)}.`);
  }

  /** Whether both connections to Redis (publishing and subscribed) are up right now. */
  get connected(): boolean {
    return this.#up;
  }

  async attach(link: TransportLink): Promise<void> {
    if (this.#link !== undefined) throw new ToniError('TONI_ERR_APP_STATE', 'A RedisTransport serves one application; create one per application.');
    this.#link = link;
    const { client, url, keyPrefix } = this.#options;
    const { operationTimeout } = this.clusterOptions;
    this.#broadcastChannel = `${keyPrefix}:ch:broadcast`;
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // No commandTimeout: ioredis would keep a timed-out command queued anyway; the cluster
      // layer bounds each call and counts it as pending until Redis answers.
      connectTimeout: operationTimeout,
      // Off: the cluster layer batches per turn itself, and ioredis 6's auto-pipelining throws out of
      // its own callback (an uncaught TypeError) when a pipelined script meets a closing connection.
      enableAutoPipelining: false,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    };
    const publisher = client ?? (url === undefined ? new Redis(options) : new Redis(url, options));
    const subscriber = publisher.duplicate({ lazyConnect: true, enableOfflineQueue: true, enableAutoPipelining: false, commandTimeout: undefined, maxRetriesPerRequest: null });
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    for (const connection of [publisher, subscriber]) {
      connection.on('error', this.#onError);
      connection.on('close', this.#onClose);
      connection.on('ready', this.#onReady);
    }
    subscriber.on('messageBuffer', this.#onMessage);
    // Awaited with the connections: subscribed, this instance counts in instances() for the others.
    const subscribed = subscriber.subscribe(this.#broadcastChannel, `${keyPrefix}:ch:i:${link.instanceId}`);
    subscribed.catch(this.#onError);
    const connecting: Promise<unknown>[] = [subscribed];
    if (client === undefined || client.status === 'wait') connecting.push(publisher.connect());
    if (subscriber.status === 'wait') connecting.push(subscriber.connect());
    // Bounded: an application starts whether or not Redis answers, and joins once it does.
    await withTimeout(Promise.all(connecting), operationTimeout).catch((error: unknown) => this.#onError(error));
    this.#check();
  }

  async detach(): Promise<void> {
    this.#detached = true;
    const publisher = this.#publisher;
    const subscriber = this.#subscriber;
    if (publisher === undefined || subscriber === undefined) return;
    subscriber.off('messageBuffer', this.#onMessage);
    for (const connection of [publisher, subscriber]) {
      connection.off('close', this.#onClose);
      connection.off('ready', this.#onReady);
    }
    subscriber.disconnect();
    if (this.#options.client === undefined) {
      await withTimeout(publisher.quit(), this.clusterOptions.operationTimeout).catch(() => undefined);
      publisher.disconnect();
    }
    publisher.off('error', this.#onError);
    subscriber.off('error', this.#onError);
  }

  publish(payload: string): Promise<void> {
    return this.#publish(this.#broadcastChannel, payload);
  }

  send(instanceId: string, payload: string): Promise<void> {
    return this.#publish(`${this.#options.keyPrefix}:ch:i:${instanceId}`, payload);
  }

  /** The subscribers of the shared channel: the instances of the cluster, this one included. */
  async instances(): Promise<number> {
    const publisher = this.#publisher;
    if (publisher === undefined || publisher.status !== 'ready') return 1;
    const [, count] = (await publisher.call('PUBSUB', 'NUMSUB', this.#broadcastChannel)) as [string, number];
    return Number(count);
  }

  async #publish(channel: string, payload: string): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined || publisher.status !== 'ready') throw new Error('Redis is not connected');
    await publisher.publish(channel, payload);
  }

  readonly #onMessage = (channel: Buffer, payload: Buffer): void => {
    const link = this.#link;
    if (link === undefined || this.#detached) return;
    link.receive(payload.toString('utf8'), channel.toString() === this.#broadcastChannel ? 'broadcast' : 'direct');
  };

  readonly #onReady = (): void => this.#check();

  readonly #onClose = (): void => {
    if (!this.#detached) this.#down(new Error('a connection to Redis closed'));
  };

  readonly #onError = (error: unknown): void => {
    if (!this.#detached) this.#down(error);
  };

  /** Up once both connections are: publishing alone would not hear the others. */
  #check(): void {
    if (this.#up || this.#detached) return;
    if (this.#publisher?.status !== 'ready' || this.#subscriber?.status !== 'ready') return;
    this.#up = true;
    this.#link?.connected();
  }

  #down(error: unknown): void {
    this.#up = false;
    this.#link?.disconnected(error);
  }
}

function withTimeout<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
  });
  return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
}
