// Recovery end to end: tonijs/client sockets whose links are cut for real (a TCP proxy), on one
// instance and across a cluster on a real redis-server — onto another instance, also after the
// first was SIGKILLed — and a chaos run of many clients cut at random while thousands of
// messages are broadcast.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { Injectable, Module, ToniFactory, type ToniApplication } from 'tonijs';
import { type ConnectOptions, type ReconnectInfo, type ToniSocket, connect } from 'tonijs/client';
import { WsAdapter } from 'tonijs/node';
import { RedisTransport } from 'tonijs/redis';
import { BroadcastModule, BroadcastService, type BroadcastTransport, type Gateway, On, type WsClient } from 'tonijs/websocket';
import { AsyncQueue, captureLogger, waitUntil, withTimeout } from './support/async.js';
import { ChildInstance, HEARTBEAT, INSTANCE_TIMEOUT } from './support/child-instance.js';
import { RedisServer } from './support/redis-server.js';
import { TcpProxy } from './support/tcp-proxy.js';

/** Joins `?room=` while connecting, as recovery wants; `move` switches rooms. */
@Injectable()
class RoomGateway implements Gateway {
  readonly path = '/chat';
  async onConnect(client: WsClient) {
    const room = client.handshake.query.get('room');
    if (room) await client.join(room);
  }
  /** Answered once onConnect is done (events wait for it): the room is joined by then. */
  @On('ping')
  ping() {
    return 'pong';
  }

  @On('move')
  async move(client: WsClient, room: string) {
    for (const old of client.rooms) await client.leave(old);
    await client.join(room);
    return room;
  }
}

const FAST: ConnectOptions = { reconnect: { minDelay: 5, maxDelay: 30 }, heartbeat: false };

/** A socket and everything it received of event `n`, with its reconnects. */
interface Follower {
  readonly socket: ToniSocket;
  readonly received: number[];
  readonly arrivals: AsyncQueue<number>;
  readonly reconnects: AsyncQueue<ReconnectInfo>;
  readonly closes: AsyncQueue<boolean>;
  readonly proxy: TcpProxy;
}

