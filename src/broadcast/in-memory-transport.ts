import { MemoryHistory } from './history.js';
import type { BroadcastTransport, ClusterOptions, TransportLink } from './transport.js';

/**
 * The default transport: one process, no one else to reach, so nothing is published at all.
 * Several applications in one process can share an `InMemoryHub` to behave as a cluster
 * (useful in tests): payloads then cross between them synchronously.
 *
 * @example
 * const hub = new InMemoryHub();
 * // in each application's root module:
 * BroadcastModule.forRoot({ transport: hub.transport() })
 */
export class InMemoryTransport implements BroadcastTransport {
  readonly name = 'in-memory';
  readonly #hub: InMemoryHub | undefined;
  #link: TransportLink | undefined;

  constructor(hub?: InMemoryHub) {
    this.#hub = hub;
  }

  get solo(): boolean {
    return this.#hub === undefined;
  }

  get clusterOptions(): Partial<ClusterOptions> | undefined {
    return this.#hub?.options;
  }

  /** The hub's history, which its applications share (one application alone keeps its own). */
  get memoryHistory(): MemoryHistory | undefined {
    return this.#hub?.history;
  }

  /** @internal */
  get link(): TransportLink | undefined {
    return this.#link;
  }

  async attach(link: TransportLink): Promise<void> {
    this.#link = link;
    this.#hub?.members.add(this);
    link.connected();
  }

  async detach(): Promise<void> {
    this.#hub?.members.delete(this);
  }

  publish(payload: string): Promise<void> {
    for (const member of this.#hub?.members ?? []) if (member !== this) member.link?.receive(payload, 'broadcast');
    return DONE;
  }

  async instances(): Promise<number> {
    return this.#hub?.members.size ?? 1;
  }

  send(instanceId: string, payload: string): Promise<void> {
    for (const member of this.#hub?.members ?? []) if (member.link?.instanceId === instanceId) member.link.receive(payload, 'direct');
    return DONE;
  }
}

const DONE = Promise.resolve();

/** Joins the `InMemoryTransport`s of several applications in one process into a cluster. */
export class InMemoryHub {
  /** @internal */
  readonly members = new Set<InMemoryTransport>();
  /** @internal */
  readonly options: Partial<ClusterOptions> | undefined;
  /** @internal kept messages, shared as Redis is by the instances of a cluster */
  readonly history = new MemoryHistory();

  /** `options` set the cluster layer's timings for every application of the hub. */
  constructor(options?: Partial<ClusterOptions>) {
    this.options = options;
  }

  /** A transport for one more application of this hub. */
  transport(): InMemoryTransport {
    return new InMemoryTransport(this);
  }
}
