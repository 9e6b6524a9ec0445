// The holes found by attacking a running cluster, each scaled down: messages on the Redis
// channels that are not tonijs's, odd room names, large id lists, and a Redis that stops
// answering. What decodes, bounds and logs is the cluster layer every transport shares; it is
// attacked here where an attacker reaches it, through a real redis-server.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { Injectable, type Logger, Module, ToniError, ToniFactory, type ToniApplication } from 'tonijs';
import { WsAdapter } from 'tonijs/node';
import { PROTOCOL_VERSION, RedisTransport, type RedisTransportOptions } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, ConnectionManager, type Gateway, type WsClient, type WsMessage } from 'tonijs/websocket';
import { Cluster, type LocalState } from '../src/broadcast/cluster.js';
import { PresenceIndex } from '../src/broadcast/presence-index.js';
import type { ClientEntry, MessagePacket } from '../src/broadcast/wire.js';
import { AsyncQueue, type LogEntry, captureLogger, waitUntil, withTimeout } from './support/async.js';
import { RedisServer } from './support/redis-server.js';
import { type TestClient, connect, obeyRoomCommand } from './support/ws-client.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use once garbage is collected, in MB. */
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** Greets each client with its id; `join:<room>` / `leave:<room>` messages move it between rooms. */
@Injectable()
class ChatGateway implements Gateway {
  readonly path = '/chat';
  async onConnect(client: WsClient) {
    const room = client.handshake.query.get('room');
    if (room !== null) await client.join(room);
    await client.send(`hello ${client.id}`);
  }
  onMessage(client: WsClient, message: WsMessage) {
    return obeyRoomCommand(client, message);
  }
}

/** An instance's registry as the cluster layer sees it, standing in for an application's: it records deliveries. */
class StandInState implements LocalState {
  readonly delivered = new AsyncQueue<MessagePacket>();
  entries: ClientEntry[];
  readonly #onDeliver: ((packet: MessagePacket) => void) | undefined;
  constructor(entries: ClientEntry[] = [], onDeliver?: (packet: MessagePacket) => void) {
    this.entries = entries;
    this.#onDeliver = onDeliver;
  }
  clients() {
    return this.entries;
  }
  deliver(packet: MessagePacket): number {
    this.delivered.push(packet);
    this.#onDeliver?.(packet);
    return packet.clientIds?.length ?? 1;
  }
  async apply(): Promise<number> {
    return 0;
  }
  presenceChanged(): void {}
  deliverKept(): number {
    return 0;
  }
}

function levels(entries: readonly LogEntry[], level: string): LogEntry[] {
  return entries.filter((entry) => entry.level === level);
}

function envelope(packets: unknown[], from = 'attacker'): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, from, p: packets });
}

