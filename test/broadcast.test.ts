import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  type Class,
  Controller,
  type HttpContext,
  HttpResponse,
  Injectable,
  LOGGER,
  Module,
  type ModuleImport,
  Post,
  ToniError,
  ToniFactory,
  type ToniApplication,
  inject,
} from 'tonijs';
import { NodeHttpAdapter, WsAdapter, type WsAdapterOptions } from 'tonijs/node';
import {
  BroadcastModule,
  BroadcastService,
  type BroadcastTransport,
  type TransportLink,
  ConnectionManager,
  type DisconnectReason,
  type Gateway,
  type WsClient,
  WsMessage,
} from 'tonijs/websocket';
import { AsyncQueue, captureLogger, collectEvents, withTimeout } from './support/async.js';
import { openRawWebSocket } from './support/raw-ws.js';
import { TestClient, obeyRoomCommand } from './support/ws-client.js';

// ---------------------------------------------------------------------------------------------
// The spec's examples, unchanged.

@Injectable()
export class NotificationService {
  private readonly broadcast = inject(BroadcastService);
  async notifyAll(message: string) { await this.broadcast.broadcastText(message); }
  async notifyClient(clientId: string, message: string) {
    await this.broadcast.sendTo(clientId, WsMessage.text(message));
  }
}

@Controller('/events')
export class EventsController {
  private readonly broadcast = inject(BroadcastService);

  @Post('/announce')
  async announce(ctx: HttpContext<{ message: string }>) {
    await this.broadcast.broadcastText(`[Announcement] ${ctx.body.message}`);
    return HttpResponse.ok().build();
  }
}

// ---------------------------------------------------------------------------------------------
// Gateways built for the tests.

/**
 * Joins the rooms of the query's `rooms`, then tells the client its id (so when a test client
 * has read its id, it is registered and in its rooms). `join:x` / `leave:x` change rooms and are
 * answered `joined:x` / `left:x`. Logs slow consumers, as an application would.
 */
abstract class RoomGateway implements Gateway {
  abstract readonly path: string;
  readonly broadcast = inject(BroadcastService);
  readonly #logger = inject(LOGGER);
  /** Clients as `onConnect` starts. */
  readonly connects = new AsyncQueue<WsClient>();
  readonly disconnects = new AsyncQueue<{ client: WsClient; reason: DisconnectReason }>();
  /** What `onConnect` saw of the registry: the ids `getClientIds()` answered. */
  readonly idsAtConnect = new Map<string, string[]>();

  async onConnect(client: WsClient) {
    this.connects.push(client);
    for (const room of client.handshake.query.get('rooms')?.split(',') ?? []) if (room !== '') await client.join(room);
    this.idsAtConnect.set(client.id, await this.broadcast.getClientIds());
    await client.send(`id:${client.id}`);
  }

  async onMessage(client: WsClient, message: WsMessage) {
    await obeyRoomCommand(client, message);
  }

  onDisconnect(client: WsClient, reason: DisconnectReason) {
    if (reason.kind === 'slow-consumer') {
      this.#logger.warn({ clientId: client.id, bufferedBytes: reason.bufferedBytes }, `Dropped slow consumer ${client.id}`);
    }
    this.disconnects.push({ client, reason });
  }
}

@Injectable()
class ChatGateway extends RoomGateway {
  readonly path = '/chat';
}

@Injectable()
class NewsGateway extends RoomGateway {
  readonly path = '/news';
}

/** A transport that says it is connected but fails every publish and send, as a broken network would. */
class FailingTransport implements BroadcastTransport {
  readonly name = 'failing';
  async attach(link: TransportLink): Promise<void> { link.connected(); }
  async detach(): Promise<void> {}
  async publish(): Promise<void> { throw new Error('publish: network down'); }
  async send(): Promise<void> { throw new Error('send: network down'); }
}

/** A connected test client, its id and its server-side `WsClient`. */
interface Peer {
  readonly ws: TestClient;
  readonly id: string;
  readonly client: WsClient;
  readonly pings: AsyncQueue<[Buffer]>;
  readonly pongs: AsyncQueue<[Buffer]>;
}

const MS = 5_000;

