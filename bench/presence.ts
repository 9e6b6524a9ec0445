/**
 * Presence and cluster operations over Redis: two instances in this process on a redis-server
 * started for the run, with PRESENCE_MEMBERS (10 000) registered clients split between them —
 * stand-in recipients, so that what is measured is the registry and the cluster layer, not 10 000
 * sockets. Prints:
 *   - list(room) latency on each instance with every member tracked in one room;
 *   - what one track and one untrack cost on Redis: envelopes and bytes published, by both instances;
 *   - how long a join of all 10 000 clients into another room takes when asked from the other instance.
 *
 *   npm run bench:presence          PRESENCE_MEMBERS=10000
 */
import { randomUUID } from 'node:crypto';
import { Module, ToniFactory, type ToniApplication } from 'tonijs';
import { RedisTransport } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, ConnectionManager, type Delivery, PresenceService, type Recipient, type WsClient } from 'tonijs/websocket';
import { RedisServer } from '../test/support/redis-server.js';
import { percentile, positiveInteger } from './support.js';

const MEMBERS = positiveInteger(process.env, 'PRESENCE_MEMBERS', 10_000, (message) => {
  console.error(`bench:presence: ${message}`);
  process.exit(1);
});

/** Counts what crosses Redis: a RedisTransport whose publishes and sends are measured. */
class MeasuredTransport extends RedisTransport {
  envelopes = 0;
  bytes = 0;
  override publish(payload: string): Promise<void> {
    this.envelopes++;
    this.bytes += Buffer.byteLength(payload);
    return super.publish(payload);
  }
  override send(instanceId: string, payload: string): Promise<void> {
    this.envelopes++;
    this.bytes += Buffer.byteLength(payload);
    return super.send(instanceId, payload);
  }
}

const NO_DELIVERY: Delivery = { fanOut() {}, send: () => true };

/** A connected client as the registry sees it, without a socket: joins and leaves change its rooms. */
function standIn(manager: ConnectionManager): Recipient {
  const rooms = new Set<string>();
  const id = randomUUID();
  const recipient: Recipient = {
    id,
    gateway: '/bench',
    rooms,
    delivery: NO_DELIVERY,
    speaksTonijs: false,
    client: { id } as WsClient,
    async join(room) {
      if (rooms.has(room)) return;
      rooms.add(room);
      await manager.roomChanged(recipient, room, true);
    },
    async leave(room) {
      if (!rooms.delete(room)) return;
      await manager.roomChanged(recipient, room, false);
    },
    requestClose: async () => undefined,
  };
  return recipient;
}

async function instance(url: string): Promise<{ app: ToniApplication; transport: MeasuredTransport; manager: ConnectionManager }> {
  const transport = new MeasuredTransport({ url, keyPrefix: 'bench-presence', operationTimeout: 30_000 });
  @Module({ imports: [BroadcastModule.forRoot({ transport })] })
  class PresenceBenchModule {}
  const app = await ToniFactory.create(PresenceBenchModule, undefined, { logger: false });
  return { app, transport, manager: app.get(ConnectionManager) };
}

const redis = await RedisServer.start();
const [east, west] = [await instance(redis.url), await instance(redis.url)];
console.log(`node ${process.version}; redis-server on port ${redis.port}; two instances in this process, ${MEMBERS.toLocaleString('en-US')} members split between them`);

const members = new Map<ConnectionManager, Recipient[]>([[east.manager, []], [west.manager, []]]);
let started = performance.now();
await Promise.all(
  Array.from({ length: MEMBERS }, async (_, index) => {
    const manager = index % 2 === 0 ? east.manager : west.manager;
    const recipient = standIn(manager);
    members.get(manager)!.push(recipient);
    await manager.clientConnected(recipient);
    await recipient.join('lobby');
    await manager.track(recipient, 'lobby', `user-${index}`, { index });
  }),
);
const registered = performance.now() - started;
const eastPresence = east.app.get(PresenceService);
const westPresence = west.app.get(PresenceService);
while (eastPresence.list('lobby').length < MEMBERS || westPresence.list('lobby').length < MEMBERS) await new Promise((resolve) => setTimeout(resolve, 10));
console.log(`registered, joined and tracked ${MEMBERS.toLocaleString('en-US')} members in ${registered.toFixed(0)} ms (both instances see them all)`);

for (const [name, presence] of [['east', eastPresence], ['west', westPresence]] as const) {
  const times: number[] = [];
  for (let run = 0; run < 200; run++) {
    const at = performance.now();
    const list = presence.list('lobby');
    times.push(performance.now() - at);
    if (list.length !== MEMBERS) throw new Error(`list returned ${list.length} members`);
  }
  times.sort((a, b) => a - b);
  console.log(`list('lobby') on ${name}: p50 ${(percentile(times, 0.5) * 1000).toFixed(0)} µs, p99 ${(percentile(times, 0.99) * 1000).toFixed(0)} µs for ${MEMBERS.toLocaleString('en-US')} members (from state, no round trip)`);
}

// One more member: what a track and an untrack cost on the wire, both instances together.
const extra = standIn(east.manager);
await east.manager.clientConnected(extra);
await extra.join('lobby');
await settle();
const before = traffic();
await east.manager.track(extra, 'lobby', 'someone-new', { device: 'phone' });
await settle();
const tracked = traffic();
await east.manager.untrack(extra.id, 'lobby');
await settle();
const untracked = traffic();
console.log(`one track: ${tracked.envelopes - before.envelopes} envelopes, ${tracked.bytes - before.bytes} bytes published (the delta in the turn's publish, and the other instance's acknowledgement)`);
console.log(`one untrack: ${untracked.envelopes - tracked.envelopes} envelopes, ${untracked.bytes - tracked.bytes} bytes`);

// A join of every member into another room, asked from the instance that holds half of them.
started = performance.now();
const joined = await west.app.get(BroadcastService).to('lobby').join('announcements');
const joinMs = performance.now() - started;
const count = await east.app.get(BroadcastService).to('announcements').getClientCount();
console.log(`to('lobby').join('announcements') from west: ${joined.toLocaleString('en-US')} clients joined in ${joinMs.toFixed(0)} ms; east counts ${count.toLocaleString('en-US')} in the room`);

await Promise.all([east.app.close(), west.app.close()]);
await redis.stop();

function traffic(): { envelopes: number; bytes: number } {
  return { envelopes: east.transport.envelopes + west.transport.envelopes, bytes: east.transport.bytes + west.transport.bytes };
}

/** Lets the turn's publishes and the answers to them cross Redis (a few event-loop turns). */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
}
