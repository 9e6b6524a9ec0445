import assert from 'node:assert/strict';
import * as nodeTest from 'node:test';
import type { ToniApplication } from '../app/application.js';
import { ToniFactory } from '../app/factory.js';
import { BroadcastModule } from '../broadcast/broadcast-module.js';
import { BroadcastService } from '../broadcast/broadcast-service.js';
import { ConnectionManager } from '../broadcast/connection-manager.js';
import { PresenceService } from '../broadcast/presence-service.js';
import type { BroadcastTransport } from '../broadcast/transport.js';
import { Injectable, Module } from '../di/module.js';
import { NodeHttpAdapter } from '../platform/node/http-adapter.js';
import { WsAdapter } from '../platform/node/ws-adapter.js';
import type { WsClient } from '../websocket/client.js';
import type { DisconnectReason } from '../websocket/disconnect-reason.js';
import type { Gateway } from '../websocket/gateway.js';
import { WsMessage } from '../websocket/message.js';
import { AsyncQueue, type LogEntry, captureLogger, collectEvents, withTimeout } from './support/async.js';
import { TestClient, obeyRoomCommand } from './support/ws-client.js';

/**
 * What a transport under test provides: transports joined into one cluster. The suite calls
 * `makeCluster()` once per test, then `transport()` once per application it starts, and
 * `close()` after every application of the test is closed.
 *
 * Exported by `tonijs/testing` so that a third-party transport can hold itself to the same promises.
 *
 * @example
 * import { describeTransportConformance } from 'tonijs/testing';
 * // in-memory: every transport of one hub is one cluster
 * describeTransportConformance('InMemoryTransport', async () => {
 *   const hub = new InMemoryHub();
 *   return { transport: () => hub.transport() };
 * });
 * // Redis: transports connected to one server, under a prefix of their own per test
 * describeTransportConformance('RedisTransport', async () => {
 *   const prefix = `toni-test-${randomUUID()}`;
 *   return { transport: () => new RedisTransport({ url: server.url, prefix }) };
 * });
 */
export interface ClusterFactory {
  /** A new transport, joined to the cluster of this factory, for one more application. */
  transport(): BroadcastTransport | Promise<BroadcastTransport>;
  /** Releases what the cluster holds (connections, keys); called after the test's applications closed. */
  close?(): Promise<void>;
}

/** The test functions the suite is declared with: node:test's by default, or another runner's with the same shape (vitest's). */
export interface ConformanceRunner {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): unknown;
  afterEach(body: () => Promise<void>, options?: { timeout?: number }): unknown;
}

/** Options of `describeTransportConformance`. */
export interface ConformanceOptions {
  /** Milliseconds to wait for any one expected event (a message, a disconnect). Default 5 000. */
  timeout?: number;
  /** The test runner's `describe`, `it` and `afterEach`. Default: `node:test`'s. */
  runner?: ConformanceRunner;
}

/** How many applications the suite joins into a cluster. */
const INSTANCES = 3;

/**
 * The semantics every `BroadcastTransport` must give `BroadcastService`, checked on a cluster of
 * three toni applications joined by the transport (each listening on port 0 with a `WsAdapter`
 * and two gateways, `/chat` and `/news`), with real `ws` clients connected to different
 * instances and the calls made through `app.get(BroadcastService)` of any instance.
 *
 * Negative checks never wait for silence: after a targeted send, the same instance broadcasts a
 * sentinel to everyone, and each client's next message must be the targeted one (if it was a
 * recipient) or the sentinel — which relies on one instance's broadcasts reaching a client in
 * the order they were made. (Direct sends are read before the sentinel is sent: the suite does
 * not require a `sendTo` and a later broadcast to keep their order across instances.)
 */