describe('recovery with tonijs/client', () => {
  const apps: ToniApplication[] = [];
  const sockets: ToniSocket[] = [];
  const proxies: TcpProxy[] = [];
  const children: ChildInstance[] = [];
  let redis: RedisServer | undefined;

  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((socket) => socket.close()));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(children.splice(0).map((child) => child.kill()));
    await redis?.stop();
    redis = undefined;
  });

  async function instance(transport?: BroadcastTransport, history = { size: 10_000, ttl: 60_000 }) {
    @Module({ imports: [BroadcastModule.forRoot({ transport, history })], providers: [RoomGateway] })
    class RecoveryModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(RecoveryModule, undefined, { logger });
    apps.push(app);
    app.useWebSocketAdapter(new WsAdapter());
    const url = await app.listen(0, '127.0.0.1');
    return { app, logger, port: Number(new URL(url).port), broadcast: app.get(BroadcastService) };
  }

  function redisTransport(server: RedisServer, prefix: string): RedisTransport {
    return new RedisTransport({ url: server.url, keyPrefix: prefix, heartbeatInterval: HEARTBEAT, instanceTimeout: INSTANCE_TIMEOUT });
  }

  /** A socket in `room` (or `room.current`, read on every connect) through a proxy of its own to `port`, recording every `n` it receives. */
  async function follower(port: number, room: string | { current: string }): Promise<Follower> {
    const proxy = await TcpProxy.start(port);
    proxies.push(proxy);
    const socket = connect(proxy.url('/chat'), { ...FAST, query: () => ({ room: typeof room === 'string' ? room : room.current }) });
    sockets.push(socket);
    const received: number[] = [];
    const arrivals = new AsyncQueue<number>();
    const reconnects = new AsyncQueue<ReconnectInfo>();
    socket.on('n', (value) => {
      received.push(value as number);
      arrivals.push(value as number);
    });
    socket.onReconnect((info) => reconnects.push(info));
    const closes = new AsyncQueue<boolean>();
    socket.onClose((info) => closes.push(info.willReconnect));
    await socket.ready();
    return { socket, received, arrivals, reconnects, closes, proxy };
  }

  /** Cuts the socket's link and keeps it from coming back until `release()`: what is sent meanwhile is missed. */
  async function cutOff(each: Follower): Promise<{ release: () => void }> {
    each.proxy.mode('reset');
    each.proxy.cut();
    assert.equal(await each.closes.next(5_000, 'the socket to notice the cut'), true);
    return { release: () => each.proxy.mode('forward') };
  }

  /** Waits until the server's onConnect is done (the room joined): an event is handled only after it. */
  async function welcomed(socket: ToniSocket): Promise<void> {
    assert.equal(await socket.request('ping', undefined), 'pong');
  }

  it('a socket that drops for a moment misses nothing: what was sent meanwhile arrives once, in order, and onReconnect says recovered', async () => {
    const { broadcast, port } = await instance();
    const ann = await follower(port, 'lobby');
    await welcomed(ann.socket);
    for (let n = 1; n <= 3; n++) await broadcast.to('lobby').emit('n', n);
    await ann.arrivals.take(3);
    // The proxy refuses to reconnect it for a while: messages go out meanwhile.
    const away = await cutOff(ann);
    for (let n = 4; n <= 10; n++) await broadcast.to('lobby').emit('n', n);
    away.release();
    const info = await ann.reconnects.next(10_000, 'the reconnect');
    assert.equal(info.recovered, true);
    await broadcast.to('lobby').emit('n', 11);
    await ann.arrivals.take(8);
    assert.deepEqual(ann.received, Array.from({ length: 11 }, (_, index) => index + 1));
  });

  it('recovers a room it joined without receiving anything yet, and says recovered: false past the history', async () => {
    const { broadcast, port } = await instance(undefined, { size: 5, ttl: 60_000 });
    const quiet = await follower(port, 'quiet');
    await welcomed(quiet.socket);
    let away = await cutOff(quiet);
    for (let n = 1; n <= 3; n++) await broadcast.to('quiet').emit('n', n);
    away.release();
    assert.equal((await quiet.reconnects.next(10_000)).recovered, true);
    await quiet.arrivals.take(3);
    assert.deepEqual(quiet.received, [1, 2, 3]);

    away = await cutOff(quiet);
    for (let n = 4; n <= 20; n++) await broadcast.to('quiet').emit('n', n);
    away.release();
    assert.equal((await quiet.reconnects.next(10_000)).recovered, false, 'seventeen missed, five kept');
    await broadcast.to('quiet').emit('n', 21);
    assert.equal(await quiet.arrivals.next(), 21, 'live messages flow on');
  });

  it('a room left before the drop is not asked for again: joined again while connecting, the other room recovers', async () => {
    const { broadcast, port } = await instance();
    const room = { current: 'tea' };
    const mover = await follower(port, room);
    await welcomed(mover.socket);
    await broadcast.to('tea').emit('n', 1);
    await mover.arrivals.next();
    assert.equal(await mover.socket.request('move', 'coffee'), 'coffee');
    room.current = 'coffee';
    await broadcast.to('coffee').emit('n', 2);
    await mover.arrivals.next();
    const away = await cutOff(mover);
    await broadcast.to('coffee').emit('n', 3);
    await broadcast.to('tea').emit('n', 99);
    away.release();
    assert.equal((await mover.reconnects.next(10_000)).recovered, true, 'tea was left, so it is not missing');
    assert.equal(await mover.arrivals.next(), 3);
    await broadcast.to('coffee').emit('n', 4);
    assert.equal(await mover.arrivals.next(), 4);
    assert.deepEqual(mover.received, [1, 2, 3, 4]);
  });

  it('recovers a room joined again by a handler, requested from onOpen: onReconnect waits for the answer and covers it', async () => {
    const { broadcast, port } = await instance(undefined, { size: 5, ttl: 60_000 });
    // No room in the query: the page joins with a request on every open, as many apps do.
    const ann = await follower(port, '');
    const joins: Promise<unknown>[] = [];
    ann.socket.onOpen(() => joins.push(ann.socket.request('move', 'tea')));
    assert.equal(await ann.socket.request('move', 'tea'), 'tea');   // it was open already
    await broadcast.to('tea').emit('n', 1);
    assert.equal(await ann.arrivals.next(), 1);

    let away = await cutOff(ann);
    for (let n = 2; n <= 4; n++) await broadcast.to('tea').emit('n', n);
    away.release();
    const info = await ann.reconnects.next(10_000, 'the reconnect');
    assert.equal(info.recovered, true);
    // Reported after the join's answer, which comes after the replay.
    assert.equal(await joins[0], 'tea');
    assert.deepEqual(ann.received, [1, 2, 3, 4], 'replayed before onReconnect');
    await ann.arrivals.take(3);

    away = await cutOff(ann);
    for (let n = 5; n <= 14; n++) await broadcast.to('tea').emit('n', n);
    away.release();
    assert.equal((await ann.reconnects.next(10_000)).recovered, false, 'ten missed, five kept: the join says so');
    await broadcast.to('tea').emit('n', 15);
    assert.equal(await ann.arrivals.next(), 15);
    assert.deepEqual(ann.received, [1, 2, 3, 4, 15]);
  });

  it('recovers onto another instance through Redis, also after the first was SIGKILLed', async () => {
    redis = await RedisServer.start();
    const child = await ChildInstance.spawn(redis.url, { history: true });
    children.push(child);
    // The child instance uses the default prefix.
    const local = await instance(redisTransport(redis, 'tonijs'));
    const childPort = Number(new URL(child.wsUrl).port);
    const ann = await follower(childPort, 'lobby');
    await welcomed(ann.socket);
    for (let n = 1; n <= 3; n++) await local.broadcast.to('lobby').emit('n', n);
    await ann.arrivals.take(3);

    ann.proxy.mode('reset');
    await child.kill();
    assert.equal(await ann.closes.next(5_000, 'the socket to lose the killed instance'), true);
    ann.proxy.retarget(local.port);
    for (let n = 4; n <= 9; n++) await local.broadcast.to('lobby').emit('n', n);
    ann.proxy.mode('forward');
    const info = await ann.reconnects.next(10_000, 'the reconnect onto the other instance');
    assert.equal(info.recovered, true);
    await local.broadcast.to('lobby').emit('n', 10);
    await ann.arrivals.take(7);
    assert.deepEqual(ann.received, Array.from({ length: 10 }, (_, index) => index + 1));
  });

  it('follows a new epoch while connected (Redis lost its history and came back): a later drop recovers in it', async () => {
    redis = await RedisServer.start();
    const east = await instance(new RedisTransport({ url: redis.url, keyPrefix: `epochs-${randomUUID()}`, heartbeatInterval: HEARTBEAT, instanceTimeout: INSTANCE_TIMEOUT, operationTimeout: 300 }));
    const ann = await follower(east.port, 'lobby');
    await welcomed(ann.socket);
    for (let n = 1; n <= 2; n++) await east.broadcast.to('lobby').emit('n', n);
    await ann.arrivals.take(2);

    await redis.kill();
    await east.logger.waitFor((entry) => /^Redis is unreachable/.test(entry.message ?? ''), 10_000, 'the outage to be noticed');
    await east.broadcast.to('lobby').emit('n', 3);   // delivered unkept: the stream's history is broken
    await ann.arrivals.take(1);
    await redis.restart();
    await east.logger.waitFor((entry) => /^Redis is reachable again/.test(entry.message ?? ''), 10_000, 'Redis to be back');
    // A new epoch: its first event tells the socket, the next ones leave it out.
    for (let n = 4; n <= 6; n++) await east.broadcast.to('lobby').emit('n', n);
    await ann.arrivals.take(3);

    const away = await cutOff(ann);
    for (let n = 7; n <= 9; n++) await east.broadcast.to('lobby').emit('n', n);
    away.release();
    const info = await ann.reconnects.next(10_000, 'the reconnect');
    assert.equal(info.recovered, true, 'its position is in the new epoch');
    await ann.arrivals.take(3);
    assert.deepEqual(ann.received, Array.from({ length: 9 }, (_, index) => index + 1));
  });

  it('chaos: links cut at random while thousands of messages are broadcast from two instances — every socket ends with the exact sequence, or said it did not recover and holds no duplicate', async (t) => {
    redis = await RedisServer.start();
    const prefix = `chaos-${randomUUID()}`;
    const east = await instance(redisTransport(redis, prefix));
    const west = await instance(redisTransport(redis, prefix));
    const ports = [east.port, west.port];
    const followers: Follower[] = [];
    for (let index = 0; index < 24; index++) followers.push(await follower(ports[index % 2]!, 'lobby'));
    // Never cut: what it receives is the stream's order (two instances emit; Redis orders the stream).
    const reference = await follower(east.port, 'lobby');
    await Promise.all([...followers, reference].map((each) => welcomed(each.socket)));
    const random = seeded(20_261_201);
    const total = 3_000;
    let cuts = 0;
    for (let n = 1; n <= total; n++) {
      // Each instance sends every other message: their order, as one stream, is Redis's.
      await (n % 2 === 0 ? east : west).broadcast.to('lobby').emit('n', n);
      if (random() < 0.01) {
        const victim = followers[Math.floor(random() * followers.length)]!;
        // Half the time it comes back to the other instance.
        if (random() < 0.5) victim.proxy.retarget(ports[(ports.indexOf(victim.proxy.targetPort) + 1) % 2]!);
        victim.proxy.cut();
        cuts++;
      }
      if (n % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // The last one goes out once the others are through: it then comes last for every socket.
    await waitUntil(() => reference.received.length === total, 30_000, 'the reference socket to receive every message');
    await east.broadcast.to('lobby').emit('n', total + 1);
    const missing = () =>
      [...followers, reference]
        .map((each, index) => ({ index, each }))
        .filter(({ each }) => each.received.at(-1) !== total + 1)
        .map(({ index, each }) => `socket ${index}: ${each.socket.state}, ${each.received.length} received, the last ${each.received.at(-1)}, ${each.reconnects.length} reconnects`);
    await waitUntil(() => missing().length === 0, 30_000, 'every socket to receive the final message').catch((error: unknown) => {
      throw new Error(`${(error as Error).message}: ${missing().join('; ')}`);
    });
    assert.equal(reference.received.length, total + 1);
    assert.equal(new Set(reference.received).size, total + 1);
    const rank = new Map(reference.received.map((value, at) => [value, at]));
    let exact = 0;
    for (const [index, each] of followers.entries()) {
      const reconnects: ReconnectInfo[] = [];
      while (each.reconnects.length > 0) reconnects.push(await each.reconnects.next());
      const inOrder = each.received.every((value, at) => at === 0 || rank.get(value)! > rank.get(each.received[at - 1]!)!);
      assert.ok(inOrder, `socket ${index} received no duplicate and nothing out of the stream's order`);
      if (reconnects.every((info) => info.recovered)) {
        const have = new Set(each.received);
        const lost = reference.received.filter((value) => !have.has(value));
        const where = lost.length === 0 ? '' : `: ${lost.length} missing, from the ${rank.get(lost[0]!)}th to the ${rank.get(lost.at(-1)!)}th of the stream (${lost.slice(0, 8).join(', ')}…)`;
        assert.deepEqual(each.received, reference.received, `socket ${index}, which recovered ${reconnects.length} times, has every message${where}`);
        exact++;
      }
    }
    t.diagnostic(`${cuts} cuts of ${followers.length} sockets during ${total} messages; ${exact} sockets recovered every time and hold the exact sequence`);
    assert.ok(cuts > 10, `${cuts} cuts`);
    assert.ok(exact > 0, `${exact} of ${followers.length} sockets had every message`);
  });
});

/** A small deterministic PRNG (mulberry32), so that a failing chaos run can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
