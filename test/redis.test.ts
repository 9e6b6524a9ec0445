import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Injectable, Module, ToniError, ToniFactory, type ToniApplication, inject } from 'tonijs';
import { WsAdapter } from 'tonijs/node';
import { PROTOCOL_VERSION, RedisTransport } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, ConnectionManager, PresenceService, type Gateway, type WsClient } from 'tonijs/websocket';
import { captureLogger, withTimeout, waitUntil } from './support/async.js';
import { ChildInstance, HEARTBEAT, INSTANCE_TIMEOUT } from './support/child-instance.js';
import { RedisServer } from './support/redis-server.js';
import { type TestClient, connect } from './support/ws-client.js';


/** As the child's: joins `?room=`, tracks `?presence=<key>` there, then greets the client with its id. */
@Injectable()
class ChatGateway implements Gateway {
  readonly path = '/chat';
  private readonly presence = inject(PresenceService);
  async onConnect(client: WsClient) {
    const room = client.handshake.query.get('room');
    const key = client.handshake.query.get('presence');
    if (room) await client.join(room);
    if (room && key) await this.presence.track(client, room, key);
    await client.send(`hello ${client.id}`);
  }
  onMessage() {}
}

describe('RedisTransport across processes', () => {
  let redis: RedisServer;
  const apps: ToniApplication[] = [];
  const children: ChildInstance[] = [];
  const clients: TestClient[] = [];

  beforeEach(async () => {
    redis = await RedisServer.start();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(children.splice(0).map((child) => child.kill()));
    await redis.stop();
  });

  async function localInstance(options: { logger?: ReturnType<typeof captureLogger>; operationTimeout?: number } = {}) {
    const transport = new RedisTransport({ url: redis.url, heartbeatInterval: HEARTBEAT, instanceTimeout: INSTANCE_TIMEOUT, operationTimeout: options.operationTimeout ?? 500 });
    @Module({ imports: [BroadcastModule.forRoot({ transport })], providers: [ChatGateway] })
    class LocalModule {}
    const app = await ToniFactory.create(LocalModule, undefined, { logger: options.logger ?? false });
    apps.push(app);
    const ws = new WsAdapter();
    app.useWebSocketAdapter(ws);
    await app.listen(0, '127.0.0.1');
    return { app, transport, broadcast: app.get(BroadcastService), presence: app.get(PresenceService), manager: app.get(ConnectionManager), wsUrl: ws.getUrl('/chat') };
  }

  /** Connects a client and returns it with its id (from the gateway's greeting). */
  async function client(url: string): Promise<{ client: TestClient; id: string }> {
    const opened = await connect(url);
    clients.push(opened);
    const greeting = await opened.nextText();
    return { client: opened, id: greeting.slice('hello '.length) };
  }

  it('broadcasts, rooms, sendTo, sendToMany, counts and ids span a separate process', async () => {
    const local = await localInstance();
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    const here = await client(`${local.wsUrl}?room=blue`);
    const there = await client(`${child.wsUrl}?room=red`);
    const thereToo = await client(`${child.wsUrl}?room=blue`);

    assert.equal(await local.broadcast.getClientCount(), 3);
    assert.deepEqual(new Set(await local.broadcast.getClientIds()), new Set([here.id, there.id, thereToo.id]));
    assert.equal(await child.command<number>('count'), 3);
    assert.equal(await local.broadcast.to('blue').getClientCount(), 2);
    assert.equal(await child.command<number>('count', { room: 'red' }), 1);

    await local.broadcast.broadcastText('from the parent');
    assert.equal(await here.client.nextText(), 'from the parent');
    assert.equal(await there.client.nextText(), 'from the parent');
    assert.equal(await thereToo.client.nextText(), 'from the parent');

    await child.command('broadcast', { text: 'from the child' });
    for (const each of [here, there, thereToo]) assert.equal(await each.client.nextText(), 'from the child');

    await local.broadcast.to('red').broadcastText('red only');
    assert.equal(await there.client.nextText(), 'red only');
    await local.broadcast.to('blue').except(here.id).broadcastText('blue but not here');
    assert.equal(await thereToo.client.nextText(), 'blue but not here');

    assert.equal(await local.broadcast.sendTo(there.id, 'direct'), true);
    assert.equal(await there.client.nextText(), 'direct');
    assert.equal(await local.broadcast.sendTo('00000000-0000-4000-8000-000000000000', 'nobody'), false);
    assert.equal(await local.broadcast.sendToMany([here.id, there.id, thereToo.id, 'unknown'], 'many'), 3);
    for (const each of [here, there, thereToo]) assert.equal(await each.client.nextText(), 'many');
    assert.equal(await child.command<boolean>('sendTo', { clientId: here.id, text: 'back' }), true);
    assert.equal(await here.client.nextText(), 'back');

    // Nothing else arrived: every client's queue is empty.
    await local.broadcast.broadcastText('end');
    for (const each of [here, there, thereToo]) assert.equal(await each.client.nextText(), 'end');
  });

  it('a killed instance drops out of counts, ids and rooms within the instance timeout', async () => {
    const local = await localInstance();
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    const here = await client(`${local.wsUrl}?room=blue`);
    await client(`${child.wsUrl}?room=blue`);
    assert.equal(await local.broadcast.getClientCount(), 2);

    await child.kill();
    await waitUntil(async () => (await local.broadcast.getClientCount()) === 1, INSTANCE_TIMEOUT * 5, 'the killed instance to drop out');
    // Bounded by the wait above (5 × instanceTimeout), whatever else loads the machine.
    assert.deepEqual(await local.broadcast.getClientIds(), [here.id]);
    assert.equal(await local.broadcast.to('blue').getClientCount(), 1);
    assert.equal(await local.broadcast.sendTo((await local.broadcast.getClientIds())[0]!, 'still here'), true);
  });

  it('a cleanly closed instance leaves the cluster at once', async () => {
    const local = await localInstance();
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    await client(local.wsUrl);
    await client(child.wsUrl);
    assert.equal(await local.broadcast.getClientCount(), 2);
    await child.command('close');
    assert.equal(await local.broadcast.getClientCount(), 1);
  });

  it('keeps local delivery while Redis is down, logs once, and rejoins when it returns', async () => {
    const logger = captureLogger();
    const local = await localInstance({ logger });
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    const here = await client(local.wsUrl);
    const there = await client(child.wsUrl);
    assert.equal(await local.broadcast.getClientCount(), 2);

    await redis.kill();
    for (let index = 0; index < 50; index++) await withTimeout(local.broadcast.broadcastText(`down ${index}`), 2_000, 'a broadcast while Redis is down');
    assert.deepEqual(await here.client.texts(50), Array.from({ length: 50 }, (_, index) => `down ${index}`));
    assert.equal(await withTimeout(local.broadcast.getClientCount(), 2_000, 'a count while Redis is down'), 1);
    assert.deepEqual(await withTimeout(local.broadcast.getClientIds(), 2_000, 'ids while Redis is down'), [here.id]);
    assert.equal(await withTimeout(local.broadcast.sendTo(there.id, 'lost'), 2_000, 'a sendTo while Redis is down'), false);
    const outageErrors = logger.entries.filter((entry) => entry.level === 'error');
    assert.equal(outageErrors.length, 1, `logged ${outageErrors.length} errors: ${outageErrors.map((entry) => entry.message).join('; ')}`);

    await redis.restart();
    await logger.waitFor((entry) => entry.level === 'info' && /reachable again/.test(entry.message ?? ''), 10_000, 'this instance to reconnect');
    // The child's state arrives once it is subscribed again and has answered: then it hears broadcasts too.
    await waitUntil(() => local.manager.clusterStats.syncedInstances === 1, 10_000, 'the child to send its state again');
    assert.equal(await local.broadcast.getClientCount(), 2);
    assert.ok(logger.entries.some((entry) => entry.level === 'info' && /reachable again/.test(entry.message ?? '')));
    assert.deepEqual(logger.entries.filter((entry) => /subscription/.test(entry.message ?? '')), [], 'the outage covers the subscription');
    await local.broadcast.broadcastText('after the outage');
    assert.equal(await there.client.nextText(), 'after the outage');
    assert.equal(await here.client.nextText(), 'after the outage');
    await child.command('broadcast', { text: 'child after the outage' });
    assert.equal(await here.client.nextText(), 'child after the outage');
  });

  it('starts while Redis is unreachable and joins the cluster once it is up', async () => {
    await redis.kill();
    const logger = captureLogger();
    const local = await withTimeout(localInstance({ logger }), 5_000, 'an instance to start without Redis');
    const here = await client(local.wsUrl);
    await local.broadcast.broadcastText('local only');
    assert.equal(await here.client.nextText(), 'local only');
    assert.equal(await local.broadcast.getClientCount(), 1);
    await redis.restart();
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    await waitUntil(async () => (await child.command<number>('count')) === 1, 10_000, 'the child to see the instance that started without Redis');
    await child.command('broadcast', { text: 'hello from the child' });
    assert.equal(await here.client.nextText(), 'hello from the child');
  });

  it('a message on the channel that does not decode crashes no instance and reaches no client', async () => {
    const logger = captureLogger();
    const local = await localInstance({ logger });
    const child = await ChildInstance.spawn(redis.url);
    children.push(child);
    const here = await client(`${local.wsUrl}?room=blue`);
    const there = await client(`${child.wsUrl}?room=blue`);
    const channel = 'tonijs:ch:broadcast';
    const envelope = (packet: object) => JSON.stringify({ v: PROTOCOL_VERSION, from: 'x', p: [packet] });
    // Each of these threw out of ioredis's message handler, or reached every client.
    await redis.command('PUBLISH', channel, envelope({ t: 'b', k: 'p', d: Buffer.alloc(200).toString('base64') }));
    await redis.command('PUBLISH', channel, envelope({ t: 'b', k: 't', d: 'leak', c: 'abc' }));
    await redis.command('PUBLISH', channel, envelope({ t: 'b', k: 't', d: 'leak', r: 'abc' }));
    await local.broadcast.to('blue').broadcastText('both alive');
    assert.equal(await here.client.nextText(), 'both alive');
    assert.equal(await there.client.nextText(), 'both alive');
    await child.command('broadcast', { text: 'the child too' });
    assert.equal(await here.client.nextText(), 'the child too');
    assert.equal(await child.command<number>('count'), 2);
    assert.deepEqual(logger.entries.filter((entry) => entry.level === 'warn').map((entry) => entry.details.reason), ['control payload over 125 bytes', 'invalid clientIds', 'invalid rooms']);
  });

  it('drops packets of another protocol version with one clear warning', async () => {
    const logger = captureLogger();
    const local = await localInstance({ logger });
    const here = await client(local.wsUrl);
    const raw = new Redis(redis.url);
    try {
      for (let index = 0; index < 3; index++) {
        await raw.publish('tonijs:ch:broadcast', JSON.stringify({ v: 99, from: 'future-instance', p: [{ t: 'b', k: 't', d: 'from the future' }] }));
      }
      await raw.publish('tonijs:ch:broadcast', 'not json at all');
      await waitUntil(() => logger.entries.filter((entry) => entry.level === 'warn').length >= 2, 5_000, 'the warnings');
    } finally {
      raw.disconnect();
    }
    const warnings = logger.entries.filter((entry) => entry.level === 'warn');
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!.message ?? '', new RegExp(`protocol version 99 from instance future-instance; this instance speaks version ${PROTOCOL_VERSION}`));
    await local.broadcast.broadcastText('current');
    assert.equal(await here.client.nextText(), 'current');
  });

  it('a broadcast after the application closed does nothing and logs nothing', async () => {
    const logger = captureLogger();
    const local = await localInstance({ logger });
    await local.app.close();
    await local.broadcast.broadcastText('after close');
    assert.equal(await local.broadcast.getClientCount(), 0);
    assert.deepEqual(logger.entries.filter((entry) => entry.level === 'error' || entry.level === 'warn'), []);
  });

  describe('presence and operations when an instance dies', () => {
    const presenceEvent = (joins: string[], leaves: string[]) =>
      JSON.stringify({ event: 'presence', data: { room: 'lobby', joins: joins.map((key) => ({ key, meta: null })), leaves: leaves.map((key) => ({ key, meta: null })) } });

    /** Joins the lobby as `key`: its greeting and the news of its own arrival come in either order. */
    async function member(url: string, key: string): Promise<TestClient> {
      const opened = await connect(`${url}?room=lobby&presence=${key}`);
      clients.push(opened);
      const [first, second] = await opened.texts(2);
      const greeting = [first, second].find((text) => text!.startsWith('hello '));
      assert.ok(greeting !== undefined, `a greeting among ${first} | ${second}`);
      assert.equal([first, second].find((text) => text !== greeting), presenceEvent([key], []));
      return opened;
    }

    it('a SIGKILLed instance’s members leave within instanceTimeout, announced once; operations do not wait for it', async () => {
      const logger = captureLogger();
      const local = await localInstance({ logger, operationTimeout: 5_000 });
      const child = await ChildInstance.spawn(redis.url);
      children.push(child);
      const ann = { client: await member(local.wsUrl, 'ann') };
      await member(child.wsUrl, 'bob');
      assert.equal(await ann.client.nextText(), presenceEvent(['bob'], []));
      assert.deepEqual(sortedKeys(local.presence.list('lobby')), ['ann', 'bob']);
      assert.deepEqual(sortedKeys(await child.command<{ key: string }[]>('presence', { room: 'lobby' })), ['ann', 'bob']);

      await child.kill();
      // The operation goes out while the dead instance still counts as live: it resolves once that
      // instance is taken for dead (instanceTimeout, 600 ms), long before operationTimeout (5 s).
      const started = Date.now();
      assert.equal(await local.broadcast.to('lobby').join('after'), 1);
      assert.ok(Date.now() - started < 4_000, `the join resolved after ${Date.now() - started} ms`);
      assert.equal(await ann.client.nextText(), presenceEvent([], ['bob']));
      await local.broadcast.broadcastText('sentinel');
      assert.equal(await ann.client.nextText(), 'sentinel', 'the leave came once');
      assert.deepEqual(sortedKeys(local.presence.list('lobby')), ['ann']);
      assert.equal(await local.broadcast.getClientCount(), 1);
      assert.deepEqual(logger.entries.filter((entry) => /did not confirm/.test(entry.message ?? '')), [], 'the dead instance was not waited for');
    });

    it('a Redis restart rebuilds the state: the members of an instance that died meanwhile leave once, the others stay without news', async () => {
      const logger = captureLogger();
      const local = await localInstance({ logger });
      const survivor = await ChildInstance.spawn(redis.url);
      const doomed = await ChildInstance.spawn(redis.url);
      children.push(survivor, doomed);
      const ann = { client: await member(local.wsUrl, 'ann') };
      await member(survivor.wsUrl, 'sam');
      assert.equal(await ann.client.nextText(), presenceEvent(['sam'], []));
      await member(doomed.wsUrl, 'dan');
      assert.equal(await ann.client.nextText(), presenceEvent(['dan'], []));

      await redis.kill();
      await doomed.kill();
      await redis.restart();
      await logger.waitFor((entry) => /^Redis is reachable again/.test(entry.message ?? ''), 10_000, 'the local instance to reconnect');
      // The dead instance cannot send its state again: it leaves once instanceTimeout has passed.
      assert.equal(await ann.client.nextText(5_000), presenceEvent([], ['dan']));
      await waitUntil(async () => (await survivor.command<number>('count')) === 2, 10_000, 'the survivor to see the two live clients');
      await local.broadcast.broadcastText('sentinel');
      assert.equal(await ann.client.nextText(), 'sentinel', 'no spurious leave or join for the members that stayed');
      assert.deepEqual(sortedKeys(local.presence.list('lobby')), ['ann', 'sam']);
      assert.deepEqual(sortedKeys(await survivor.command<{ key: string }[]>('presence', { room: 'lobby' })), ['ann', 'sam'], 'no ghost member on the survivor');
      assert.equal(await local.broadcast.getClientCount(), 2);
    });
  });

  it('rejects invalid options with TONI_ERR_INVALID_OPTION', () => {
    assert.throws(() => new RedisTransport({ heartbeatInterval: 0 }), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION');
    assert.throws(() => new RedisTransport({ heartbeatInterval: 5_000, instanceTimeout: 1_000 }), /must be shorter than instanceTimeout/);
  });
});

function sortedKeys(members: readonly { key: string }[]): string[] {
  return members.map((member) => member.key).sort();
}