export function describeTransportConformance(name: string, makeCluster: () => Promise<ClusterFactory>, options: ConformanceOptions = {}): void {
  const ms = options.timeout ?? 5_000;
  const { describe, it, afterEach } = options.runner ?? (nodeTest as unknown as ConformanceRunner);

  describe(`BroadcastTransport conformance: ${name}`, () => {
    let running: { cluster: ClusterFactory; instances: Instance[] } | undefined;
    const clients: TestClient[] = [];

    afterEach(async () => {
      for (const client of clients.splice(0)) client.ws.terminate();
      const current = running;
      running = undefined;
      if (current === undefined) return;
      await Promise.all(current.instances.map((instance) => instance.app.close()));
      await current.cluster.close?.();
      const errors = current.instances.flatMap((instance) => instance.logger.entries.filter((entry) => entry.level === 'error'));
      assert.deepEqual(errors.map(describeEntry), [], 'no instance logged an error');
    });

    /** Three applications joined by fresh transports of one cluster. */
    async function startCluster(): Promise<Instance[]> {
      const cluster = await makeCluster();
      const instances: Instance[] = [];
      running = { cluster, instances };
      for (let index = 0; index < INSTANCES; index++) instances.push(await startInstance(index, await cluster.transport()));
      return instances;
    }

    /**
     * Connects a client to `instance` and resolves once the server told it its id — which the
     * gateway does at the end of `onConnect`, after joining `rooms`: by then the client is
     * registered cluster-wide.
     */
    async function join(instance: Instance, rooms: readonly string[] = [], path: GatewayPath = '/chat'): Promise<Peer> {
      const query = rooms.length === 0 ? '' : `?rooms=${rooms.map(encodeURIComponent).join(',')}`;
      const ws = new TestClient(`${instance.adapter.getUrl(path)}${query}`);
      clients.push(ws);
      const pings = collectEvents<[Buffer]>(ws.ws, 'ping');
      const pongs = collectEvents<[Buffer]>(ws.ws, 'pong');
      const hello = await ws.nextText(ms);
      assert.match(hello, /^id:/, `the first message is the client's id, got ${hello}`);
      return { ws, id: hello.slice('id:'.length), instance, rooms, path, pings, pongs };
    }

    /** Broadcasts a sentinel from `from` and checks each peer's next messages: `expected` ones, then the sentinel. */
    async function expectDeliveries(from: Instance, expectations: ReadonlyMap<Peer, readonly string[]>, peers: readonly Peer[]): Promise<void> {
      const sentinel = `sentinel:${++sentinels}`;
      await from.broadcast.broadcastText(sentinel);
      await Promise.all(
        peers.map(async (peer) => {
          const expected = [...(expectations.get(peer) ?? []), sentinel];
          assert.deepEqual(await peer.ws.texts(expected.length, ms), expected, `messages of ${peer.label ?? peer.id} on instance ${peer.instance.index}`);
        }),
      );
    }
    let sentinels = 0;

    /** Tracks the presence of `peer` (through the instance it is connected to). */
    async function track(peer: Peer, room: string, key: string, meta?: unknown): Promise<void> {
      const client = peer.instance.app.get(ConnectionManager).getLocalClient(peer.id);
      assert.ok(client !== undefined, `${peer.label ?? peer.id} is connected to instance ${peer.instance.index}`);
      await peer.instance.app.get(PresenceService).track(client, room, key, meta);
    }

    async function untrack(peer: Peer, room: string): Promise<void> {
      const client = peer.instance.app.get(ConnectionManager).getLocalClient(peer.id);
      assert.ok(client !== undefined);
      await peer.instance.app.get(PresenceService).untrack(client, room);
    }

    /** The reason `peer`'s gateway will see (or saw) in `onDisconnect`. */
    function leaveReason(peer: Peer): Promise<DisconnectReason> {
      return (peer.path === '/chat' ? peer.instance.chat : peer.instance.news).disconnected(peer.id, ms);
    }

    /** Waits until `peer`'s gateway ran `onDisconnect` for it: by then it is deregistered cluster-wide. */
    async function leave(peer: Peer): Promise<DisconnectReason> {
      const gateway = peer.path === '/chat' ? peer.instance.chat : peer.instance.news;
      const disconnected = gateway.disconnected(peer.id, ms);
      peer.ws.ws.close(1000, 'bye');
      return disconnected;
    }

    /** Two clients on every instance, the first of each in room `red`. */
    async function populate(instances: readonly Instance[]): Promise<Peer[]> {
      const peers: Peer[] = [];
      for (const instance of instances) {
        peers.push(labelled(await join(instance, ['red']), `red@${instance.index}`));
        peers.push(labelled(await join(instance), `plain@${instance.index}`));
      }
      return peers;
    }

    describe('broadcast', () => {
      it('broadcastText from any instance reaches every client on every instance', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        for (const sender of instances) {
          const text = `hello from ${sender.index}`;
          await sender.broadcast.broadcastText(text);
          for (const peer of peers) assert.equal(await peer.ws.nextText(ms), text, `${peer.label} got the broadcast of instance ${sender.index}`);
        }
        await expectDeliveries(instances[0]!, new Map(), peers);
      });

      it('an instance without clients reaches the clients of the others', async () => {
        const instances = await startCluster();
        const [, second, third] = instances as [Instance, Instance, Instance];
        const peers = [await join(second), await join(third)];
        assert.equal(await instances[0]!.broadcast.getClientCount(), 2);
        await instances[0]!.broadcast.broadcastText('from an empty instance');
        for (const peer of peers) assert.equal(await peer.ws.nextText(ms), 'from an empty instance');
      });

      it('broadcast carries every message kind across instances: text, binary, ping and pong', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const sender = instances[1]!;
        const bytes = Uint8Array.from({ length: 300 }, (_, index) => (index * 7) % 256);
        await sender.broadcast.broadcast(WsMessage.text('text ✓'));
        await sender.broadcast.broadcast(WsMessage.binary(bytes));
        await sender.broadcast.broadcast(WsMessage.ping([1, 2, 3]));
        await sender.broadcast.broadcast(WsMessage.pong(new Uint8Array([9, 8])));
        for (const peer of peers) {
          const [text, binary] = await peer.ws.messages.take(2, ms, `two data messages at ${peer.label}`);
          assert.equal(text!.isBinary, false);
          assert.equal(text!.data.toString(), 'text ✓');
          assert.equal(binary!.isBinary, true);
          assert.deepEqual(new Uint8Array(binary!.data), bytes);
          const [ping] = await peer.pings.next(ms, `the ping at ${peer.label}`);
          assert.deepEqual([...ping], [1, 2, 3]);
          const [pong] = await peer.pongs.next(ms, `the pong at ${peer.label}`);
          assert.deepEqual([...pong], [9, 8]);
        }
        await expectDeliveries(sender, new Map(), peers);
      });

      it('keeps the order of one instance’s broadcasts, awaited or not, at clients of every instance', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const sender = instances[2]!;
        const texts = Array.from({ length: 300 }, (_, index) => `#${index}`);
        for (const text of texts.slice(0, 150)) await sender.broadcast.broadcastText(text);
        await Promise.all(texts.slice(150).map((text) => sender.broadcast.broadcastText(text)));
        for (const peer of peers) assert.deepEqual(await peer.ws.texts(texts.length, ms), texts, `order at ${peer.label}`);
      });
    });

    describe('events', () => {
      it('emit reaches every client, a room and all but one on every instance, as one envelope each', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const red = labelled(await join(instances[2]!, ['red']), 'red@2');
        const reader = labelled(await join(instances[0]!, [], '/news'), 'news@0');
        const everyone = [...peers, red, reader];
        const sender = instances[1]!;
        await sender.broadcast.emit('news', { headline: 'tonijs ✓', n: 1 });
        await expectDeliveries(sender, sameFor(everyone, ['{"event":"news","data":{"headline":"tonijs ✓","n":1}}']), everyone);
        await sender.broadcast.to('red').except(red.id).emit('red news');
        await expectDeliveries(sender, sameFor(everyone.filter((peer) => isIn('red')(peer) && peer !== red), ['{"event":"red news"}']), everyone);
        await sender.broadcast.gateway('/news').emit('gateway news', [1, 2]);
        await expectDeliveries(sender, sameFor(everyone.filter((peer) => peer.path === '/news'), ['{"event":"gateway news","data":[1,2]}']), everyone);
      });
    });

    describe('rooms', () => {
      it('to(room) reaches the room’s members on every instance, and only them', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const both = labelled(await join(instances[2]!, ['red', 'blue']), 'red+blue@2');
        const blue = labelled(await join(instances[0]!, ['blue']), 'blue@0');
        const everyone = [...peers, both, blue];
        const sender = instances[1]!;
        await sender.broadcast.to('red').broadcastText('to red');
        await expectDeliveries(sender, sameFor(everyone.filter(isIn('red')), ['to red']), everyone);
        await sender.broadcast.to('blue').broadcast(WsMessage.text('to blue'));
        await expectDeliveries(sender, sameFor(everyone.filter(isIn('blue')), ['to blue']), everyone);
        await sender.broadcast.to('nobody-here').broadcastText('to an empty room');
        await expectDeliveries(sender, new Map(), everyone);
      });

      it('to(a).to(b) and to([a, b]) reach the union of the rooms, each member once', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const both = labelled(await join(instances[1]!, ['red', 'blue']), 'red+blue@1');
        const blue = labelled(await join(instances[2]!, ['blue']), 'blue@2');
        const everyone = [...peers, both, blue];
        const union = everyone.filter((peer) => peer.rooms.includes('red') || peer.rooms.includes('blue'));
        const sender = instances[0]!;
        await sender.broadcast.to('red').to('blue').broadcastText('red or blue');
        await sender.broadcast.to(['blue', 'red']).broadcastText('blue or red');
        await expectDeliveries(sender, sameFor(union, ['red or blue', 'blue or red']), everyone);
        assert.equal(await instances[2]!.broadcast.to('red').to('blue').getClientCount(), union.length);
        assert.deepEqual(sorted(await instances[1]!.broadcast.to(['red', 'blue']).getClientIds()), sorted(union.map((peer) => peer.id)));
      });

      it('except(id) leaves out that client wherever it is connected, also within a room', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const [redOn0, , redOn1, plainOn1, redOn2] = peers as [Peer, Peer, Peer, Peer, Peer, Peer];
        const sender = instances[0]!;
        await sender.broadcast.except(redOn2.id).broadcastText('not for red@2');
        await sender.broadcast.except([plainOn1.id, redOn0.id]).broadcastText('not for plain@1 nor red@0');
        await sender.broadcast.to('red').except(redOn1.id).broadcastText('red but not red@1');
        const expected = new Map<Peer, string[]>();
        for (const peer of peers) {
          const texts: string[] = [];
          if (peer !== redOn2) texts.push('not for red@2');
          if (peer !== plainOn1 && peer !== redOn0) texts.push('not for plain@1 nor red@0');
          if (peer.rooms.includes('red') && peer !== redOn1) texts.push('red but not red@1');
          expected.set(peer, texts);
        }
        await expectDeliveries(sender, expected, peers);
        assert.equal(await instances[2]!.broadcast.except(redOn1.id).getClientCount(), peers.length - 1);
        assert.deepEqual(sorted(await instances[1]!.broadcast.to('red').except(redOn0.id).getClientIds()), sorted([redOn1.id, redOn2.id]));
      });

      it('joins and leaves after connecting are seen by every instance', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const plainOn2 = peers[5]!;
        const redOn1 = peers[2]!;
        plainOn2.ws.send('join:green');
        assert.equal(await plainOn2.ws.nextText(ms), 'joined:green');
        redOn1.ws.send('leave:red');
        assert.equal(await redOn1.ws.nextText(ms), 'left:red');
        assert.deepEqual(await instances[0]!.broadcast.to('green').getClientIds(), [plainOn2.id]);
        assert.equal(await instances[0]!.broadcast.to('red').getClientCount(), 2);
        await instances[0]!.broadcast.to('green').broadcastText('to green');
        await instances[0]!.broadcast.to('red').broadcastText('to red');
        const expected = new Map<Peer, string[]>([[plainOn2, ['to green']], [peers[0]!, ['to red']], [peers[4]!, ['to red']]]);
        await expectDeliveries(instances[0]!, expected, peers);
        // A client that left its last room is still a client: counted, listed and reachable.
        assert.ok((await instances[0]!.broadcast.getClientIds()).includes(redOn1.id));
        assert.equal(await instances[0]!.broadcast.sendTo(redOn1.id, 'still reachable'), true);
        assert.equal(await redOn1.ws.nextText(ms), 'still reachable');
      });

      it('drops a client’s room memberships when it disconnects, cluster-wide', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const redOn1 = peers[2]!;
        assert.equal(await instances[0]!.broadcast.to('red').getClientCount(), 3);
        await leave(redOn1);
        for (const instance of instances) {
          assert.equal(await instance.broadcast.to('red').getClientCount(), 2, `red count seen from instance ${instance.index}`);
          assert.ok(!(await instance.broadcast.to('red').getClientIds()).includes(redOn1.id));
        }
        const remaining = peers.filter((peer) => peer !== redOn1);
        await instances[2]!.broadcast.to('red').broadcastText('red after a leave');
        await expectDeliveries(instances[2]!, sameFor(remaining.filter(isIn('red')), ['red after a leave']), remaining);
      });
    });

    describe('gateways', () => {
      it('gateway(path) limits broadcasts, counts and ids to one gateway’s clients on every instance', async () => {
        const instances = await startCluster();
        const chat = await populate(instances);
        const news = [
          labelled(await join(instances[0]!, ['red'], '/news'), 'news-red@0'),
          labelled(await join(instances[2]!, [], '/news'), 'news@2'),
        ];
        const everyone = [...chat, ...news];
        const sender = instances[1]!;
        await sender.broadcast.gateway('/news').broadcastText('news only');
        await sender.broadcast.gateway('/chat').to('red').broadcastText('red chat only');
        const expected = new Map<Peer, string[]>();
        for (const peer of news) expected.set(peer, ['news only']);
        for (const peer of chat.filter(isIn('red'))) expected.set(peer, ['red chat only']);
        await expectDeliveries(sender, expected, everyone);
        assert.equal(await instances[0]!.broadcast.gateway('/news').getClientCount(), 2);
        assert.equal(await instances[2]!.broadcast.gateway('/chat').getClientCount(), chat.length);
        assert.deepEqual(sorted(await instances[1]!.broadcast.gateway('/news').getClientIds()), sorted(news.map((peer) => peer.id)));
        assert.equal(await instances[1]!.broadcast.gateway('/nowhere').getClientCount(), 0);
        assert.equal(await instances[2]!.broadcast.gateway('/news').sendTo(chat[0]!.id, 'wrong gateway'), false);
      });
    });

    describe('sendTo and sendToMany', () => {
      it('sendTo reaches a client on another instance and answers true; false for an unknown id', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const target = peers[5]!;
        const sender = instances[0]!;
        assert.equal(await sender.broadcast.sendTo(target.id, 'direct text'), true);
        assert.equal(await sender.broadcast.sendTo(target.id, WsMessage.binary([1, 2, 3])), true);
        const [text, binary] = await target.ws.messages.take(2, ms, 'the direct messages');
        assert.equal(text!.data.toString(), 'direct text');
        assert.deepEqual([...binary!.data], [1, 2, 3]);
        assert.equal(binary!.isBinary, true);
        assert.equal(await sender.broadcast.sendTo(globalThis.crypto.randomUUID(), 'nobody'), false);
        assert.equal(await sender.broadcast.sendTo(peers[0]!.id, 'local'), true);
        assert.equal(await peers[0]!.ws.nextText(ms), 'local');
        await expectDeliveries(sender, new Map(), peers);
      });

      it('sendTo honours the target: a client outside the room or gateway is not reached, and false is answered', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const [, , redOn1, plainOn1] = peers as [Peer, Peer, Peer, Peer];
        const sender = instances[2]!;
        assert.equal(await sender.broadcast.to('red').sendTo(plainOn1.id, 'not red'), false);
        assert.equal(await sender.broadcast.to('red').sendTo(redOn1.id, 'red'), true);
        assert.equal(await sender.broadcast.except(redOn1.id).sendTo(redOn1.id, 'excepted'), false);
        assert.equal(await redOn1.ws.nextText(ms), 'red');
        await expectDeliveries(sender, new Map(), peers);
      });

      it('sendToMany counts the clients it reached across instances, each once, ignoring unknown ids', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const targets = [peers[0]!, peers[3]!, peers[4]!];
        const ids = [targets[1]!.id, globalThis.crypto.randomUUID(), targets[0]!.id, targets[2]!.id, targets[1]!.id];
        const sender = instances[1]!;
        assert.equal(await sender.broadcast.sendToMany(ids, 'to a few'), 3);
        assert.equal(await sender.broadcast.sendToMany(new Set([targets[2]!.id]), WsMessage.text('set')), 1);
        assert.equal(await sender.broadcast.sendToMany([], 'nobody'), 0);
        assert.equal(await sender.broadcast.sendToMany([globalThis.crypto.randomUUID()], 'nobody'), 0);
        assert.equal(await sender.broadcast.to('red').sendToMany(peers.map((peer) => peer.id), 'red ones'), 3);
        const expected = new Map<Peer, string[]>();
        for (const peer of peers) {
          const texts: string[] = [];
          if (targets.includes(peer)) texts.push('to a few');
          if (peer === targets[2]) texts.push('set');
          if (peer.rooms.includes('red')) texts.push('red ones');
          expected.set(peer, texts);
        }
        for (const peer of peers) {
          const want = expected.get(peer)!;
          assert.deepEqual(await peer.ws.texts(want.length, ms), want, `messages of ${peer.label}`);
        }
        await expectDeliveries(sender, new Map(), peers);
      });
    });

    describe('cluster operations', () => {
      it('to(room).join(other) and leave(other) move the room’s clients on every instance, resolving with how many', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const red = peers.filter(isIn('red'));
        assert.equal(await instances[1]!.broadcast.to('red').join('blue'), red.length);
        for (const instance of instances) assert.equal(await instance.broadcast.to('blue').getClientCount(), red.length, `blue seen from instance ${instance.index}`);
        await instances[2]!.broadcast.to('blue').broadcastText('to blue');
        await expectDeliveries(instances[2]!, sameFor(red, ['to blue']), peers);
        assert.equal(await instances[0]!.broadcast.to('blue').leave('blue'), red.length);
        for (const instance of instances) assert.equal(await instance.broadcast.to('blue').getClientCount(), 0);
        assert.equal(await instances[0]!.broadcast.to('nobody').join('blue'), 0);
      });

      it('only(ids).disconnect(code, reason) closes those clients wherever they are, and their gateways see server-close', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const [first, , , fourth] = peers as [Peer, Peer, Peer, Peer];
        const closed = [first.ws.waitForClose(ms), fourth.ws.waitForClose(ms)];
        const reasons = [leaveReason(first), leaveReason(fourth)];
        assert.equal(await instances[2]!.broadcast.only([first.id, fourth.id]).disconnect(4001, 'kicked'), 2);
        for (const close of await Promise.all(closed)) assert.deepEqual(close, { code: 4001, reason: 'kicked' });
        for (const reason of await Promise.all(reasons)) assert.deepEqual(reason, { kind: 'server-close', code: 4001, reason: 'kicked' });
        for (const instance of instances) assert.equal(await instance.broadcast.getClientCount(), peers.length - 2);
      });

      it('local reaches, counts and moves the clients of this instance only', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const home = instances[1]!;
        const mine = peers.filter((peer) => peer.instance === home);
        assert.equal(await home.broadcast.local.getClientCount(), mine.length);
        assert.deepEqual(sorted(await home.broadcast.local.getClientIds()), sorted(mine.map((peer) => peer.id)));
        await home.broadcast.local.broadcastText('just here');
        await expectDeliveries(home, sameFor(mine, ['just here']), peers);
        assert.equal(await home.broadcast.local.join('home'), mine.length);
        for (const instance of instances) assert.equal(await instance.broadcast.to('home').getClientCount(), mine.length);
      });

      it('only(ids) narrows any target: sends, emits and counts reach those clients, wherever they are', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const chosen = [peers[0]!, peers[3]!, peers[5]!];
        const ids = chosen.map((peer) => peer.id);
        assert.equal(await instances[0]!.broadcast.only(ids).getClientCount(), 3);
        assert.equal(await instances[0]!.broadcast.only(ids).to('red').getClientCount(), chosen.filter(isIn('red')).length);
        await instances[2]!.broadcast.only(ids).emit('picked', { n: 3 });
        await expectDeliveries(instances[2]!, sameFor(chosen, ['{"event":"picked","data":{"n":3}}']), peers);
      });
    });

    describe('presence', () => {
      it('tracks one key across instances as one member: one join when it first appears, one leave when its last connection goes', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const red = peers.filter(isIn('red'));
        const [phone, laptop] = [red[0]!, red[2]!];
        const join = '{"event":"presence","data":{"room":"red","joins":[{"key":"ada","meta":{"device":"phone"}}],"leaves":[]}}';
        await track(phone, 'red', 'ada', { device: 'phone' });
        await expectDeliveries(instances[0]!, sameFor(red, [join]), peers);
        // A second connection of the same key is no news.
        await track(laptop, 'red', 'ada', { device: 'laptop' });
        await expectDeliveries(instances[1]!, new Map(), peers);
        for (const instance of instances) {
          const members = instance.app.get(PresenceService).list('red');
          assert.deepEqual(members.map((member) => ({ key: member.key, metas: sortedMetas(member.metas) })), [{ key: 'ada', metas: [{ device: 'laptop' }, { device: 'phone' }] }], `list on instance ${instance.index}`);
        }
        await untrack(phone, 'red');
        await expectDeliveries(instances[2]!, new Map(), peers);
        // The last connection goes with its client: a disconnect ends its presence.
        const remaining = peers.filter((peer) => peer !== laptop);
        await leave(laptop);
        const left = '{"event":"presence","data":{"room":"red","joins":[],"leaves":[{"key":"ada","meta":{"device":"laptop"}}]}}';
        await expectDeliveries(instances[0]!, sameFor(remaining.filter(isIn('red')), [left]), remaining);
        for (const instance of instances) assert.deepEqual(instance.app.get(PresenceService).list('red'), []);
      });

      it('tracking again replaces the meta without news; another key is a leave and a join', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const red = peers.filter(isIn('red'));
        const mover = red[1]!;
        await track(mover, 'red', 'bob', { status: 'busy' });
        await expectDeliveries(instances[0]!, sameFor(red, ['{"event":"presence","data":{"room":"red","joins":[{"key":"bob","meta":{"status":"busy"}}],"leaves":[]}}']), peers);
        await track(mover, 'red', 'bob', { status: 'away' });
        await expectDeliveries(instances[0]!, new Map(), peers);
        for (const instance of instances) assert.deepEqual(instance.app.get(PresenceService).list('red'), [{ key: 'bob', metas: [{ status: 'away' }] }]);
        await track(mover, 'red', 'robert', { status: 'away' });
        const moved = '{"event":"presence","data":{"room":"red","joins":[{"key":"robert","meta":{"status":"away"}}],"leaves":[{"key":"bob","meta":{"status":"away"}}]}}';
        await expectDeliveries(instances[2]!, sameFor(red, [moved]), peers);
        for (const instance of instances) assert.deepEqual(instance.app.get(PresenceService).list('red'), [{ key: 'robert', metas: [{ status: 'away' }] }]);
      });

      it('app.close() of one instance ends its members’ presence at once, announced to the others’ clients', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const leaving = instances[1]!;
        const theirs = peers.find((peer) => peer.instance === leaving && peer.rooms.includes('red'))!;
        await track(theirs, 'red', 'carol');
        const remaining = peers.filter((peer) => peer.instance !== leaving);
        await expectDeliveries(instances[0]!, sameFor(peers.filter(isIn('red')), ['{"event":"presence","data":{"room":"red","joins":[{"key":"carol","meta":null}],"leaves":[]}}']), peers);
        await leaving.app.close();
        const left = '{"event":"presence","data":{"room":"red","joins":[],"leaves":[{"key":"carol","meta":null}]}}';
        await expectDeliveries(instances[0]!, sameFor(remaining.filter(isIn('red')), [left]), remaining);
        assert.deepEqual(instances[2]!.app.get(PresenceService).list('red'), []);
      });
    });

    describe('counts and ids', () => {
      it('getClientCount and getClientIds cover the cluster, from every instance, and per room', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const ids = sorted(peers.map((peer) => peer.id));
        for (const instance of instances) {
          assert.equal(await instance.broadcast.getClientCount(), peers.length);
          assert.deepEqual(sorted(await instance.broadcast.getClientIds()), ids);
          assert.equal(await instance.broadcast.to('red').getClientCount(), 3);
          assert.deepEqual(sorted(await instance.broadcast.to('red').getClientIds()), sorted(peers.filter(isIn('red')).map((peer) => peer.id)));
          assert.equal(await instance.broadcast.to('empty').getClientCount(), 0);
          assert.deepEqual(await instance.broadcast.to('empty').getClientIds(), []);
        }
      });

      it('counts and ids drop when clients leave', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const [first, , , second] = peers as [Peer, Peer, Peer, Peer];
        assert.equal((await leave(first)).kind, 'client-close');
        assert.equal((await leave(second)).kind, 'client-close');
        const remaining = sorted(peers.filter((peer) => peer !== first && peer !== second).map((peer) => peer.id));
        for (const instance of instances) {
          assert.equal(await instance.broadcast.getClientCount(), remaining.length, `count seen from instance ${instance.index}`);
          assert.deepEqual(sorted(await instance.broadcast.getClientIds()), remaining);
        }
        assert.equal(await instances[2]!.broadcast.sendTo(first.id, 'gone'), false);
        assert.equal(await instances[2]!.broadcast.sendToMany([first.id, second.id, peers[5]!.id], 'mostly gone'), 1);
      });

      it('registers a client cluster-wide before its gateway’s onConnect runs', async () => {
        const instances = await startCluster();
        const [first, second, third] = instances as [Instance, Instance, Instance];
        const seen = new AsyncQueue<{ id: string; ids: string[]; count: number; sent: boolean }>();
        second.chat.beforeHello = async (client) => {
          const ids = await first.broadcast.getClientIds();
          const count = await third.broadcast.getClientCount();
          const sent = await third.broadcast.sendTo(client.id, 'early');
          seen.push({ id: client.id, ids, count, sent });
        };
        const early = new TestClient(second.adapter.getUrl('/chat'));
        clients.push(early);
        const observed = await seen.next(ms, 'onConnect of the client on instance 1');
        assert.ok(observed.ids.includes(observed.id), 'getClientIds on instance 0 includes the connecting client');
        assert.equal(observed.count, 1);
        assert.equal(observed.sent, true);
        const texts = await early.texts(2, ms);
        assert.deepEqual(sorted(texts), sorted(['early', `id:${observed.id}`]));
      });

      it('app.close() of one instance removes its clients from the cluster at once', async () => {
        const instances = await startCluster();
        const peers = await populate(instances);
        const closing = instances[1]!;
        await closing.app.close();
        const remaining = peers.filter((peer) => peer.instance !== closing);
        for (const instance of [instances[0]!, instances[2]!]) {
          assert.equal(await instance.broadcast.getClientCount(), remaining.length);
          assert.deepEqual(sorted(await instance.broadcast.getClientIds()), sorted(remaining.map((peer) => peer.id)));
          assert.equal(await instance.broadcast.to('red').getClientCount(), 2);
        }
        assert.equal(await instances[0]!.broadcast.sendTo(peers[2]!.id, 'gone'), false);
        await instances[2]!.broadcast.broadcastText('after a close');
        for (const peer of remaining) assert.equal(await peer.ws.nextText(ms), 'after a close');
      });
    });
  });

  /** One application of the cluster. */
  async function startInstance(index: number, transport: BroadcastTransport): Promise<Instance> {
    @Module({ imports: [BroadcastModule.forRoot({ transport })], providers: [ChatGateway, NewsGateway] })
    class InstanceModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(InstanceModule, new NodeHttpAdapter(), { logger });
    const adapter = new WsAdapter();
    app.useWebSocketAdapter(adapter);
    try {
      await app.listen(0, '127.0.0.1');
    } catch (error) {
      await app.close();
      throw error;
    }
    return { index, app, adapter, logger, broadcast: app.get(BroadcastService), chat: app.get(ChatGateway), news: app.get(NewsGateway) };
  }
}

