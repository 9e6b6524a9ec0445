import type { ClientId } from '../websocket/client.js';
import {
  type BroadcastPacket,
  type BroadcastTransport,
  type ClientFilter,
  type ClientRecord,
  type ClusterNode,
  matchesFilter,
} from './transport.js';

/**
 * The default transport: one process, nothing to carry. Several applications in one process
 * can share an `InMemoryHub` to behave as a cluster (useful in tests):
 *
 * @example
 * const hub = new InMemoryHub();
 * // in each application's root module:
 * BroadcastModule.forRoot({ transport: hub.transport() })
 */
export class InMemoryTransport implements BroadcastTransport {
  readonly #hub: InMemoryHub | undefined;
  #node: ClusterNode | undefined;

  constructor(hub?: InMemoryHub) {
    this.#hub = hub;
  }

  /** @internal */
  get node(): ClusterNode | undefined {
    return this.#node;
  }

  async attach(node: ClusterNode): Promise<void> {
    this.#node = node;
    this.#hub?.members.add(this);
  }

  async detach(): Promise<void> {
    this.#hub?.members.delete(this);
  }

  publish(packet: BroadcastPacket): Promise<void> {
    // Not async, and no generator when alone: a broadcast costs no promise of its own here.
    if (this.#hub !== undefined) for (const node of this.#peers()) node.deliver(packet);
    return DONE;
  }

  async sendToClients(packet: BroadcastPacket & { readonly clientIds: readonly ClientId[] }): Promise<number> {
    let reached = 0;
    for (const node of this.#peers()) reached += node.deliver(packet);
    return reached;
  }

  async clientAdded(_client: ClientRecord): Promise<void> {}
  async clientRemoved(_clientId: ClientId): Promise<void> {}
  async roomChanged(_clientId: ClientId, _room: string, _joined: boolean): Promise<void> {}

  async remoteCount(filter: ClientFilter): Promise<number> {
    let count = 0;
    for (const node of this.#peers()) for (const client of node.localClients()) if (matchesFilter(client, filter)) count++;
    return count;
  }

  async remoteIds(filter: ClientFilter): Promise<ClientId[]> {
    const ids: ClientId[] = [];
    for (const node of this.#peers()) for (const client of node.localClients()) if (matchesFilter(client, filter)) ids.push(client.id);
    return ids;
  }

  *#peers(): Generator<ClusterNode> {
    if (this.#hub === undefined) return;
    for (const member of this.#hub.members) if (member !== this && member.node !== undefined) yield member.node;
  }
}

const DONE = Promise.resolve();

/** Joins the `InMemoryTransport`s of several applications in one process into a cluster. */
export class InMemoryHub {
  /** @internal */
  readonly members = new Set<InMemoryTransport>();

  /** A transport for one more application of this hub. */
  transport(): InMemoryTransport {
    return new InMemoryTransport(this);
  }
}
