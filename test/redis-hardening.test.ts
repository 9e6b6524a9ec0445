import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { Injectable, Module, ToniError, ToniFactory, type ToniApplication } from 'tonijs';
import { WsAdapter } from 'tonijs/node';
import { RedisTransport, type RedisTransportOptions } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, type BroadcastPacket, type ClientRecord, type ClusterNode, type Gateway, type WsClient, WsMessage } from 'tonijs/websocket';
import { AsyncQueue, type LogEntry, captureLogger, waitUntil, withTimeout } from './support/async.js';
import { RedisServer } from './support/redis-server.js';
import { type TestClient, connect } from './support/ws-client.js';

// The holes found by attacking a running instance, each scaled down: messages on the Redis
// channels that are not toni's, names Lua's cjson cannot read, id lists larger than Lua's
// unpack takes, and a Redis that stops answering.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use once garbage is collected, in MB. */
function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** The instance a transport serves, standing in for an application: it records what it is asked to deliver. */
class StandInNode implements ClusterNode {
  readonly instanceId = randomUUID();
  readonly logger = captureLogger();
  readonly delivered = new AsyncQueue<BroadcastPacket>();
  readonly clients: ClientRecord[];
  readonly #deliver: ((packet: BroadcastPacket) => void) | undefined;

  constructor(clients: ClientRecord[] = [], deliver?: (packet: BroadcastPacket) => void) {
    this.clients = clients;
    this.#deliver = deliver;
  }

  deliver(packet: BroadcastPacket): number {
    this.delivered.push(packet);
    this.#deliver?.(packet);
    return packet.clientIds?.length ?? 1;
  }

  localClients(): Iterable<ClientRecord> {
    return this.clients;
  }

  /** Texts of the next `count` packets delivered. */
  async texts(count: number): Promise<string[]> {
    return (await this.delivered.take(count)).map((packet) => packet.message.asText() ?? `<${packet.message.kind}>`);
  }
}

@Injectable()
class ChatGateway implements Gateway {
  readonly path = '/chat';
  async onConnect(client: WsClient) {
    await client.send(`hello ${client.id}`);
  }
  onMessage() {}
}

function levels(entries: readonly LogEntry[], level: string): LogEntry[] {
  return entries.filter((entry) => entry.level === level);
}

function envelope(packets: unknown[], from = 'attacker'): string {
  return JSON.stringify({ v: 1, from, p: packets });
}