/** Lets the current turn end and its frames be flushed (the outbound queue flushes in setImmediate). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------------------------

describe('Broadcasting', () => {
  const apps: ToniApplication[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  interface StartOptions {
    imports?: ModuleImport[];
    providers?: Class[];
    controllers?: Class[];
    adapter?: WsAdapterOptions;
  }

  /** An application with `BroadcastModule` and both gateways (unless told otherwise), listening on port 0. */
  async function start(options: StartOptions = {}) {
    @Module({
      imports: options.imports ?? [BroadcastModule],
      controllers: options.controllers ?? [],
      providers: options.providers ?? [ChatGateway, NewsGateway],
    })
    class TestModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(TestModule, new NodeHttpAdapter(), { logger });
    apps.push(app);
    const adapter = new WsAdapter(options.adapter);
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    const broadcast = app.get(BroadcastService);
    /** Connects a client and waits until it is registered (it has read its id). */
    const open = async (path: '/chat' | '/news' = '/chat', rooms: readonly string[] = []): Promise<Peer> => {
      const gateway: RoomGateway = path === '/chat' ? app.get(ChatGateway) : app.get(NewsGateway);
      const query = rooms.length === 0 ? '' : `?rooms=${rooms.join(',')}`;
      const ws = new TestClient(`${adapter.getUrl(path)}${query}`);
      cleanups.push(() => ws.ws.terminate());
      const pings = collectEvents<[Buffer]>(ws.ws, 'ping');
      const pongs = collectEvents<[Buffer]>(ws.ws, 'pong');
      const hello = await ws.nextText();
      const client = await gateway.connects.next(MS, `onConnect of ${path}`);
      assert.equal(hello, `id:${client.id}`);
      return { ws, id: client.id, client, pings, pongs };
    };
    /** Broadcasts a sentinel and checks each peer's next messages: its `expected` ones, then the sentinel. */
    let sentinels = 0;
    const expectNext = async (expected: ReadonlyMap<Peer, readonly string[]>, peers: readonly Peer[]) => {
      const sentinel = `sentinel:${++sentinels}`;
      await broadcast.broadcastText(sentinel);
      for (const peer of peers) {
        const want = [...(expected.get(peer) ?? []), sentinel];
        assert.deepEqual(await peer.ws.texts(want.length), want);
      }
    };
    return { app, adapter, logger, broadcast, open, expectNext, chat: app.get(ChatGateway), news: app.get(NewsGateway) };
  }

  // -------------------------------------------------------------------------------------------

  describe('the spec examples', () => {
    it('NotificationService.notifyAll reaches every client, notifyClient only the one', async () => {
      const { app, open, expectNext } = await start({ providers: [ChatGateway, NewsGateway, NotificationService] });
      const notifications = app.get(NotificationService);
      const peers = [await open(), await open(), await open('/news')];
      await notifications.notifyAll('maintenance at noon');
      for (const peer of peers) assert.equal(await peer.ws.nextText(), 'maintenance at noon');
      await notifications.notifyClient(peers[1]!.id, 'just for you');
      await expectNext(new Map([[peers[1]!, ['just for you']]]), peers);
    });

    it('EventsController POST /events/announce broadcasts an announcement to the WebSocket clients', async () => {
      const { app, open } = await start({ controllers: [EventsController] });
      const peers = [await open(), await open('/news')];
      const response = await fetch(`${app.getUrl()}/events/announce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'v2 is out' }),
      });
      assert.equal(response.status, 200);
      for (const peer of peers) assert.equal(await peer.ws.nextText(), '[Announcement] v2 is out');
    });

    it('AppModule with BroadcastModule, NotificationService and EventsController starts as written', async () => {
      @Module({ imports: [BroadcastModule], controllers: [EventsController], providers: [NotificationService] })
      class AppModule {}
      const app = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false });
      apps.push(app);
      await app.listen(0, '127.0.0.1');
      assert.ok(app.get(NotificationService) instanceof NotificationService);
      const response = await fetch(`${app.getUrl()}/events/announce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"message":"nobody listens"}',
      });
      assert.equal(response.status, 200);
      assert.equal(await app.get(BroadcastService).getClientCount(), 0);
    });

    it('a heartbeat from a background task: app.get(BroadcastService) and setInterval', async () => {
      @Module({ imports: [BroadcastModule], providers: [ChatGateway] })
      class AppModule {}
      const app = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false });
      apps.push(app);
      const adapter = new WsAdapter();
      app.useWebSocketAdapter(adapter);
      const broadcast = app.get(BroadcastService);
      const timer = setInterval(() => void broadcast.broadcastText('ping'), 10).unref();
      cleanups.push(() => clearInterval(timer));
      await app.listen(0, '127.0.0.1');
      const ws = new TestClient(adapter.getUrl('/chat'));
      cleanups.push(() => ws.ws.terminate());
      const texts = await ws.texts(4);
      assert.equal(texts.filter((text) => text.startsWith('id:')).length, 1, 'the gateway’s hello, among the pings');
      assert.deepEqual(texts.filter((text) => !text.startsWith('id:')), ['ping', 'ping', 'ping']);
      assert.equal(app.get(BroadcastService), broadcast);
    });

    it('injecting BroadcastService without BroadcastModule fails at startup and says to import it', async () => {
      @Module({ controllers: [EventsController] })
      class AppModule {}
      const error = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false }).then(
        () => assert.fail('ToniFactory.create resolved'),
        (rejection: unknown) => rejection,
      );
      assert.ok(error instanceof ToniError, `expected a ToniError, got ${String(error)}`);
      assert.equal(error.code, 'TONI_ERR_UNKNOWN_PROVIDER');
      assert.match(error.message, /AppModule > EventsController > BroadcastService/);
      assert.match(error.message, /import BroadcastModule/);
    });

    it('a gateway that injects BroadcastService without BroadcastModule fails the same way', async () => {
      @Module({ providers: [ChatGateway] })
      class GatewayModule {}
      await assert.rejects(ToniFactory.create(GatewayModule, new NodeHttpAdapter(), { logger: false }), (error: unknown) => {
        assert.ok(error instanceof ToniError);
        assert.equal(error.code, 'TONI_ERR_UNKNOWN_PROVIDER');
        assert.match(error.message, /ChatGateway > BroadcastService/);
        assert.match(error.message, /import BroadcastModule/);
        return true;
      });
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('BroadcastService', () => {
    it('is one instance for app.get, providers and gateways, with ConnectionManager beside it', async () => {
      const { app, broadcast, chat, news, open } = await start();
      assert.equal(chat.broadcast, broadcast);
      assert.equal(news.broadcast, broadcast);
      await open();
      await open('/news');
      assert.equal(app.get(ConnectionManager).localCount, 2);
    });

    it('broadcastText reaches every client of every gateway, whatever the text’s length', async () => {
      const { broadcast, open } = await start();
      const peers = [await open(), await open('/chat', ['red']), await open('/news')];
      const texts = ['hello', 'héllo wörld 🌍', 'x'.repeat(125), 'y'.repeat(126), 'é'.repeat(63), 'z'.repeat(65_535), 'v'.repeat(65_536), 'w'.repeat(70_000), ''];
      for (const text of texts) await broadcast.broadcastText(text);
      for (const peer of peers) assert.deepEqual(await peer.ws.texts(texts.length), texts);
    });

    it('broadcast sends every message kind: text, binary, ping and pong', async () => {
      const { broadcast, open } = await start();
      const peers = [await open(), await open('/news')];
      const bytes = Uint8Array.from({ length: 1000 }, (_, index) => index % 251);
      await broadcast.broadcast(WsMessage.text('as text'));
      await broadcast.broadcast(WsMessage.binary(bytes));
      await broadcast.broadcast(WsMessage.binary(new Uint8Array([7, 7]).buffer));
      await broadcast.broadcast(WsMessage.binary([0, 255]));
      await broadcast.broadcast(WsMessage.binary(Buffer.from('a view into a larger buffer').subarray(2, 6)));
      await broadcast.broadcast(WsMessage.ping([42]));
      await broadcast.broadcast(WsMessage.ping());
      await broadcast.broadcast(WsMessage.pong(new TextEncoder().encode('pong data')));
      for (const peer of peers) {
        const [text, binary, buffer, array, view] = await peer.ws.messages.take(5);
        assert.deepEqual([text!.isBinary, text!.data.toString()], [false, 'as text']);
        assert.equal(binary!.isBinary, true);
        assert.deepEqual(new Uint8Array(binary!.data), bytes);
        assert.deepEqual([buffer!.isBinary, [...buffer!.data]], [true, [7, 7]]);
        assert.deepEqual([array!.isBinary, [...array!.data]], [true, [0, 255]]);
        assert.deepEqual([view!.isBinary, view!.data.toString()], [true, 'view']);
        const pings = await peer.pings.take(2);
        assert.deepEqual(pings.map(([data]) => [...data]), [[42], []]);
        const [pong] = await peer.pongs.next();
        assert.equal(pong.toString(), 'pong data');
      }
    });

    it('sendTo delivers a string or a WsMessage to one client and answers true; false for an unknown id', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open(), await open(), await open('/news')];
      const [, target, newsTarget] = peers as [Peer, Peer, Peer];
      assert.equal(await broadcast.sendTo(target.id, 'as a string'), true);
      assert.equal(await broadcast.sendTo(target.id, WsMessage.text('as a message')), true);
      assert.equal(await broadcast.sendTo(newsTarget.id, WsMessage.binary([1, 2])), true);
      assert.equal(await broadcast.sendTo(newsTarget.id, WsMessage.ping([5])), true);
      assert.equal(await broadcast.sendTo(globalThis.crypto.randomUUID(), 'lost'), false);
      assert.equal(await broadcast.sendTo('', 'lost'), false);
      const [binary] = await newsTarget.ws.messages.take(1);
      assert.deepEqual([binary!.isBinary, [...binary!.data]], [true, [1, 2]]);
      assert.deepEqual([...(await newsTarget.pings.next())[0]], [5]);
      await expectNext(new Map([[target, ['as a string', 'as a message']]]), peers);
    });

    it('sendTo answers false for a client that has left, or is closing', async () => {
      const { broadcast, chat, open } = await start();
      const leaving = await open();
      const closing = await open();
      leaving.ws.ws.close();
      assert.equal((await chat.disconnects.next()).client.id, leaving.id);
      assert.equal(await broadcast.sendTo(leaving.id, 'too late'), false);
      const closed = closing.client.close(4000, 'closing');
      assert.equal(await broadcast.sendTo(closing.id, 'too late'), false);
      assert.equal(await broadcast.sendToMany([closing.id, leaving.id], 'too late'), 0);
      await withTimeout(closed, MS, 'the server-side close');
      assert.deepEqual(await closing.ws.waitForClose(), { code: 4000, reason: 'closing' });
      assert.equal(closing.ws.messages.length, 0);
    });

    it('sendToMany answers how many it reached, counts duplicates once and ignores unknown ids', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open(), await open(), await open('/news'), await open()];
      const [a, b, c] = peers as [Peer, Peer, Peer];
      const unknown = globalThis.crypto.randomUUID();
      assert.equal(await broadcast.sendToMany([a.id, unknown, c.id, a.id, a.id], 'few'), 2);
      assert.equal(await broadcast.sendToMany(new Set([b.id]), WsMessage.text('one')), 1);
      assert.equal(await broadcast.sendToMany([], 'none'), 0);
      assert.equal(await broadcast.sendToMany([unknown], 'none'), 0);
      assert.equal(await broadcast.sendToMany(peers.map((peer) => peer.id), 'all'), peers.length);
      await expectNext(
        new Map([
          [a, ['few', 'all']],
          [b, ['one', 'all']],
          [c, ['few', 'all']],
          [peers[3]!, ['all']],
        ]),
        peers,
      );
    });

    it('getClientCount and getClientIds list every client, and drop the ones that leave', async () => {
      const { broadcast, chat, news, open } = await start();
      assert.equal(await broadcast.getClientCount(), 0);
      assert.deepEqual(await broadcast.getClientIds(), []);
      const peers = [await open(), await open('/news'), await open()];
      assert.equal(await broadcast.getClientCount(), 3);
      assert.deepEqual((await broadcast.getClientIds()).sort(), peers.map((peer) => peer.id).sort());

      const ids = await broadcast.getClientIds();
      ids.length = 0;
      assert.equal((await broadcast.getClientIds()).length, 3, 'getClientIds returns a copy');

      peers[0]!.ws.ws.close();
      assert.equal((await chat.disconnects.next()).client.id, peers[0]!.id);
      assert.equal(await broadcast.getClientCount(), 2);
      assert.deepEqual((await broadcast.getClientIds()).sort(), [peers[1]!.id, peers[2]!.id].sort());

      peers[1]!.ws.ws.terminate();
      assert.equal((await news.disconnects.next()).client.id, peers[1]!.id);
      await peers[2]!.client.close();
      assert.equal(await broadcast.getClientCount(), 0);
      assert.deepEqual(await broadcast.getClientIds(), []);
    });

    it('a client is registered before onConnect runs', async () => {
      const { chat, open } = await start();
      const first = await open();
      const second = await open();
      assert.deepEqual(chat.idsAtConnect.get(first.id), [first.id]);
      assert.deepEqual(chat.idsAtConnect.get(second.id)?.sort(), [first.id, second.id].sort());
    });

    it('imported plainly it is in-memory: two applications in one process do not see each other', async () => {
      const first = await start();
      const second = await start({ imports: [BroadcastModule.forRoot()] });
      const one = await first.open();
      const other = await second.open();
      assert.deepEqual(await first.broadcast.getClientIds(), [one.id]);
      assert.deepEqual(await second.broadcast.getClientIds(), [other.id]);
      assert.equal(await first.broadcast.sendTo(other.id, 'across'), false);
      await first.broadcast.broadcastText('first only');
      await second.expectNext(new Map(), [other]);
      assert.equal(await one.ws.nextText(), 'first only');
    });

    it('sending to nobody resolves', async () => {
      const { broadcast } = await start();
      await broadcast.broadcastText('into the void');
      await broadcast.to('nobody').broadcast(WsMessage.binary([1]));
      assert.equal(await broadcast.gateway('/chat').getClientCount(), 0);
    });

    it('a failing transport never rejects into application code: local clients are still served, the failure is logged', async () => {
      const { broadcast, logger, open, expectNext } = await start({ imports: [BroadcastModule.forRoot({ transport: new FailingTransport() })] });
      const peers = [await open('/chat', ['red']), await open()];
      await broadcast.broadcastText('despite the network');
      assert.equal(await broadcast.sendTo(peers[1]!.id, 'direct'), true);
      assert.equal(await broadcast.sendTo(globalThis.crypto.randomUUID(), 'remote'), false);
      assert.equal(await broadcast.getClientCount(), 2);
      assert.deepEqual(await broadcast.to('red').getClientIds(), [peers[0]!.id]);
      await expectNext(
        new Map([
          [peers[0]!, ['despite the network']],
          [peers[1]!, ['despite the network', 'direct']],
        ]),
        peers,
      );
      const failure = await logger.waitFor((entry) => entry.level === 'error' && entry.details['transport'] === 'failing');
      assert.match(failure.message ?? '', /failing failed to publish 1 envelope \(publish: network down\); it was dropped/);
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('rooms', () => {
    it('join and leave change client.rooms and who to(room) reaches; empty rooms are removed', async () => {
      const { app, broadcast, open, expectNext } = await start();
      const manager = app.get(ConnectionManager);
      const peers = [await open('/chat', ['red']), await open(), await open('/news')];
      const [red, plain, news] = peers as [Peer, Peer, Peer];
      assert.deepEqual([...red.client.rooms], ['red']);
      assert.deepEqual([...plain.client.rooms], []);

      plain.ws.send('join:red');
      assert.equal(await plain.ws.nextText(), 'joined:red');
      news.ws.send('join:red');
      assert.equal(await news.ws.nextText(), 'joined:red');
      await plain.client.join('red');
      assert.deepEqual([...plain.client.rooms], ['red'], 'joining twice is joining once');
      assert.equal(await broadcast.to('red').getClientCount(), 3);
      await broadcast.to('red').broadcastText('red 1');
      await expectNext(new Map(peers.map((peer) => [peer, ['red 1']])), peers);

      red.ws.send('leave:red');
      assert.equal(await red.ws.nextText(), 'left:red');
      await red.client.leave('red');
      await red.client.leave('never-joined');
      assert.deepEqual([...red.client.rooms], []);
      await broadcast.to('red').broadcastText('red 2');
      await expectNext(new Map([[plain, ['red 2']], [news, ['red 2']]]), peers);
      assert.deepEqual((await broadcast.to('red').getClientIds()).sort(), [plain.id, news.id].sort());

      await plain.client.leave('red');
      await news.client.leave('red');
      assert.equal(await broadcast.to('red').getClientCount(), 0);
      assert.deepEqual([...manager.localRooms()], []);
    });

    it('to(a).to(b) and to([a, b]) reach the union of the rooms, each member once', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open('/chat', ['a']), await open('/chat', ['b']), await open('/news', ['a', 'b']), await open('/chat', ['c']), await open()];
      const [inA, inB, inBoth] = peers as [Peer, Peer, Peer];
      await broadcast.to('a').to('b').broadcastText('a or b');
      await broadcast.to(['b', 'a']).broadcastText('b or a');
      await broadcast.to(['a', 'a']).broadcastText('a twice');
      const expected = new Map<Peer, string[]>([
        [inA, ['a or b', 'b or a', 'a twice']],
        [inB, ['a or b', 'b or a']],
        [inBoth, ['a or b', 'b or a', 'a twice']],
      ]);
      await expectNext(expected, peers);
      assert.equal(await broadcast.to('a').to('b').getClientCount(), 3);
      assert.deepEqual((await broadcast.to(['a', 'b']).getClientIds()).sort(), [inA.id, inB.id, inBoth.id].sort());
      assert.equal(await broadcast.to('a').to('b').sendToMany(peers.map((peer) => peer.id), 'union only'), 3);
      await expectNext(new Map([inA, inB, inBoth].map((peer) => [peer, ['union only']])), peers);
    });

    it('except(id) leaves out clients, everywhere or within a room', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open('/chat', ['red']), await open('/chat', ['red']), await open('/news', ['red']), await open()];
      const [red1, red2, red3, plain] = peers as [Peer, Peer, Peer, Peer];
      await broadcast.except(plain.id).broadcastText('not plain');
      await broadcast.except([red1.id, red3.id]).broadcastText('not red1 nor red3');
      await broadcast.to('red').except(red2.id).broadcastText('red but not red2');
      await broadcast.except(red2.id).to('red').broadcastText('red but not red2, other order');
      await broadcast.except(red1.id).except(red2.id).broadcastText('chained excepts');
      await broadcast.except(globalThis.crypto.randomUUID()).broadcastText('except a stranger');
      await expectNext(
        new Map([
          [red1, ['not plain', 'red but not red2', 'red but not red2, other order', 'except a stranger']],
          [red2, ['not plain', 'not red1 nor red3', 'except a stranger']],
          [red3, ['not plain', 'red but not red2', 'red but not red2, other order', 'chained excepts', 'except a stranger']],
          [plain, ['not red1 nor red3', 'chained excepts', 'except a stranger']],
        ]),
        peers,
      );
      assert.equal(await broadcast.except(plain.id).getClientCount(), 3);
      assert.deepEqual((await broadcast.to('red').except([red1.id, red3.id]).getClientIds()), [red2.id]);
      assert.equal(await broadcast.except(red1.id).sendTo(red1.id, 'excluded'), false);
      assert.equal(await broadcast.except(red1.id).sendToMany([red1.id, red2.id], 'partly excluded'), 1);
      await expectNext(new Map([[red2, ['partly excluded']]]), peers);
    });

    it('targets are immutable: narrowing returns a new target and leaves the old one as it was', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open('/chat', ['x']), await open('/chat', ['x']), await open('/chat', ['y']), await open('/news', ['x'])];
      const [x1, x2, y, newsX] = peers as [Peer, Peer, Peer, Peer];
      const toX = broadcast.to('x');
      const withoutX1 = toX.except(x1.id);
      const alsoY = toX.to('y');
      const chatOnly = toX.gateway('/chat');
      assert.notEqual(withoutX1, toX);
      await toX.broadcastText('x');
      await withoutX1.broadcastText('x but x1');
      await alsoY.broadcastText('x or y');
      await chatOnly.broadcastText('x on chat');
      await broadcast.broadcastText('everyone');
      await expectNext(
        new Map([
          [x1, ['x', 'x or y', 'x on chat', 'everyone']],
          [x2, ['x', 'x but x1', 'x or y', 'x on chat', 'everyone']],
          [y, ['x or y', 'everyone']],
          [newsX, ['x', 'x but x1', 'x or y', 'everyone']],
        ]),
        peers,
      );
      assert.equal(await toX.getClientCount(), 3);
      assert.equal(await broadcast.getClientCount(), 4);
    });

    it('drops a client’s rooms when it disconnects', async () => {
      const { app, broadcast, chat, open, expectNext } = await start();
      const manager = app.get(ConnectionManager);
      const leaving = await open('/chat', ['solo', 'shared']);
      const staying = await open('/chat', ['shared']);
      assert.deepEqual([...manager.localRooms()].sort(), ['shared', 'solo']);
      leaving.ws.ws.close();
      const { client } = await chat.disconnects.next();
      assert.equal(client.id, leaving.id);
      assert.deepEqual([...client.rooms], []);
      assert.deepEqual([...manager.localRooms()], ['shared']);
      assert.equal(await broadcast.to('solo').getClientCount(), 0);
      assert.deepEqual(await broadcast.to('shared').getClientIds(), [staying.id]);
      await broadcast.to('shared').broadcastText('shared');
      await expectNext(new Map([[staying, ['shared']]]), [staying]);
    });

    it('joins and leaves between broadcasts in one turn apply to the very next broadcast', async () => {
      const { broadcast, open } = await start();
      const member = await open('/chat', ['red']);
      const mover = await open();
      const outsider = await open();
      // No await between these: they all land in one turn, and one write per client.
      void broadcast.broadcastText('all 1');
      void mover.client.join('red');
      void broadcast.to('red').broadcastText('red 1');
      void broadcast.broadcastText('all 2');
      void mover.client.leave('red');
      void broadcast.to('red').broadcastText('red 2');
      void broadcast.broadcastText('all 3');
      void member.client.leave('red');
      void broadcast.to('red').broadcastText('red 3');
      await broadcast.broadcastText('all 4');
      assert.deepEqual(await member.ws.texts(6), ['all 1', 'red 1', 'all 2', 'red 2', 'all 3', 'all 4']);
      assert.deepEqual(await mover.ws.texts(5), ['all 1', 'red 1', 'all 2', 'all 3', 'all 4']);
      assert.deepEqual(await outsider.ws.texts(4), ['all 1', 'all 2', 'all 3', 'all 4']);
    });

    it('to([]) names no room and reaches nobody', async () => {
      const { broadcast, open, expectNext } = await start();
      const peers = [await open('/chat', ['red']), await open()];
      await broadcast.to([]).broadcastText('to no room');
      assert.equal(await broadcast.to([]).getClientCount(), 0);
      assert.equal(await broadcast.to([]).sendTo(peers[0]!.id, 'to no room'), false);
      await expectNext(new Map(), peers);
    });

    it('refuses empty room names and gateway paths', async () => {
      const { broadcast, open } = await start();
      const peer = await open();
      assert.throws(() => broadcast.to(''), TypeError);
      assert.throws(() => broadcast.to(['ok', '']), TypeError);
      assert.throws(() => broadcast.gateway(''), TypeError);
      await assert.rejects(peer.client.join(''), TypeError);
      assert.deepEqual([...peer.client.rooms], []);
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('gateway(path)', () => {
    it('limits broadcasts, sends, counts and ids to one gateway’s clients', async () => {
      const { broadcast, open, expectNext } = await start();
      const chat = [await open('/chat', ['red']), await open()];
      const news = [await open('/news', ['red']), await open('/news')];
      const peers = [...chat, ...news];
      await broadcast.gateway('/news').broadcastText('news only');
      await broadcast.gateway('/chat').broadcast(WsMessage.text('chat only'));
      await broadcast.gateway('/news').to('red').broadcastText('red news');
      await broadcast.to('red').gateway('/chat').except(chat[1]!.id).broadcastText('red chat');
      await broadcast.gateway('/elsewhere').broadcastText('nowhere');
      await expectNext(
        new Map([
          [chat[0]!, ['chat only', 'red chat']],
          [chat[1]!, ['chat only']],
          [news[0]!, ['news only', 'red news']],
          [news[1]!, ['news only']],
        ]),
        peers,
      );
      assert.equal(await broadcast.gateway('/chat').getClientCount(), 2);
      assert.equal(await broadcast.gateway('/news').to('red').getClientCount(), 1);
      assert.deepEqual((await broadcast.gateway('/news').getClientIds()).sort(), news.map((peer) => peer.id).sort());
      assert.equal(await broadcast.gateway('/elsewhere').getClientCount(), 0);
      assert.equal(await broadcast.gateway('/news').sendTo(chat[0]!.id, 'wrong gateway'), false);
      assert.equal(await broadcast.gateway('/news').sendToMany(peers.map((peer) => peer.id), 'news ones'), 2);
      await expectNext(new Map(news.map((peer) => [peer, ['news ones']])), peers);
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('ordering', () => {
    it('1000 awaited and 1000 un-awaited broadcastText calls arrive complete and in order at every client', async () => {
      const { broadcast, open } = await start();
      const peers = [await open(), await open('/chat', ['red']), await open('/news')];
      const awaited = Array.from({ length: 1000 }, (_, index) => `awaited ${index}`);
      const fired = Array.from({ length: 1000 }, (_, index) => `fired ${index}`);
      for (const text of awaited) await broadcast.broadcastText(text);
      const pending = fired.map((text) => broadcast.broadcastText(text));
      await Promise.all(pending);
      for (const peer of peers) assert.deepEqual(await peer.ws.texts(2000, 10_000), [...awaited, ...fired]);
    });

    it('interleaved sendTo, sendToMany and broadcasts keep each client’s order', async () => {
      const { broadcast, open } = await start();
      const peers = [await open(), await open('/chat', ['red']), await open('/news', ['red'])];
      const expected = new Map<Peer, string[]>(peers.map((peer) => [peer, []]));
      const sends: Promise<unknown>[] = [];
      for (let index = 0; index < 600; index++) {
        const text = `m${index}`;
        const one = peers[index % peers.length]!;
        switch (index % 5) {
          case 0:
            sends.push(broadcast.broadcastText(text));
            for (const peer of peers) expected.get(peer)!.push(text);
            break;
          case 1:
            sends.push(broadcast.sendTo(one.id, text));
            expected.get(one)!.push(text);
            break;
          case 2:
            sends.push(broadcast.to('red').broadcastText(text));
            for (const peer of peers.slice(1)) expected.get(peer)!.push(text);
            break;
          case 3:
            sends.push(broadcast.except(one.id).broadcastText(text));
            for (const peer of peers) if (peer !== one) expected.get(peer)!.push(text);
            break;
          case 4:
            sends.push(broadcast.sendToMany([peers[0]!.id, peers[2]!.id], text));
            expected.get(peers[0]!)!.push(text);
            expected.get(peers[2]!)!.push(text);
            break;
        }
        // Every so often let a turn end, so batches both span and split turns.
        if (index % 97 === 0) await nextTurn();
      }
      await Promise.all(sends);
      for (const peer of peers) {
        const want = expected.get(peer)!;
        assert.deepEqual(await peer.ws.texts(want.length, 10_000), want);
      }
    });

    it('a client.close() right after broadcasts delivers them before the close frame', async () => {
      const { broadcast, chat, open } = await start();
      const closing = await open();
      const other = await open();
      const texts = Array.from({ length: 100 }, (_, index) => `before close ${index}`);
      for (const text of texts) void broadcast.broadcastText(text);
      void closing.client.send('direct, last');
      const closed = closing.client.close(4001, 'done');
      void broadcast.broadcastText('after close');
      await withTimeout(closed, MS, 'client.close()');
      assert.deepEqual(await closing.ws.texts(101), [...texts, 'direct, last']);
      assert.deepEqual(await closing.ws.waitForClose(), { code: 4001, reason: 'done' });
      assert.equal(closing.ws.messages.length, 0, 'nothing after the close frame');
      const { reason } = await chat.disconnects.next();
      assert.deepEqual(reason, { kind: 'server-close', code: 4001, reason: 'done' });
      assert.deepEqual(await other.ws.texts(101), [...texts, 'after close']);
    });

    it('app.close() right after broadcasts delivers them before the 1001 close frame', async () => {
      const { app, broadcast, open } = await start();
      const peers = [await open(), await open('/news')];
      const texts = Array.from({ length: 100 }, (_, index) => `before shutdown ${index}`);
      for (const text of texts) void broadcast.broadcastText(text);
      await app.close();
      for (const peer of peers) {
        assert.deepEqual(await peer.ws.texts(texts.length), texts);
        assert.equal((await peer.ws.waitForClose()).code, 1001);
        assert.equal(peer.ws.messages.length, 0);
      }
    });

    it('100 clients in overlapping rooms each receive 300 mixed broadcasts in order', async () => {
      const { broadcast, open } = await start();
      const peers: Peer[] = [];
      for (let index = 0; index < 100; index++) peers.push(await open(index % 2 === 0 ? '/chat' : '/news', [`mod3:${index % 3}`, `mod5:${index % 5}`]));
      const expected = new Map<Peer, string[]>(peers.map((peer) => [peer, []]));
      const sends: Promise<void>[] = [];
      for (let index = 0; index < 300; index++) {
        const text = `m${index}`;
        const room = index % 2 === 0 ? `mod3:${index % 3}` : `mod5:${index % 5}`;
        // Runs of the same target share one segment; a change of target starts a new one.
        const target = Math.floor(index / 7) % 3 === 0 ? undefined : room;
        sends.push(target === undefined ? broadcast.broadcastText(text) : broadcast.to(target).broadcastText(text));
        peers.forEach((peer, position) => {
          if (target === undefined || target === `mod3:${position % 3}` || target === `mod5:${position % 5}`) expected.get(peer)!.push(text);
        });
        if (index % 50 === 0) await nextTurn();
      }
      await Promise.all(sends);
      for (const peer of peers) {
        const want = expected.get(peer)!;
        assert.deepEqual(await peer.ws.texts(want.length, 10_000), want);
      }
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('backpressure', () => {
    it('drops a never-reading client as a slow consumer while the others receive every message in order', async () => {
      const limit = 64 * 1024;
      const { adapter, broadcast, chat, logger, open } = await start({ adapter: { maxBufferedBytes: limit, slowConsumerGrace: 50 } });
      const readers = [await open(), await open('/chat', ['red'])];
      const raw = await openRawWebSocket(adapter.getUrl('/chat'), { pauseAfterUpgrade: true });
      cleanups.push(() => raw.socket.destroy());
      const stuck = await chat.connects.next(MS, 'onConnect of the raw client');
      assert.equal(await broadcast.getClientCount(), 3);

      const payload = 'p'.repeat(16 * 1024);
      const sent: string[] = [];
      // Broadcast, one turn at a time, until the server gives up on the stuck client; the bound
      // (64 MiB) fails the test if it never does.
      await withTimeout(
        (async () => {
          while (stuck.isOpen && sent.length < 4096) {
            const text = `${sent.length} ${payload}`;
            sent.push(text);
            await broadcast.broadcastText(text);
            await nextTurn();
          }
        })(),
        30_000,
        'the stuck client to be dropped',
      );
      assert.equal(stuck.isOpen, false, `the stuck client was dropped within ${sent.length} broadcasts`);
      for (let index = 0; index < 10; index++) {
        sent.push(`after ${index}`);
        await broadcast.broadcastText(`after ${index}`);
      }

      const { client, reason } = await chat.disconnects.next(MS, 'onDisconnect of the slow consumer');
      assert.equal(client.id, stuck.id);
      assert.equal(reason.kind, 'slow-consumer');
      assert.ok(reason.kind === 'slow-consumer' && reason.bufferedBytes > limit, `bufferedBytes ${JSON.stringify(reason)} passes the limit`);
      // Memory stays bounded: the limit, plus at most the frames of the turn that crossed it and of this one.
      assert.ok(reason.bufferedBytes <= limit + 2 * (payload.length + 16), `bufferedBytes ${reason.bufferedBytes} stays near the limit`);
      const entry = await logger.waitFor((candidate) => candidate.level === 'warn' && candidate.details['clientId'] === stuck.id);
      assert.equal(entry.details['bufferedBytes'], (reason as { bufferedBytes: number }).bufferedBytes);

      for (const reader of readers) {
        const texts = await reader.ws.texts(sent.length, 30_000);
        assert.equal(texts.length, sent.length);
        assert.ok(texts.every((text, index) => text === sent[index]), 'every message, in order');
      }
      assert.equal(await broadcast.getClientCount(), 2);
      assert.ok(!(await broadcast.getClientIds()).includes(stuck.id));
      assert.equal(adapter.connectionCount, 2);
    });

    it('does not drop a reading client for a burst larger than the limit within one turn', async () => {
      const limit = 64 * 1024;
      const { broadcast, chat, open } = await start({ adapter: { maxBufferedBytes: limit } });
      const peer = await open();
      const texts = Array.from({ length: 100 }, (_, index) => `${index} ${'b'.repeat(1024)}`);
      for (const text of texts) await broadcast.broadcastText(text);
      assert.deepEqual(await peer.ws.texts(texts.length), texts);
      assert.equal(peer.client.isOpen, true);
      assert.equal(chat.disconnects.length, 0);
    });
  });
});