type GatewayPath = '/chat' | '/news';

/** One application of the cluster under test. */
interface Instance {
  readonly index: number;
  readonly app: ToniApplication;
  readonly adapter: WsAdapter;
  readonly logger: ReturnType<typeof captureLogger>;
  readonly broadcast: BroadcastService;
  readonly chat: MemberGateway;
  readonly news: MemberGateway;
}

/** A connected client and what the test knows of it. */
interface Peer {
  readonly ws: TestClient;
  readonly id: string;
  readonly instance: Instance;
  readonly rooms: readonly string[];
  readonly path: GatewayPath;
  readonly pings: AsyncQueue<[Buffer]>;
  readonly pongs: AsyncQueue<[Buffer]>;
  label?: string;
}

/**
 * A gateway that joins the rooms of the query's `rooms`, runs `beforeHello`, then tells the
 * client its id; `join:x` / `leave:x` messages change rooms, answered `joined:x` / `left:x`.
 */
abstract class MemberGateway implements Gateway {
  abstract readonly path: string;
  beforeHello: ((client: WsClient) => Promise<void>) | undefined;
  readonly #disconnects = new Map<string, (reason: DisconnectReason) => void>();
  readonly #reasons = new Map<string, DisconnectReason>();

  async onConnect(client: WsClient) {
    for (const room of client.handshake.query.get('rooms')?.split(',') ?? []) if (room !== '') await client.join(room);
    await this.beforeHello?.(client);
    await client.send(`id:${client.id}`);
  }