describe('RedisTransport hardening', () => {
  let redis: RedisServer;
  let keyPrefix: string;
  const transports: RedisTransport[] = [];
  const apps: ToniApplication[] = [];
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
    await Promise.all(transports.splice(0).map((transport) => transport.detach()));
    await redis.stop();
  });

  async function attached(node: ClusterNode, options: RedisTransportOptions = {}): Promise<RedisTransport> {
    const transport = new RedisTransport({ url: redis.url, keyPrefix, heartbeatInterval: 100, instanceTimeout: 5_000, operationTimeout: 500, ...options });
    transports.push(transport);
    await transport.attach(node);
    return transport;
  }

  async function application(options: RedisTransportOptions = {}) {
    const logger = captureLogger();
    const transport = new RedisTransport({ url: redis.url, keyPrefix, heartbeatInterval: 100, instanceTimeout: 5_000, operationTimeout: 300, ...options });
    @Module({ imports: [BroadcastModule.forRoot({ transport })], providers: [ChatGateway] })
    class HardeningModule {}
    const app = await ToniFactory.create(HardeningModule, undefined, { logger });
    apps.push(app);
    const ws = new WsAdapter();
    app.useWebSocketAdapter(ws);
    await app.listen(0, '127.0.0.1');
    return { app, transport, logger, broadcast: app.get(BroadcastService), wsUrl: ws.getUrl('/chat') };
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

  describe('messages on the channels that are not toni packets', () => {
    it('drop the whole message, never widen its audience, and warn once per reason', async () => {
      const node = new StandInNode();
      const transport = await attached(node);
      const broadcast = `${keyPrefix}:ch:broadcast`;
      const direct = `${keyPrefix}:ch:i:${node.instanceId}`;
      const big = Buffer.alloc(200, 7).toString('base64');
      const cases: [reason: string, channel: string, payload: string][] = [
        ['not JSON', broadcast, 'not json at all'],
        ['not an envelope', broadcast, '[1, 2, 3]'],
        ['no sender', broadcast, JSON.stringify({ v: 1, p: [{ k: 't', d: 'leak' }] })],
        ['no packets', broadcast, JSON.stringify({ v: 1, from: 'x', p: 'abc' })],
        ['malformed packet', broadcast, envelope([{ k: 't', d: 5 }])],
        ['unknown kind', broadcast, envelope([{ k: 'z', d: 'leak' }])],
        ['bad base64', broadcast, envelope([{ k: 'b', d: 'no base64!' }])],
        ['control payload over 125 bytes', broadcast, envelope([{ k: 'p', d: big }])],
        ['control payload over 125 bytes', broadcast, envelope([{ k: 'o', d: big }])],
        ['invalid rooms', broadcast, envelope([{ k: 't', d: 'leak', r: 'abc' }])],
        ['invalid rooms', broadcast, envelope([{ k: 't', d: 'leak', r: ['blue', 7] }])],
        ['invalid except', broadcast, envelope([{ k: 't', d: 'leak', x: 'abc' }])],
        ['invalid gateway', broadcast, envelope([{ k: 't', d: 'leak', g: 5 }])],
        ['invalid gateway', broadcast, envelope([{ k: 't', d: 'leak', g: 'chat' }])],
        ['invalid clientIds', direct, envelope([{ k: 't', d: 'leak', c: 'abc' }])],
        ['clientIds on the broadcast channel', broadcast, envelope([{ k: 't', d: 'leak', c: ['someone'] }])],
        ['no clientIds on a direct channel', direct, envelope([{ k: 't', d: 'leak' }])],
        // All or nothing: a valid packet travelling with an invalid one is dropped with it.
        ['invalid rooms', broadcast, envelope([{ k: 't', d: 'leak' }, { k: 't', d: 'leak', r: null }])],
      ];
      for (const [, channel, payload] of cases) await redis.command('PUBLISH', channel, payload);
      await redis.command('PUBLISH', broadcast, envelope([{ k: 't', d: 'sentinel', r: ['blue'] }]));

      // The next delivery is the sentinel, with exactly its own filter: nothing before it got through.
      const [sentinel] = await node.delivered.take(1);
      assert.equal(sentinel!.message.asText(), 'sentinel');
      assert.deepEqual(sentinel!.rooms, ['blue']);
      assert.equal(transport.stats.rejectedMessages, cases.length);
      const warnings = levels(node.logger.entries, 'warn');
      const reasons = [...new Set(cases.map(([reason]) => reason))];
      assert.deepEqual(warnings.map((entry) => entry.details.reason), reasons, 'one warning per reason, in order');
      for (const warning of warnings) assert.match(warning.message ?? '', /^Dropped a message from Redis that is not a toni packet \(.+, from instance (attacker|unknown|x)\)$/);
      assert.deepEqual(levels(node.logger.entries, 'error'), []);
    });

    it('a ping over 125 bytes or an invalid filter published on the channel reaches no client and leaves the application serving', async () => {
      const local = await application();
      const here = await client(local.wsUrl);
      const big = Buffer.alloc(200, 1).toString('base64');
      const channel = `${keyPrefix}:ch:broadcast`;
      await redis.command('PUBLISH', channel, envelope([{ k: 'p', d: big }]));
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'leak: c', c: 'abc' }]));
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'leak: r', r: 'abc' }]));
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'leak: x', x: 'abc' }]));
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'from redis' }]));
      assert.equal(await here.client.nextText(), 'from redis');
      await local.broadcast.broadcastText('still serving');
      assert.equal(await here.client.nextText(), 'still serving');
      assert.equal(await local.broadcast.getClientCount(), 1);
    });

    it('a flood of distinct versions and malformed messages keeps warning state, log lines and heap bounded', async (t: TestContext) => {
      const node = new StandInNode();
      const transport = await attached(node, { warningInterval: 60_000 });
      const publisher = raw();
      const channel = `${keyPrefix}:ch:broadcast`;
      const count = 10_000;
      const before = heapMb();
      // Distinct versions of 2 KB each: kept one by one, as before, they would hold ~20 MB.
      const padding = 'v'.repeat(2_000);
      for (let start = 0; start < count; start += 1_000) {
        const pipeline = publisher.pipeline();
        for (let index = start; index < start + 1_000; index++) {
          pipeline.publish(channel, JSON.stringify({ v: `${padding}${index}`, from: `instance-${index}`, p: [] }));
          pipeline.publish(channel, envelope([{ k: 't', d: 'leak', r: `room-${index}` }], `instance-${index}`));
        }
        await pipeline.exec();
      }
      await publisher.publish(channel, envelope([{ k: 't', d: 'sentinel' }]));
      assert.deepEqual(await node.texts(1), ['sentinel']);
      const after = heapMb();
      t.diagnostic(`heap ${before.toFixed(1)} -> ${after.toFixed(1)} MB after ${2 * count} bad messages`);
      assert.equal(transport.stats.rejectedMessages, 2 * count);
      assert.equal(levels(node.logger.entries, 'warn').length, 2, 'one warning per reason while the interval runs');
      assert.ok(after - before < 8, `the heap grew by ${(after - before).toFixed(1)} MB`);

      // Closing logs what was counted since: every dropped message is accounted for.
      await transport.detach();
      const warnings = levels(node.logger.entries, 'warn');
      assert.equal(warnings.length, 4);
      const total = (kind: string) => warnings.filter((entry) => (kind === 'version' ? 'version' in entry.details : entry.details.reason === kind)).reduce((sum, entry) => sum + Number(entry.details.count), 0);
      assert.equal(total('version'), count);
      assert.equal(total('invalid rooms'), count);
      assert.match(warnings[2]!.message ?? '', /^Dropped 9,999 messages of other protocol versions since the last warning, the last of version "v{63}… from instance instance-9999; this instance speaks version 1/);
      assert.ok(warnings.every((entry) => (entry.message ?? '').length < 400), 'log lines stay short whatever the messages held');
    });

    it('repeats a warning at most once per warningInterval, with the count since the last one', async () => {
      const interval = 200;
      const node = new StandInNode();
      const times: number[] = [];
      const logger = node.logger;
      const timed: ClusterNode = {
        instanceId: node.instanceId,
        logger: { ...logger, warn: (details, message) => (times.push(Date.now()), logger.warn(details, message)) },
        deliver: (packet) => node.deliver(packet),
        localClients: () => [],
      };
      await attached(timed, { warningInterval: interval });
      const publisher = raw();
      for (let index = 0; index < 30; index++) await publisher.publish(`${keyPrefix}:ch:broadcast`, envelope([{ k: 'b', d: '!!!!' }]));
      const counted = () => levels(logger.entries, 'warn').reduce((sum, entry) => sum + Number(entry.details.count), 0);
      await waitUntil(() => counted() === 30, 5_000, 'the warnings to count all 30 messages');
      const warnings = levels(logger.entries, 'warn');
      assert.ok(warnings.length >= 2, 'the count came in a later line, not only at close');
      assert.equal(warnings[0]!.details.count, 1);
      assert.match(warnings[1]!.message ?? '', /^Dropped \d+ messages from Redis that are not toni packets \(bad base64\) since the last warning/);
      for (let index = 1; index < times.length; index++) assert.ok(times[index]! - times[index - 1]! >= interval - 20, `warnings ${times[index]! - times[index - 1]!} ms apart`);
    });

    it('a packet whose delivery throws is contained: the others are delivered and the error is logged', async () => {
      const node = new StandInNode([], (packet) => {
        if (packet.message.asText() === 'boom') throw new Error('delivery exploded');
      });
      await attached(node);
      const channel = `${keyPrefix}:ch:broadcast`;
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'boom' }, { k: 't', d: 'after boom' }]));
      await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'next message' }]));
      // 'boom' was recorded before it threw; what follows it still arrives.
      assert.deepEqual(await node.texts(3), ['boom', 'after boom', 'next message']);
      const errors = levels(node.logger.entries, 'error');
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message ?? '', /^Failed to deliver 1 packet from Redis to this instance's clients \(the last from instance attacker\)/);
    });
  });

  it('a subscription Redis drops while it stays reachable is logged once it is back, and delivery resumes', async () => {
    const node = new StandInNode();
    const transport = await attached(node);
    const channel = `${keyPrefix}:ch:broadcast`;
    // What Redis does to a subscriber that falls behind its client-output-buffer-limit.
    assert.equal(await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub'), 1);
    const lost = await node.logger.waitFor((entry) => entry.level === 'warn' && /^The subscription to Redis was lost once while Redis stayed reachable/.test(entry.message ?? ''));
    assert.match(lost.message ?? '', /what other instances published meanwhile did not reach this one$/);
    await waitUntil(async () => ((await redis.command('PUBSUB', 'NUMSUB', channel)) as [string, number])[1] === 1, 5_000, 'the transport to subscribe again');
    await redis.command('PUBLISH', channel, envelope([{ k: 't', d: 'after the kill' }]));
    assert.deepEqual(await node.texts(1), ['after the kill']);
    assert.equal(transport.connected, true);
    assert.deepEqual(levels(node.logger.entries, 'error'), []);
  });

  describe('what the scripts store and read', () => {
    const oddRooms = ['\ud800', '', 'line\nbreak', 'quote " and \\ backslash', '😀', 'plain', '{"g":"x"}'];

    it('rooms with names cjson cannot decode are counted, listed and removed exactly, also after a Redis restart', async () => {
      const id = randomUUID();
      const record = { id, gateway: '/chat', rooms: new Set(oddRooms) };
      const owner = new StandInNode([record]);
      const ownerTransport = await attached(owner);
      const observer = await attached(new StandInNode());

      assert.equal(await observer.remoteCount({}), 1);
      for (const room of oddRooms) {
        assert.equal(await observer.remoteCount({ rooms: [room] }), 1, `count of ${JSON.stringify(room)}`);
        assert.deepEqual(await observer.remoteIds({ rooms: [room] }), [id], `ids of ${JSON.stringify(room)}`);
      }
      // Another lone surrogate is another room, although UTF-8 would make both U+FFFD.
      assert.equal(await observer.remoteCount({ rooms: ['\udbff'] }), 0);
      assert.deepEqual(await observer.remoteIds({ rooms: ['\udbff'] }), []);

      record.rooms.add('\udc00');
      await ownerTransport.roomChanged(id, '\udc00', true);
      assert.equal(await observer.remoteCount({ rooms: ['\udc00'] }), 1);
      record.rooms.delete('\ud800');
      await ownerTransport.roomChanged(id, '\ud800', false);
      assert.equal(await observer.remoteCount({ rooms: ['\ud800'] }), 0);

      // After a restart the owner registers its client again, then removes it: no script may fail on it.
      await redis.kill();
      await redis.restart();
      await waitUntil(async () => (await observer.remoteCount({ rooms: ['\udc00'] })) === 1, 10_000, 'the owner to register its client again');
      await ownerTransport.clientRemoved(id);
      owner.clients.length = 0;
      assert.equal(await observer.remoteCount({}), 0);
      for (const room of [...oddRooms, '\udc00']) assert.equal(await observer.remoteCount({ rooms: [room] }), 0, `count of ${JSON.stringify(room)} after removal`);
      assert.equal(await redis.command('EXISTS', `${keyPrefix}:i:${owner.instanceId}:rooms`), 0, 'no room count is left behind');
      assert.equal(ownerTransport.connected, true);
      assert.deepEqual(owner.logger.entries.filter((entry) => /rejected/.test(entry.message ?? '')), []);
    });

    it('a script Redis rejects is a failed operation, logged as such; the transport stays up and a later outage is logged', async () => {
      const owner = new StandInNode();
      const transport = await attached(owner);
      // The clients key holding a string makes every script that reads it fail with WRONGTYPE.
      await redis.command('SET', `${keyPrefix}:i:${owner.instanceId}:clients`, 'not a hash');
      await transport.clientAdded({ id: randomUUID(), gateway: '/chat', rooms: new Set(['blue']) });
      await transport.clientRemoved(randomUUID());
      await transport.clientRemoved(randomUUID());

      const errors = levels(owner.logger.entries, 'error');
      assert.equal(errors.length, 2, errors.map((entry) => entry.message).join('; '));
      assert.match(errors[0]!.message ?? '', /^Redis rejected 1 clientAdded call \(WRONGTYPE .*\); Redis itself is reachable, so this is not an outage: the call was skipped$/);
      assert.match(errors[1]!.message ?? '', /^Redis rejected 1 clientRemoved call/);
      assert.equal(transport.connected, true);
      const observer = await attached(new StandInNode());
      assert.deepEqual(await observer.remoteIds({}), [], 'other calls go on');

      await redis.kill();
      const outage = await owner.logger.waitFor((entry) => entry.level === 'error' && /Redis is unreachable/.test(entry.message ?? ''), 5_000, 'the outage to be logged');
      assert.ok(outage);
      assert.equal(transport.connected, false);
    });

    it('sendToMany with 9,000 remote ids reaches all of them, in calls of at most 1,000 ids', async () => {
      const ids = Array.from({ length: 9_000 }, () => randomUUID());
      const holder = new StandInNode(ids.map((id) => ({ id, gateway: '/chat', rooms: new Set<string>() })));
      await attached(holder);
      const senderNode = new StandInNode();
      const sender = await attached(senderNode);

      assert.equal(await sender.remoteCount({}), 9_000);
      assert.equal((await sender.remoteIds({})).length, 9_000);
      const found = await sender.sendToClients({ message: WsMessage.text('many'), clientIds: [...ids, randomUUID(), 'not-an-id'] });
      assert.equal(found, 9_000);
      const reached = new Set<string>();
      while (reached.size < ids.length) {
        const [packet] = await holder.delivered.take(1);
        assert.equal(packet!.message.asText(), 'many');
        for (const id of packet!.clientIds ?? []) reached.add(id);
      }
      assert.deepEqual(reached, new Set(ids));
      assert.equal(sender.connected, true);
      assert.deepEqual(senderNode.logger.entries.filter((entry) => entry.level === 'error' || entry.level === 'warn'), []);
    });
  });

  describe('a stalled Redis', () => {
    // CLIENT PAUSE … WRITE blocks exactly what toni sends (PUBLISH, EVALSHA) while leaving
    // CLIENT UNPAUSE usable, so the test ends the stall when it has checked it, not on a clock.
    // The pause's own timeout only bounds a failing test.
    const pause = () => redis.command('CLIENT', 'PAUSE', '10000', 'WRITE');
    const unpause = () => redis.command('CLIENT', 'UNPAUSE');

    it('bounds the publishes awaiting Redis, counts what it drops, logs the degraded state once and its end once', async (t: TestContext) => {
      const maxPendingPublishes = 10;
      // No call times out while the test looks at the stall: the bound alone is what degrades it.
      const local = await application({ maxPendingPublishes, maxPendingBytes: 1024 * 1024, heartbeatInterval: 1_000, operationTimeout: 2_000 });
      const other = await application();
      const there = await client(other.wsUrl);
      await local.broadcast.broadcastText('before');
      assert.equal(await there.client.nextText(), 'before');
      await waitUntil(() => local.transport.stats.pendingPublishes === 0, 5_000, 'the first publish to be answered');

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
      assert.match(degraded.message ?? '', /10 publishes \([\d,]+ bytes\) await Redis, the most maxPendingPublishes \(10\) and maxPendingBytes \(1048576\) allow/);
      const stalled = local.transport.stats;
      assert.equal(stalled.pendingPublishes, maxPendingPublishes);
      assert.ok(stalled.pendingBytes <= maxPendingPublishes * (padding.length + 200), `${stalled.pendingBytes} bytes pending`);
      assert.equal(stalled.droppedPublishes, messages - maxPendingPublishes);
      assert.equal(local.transport.connected, false);
      // A direct send while the bound is reached is refused at once rather than dropped later.
      assert.equal(await local.broadcast.sendTo(there.id, 'direct while stalled'), false);
      assert.equal(local.transport.stats.droppedMessages, messages - maxPendingPublishes + 1);
      const heapStalled = heapMb();
      t.diagnostic(`heap ${heapBefore.toFixed(1)} -> ${heapStalled.toFixed(1)} MB after ${messages} broadcasts of 32 KB into a stalled Redis`);
      assert.ok(heapStalled - heapBefore < 8, `the heap grew by ${(heapStalled - heapBefore).toFixed(1)} MB`);

      await unpause();
      const recovered = await local.logger.waitFor((entry) => entry.level === 'info' && /^Redis keeps up again/.test(entry.message ?? ''), 5_000, 'the recovery to be logged');
      assert.equal(recovered.details.droppedPublishes, messages - maxPendingPublishes + 1);
      assert.match(recovered.message ?? '', /591 messages in 591 publishes did not reach other instances/);
      // What was pending arrives, in order; delivery goes on.
      const arrived = await there.client.texts(maxPendingPublishes);
      assert.deepEqual(arrived.map((text) => text.slice(0, text.indexOf(' x'))), Array.from({ length: maxPendingPublishes }, (_, index) => `stalled ${index}`));
      await local.broadcast.broadcastText('after');
      assert.equal(await there.client.nextText(), 'after');
      assert.equal(local.transport.connected, true);
      assert.equal(local.transport.stats.pendingPublishes, 0);
      assert.equal(levels(local.logger.entries, 'warn').length, 1, 'degraded is logged once');
      assert.deepEqual(levels(local.logger.entries, 'error'), [], 'a stall is not an outage');
    });

    it('an operation that times out marks Redis degraded, not unreachable, until it answers again', async () => {
      const local = await application();
      await pause();
      const started = Date.now();
      assert.equal(await withTimeout(local.broadcast.getClientCount(), 2_000, 'a count while Redis is stalled'), 0);
      assert.ok(Date.now() - started < 1_500, 'the count settled within about operationTimeout');
      const degraded = await local.logger.waitFor((entry) => entry.level === 'warn' && /^Redis is degraded: it did not answer (remoteCount|heartbeat) within 300 ms/.test(entry.message ?? ''));
      assert.ok(degraded);
      assert.equal(local.transport.connected, false);
      await unpause();
      const recovered = await local.logger.waitFor((entry) => entry.level === 'info' && /^Redis keeps up again/.test(entry.message ?? ''));
      assert.match(recovered.message ?? '', /nothing was dropped/);
      assert.equal(local.transport.connected, true);
      assert.deepEqual(levels(local.logger.entries, 'error'), []);
    });
  });

  it('rejects invalid bounds with TONI_ERR_INVALID_OPTION', () => {
    const invalid = (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION';
    assert.throws(() => new RedisTransport({ maxPendingPublishes: 0 }), invalid);
    assert.throws(() => new RedisTransport({ maxPendingBytes: -1 }), /maxPendingBytes must be a positive integer, got -1/);
    assert.throws(() => new RedisTransport({ warningInterval: 1.5 }), /warningInterval must be a positive integer of milliseconds, got 1.5/);
  });
});
