import type { Logger } from '../logger.js';
import type { HistoryOptions, MemoryHistory, Position } from './history.js';
import type { ClientId } from '../websocket/client.js';

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

/** A connected client as the registry knows it. */
export interface ClientRecord {
  readonly id: ClientId;
  readonly gateway: string;
  readonly rooms: ReadonlySet<Room>;
}

/** Which way a payload came: published to every instance, or sent to this one. */
export type Channel = 'broadcast' | 'direct';

/**
 * What a transport reports to, once attached: the cluster layer of one instance (its
 * `ConnectionManager`). Every method returns at once and never throws.
 */
export interface TransportLink {
  /** This instance's id in the cluster. */
  readonly instanceId: string;
  readonly logger: Logger;
  /** A payload another instance published or sent here. An echo of this instance's own publishes is skipped here. */
  receive(payload: string, channel: Channel): void;
  /** The transport can reach the other instances (at first, or again after an outage). */
  connected(): void;
  /** The transport lost what connects it to the others; `error` says why. */
  disconnected(error: unknown): void;
}

/**
 * How payloads cross from one instance to the others — and nothing more. Batching per turn,
 * bounding every call, surviving outages, the cluster's registry and presence, its operations
 * and the wire format are shared code above it, so a transport is a small adapter over
 * a message bus: `InMemoryTransport` (one process) and `RedisTransport` (in `tonijs/redis`) are
 * two; `tonijs/testing`'s `describeTransportConformance` checks a new one.
 *
 * @example
 * export class MyTransport implements BroadcastTransport {
 *   readonly name = 'my-bus';
 *   async attach(link: TransportLink) { … subscribe; on message: link.receive(text, channel); link.connected(); }
 *   async detach() { … }
 *   publish(payload: string) { return bus.publish('all', payload); }
 *   send(instanceId: string, payload: string) { return bus.publish(`instance.${instanceId}`, payload); }
 * }
 */
export interface BroadcastTransport {
  /** A short name for logs, e.g. `redis`. */
  readonly name: string;
  /**
   * True for a transport that reaches no other instance (the default in-memory one): nothing is
   * encoded or published at all. Default false.
   */
  readonly solo?: boolean;
  /**
   * Timings the cluster layer should use with this transport (e.g. the options of
   * `RedisTransport`); defaults apply to what is left out.
   */
  readonly clusterOptions?: Partial<ClusterOptions>;
  /** Joins the cluster on behalf of `link`; called once at application start. */
  attach(link: TransportLink): Promise<void>;
  /** Leaves the cluster; called once at application shutdown, after a last publish. */
  detach(): Promise<void>;
  /** Carries `payload` to every other instance. Resolves once the bus took it; rejects if it could not. */
  publish(payload: string): Promise<void>;
  /** Carries `payload` to instance `instanceId` alone. */
  send(instanceId: string, payload: string): Promise<void>;
  /**
   * How many instances (this one included) listen on the bus now, if the bus can tell. At start
   * an instance then waits for that many states before it serves, so that it knows the clients
   * of instances that started just before it (bounded by the operation timeout).
   */
  instances?(): Promise<number>;
  /**
   * Where `BroadcastModule.forRoot({ history })` keeps messages, when the transport has a shared
   * store (Redis Streams for `RedisTransport`). Without one the history is kept in memory: the
   * transport's `memoryHistory` (an `InMemoryHub` shares one), or this instance's own.
   */
  readonly history?: HistoryStore;
  readonly memoryHistory?: MemoryHistory;
}

/**
 * A run of consecutive kept emits to one stream, as the cluster layer hands it to a store: they
 * take the stream's next `count` offsets, and are kept and read back together.
 */
export interface KeptBatch {
  readonly stream: string;
  readonly count: number;
  /** The messages (event envelopes, except lists, gateways) as the store keeps and returns them: opaque JSON. */
  readonly data: string;
  /**
   * `head + firstOffset + middle + epoch + tail + data + '}'` is the batch's packet of the
   * cluster's wire format.
   */
  readonly head: string;
  readonly middle: string;
  readonly tail: string;
}

/**
 * A batch as a store read returns it. An entry the store cannot read back is returned too, with
 * `data: ''`: the cluster layer then knows there is a gap (and counts it against `count`).
 */
export interface StoredBatch {
  /** The offset of its first message; the others follow, one apart. */
  readonly first: number;
  /** When it was kept, in milliseconds since the epoch (the store's clock). */
  readonly at: number;
  /** `KeptBatch.data`, as it was given. */
  readonly data: string;
}

/**
 * A history store shared by the instances of a cluster. `keep` gives each batch the next offsets
 * of its stream and publishes the batches' packets, as one envelope (`envelopeHead` + packets
 * joined by commas + `envelopeTail`), to every instance — this one included — atomically, so that
 * every instance receives a stream's messages in the order of their offsets.
 */
export interface HistoryStore {
  /** Keeps the batches; entries older than `options.ttl`, or more than `options.size` messages back, may go. */
  keep(batches: readonly KeptBatch[], envelopeHead: string, envelopeTail: string, options: HistoryOptions): Promise<void>;
  /** Where the stream is now: its epoch and last offset (`''` and 0 when nothing is kept in it). */
  head(stream: string): Promise<Position>;
  /**
   * In one atomic step: the stream's epoch and last offset (`''` and 0 when nothing is kept), the
   * store's clock, and at most `count` batches that hold messages after offset `after`, in order.
   * The cluster layer unpacks them and decides what each reader missed, one read serving many.
   */
  read(stream: string, after: number, count: number): Promise<HistorySnapshot>;
  /** Gives `stream` a new epoch: its history is no longer a complete account (messages went out unkept). */
  reset(stream: string, options: HistoryOptions): Promise<void>;
}

/** What a `HistoryStore` read found. */
export interface HistorySnapshot {
  readonly epoch: string;
  readonly last: number;
  /** The store's clock, in milliseconds since the epoch: entries older than `now - ttl` are gone. */
  readonly now: number;
  readonly batches: readonly StoredBatch[];
}

/** Timings and bounds of the cluster layer; a transport can set them (`clusterOptions`). */
export interface ClusterOptions {
  /** Milliseconds between this instance's heartbeats. Default 2 000. */
  heartbeatInterval: number;
  /** Milliseconds after its last word that a silent (killed) instance's clients drop out. Default 10 000. */
  instanceTimeout: number;
  /** Milliseconds any call to the transport, or the cluster's answer to an operation, may take. Default 2 000. */
  operationTimeout: number;
  /** Publishes the transport has not yet confirmed beyond which new ones are dropped (and counted). Default 1 000. */
  maxPendingPublishes: number;
  /** Their bytes beyond which new ones are dropped; a single larger one still goes when nothing else is pending. Default 8 MiB. */
  maxPendingBytes: number;
  /** Milliseconds between two log lines about the same kind of problem. Default 10 000. */
  warningInterval: number;
}

/** True when a client passes every narrowing of `filter`. */
export function matchesFilter(client: ClientRecord, filter: ClientFilter): boolean {
  if (filter.gateway !== undefined && client.gateway !== filter.gateway) return false;
  if (filter.except !== undefined && filter.except.includes(client.id)) return false;
  if (filter.rooms !== undefined && !filter.rooms.some((room) => client.rooms.has(room))) return false;
  return true;
}