  async onMessage(client: WsClient, message: WsMessage) {
    await obeyRoomCommand(client, message);
  }

  onDisconnect(client: WsClient, reason: DisconnectReason) {
    this.#reasons.set(client.id, reason);
    this.#disconnects.get(client.id)?.(reason);
  }

  /** Resolves with the reason once `onDisconnect` ran for `clientId` (or already had). */
  disconnected(clientId: string, ms: number): Promise<DisconnectReason> {
    const known = this.#reasons.get(clientId);
    if (known !== undefined) return Promise.resolve(known);
    const reason = new Promise<DisconnectReason>((resolve) => this.#disconnects.set(clientId, resolve));
    return withTimeout(reason, ms, `onDisconnect of ${clientId}`);
  }
}

@Injectable()
class ChatGateway extends MemberGateway {
  readonly path = '/chat';
}

@Injectable()
class NewsGateway extends MemberGateway {
  readonly path = '/news';
}

function labelled(peer: Peer, label: string): Peer {
  peer.label = label;
  return peer;
}

function isIn(room: string): (peer: Peer) => boolean {
  return (peer) => peer.rooms.includes(room);
}

function sameFor(peers: readonly Peer[], texts: readonly string[]): Map<Peer, readonly string[]> {
  return new Map(peers.map((peer) => [peer, texts]));
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

function sortedMetas(metas: readonly unknown[]): unknown[] {
  return [...metas].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function describeEntry(entry: LogEntry): string {
  const error = entry.details['err'];
  return `${entry.message ?? ''}${error instanceof Error ? `: ${error.message}` : ''}`;
}
