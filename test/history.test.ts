// History and recovery, spoken as tonijs/client speaks it (the tonijs.v1 subprotocol, the
// tonijs-recover query parameter, the welcome frame), with plain `ws` clients so that every frame
// is visible: in memory on one instance, and over a real redis-server onto another instance,
// also after the first was killed.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Injectable, Module, ToniError, ToniFactory, type ToniApplication } from 'tonijs';
import { WsAdapter } from 'tonijs/node';
import { RedisTransport } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, type BroadcastTransport, type Gateway, InMemoryHub, MemoryHistory, type WsClient, type WsMessage } from 'tonijs/websocket';
import { captureLogger, waitUntil } from './support/async.js';
import { RedisServer } from './support/redis-server.js';
import { TestClient, connect } from './support/ws-client.js';

/** Joins the rooms of `?rooms=a,b` while connecting, and a room a `join <room>` message names later (a handler). */
@Injectable()
class RoomsGateway implements Gateway {
  readonly path = '/live';
  async onConnect(client: WsClient) {
    for (const room of client.handshake.query.get('rooms')?.split(',') ?? []) if (room !== '') await client.join(room);
  }
  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText();
    if (text?.startsWith('join ')) await client.join(text.slice(5));
  }
}

@Injectable()
class OtherGateway implements Gateway {
  readonly path = '/other';
  async onConnect(client: WsClient) {
    for (const room of client.handshake.query.get('rooms')?.split(',') ?? []) if (room !== '') await client.join(room);
  }
  onMessage() {}
}

/** A kept event as the client receives it. */
interface Kept {
  event: string;
  data?: unknown;
  room: string;
  offset: number;
  epoch: string;
}

/** What a client knows after a session: its id (from the welcome) and its position in each stream. */
interface Memory {
  id: string;
  positions: Record<string, [string, number]>;
}

const HISTORY = { size: 100, ttl: 60_000 };