describe('the cluster layer under attack, on Redis', () => {
  let redis: RedisServer;
  let keyPrefix: string;
  const apps: ToniApplication[] = [];
  const clusters: Cluster[] = [];
  const clients: TestClient[] = [];
  const raws: Redis[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
    keyPrefix = `hardening-${randomUUID()}`;
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    for (const raw of raws.splice(0)) raw.disconnect();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(clusters.splice(0).map((cluster) => cluster.detach()));
    await redis.stop();
  });

  function transport(options: RedisTransportOptions = {}): RedisTransport {
    return new RedisTransport({ url: redis.url, keyPrefix, heartbeatInterval: 100, instanceTimeout: 5_000, operationTimeout: 300, ...options });
  }

  async function application(options: RedisTransportOptions = {}, logger: Logger = captureLogger()) {
    @Module({ imports: [BroadcastModule.forRoot({ transport: transport(options) })], providers: [ChatGateway] })
    class HardeningModule {}
    const app = await ToniFactory.create(HardeningModule, undefined, { logger });
    apps.push(app);
    const ws = new WsAdapter();
    app.useWebSocketAdapter(ws);
    await app.listen(0, '127.0.0.1');
    const manager = app.get(ConnectionManager);
    return { app, logger: logger as ReturnType<typeof captureLogger>, manager, broadcast: app.get(BroadcastService), wsUrl: ws.getUrl('/chat') };
  }

  /** A cluster layer on its own, over a real RedisTransport, with a stand-in registry. */
  async function bareCluster(state: StandInState, options: RedisTransportOptions = {}) {
    const logger = captureLogger();
    const instanceId = randomUUID();
    const cluster = new Cluster(transport(options), state, new PresenceIndex(), instanceId, logger);
    clusters.push(cluster);
    await cluster.attach();
    await waitUntil(() => cluster.connected, 5_000, 'the cluster layer to connect');
    return { cluster, logger, instanceId };
  }

  async function client(url: string): Promise<{ client: TestClient; id: string }> {
    const opened = await connect(url);
    clients.push(opened);
    const greeting = await opened.nextText();
    return { client: opened, id: greeting.slice('hello '.length) };
  }

  function raw(): Redis {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    raws.push(connection);
    return connection;
  }

  describe('messages on the channels that are not tonijs envelopes', () => {
    it('drop the whole envelope, never widen its audience, and warn once per reason', async () => {
      const local = await application();
      const blue = await client(`${local.wsUrl}?room=blue`);
      const plain = await client(local.wsUrl);
      const broadcast = `${keyPrefix}:ch:broadcast`;
      const direct = `${keyPrefix}:ch:i:${local.manager.instanceId}`;
      const big = Buffer.alloc(200, 7).toString('base64');
      const leak = (extra: object) => ({ t: 'b', k: 't', d: 'leak', ...extra });
      const cases: [reason: string, channel: string, payload: string][] = [
        ['not JSON', broadcast, 'not json at all'],
        ['not an envelope', broadcast, '[1, 2, 3]'],
        ['no sender', broadcast, JSON.stringify({ v: PROTOCOL_VERSION, p: [leak({})] })],
        ['no packets', broadcast, JSON.stringify({ v: PROTOCOL_VERSION, from: 'x', p: 'abc' })],
        ['malformed packet', broadcast, envelope([{ t: 'b', k: 't', d: 5 }])],
        ['unknown packet', broadcast, envelope([{ t: 'zz' }])],
        ['unknown kind', broadcast, envelope([leak({ k: 'z' })])],
        ['bad base64', broadcast, envelope([leak({ k: 'b', d: 'no base64!' })])],
        ['control payload over 125 bytes', broadcast, envelope([leak({ k: 'p', d: big })])],
        ['control payload over 125 bytes', broadcast, envelope([leak({ k: 'o', d: big })])],
        ['invalid rooms', broadcast, envelope([leak({ r: 'abc' })])],
        ['invalid rooms', broadcast, envelope([leak({ r: ['blue', 7] })])],
        ['invalid except', broadcast, envelope([leak({ x: 'abc' })])],
        ['invalid gateway', broadcast, envelope([leak({ g: 5 })])],
        ['invalid gateway', broadcast, envelope([leak({ g: 'chat' })])],
        ['invalid clientIds', broadcast, envelope([leak({ c: ['someone'] })])],
        ['invalid clientIds', direct, envelope([{ t: 'd', k: 't', d: 'leak', c: 'abc' }])],
        ['invalid clientIds', direct, envelope([{ t: 'd', k: 't', d: 'leak' }])],
        ['direct packet broadcast', broadcast, envelope([{ t: 'd', k: 't', d: 'leak', c: [plain.id] }])],
        ['invalid delta', broadcast, envelope([{ t: '+', s: 1, i: 'x', g: 'no-slash', r: [] }])],
        ['invalid delta', broadcast, envelope([{ t: 'st', s: 1, n: 2, of: 1, c: [], pr: [] }])],
        ['invalid operation', broadcast, envelope([{ t: 'op', q: 1, o: { kind: 'disconnect', code: 'now' } }])],
        // A kept batch (what a history store publishes): a list of [envelope as a string, except?, gateway?].
        ...[{ event: 'leak' }, 'leak', [], [{ event: 'leak' }], ['{"event":"leak"}'], [['leak']], [['{"event":"leak"}', 'abc']], [['{"event":"leak"}', null, 'no-slash']], [['{"event":"leak"}', null, '/g', 'more']]].map(
          (m): [string, string, string] => ['malformed packet', broadcast, JSON.stringify({ v: PROTOCOL_VERSION, kept: 1, from: 'attacker', p: [{ t: 'k', o: 1, e: 'epoch', s: 'blue', m }] })],
        ),
        // Nothing beside what tonijs writes: a room or client list on a kept packet is not ignored, it is malformed.
        ...[{ r: ['blue'] }, { c: ['someone'] }, { x: [] }, { g: '/g' }].map(
          (extra): [string, string, string] => ['malformed packet', broadcast, JSON.stringify({ v: PROTOCOL_VERSION, kept: 1, from: 'attacker', p: [{ t: 'k', o: 1, e: 'epoch', s: 'blue', m: [['{"event":"leak"}']], ...extra }] })],
        ),
        // A valid batch with a malformed one after it: the whole envelope goes.
        ['malformed packet', broadcast, JSON.stringify({ v: PROTOCOL_VERSION, kept: 1, from: 'attacker', p: [{ t: 'k', o: 1, e: 'epoch', s: 'blue', m: [['{"event":"leak"}']] }, { t: 'k', o: 2, e: 'epoch', s: 'blue', m: 'leak' }] })],
        // All or nothing: a valid packet travelling with an invalid one is dropped with it.
        ['invalid rooms', broadcast, envelope([leak({}), leak({ r: null })])],
      ];
      for (const [, channel, payload] of cases) await redis.command('PUBLISH', channel, payload);
      await redis.command('PUBLISH', broadcast, envelope([{ t: 'b', k: 't', d: 'sentinel', r: ['blue'] }]));
      await redis.command('PUBLISH', broadcast, envelope([{ t: 'b', k: 't', d: 'to everyone' }]));

      // The next deliveries are the sentinels, with exactly their own filters: nothing before them got through.
      assert.deepEqual(await blue.client.texts(2), ['sentinel', 'to everyone']);
      assert.deepEqual(await plain.client.texts(1), ['to everyone']);
      assert.equal(local.manager.clusterStats.rejectedMessages, cases.length);
      const warnings = levels(local.logger.entries, 'warn');
      const reasons = [...new Set(cases.map(([reason]) => reason))];
      assert.deepEqual(warnings.map((entry) => entry.details['reason']), reasons, 'one warning per reason, in order');
      for (const warning of warnings) assert.match(warning.message ?? '', /^Dropped a message that is not a tonijs cluster envelope \(.+, from instance (attacker|unknown|x)\)$/);
      assert.deepEqual(levels(local.logger.entries, 'error'), []);
    });

    it('a flood of distinct versions and malformed envelopes keeps warning state, log lines and heap bounded', async (t: TestContext) => {
      const local = await application({ warningInterval: 60_000 });
      const here = await client(local.wsUrl);
      const publisher = raw();
      const channel = `${keyPrefix}:ch:broadcast`;
      const count = 10_000;
      const before = heapMb();
      // Distinct versions of 2 KB each: kept one by one, as once, they would hold ~20 MB.
      const padding = 'v'.repeat(2_000);
      for (let start = 0; start < count; start += 1_000) {
        const pipeline = publisher.pipeline();
        for (let index = start; index < start + 1_000; index++) {
          pipeline.publish(channel, JSON.stringify({ v: `${padding}${index}`, from: `instance-${index}`, p: [] }));
          pipeline.publish(channel, envelope([{ t: 'b', k: 't', d: 'leak', r: `room-${index}` }], `instance-${index}`));
        }
        await pipeline.exec();
      }
      await publisher.publish(channel, envelope([{ t: 'b', k: 't', d: 'sentinel' }]));
      assert.equal(await here.client.nextText(), 'sentinel');
      const after = heapMb();
      t.diagnostic(`heap ${before.toFixed(1)} -> ${after.toFixed(1)} MB after ${2 * count} bad envelopes`);
      assert.equal(local.manager.clusterStats.rejectedMessages, 2 * count);
      // (A busy event loop may also make a heartbeat publish late, which is logged as degraded: not counted here.)
      const drops = () => levels(local.logger.entries, 'warn').filter((entry) => 'reason' in entry.details || 'version' in entry.details);
      assert.equal(drops().length, 2, 'one warning per reason while the interval runs');
      assert.ok(after - before < 8, `the heap grew by ${(after - before).toFixed(1)} MB`);

      // Closing logs what was counted since: every dropped envelope is accounted for.
      await local.app.close();
      const warnings = drops();
      assert.equal(warnings.length, 4);
      const total = (kind: string) => warnings.filter((entry) => (kind === 'version' ? 'version' in entry.details : entry.details['reason'] === kind)).reduce((sum, entry) => sum + Number(entry.details['count']), 0);
      assert.equal(total('version'), count);
      assert.equal(total('invalid rooms'), count);
      assert.ok(warnings.some((entry) => new RegExp(`^Dropped 9,999 messages of other protocol versions since the last warning, the last of version "v{63}… from instance instance-9999; this instance speaks version ${PROTOCOL_VERSION}`).test(entry.message ?? '')));
      assert.ok(warnings.every((entry) => (entry.message ?? '').length < 400), 'log lines stay short whatever the envelopes held');
    });

    it('repeats a warning at most once per warningInterval, with the count since the last one', async () => {
      const interval = 200;
      const times: number[] = [];
      const logger = captureLogger();
      const timed = { ...logger, warn: (details: object, message?: string) => (times.push(Date.now()), logger.warn(details, message)) };
      await application({ warningInterval: interval }, timed);
      const publisher = raw();
      for (let index = 0; index < 30; index++) await publisher.publish(`${keyPrefix}:ch:broadcast`, envelope([{ t: 'b', k: 'b', d: '!!!!' }]));
      const counted = () => levels(logger.entries, 'warn').reduce((sum, entry) => sum + Number(entry.details['count']), 0);
      await waitUntil(() => counted() === 30, 5_000, 'the warnings to count all 30 envelopes');
      const warnings = levels(logger.entries, 'warn');
      assert.ok(warnings.length >= 2, 'the count came in a later line, not only at close');
      assert.equal(warnings[0]!.details['count'], 1);
      assert.match(warnings[1]!.message ?? '', /^Dropped \d+ messages that are not tonijs cluster envelopes \(bad base64\) since the last warning/);
      for (let index = 1; index < times.length; index++) assert.ok(times[index]! - times[index - 1]! >= interval - 20, `warnings ${times[index]! - times[index - 1]!} ms apart`);
    });

    it('a packet whose delivery throws is contained: the others are applied and the error is logged', async () => {
      const state = new StandInState([], (packet) => {
        if (packet.message.asText() === 'boom') throw new Error('delivery exploded');
      });
      const { logger } = await bareCluster(state);
      const channel = `${keyPrefix}:ch:broadcast`;
      await redis.command('PUBLISH', channel, envelope([{ t: 'b', k: 't', d: 'boom' }, { t: 'b', k: 't', d: 'after boom' }]));
      await redis.command('PUBLISH', channel, envelope([{ t: 'b', k: 't', d: 'next envelope' }]));
      // 'boom' was recorded before it threw; what follows it still arrives.
      assert.deepEqual((await state.delivered.take(3)).map((packet) => packet.message.asText()), ['boom', 'after boom', 'next envelope']);
      const errors = levels(logger.entries, 'error');
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message ?? '', /^Failed to apply 1 packet from instance attacker \(the last one\); the others were applied/);
    });
  });

  it('a subscription Redis drops while it stays reachable is an outage while it lasts; delivery resumes after', async () => {
    const local = await application();
    const other = await application();
    const here = await client(local.wsUrl);
    await waitUntil(async () => (await other.broadcast.getClientCount()) === 1, 5_000, 'the other instance to know the client');
    // What Redis does to a subscriber that falls behind its client-output-buffer-limit.
    assert.ok(Number(await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 2);
    await local.logger.waitFor((entry) => entry.level === 'error' && /^Redis is unreachable/.test(entry.message ?? ''), 5_000, 'the lost subscription to be logged');
    await local.logger.waitFor((entry) => entry.level === 'info' && /^Redis is reachable again/.test(entry.message ?? ''), 5_000, 'its return to be logged');
    await other.logger.waitFor((entry) => entry.level === 'info' && /^Redis is reachable again/.test(entry.message ?? ''), 5_000, 'the other instance to be back too');
    await other.broadcast.broadcastText('after the kill');
    assert.equal(await here.client.nextText(), 'after the kill');
    await waitUntil(async () => (await other.broadcast.getClientCount()) === 1, 5_000, 'the states to be exchanged again');
  });

  it('rooms named with quotes, backslashes, line breaks, emoji or JSON are counted, listed and left exactly across instances, also after a Redis restart', async () => {
    const oddRooms = ['line\nbreak', 'quote " and \\ backslash', '😀', 'plain', '{"g","x"}', 'tab\there'];
    const owner = await application();
    const observer = await application();
    const member = await client(owner.wsUrl);
    for (const room of oddRooms) {
      member.client.send(`join:${room}`);
      assert.equal(await member.client.nextText(), `joined:${room}`);
    }
    await waitUntil(async () => (await observer.broadcast.getClientCount()) === 1, 5_000, 'the observer to know the member');
    for (const room of oddRooms) {
      assert.equal(await observer.broadcast.to(room).getClientCount(), 1, `count of ${JSON.stringify(room)}`);
      assert.deepEqual(await observer.broadcast.to(room).getClientIds(), [member.id], `ids of ${JSON.stringify(room)}`);
    }
    assert.deepEqual(new Set(observer.manager.rooms()), new Set(oddRooms));

    await redis.kill();
    await redis.restart();
    await observer.logger.waitFor((entry) => /^Redis is reachable again/.test(entry.message ?? ''), 10_000, 'the observer to reconnect');
    await waitUntil(async () => (await observer.broadcast.to('😀').getClientCount()) === 1, 10_000, 'the states to be exchanged after the restart');
    member.client.send('leave:line\nbreak');
    assert.equal(await member.client.nextText(), 'left:line\nbreak');
    await waitUntil(async () => (await observer.broadcast.to('line\nbreak').getClientCount()) === 0, 5_000, 'the leave to cross');
    assert.equal(await observer.broadcast.to('tab\there').getClientCount(), 1);
  });

  it('sendToMany with 9,000 remote ids reaches all of them, routed by the replica in one send', async () => {
    const ids = Array.from({ length: 9_000 }, () => randomUUID());
    const holderState = new StandInState(ids.map((id) => ({ id, gateway: '/chat', rooms: [] })));
    const holder = await bareCluster(holderState);
    const sender = await bareCluster(new StandInState());
    await waitUntil(() => sender.cluster.replica.size === 9_000, 5_000, 'the sender to hold the holder\'s state');
    assert.equal(sender.cluster.replica.count({}), 9_000);
    const { WsMessage } = await import('tonijs/websocket');
    const found = sender.cluster.sendTo({ message: WsMessage.text('many'), clientIds: [...ids, randomUUID(), 'not-an-id'] }, () => true);
    assert.equal(found, 9_000);
    const [packet] = await holderState.delivered.take(1);
    assert.equal(packet!.message.asText(), 'many');
    assert.deepEqual(new Set(packet!.clientIds), new Set(ids));
    assert.equal(holder.instanceId !== sender.instanceId, true);
    assert.deepEqual(sender.logger.entries.filter((entry) => entry.level === 'error' || entry.level === 'warn'), []);
  });

  describe('a stalled Redis', () => {
    // CLIENT PAUSE … WRITE blocks exactly what tonijs sends (PUBLISH) while leaving CLIENT
    // UNPAUSE usable, so the test ends the stall when it has checked it, not on a clock. The
    // pause's own timeout only bounds a failing test.
    const pause = () => redis.command('CLIENT', 'PAUSE', '10000', 'WRITE');
    const unpause = () => redis.command('CLIENT', 'UNPAUSE');

    it('bounds the publishes awaiting Redis, counts what it drops, logs the degraded state once and its end once', async (t: TestContext) => {
      const maxPendingPublishes = 10;
      // No call times out while the test looks at the stall: the bound alone is what degrades it.
      const local = await application({ maxPendingPublishes, maxPendingBytes: 1024 * 1024, heartbeatInterval: 1_000, operationTimeout: 2_000 });
      const other = await application();
      const there = await client(other.wsUrl);
      await waitUntil(async () => (await local.broadcast.getClientCount()) === 1, 5_000, 'the instances to know each other');
      await local.broadcast.broadcastText('before');
      assert.equal(await there.client.nextText(), 'before');
      await waitUntil(() => local.manager.clusterStats.pendingPublishes === 0, 5_000, 'the first publish to be answered');

      await pause();
      const heapBefore = heapMb();
      const messages = 600;
      const padding = 'x'.repeat(32 * 1024);
      for (let index = 0; index < messages; index++) {
        await local.broadcast.broadcastText(`stalled ${index} ${padding}`);
        // Each broadcast in a turn of its own: one publish each.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const degraded = await local.logger.waitFor((entry) => entry.level === 'warn' && /^Redis is degraded/.test(entry.message ?? ''), 5_000, 'the degraded state to be logged');
      assert.match(degraded.message ?? '', /10 publishes \([\d,]+ bytes\) await it, the most maxPendingPublishes \(10\) and maxPendingBytes \(1048576\) allow/);
      const stalled = local.manager.clusterStats;
      assert.equal(stalled.pendingPublishes, maxPendingPublishes);
      assert.ok(stalled.pendingBytes <= maxPendingPublishes * (padding.length + 200), `${stalled.pendingBytes} bytes pending`);
      assert.equal(stalled.droppedPublishes, messages - maxPendingPublishes);
      assert.equal(local.manager.clusterConnected, false);
      // A direct send while the bound is reached is refused at once rather than dropped later.
      assert.equal(await local.broadcast.sendTo(there.id, 'direct while stalled'), false);
      assert.equal(local.manager.clusterStats.droppedMessages, messages - maxPendingPublishes + 1);
      const heapStalled = heapMb();
      t.diagnostic(`heap ${heapBefore.toFixed(1)} -> ${heapStalled.toFixed(1)} MB after ${messages} broadcasts of 32 KB into a stalled Redis`);
      assert.ok(heapStalled - heapBefore < 8, `the heap grew by ${(heapStalled - heapBefore).toFixed(1)} MB`);

      await unpause();
      const recovered = await local.logger.waitFor((entry) => entry.level === 'info' && /^Redis keeps up again/.test(entry.message ?? ''), 5_000, 'the recovery to be logged');
      assert.equal(recovered.details['droppedPublishes'], messages - maxPendingPublishes + 1);
      assert.match(recovered.message ?? '', /591 messages in 591 publishes did not reach other instances/);
      // What was pending arrives, in order; delivery goes on.
      const arrived = await there.client.texts(maxPendingPublishes);
      assert.deepEqual(arrived.map((text) => text.slice(0, text.indexOf(' x'))), Array.from({ length: maxPendingPublishes }, (_, index) => `stalled ${index}`));
      await local.broadcast.broadcastText('after');
      assert.equal(await there.client.nextText(), 'after');
      assert.equal(local.manager.clusterConnected, true);
      assert.equal(local.manager.clusterStats.pendingPublishes, 0);
      assert.equal(levels(local.logger.entries, 'warn').length, 1, 'degraded is logged once');
      assert.deepEqual(levels(local.logger.entries, 'error'), [], 'a stall is not an outage');
    });

    it('a publish that is not taken within operationTimeout marks Redis degraded, not unreachable, until it answers again', async () => {
      const local = await application();
      await pause();
      // The heartbeat publishes every 100 ms; the first one Redis holds times out after 300.
      const degraded = await local.logger.waitFor((entry) => entry.level === 'warn' && /^Redis is degraded: it did not take a publish within 300 ms/.test(entry.message ?? ''));
      assert.ok(degraded);
      assert.equal(local.manager.clusterConnected, false);
      assert.equal(await withTimeout(local.broadcast.getClientCount(), 1_000, 'a count while Redis is stalled'), 0, 'counts answer from state, at once');
      await unpause();
      const recovered = await local.logger.waitFor((entry) => entry.level === 'info' && /^Redis keeps up again/.test(entry.message ?? ''));
      assert.match(recovered.message ?? '', /nothing was dropped/);
      assert.equal(local.manager.clusterConnected, true);
      assert.deepEqual(levels(local.logger.entries, 'error'), []);
    });
  });

  it('rejects invalid bounds with TONI_ERR_INVALID_OPTION', () => {
    const invalid = (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION';
    assert.throws(() => new RedisTransport({ maxPendingPublishes: 0 }), invalid);
    assert.throws(() => new RedisTransport({ maxPendingBytes: -1 }), /maxPendingBytes must be a positive integer, got -1/);
    assert.throws(() => new RedisTransport({ warningInterval: 1.5 }), /warningInterval must be a positive integer of milliseconds, got 1.5/);
    assert.throws(() => new RedisTransport({ keyPrefix: '' }), /keyPrefix must be a non-empty string/);
  });
});