describe('history and recovery', () => {
  const apps: ToniApplication[] = [];
  const clients: TestClient[] = [];
  let redis: RedisServer | undefined;

  afterEach(async () => {
    for (const client of clients.splice(0)) client.ws.terminate();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await redis?.stop();
    redis = undefined;
  });

  async function start(options: { history?: typeof HISTORY | undefined; transport?: BroadcastTransport } = {}) {
    const history = 'history' in options ? options.history : HISTORY;
    @Module({ imports: [BroadcastModule.forRoot({ transport: options.transport, history })], providers: [RoomsGateway, OtherGateway] })
    class HistoryModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(HistoryModule, undefined, { logger });
    apps.push(app);
    const adapter = new WsAdapter();
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    return { app, logger, broadcast: app.get(BroadcastService), url: (path = '/live') => adapter.getUrl(path) };
  }

  /** Opens a tonijs.v1 client on `rooms`, sending `memory` to recover; resolves once connected (before the welcome). */
  async function open(url: string, rooms: string[], memory?: Memory): Promise<TestClient> {
    const target = new URL(url);
    target.searchParams.set('rooms', rooms.join(','));
    if (memory !== undefined) target.searchParams.set('tonijs-recover', JSON.stringify({ id: memory.id, s: memory.positions }));
    const client = await connect(target.href, { protocols: 'tonijs.v1' });
    clients.push(client);
    return client;
  }

  type Position = { room: string; epoch: string; offset: number };

  /** Per client, per stream, the epoch it was last told (a position frame, or a kept event that carried one). */
  const told = new WeakMap<TestClient, Map<string, string>>();
  /** Events that came without their epoch, which the server had told before. */
  const untold = new WeakSet<Kept>();

  /** The next frame, a kept event given the epoch it is in, as a client that follows its positions reads it. */
  async function nextFrame(client: TestClient): Promise<Kept & { welcome?: { id: string; recovered: boolean }; position?: Position; left?: string }> {
    const frame = JSON.parse(await client.nextText()) as Kept & { welcome?: { id: string; recovered: boolean }; position?: Position; left?: string };
    let epochs = told.get(client);
    if (epochs === undefined) told.set(client, (epochs = new Map()));
    if (frame.position !== undefined) epochs.set(frame.position.room, frame.position.epoch);
    else if (typeof frame.offset === 'number') {
      if (frame.epoch !== undefined) epochs.set(frame.room, frame.epoch);
      else {
        assert.ok(epochs.has(frame.room), `an event without an epoch in ${JSON.stringify(frame.room)}, which the client was never told`);
        frame.epoch = epochs.get(frame.room)!;
        untold.add(frame);
      }
    }
    return frame;
  }

  /** Reads frames until the welcome: the events before it, where the client starts in each stream, and the welcome. */
  async function untilWelcome(client: TestClient): Promise<{ events: Kept[]; positions: Position[]; welcome: { id: string; recovered: boolean } }> {
    const events: Kept[] = [];
    const positions: Position[] = [];
    for (;;) {
      const frame = await nextFrame(client);
      if (frame.welcome !== undefined) return { events, positions, welcome: frame.welcome };
      if (frame.position !== undefined) positions.push(frame.position);
      else events.push(frame);
    }
  }

  /** The next `count` events, past the position frames a join sends. */
  async function kept(client: TestClient, count: number): Promise<Kept[]> {
    const events: Kept[] = [];
    while (events.length < count) {
      const frame = await nextFrame(client);
      if (frame.position === undefined && frame.left === undefined) events.push(frame);
    }
    return events;
  }

  /** A client in `rooms` that received the `count` events `send` emits, then lost its connection: its welcome and what it saw. */
  async function seenThenDropped(url: string, rooms: string[], count: number, send: () => Promise<unknown>): Promise<{ welcome: { id: string; recovered: boolean }; seen: Kept[] }> {
    const client = await open(url, rooms);
    const { welcome } = await untilWelcome(client);
    await send();
    const seen = await kept(client, count);
    client.ws.terminate();
    await client.waitForClose();
    return { welcome, seen };
  }

  function remember(id: string, events: readonly Kept[], into: Memory['positions'] = {}): Memory {
    for (const event of events) into[event.room] = [event.epoch, event.offset];
    return { id, positions: into };
  }

  describe('in memory, on one instance', () => {
    it('keeps emits to a room and to everyone, each carrying its stream, offset and epoch', async () => {
      const { broadcast, url } = await start();
      const client = await open(url(), ['lobby']);
      const { welcome } = await untilWelcome(client);
      assert.equal(welcome.recovered, false, 'a first connection recovers nothing');
      await broadcast.to('lobby').emit('said', 'one');
      await broadcast.emit('news', { n: 1 });
      await broadcast.to('lobby').emit('said', 'two');
      const [first, news, second] = await kept(client, 3);
      assert.deepEqual({ ...first, epoch: undefined }, { event: 'said', data: 'one', room: 'lobby', offset: 1, epoch: undefined });
      assert.deepEqual({ ...news, epoch: undefined }, { event: 'news', data: { n: 1 }, room: '', offset: 1, epoch: undefined });
      assert.equal(second!.offset, 2);
      assert.equal(second!.epoch, first!.epoch);
      assert.equal(typeof first!.epoch, 'string');
      assert.deepEqual([untold.has(first!), untold.has(news!), untold.has(second!)], [false, false, true], 'the epoch comes with the first event of each stream, then not again');
      // What is not kept carries no position: a raw broadcast, an emit to two rooms, a local one, one to given clients.
      await broadcast.broadcastText('plain');
      await broadcast.to(['lobby', 'other']).emit('two rooms');
      await broadcast.local.to('lobby').emit('local');
      await broadcast.only(welcome.id).emit('only you');
      assert.deepEqual(await client.texts(4), ['plain', '{"event":"two rooms"}', '{"event":"local"}', '{"event":"only you"}']);
    });

    it('leaves the epoch out only once every client of the stream here was told it: an event that skipped some does not count', async () => {
      const { broadcast, url } = await start();
      const ann = await open(url(), ['side']);
      const bob = await open(url(), ['side']);
      const [{ welcome: annWelcome }] = await Promise.all([untilWelcome(ann), untilWelcome(bob)]);
      await broadcast.to('side').except(annWelcome.id).emit('n', 1);
      await broadcast.to('side').emit('n', 2);
      await broadcast.to('side').emit('n', 3);
      const [bobs, anns] = await Promise.all([kept(bob, 3), kept(ann, 2)]);
      assert.deepEqual(bobs.map((event) => [event.data, untold.has(event)]), [[1, false], [2, false], [3, true]]);
      assert.deepEqual(anns.map((event) => [event.data, event.epoch, untold.has(event)]), [[2, bobs[0]!.epoch, false], [3, bobs[0]!.epoch, true]]);
    });

    it('replays what a reconnecting client missed, in order and exactly once, before newer messages, and says it recovered', async () => {
      const { broadcast, url } = await start();
      const { welcome, seen } = await seenThenDropped(url(), ['lobby'], 4, async () => {
        for (let index = 1; index <= 3; index++) await broadcast.to('lobby').emit('n', index);
        await broadcast.emit('all', 1);
      });
      for (let index = 4; index <= 6; index++) await broadcast.to('lobby').emit('n', index);
      await broadcast.emit('all', 2);
      await broadcast.to('elsewhere').emit('n', 'not for it');

      const again = await open(url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      assert.deepEqual(events.map((event) => [event.room, event.event, event.data]), [['', 'all', 2], ['lobby', 'n', 4], ['lobby', 'n', 5], ['lobby', 'n', 6]]);
      assert.deepEqual(second.recovered, true);
      assert.notEqual(second.id, welcome.id);
      await broadcast.to('lobby').emit('n', 7);
      assert.deepEqual((await kept(again, 1)).map((event) => event.data), [7]);
    });

    it('says recovered: false when the history no longer reaches back, and live messages flow on', async () => {
      const { broadcast, url } = await start({ history: { size: 3, ttl: 60_000 } });
      const { welcome, seen } = await seenThenDropped(url(), ['lobby'], 1, async () => {
        await broadcast.to('lobby').emit('n', 1);
      });
      for (let index = 2; index <= 6; index++) await broadcast.to('lobby').emit('n', index);
      const again = await open(url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      assert.deepEqual(events, [], 'nothing of a broken stretch is replayed');
      assert.equal(second.recovered, false);
      await broadcast.to('lobby').emit('n', 7);
      assert.deepEqual((await kept(again, 1)).map((event) => event.data), [7]);
    });

    it('says recovered: false for another epoch or a malformed request, in the welcome for what was joined while connecting and in the position frame of a room joined later', async () => {
      const { broadcast, url } = await start();
      const { welcome, seen } = await seenThenDropped(url(), ['lobby', 'side'], 2, async () => {
        await broadcast.to('lobby').emit('n', 1);
        await broadcast.to('side').emit('n', 1);
      });
      const memory = remember(welcome.id, seen);

      const epochs = await open(url(), ['lobby'], { id: welcome.id, positions: { lobby: ['another-epoch', 1] } });
      assert.equal((await untilWelcome(epochs)).welcome.recovered, false);
      // side is not joined while connecting: the welcome speaks for lobby, and the position frame
      // of a later join for side.
      const partly = await open(url(), ['lobby'], memory);
      assert.equal((await untilWelcome(partly)).welcome.recovered, true);
      partly.ws.send('join side');
      assert.deepEqual(JSON.parse(await partly.nextText()), { position: { room: 'side', epoch: memory.positions['side']![0], offset: 1, recovered: true } });
      const sideLost = await open(url(), ['lobby'], { id: welcome.id, positions: { ...memory.positions, side: ['another-epoch', 1] } });
      assert.equal((await untilWelcome(sideLost)).welcome.recovered, true);
      sideLost.ws.send('join side');
      assert.equal((JSON.parse(await sideLost.nextText()) as { position: { recovered: boolean } }).position.recovered, false);
      const target = new URL(url());
      target.searchParams.set('rooms', 'lobby');
      target.searchParams.set('tonijs-recover', '{not json');
      const broken = await connect(target.href, { protocols: 'tonijs.v1' });
      clients.push(broken);
      assert.equal((await untilWelcome(broken)).welcome.recovered, false);
      const whole = await open(url(), ['lobby', 'side'], memory);
      assert.equal((await untilWelcome(whole)).welcome.recovered, true);
    });

    it('replays only what was for the client: not what excluded it (by its previous id), nor another gateway’s', async () => {
      const { broadcast, url } = await start();
      const { welcome, seen } = await seenThenDropped(url(), ['lobby'], 2, async () => {
        await broadcast.emit('hello', 0);
        await broadcast.to('lobby').emit('hi', 0);
      });
      await broadcast.except(welcome.id).emit('not for you');
      await broadcast.gateway('/other').emit('other gateway');
      await broadcast.gateway('/live').emit('this gateway');
      await broadcast.to('lobby').except(welcome.id).emit('not for you either');
      await broadcast.to('lobby').emit('for the room');
      const again = await open(url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      // The broadcasts to everyone first (at registration), then the room's (at its join).
      assert.deepEqual(events.map((event) => event.event), ['this gateway', 'for the room']);
      assert.equal(second.recovered, true, 'what it was not meant to get is not missing');
    });

    it('plain WebSocket clients get the positions as extra fields, and no welcome', async () => {
      const { broadcast, url } = await start();
      const plain = await connect(`${url()}?rooms=lobby`);
      clients.push(plain);
      await broadcast.to('lobby').emit('n', 1);
      const [event] = await kept(plain, 1);
      assert.equal(event!.event, 'n');
      assert.equal(event!.offset, 1);
      await broadcast.broadcastText('next');
      assert.equal(await plain.nextText(), 'next', 'no welcome came in between');
    });

    it('without history nothing carries a position, and the welcome says recovered: false', async () => {
      const { broadcast, url } = await start({ history: undefined });
      const client = await open(url(), ['lobby'], { id: randomUUID(), positions: { lobby: ['e', 1] } });
      assert.equal((await untilWelcome(client)).welcome.recovered, false);
      await broadcast.to('lobby').emit('n', 1);
      assert.equal(await client.nextText(), '{"event":"n","data":1}');
    });

    it('refuses invalid history options with TONI_ERR_INVALID_OPTION', async () => {
      for (const history of [{ size: 0, ttl: 1 }, { size: 1, ttl: -1 }, { size: 1.5, ttl: 1 }]) {
        @Module({ imports: [BroadcastModule.forRoot({ history })] })
        class Invalid {}
        await assert.rejects(ToniFactory.create(Invalid, undefined, { logger: false }), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION');
      }
    });
  });

  describe('shared by the applications of an InMemoryHub', () => {
    it('recovers onto another application of the hub', async () => {
      const hub = new InMemoryHub();
      const east = await start({ transport: hub.transport() });
      const west = await start({ transport: hub.transport() });
      const { welcome, seen } = await seenThenDropped(east.url(), ['lobby'], 1, async () => {
        await west.broadcast.to('lobby').emit('n', 1);
      });
      await east.broadcast.to('lobby').emit('n', 2);
      await west.broadcast.to('lobby').emit('n', 3);
      const again = await open(west.url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      assert.deepEqual(events.map((event) => event.data), [2, 3]);
      assert.equal(second.recovered, true);
    });
  });

  describe('in Redis Streams, shared by a cluster', () => {
    async function redisInstance(server: RedisServer, prefix: string, options: { operationTimeout?: number; size?: number } = {}) {
      const transport = new RedisTransport({ url: server.url, keyPrefix: prefix, heartbeatInterval: 100, instanceTimeout: 600, operationTimeout: options.operationTimeout ?? 1_000 });
      // Room for everything a test sends, however slowly a loaded machine lets the client come back.
      return start({ transport, history: { size: options.size ?? 10_000, ttl: 60_000 } });
    }

    it('keeps the last `size` messages however a turn batched them, and trims the Redis Stream to about that', async () => {
      redis = await RedisServer.start();
      const prefix = `history-${randomUUID()}`;
      const east = await redisInstance(redis, prefix, { size: 3 });
      const first = await open(east.url(), ['lobby']);
      const { welcome } = await untilWelcome(first);
      await east.broadcast.to('lobby').emit('n', 0);
      const seen = await kept(first, 1);
      // One turn of ten emits: one entry in the Redis Stream, of which only the last three count.
      await Promise.all(Array.from({ length: 10 }, (_, index) => east.broadcast.to('lobby').emit('n', index + 1)));
      const burst = await kept(first, 10);
      first.ws.terminate();
      await first.waitForClose();
      const within = await open(east.url(), ['lobby'], remember(welcome.id, [...seen, ...burst.slice(0, 7)]));
      const recovered = await untilWelcome(within);
      assert.deepEqual([recovered.events.map((event) => event.data), recovered.welcome.recovered], [[8, 9, 10], true]);
      const beyond = await open(east.url(), ['lobby'], remember(welcome.id, [...seen, ...burst.slice(0, 6)]));
      const lost = await untilWelcome(beyond);
      assert.deepEqual([lost.events, lost.welcome.recovered], [[], false], 'the 7th is more than three back');

      // A thousand turns of two emits: the stream holds about the last few entries, not a thousand.
      for (let turn = 0; turn < 1_000; turn++) await Promise.all([east.broadcast.to('lobby').emit('n', 1), east.broadcast.to('lobby').emit('n', 2)]);
      const stats = new Redis(redis.url);
      const length = await stats.xlen(`{${prefix}}:h:lobby`);
      stats.disconnect();
      assert.ok(length > 0 && length < 250, `${length} entries kept for a size of 3`);
    });

    it('recovers onto another instance, also after the first was closed, with one script call per turn of emits', async () => {
      redis = await RedisServer.start();
      const prefix = `history-${randomUUID()}`;
      const east = await redisInstance(redis, prefix);
      const west = await redisInstance(redis, prefix);
      const { welcome, seen } = await seenThenDropped(east.url(), ['lobby'], 1, async () => {
        await west.broadcast.to('lobby').emit('n', 1);
      });

      const stats = new Redis(redis.url);
      // ioredis sends a script with EVAL the first time, with EVALSHA after.
      const scripts = async () => {
        const info = String(await stats.info('commandstats'));
        return ['eval', 'evalsha'].reduce((sum, name) => sum + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0), 0);
      };
      const before = await scripts();
      // Ten emits in one turn: one round trip to Redis.
      await Promise.all(Array.from({ length: 10 }, (_, index) => east.broadcast.to('lobby').emit('n', index + 2)));
      await waitUntil(async () => (await scripts()) > before, 5_000, 'the turn\'s emits to be kept');
      assert.equal((await scripts()) - before, 1);
      stats.disconnect();
      await east.app.close();

      const again = await open(west.url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      assert.deepEqual(events.map((event) => event.data), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.equal(second.recovered, true);
    });

    it('tells a socket that joined while Redis did not answer the epoch with the next event, though the others here knew it', async () => {
      redis = await RedisServer.start();
      const east = await redisInstance(redis, `history-${randomUUID()}`, { operationTimeout: 300 });
      const ann = await open(east.url(), ['lobby']);
      await untilWelcome(ann);
      await east.broadcast.to('lobby').emit('n', 1);
      const [first] = await kept(ann, 1);
      // Redis stalls, its data kept: bob's join cannot learn where the stream is.
      const stats = new Redis(redis.url);
      await stats.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const bob = await open(east.url(), ['lobby']);
      const { positions } = await untilWelcome(bob);
      assert.deepEqual(positions.find((position) => position.room === 'lobby'), { room: 'lobby', epoch: '', offset: 0 }, 'the store cannot say where the stream is');
      await stats.ping();   // answered once the pause is over
      stats.disconnect();
      // Nothing went out unkept meanwhile: the stream keeps its epoch, which bob was never told.
      await east.broadcast.to('lobby').emit('n', 2);
      const [[bobs], [anns]] = await Promise.all([kept(bob, 1), kept(ann, 1)]);
      assert.deepEqual([bobs!.data, bobs!.epoch, untold.has(bobs!)], [2, first!.epoch, false]);
      assert.equal(anns!.epoch, first!.epoch);
    });

    it('says recovered: false to a socket whose missed stretch has a hole in the store, and recovers those past it', async () => {
      redis = await RedisServer.start();
      const prefix = `history-${randomUUID()}`;
      const east = await redisInstance(redis, prefix);
      const ann = await open(east.url(), ['lobby']);
      const { welcome } = await untilWelcome(ann);
      const seen: Kept[] = [];
      // One emit per turn: one stream entry each.
      for (let n = 1; n <= 4; n++) {
        await east.broadcast.to('lobby').emit('n', n);
        seen.push(...(await kept(ann, 1)));
      }
      ann.ws.terminate();
      await ann.waitForClose();
      const stats = new Redis(redis.url);
      assert.deepEqual((await stats.xrange(`{${prefix}}:h:lobby`, '-', '+')).map(([id]) => id), ['0-1', '0-2', '0-3', '0-4']);
      assert.equal(await stats.xdel(`{${prefix}}:h:lobby`, '0-3'), 1);
      stats.disconnect();
      const before = await untilWelcome(await open(east.url(), ['lobby'], remember(welcome.id, seen.slice(0, 1))));
      assert.deepEqual([before.events, before.welcome.recovered], [[], false], 'offset 3 is gone: 2 and 4 alone would be a stretch with a hole');
      const past = await untilWelcome(await open(east.url(), ['lobby'], remember(welcome.id, seen.slice(0, 3))));
      assert.deepEqual([past.events.map((event) => event.data), past.welcome.recovered], [[4], true]);
    });

    it('holds live messages while replaying, and neither loses nor doubles one, whatever arrives meanwhile', async () => {
      redis = await RedisServer.start();
      const prefix = `history-${randomUUID()}`;
      const east = await redisInstance(redis, prefix);
      const west = await redisInstance(redis, prefix);
      const { welcome, seen } = await seenThenDropped(east.url(), ['lobby'], 1, async () => {
        await east.broadcast.to('lobby').emit('n', 0);
      });
      let sent = 0;
      let sending = true;
      // A steady stream from the other instance while the client comes back.
      const producer = (async () => {
        while (sending && sent < 2_000) {
          await east.broadcast.to('lobby').emit('n', ++sent);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await waitUntil(() => sent >= 50, 5_000, 'some messages to be missed');
      const again = await open(west.url(), ['lobby'], remember(welcome.id, seen));
      const { events, welcome: second } = await untilWelcome(again);
      assert.equal(second.recovered, true);
      await waitUntil(() => sent >= events.length + 50, 5_000, 'more live messages');
      sending = false;
      await producer;
      const rest: Kept[] = [];
      while (events.length + rest.length < sent) rest.push(...(await kept(again, 1)));
      const all = [...events, ...rest].map((event) => event.data);
      assert.deepEqual(all, Array.from({ length: sent }, (_, index) => index + 1), 'every message after the last seen, once, in order');
    });

    it('degrades to recovered: false while Redis is down — no crash, no hang — and gives the stream a new epoch when it returns', async () => {
      redis = await RedisServer.start();
      const prefix = `history-${randomUUID()}`;
      const east = await redisInstance(redis, prefix, { operationTimeout: 300 });
      const { welcome, seen } = await seenThenDropped(east.url(), ['lobby'], 1, async () => {
        await east.broadcast.to('lobby').emit('n', 1);
      });

      await redis.kill();
      await east.logger.waitFor((entry) => /^Redis is unreachable/.test(entry.message ?? ''));
      // Delivered unkept, to who is connected: the stream's history is no longer complete.
      const witness = await open(east.url(), ['lobby']);
      assert.equal((await untilWelcome(witness)).welcome.recovered, false);
      await east.broadcast.to('lobby').emit('n', 2);
      assert.equal(await witness.nextText(), '{"event":"n","data":2}');
      const during = await open(east.url(), ['lobby'], remember(welcome.id, seen));
      assert.equal((await untilWelcome(during)).welcome.recovered, false, 'no history to read while Redis is down');

      await redis.restart();
      await east.logger.waitFor((entry) => /^Redis is reachable again/.test(entry.message ?? ''), 10_000, 'Redis to be back');
      await east.broadcast.to('lobby').emit('n', 3);
      const [third] = await kept(witness, 1);
      assert.notEqual(third!.epoch, seen[0]!.epoch, 'a new epoch: the old positions do not vouch for anything');
      const after = await open(east.url(), ['lobby'], remember(welcome.id, seen));
      assert.equal((await untilWelcome(after)).welcome.recovered, false);
    });
  });

  describe('MemoryHistory, the store of one instance', () => {
    const request = (body: string) => ({ stream: 'lobby', body, except: undefined, gateway: undefined });

    it('keeps exactly the last `size` entries, however many came before', () => {
      const history = new MemoryHistory();
      for (let n = 1; n <= 3_000; n++) history.append(request(`"n":${n}`), 1_000, 0);
      const { epoch } = history.head('lobby');
      const result = history.read('lobby', { epoch, offset: 2_000 }, 60_000, 0);
      assert.equal(result.kind, 'entries');
      assert.deepEqual(result.kind === 'entries' && [result.entries.length, result.entries[0]!.offset, result.entries.at(-1)!.offset], [1_000, 2_001, 3_000]);
      assert.equal(history.read('lobby', { epoch, offset: 1_999 }, 60_000, 0).kind, 'lost', 'the 2,000th is beyond the bound');
    });

    it('forgets entries past their ttl, and a stream long unused, but a quiet stream still recovers a client that missed nothing', () => {
      const history = new MemoryHistory();
      history.append(request('"n":1'), 100, 0);
      history.append(request('"n":2'), 100, 500);
      const { epoch } = history.head('lobby');
      history.expire(1_000, 1_200);
      assert.equal(history.read('lobby', { epoch, offset: 0 }, 1_000, 1_200).kind, 'lost', 'the first entry is gone');
      assert.deepEqual(history.read('lobby', { epoch, offset: 1 }, 1_000, 1_200), { kind: 'entries', epoch, entries: [{ offset: 2, at: 500, body: '"n":2', except: undefined, gateway: undefined }] });
      history.expire(1_000, 5_000);
      assert.deepEqual(history.read('lobby', { epoch, offset: 2 }, 1_000, 5_000), { kind: 'entries', epoch, entries: [] }, 'nothing missed');
      assert.equal(history.read('lobby', { epoch, offset: 1 }, 1_000, 5_000).kind, 'lost');
      assert.equal(history.streams, 1);
      history.expire(1_000, 500 + 10 * 1_000 + 1);
      assert.equal(history.streams, 0, 'unused for ten ttls');
    });
  });
});
