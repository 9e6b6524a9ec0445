import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type Socket, connect as connectTcp } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { type Class, HttpException, Injectable, Module, ToniError, ToniFactory, type ToniApplication, inject } from 'tonijs';
import { NodeHttpAdapter, WsAdapter, type WsAdapterOptions } from 'tonijs/node';
import { type DisconnectReason, type Gateway, MetadataKey, type WsClient, type WsHandshake, WsMessage } from 'tonijs/websocket';
import { AsyncQueue, captureLogger, collectEvents, deferred, nextEvent, withTimeout } from './support/async.js';
import { TestClient, connect, expectRefusal } from './support/ws-client.js';

// ---------------------------------------------------------------------------------------------
// The spec's examples, unchanged.

@Injectable()
export class ChatGateway implements Gateway {
  readonly path = '/chat';
  async onConnect(client: WsClient) { await client.send(WsMessage.text('Welcome to the chat!')); }
  onDisconnect(client: WsClient, reason: DisconnectReason) { console.log(client.id, reason.kind); }
  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText();
    if (text !== undefined) await client.send(WsMessage.text(`You said: ${text}`));
  }
}

@Module({ providers: [ChatGateway] })
export class ChatModule {}

class User {
  constructor(readonly name: string) {}
}

/** A second, non-class metadata key: the token the client presented. */
const TOKEN = new MetadataKey<string>('token');

@Injectable()
class AuthService {
  readonly #users = new Map([
    ['Bearer ann-secret', new User('ann')],
    ['Bearer bob-secret', new User('bob')],
  ]);
  verify(header: string): boolean { return this.#users.has(header); }
  userFor(header: string): User { return this.#users.get(header)!; }
}

@Injectable()
export class SecureGateway implements Gateway {
  readonly path = '/secure';
  private readonly auth = inject(AuthService);
  readonly connected: string[] = [];

  async onHandshake(handshake: WsHandshake) {
    const header = handshake.headers.get('authorization');
    if (!header || !this.auth.verify(header)) return false;        // refused: HTTP 401, never upgraded
    handshake.setMetadata(User, this.auth.userFor(header));           // typed, per client
    handshake.setMetadata(TOKEN, header.slice('Bearer '.length));
    return true;
  }
  async onConnect(client: WsClient) {
    const user: User | undefined = client.getMetadata(User);
    const token: string | undefined = client.getMetadata(TOKEN);
    this.connected.push(user?.name ?? '?');
    await client.send(`hello ${user?.name} (${token})`);
  }
  async onMessage(client: WsClient, message: WsMessage) {
    await client.send(`${client.getMetadata(User)?.name} says ${message.asText()}`);
  }
}

// Compile-time checks only (never called): metadata keys carry their value type.
export function metadataIsTyped(handshake: WsHandshake, client: WsClient): void {
  // @ts-expect-error a MetadataKey<string> holds strings only
  handshake.setMetadata(TOKEN, 42);
  // @ts-expect-error a class key holds instances of that class
  handshake.setMetadata(User, { nickname: 'x' });
  // @ts-expect-error getMetadata(User) is User | undefined, not string
  const name: string = client.getMetadata(User);
  void name;
}

// ---------------------------------------------------------------------------------------------
// Gateways built for the tests.

type Hooks = {
  onConnect?(client: WsClient): unknown;
  onMessage?(client: WsClient, message: WsMessage): unknown;
  onDisconnect?(client: WsClient, reason: DisconnectReason): unknown;
};

/** A gateway whose hooks each test sets; it echoes text by default and records every client. */
@Injectable()
class ProbeGateway implements Gateway {
  readonly path = '/probe';
  hooks: Hooks = {};
  /** Clients as `onConnect` starts. */
  readonly connects = new AsyncQueue<WsClient>();
  /** Clients as `onDisconnect` starts. */
  readonly disconnects = new AsyncQueue<{ client: WsClient; reason: DisconnectReason }>();
  disconnectCount = 0;
  readonly received: { clientId: string; kind: string }[] = [];

  onConnect(client: WsClient) {
    this.connects.push(client);
    return this.hooks.onConnect?.(client);
  }
  onMessage(client: WsClient, message: WsMessage) {
    this.received.push({ clientId: client.id, kind: message.kind });
    if (this.hooks.onMessage !== undefined) return this.hooks.onMessage(client, message);
    return client.send(`echo:${message.asText()}`);
  }
  onDisconnect(client: WsClient, reason: DisconnectReason) {
    this.disconnectCount++;
    this.disconnects.push({ client, reason });
    return this.hooks.onDisconnect?.(client, reason);
  }
}

/** A gateway whose `onHandshake` does what the query's `mode` asks. */
@Injectable()
class CheckpointGateway implements Gateway {
  readonly path = '/checkpoint';
  readonly handshakes: WsHandshake[] = [];
  readonly connected: WsClient[] = [];
  readonly waiting = deferred();
  readonly gate = deferred();

  async onHandshake(handshake: WsHandshake) {
    this.handshakes.push(handshake);
    switch (handshake.query.get('mode')) {
      case 'deny':
        return false;
      case 'forbid':
        throw new HttpException(403, 'Banned from this checkpoint');
      case 'crash':
        throw new Error('database unreachable');
      case 'wait':
        this.waiting.resolve();
        await this.gate.promise;
        return true;
      default:
        return true;
    }
  }
  onConnect(client: WsClient) { this.connected.push(client); }
  onMessage() {}
}

@Injectable()
class AlphaGateway implements Gateway {
  readonly path = '/alpha';
  onMessage(client: WsClient, message: WsMessage) { return client.send(`alpha:${message.asText()}`); }
}

@Injectable()
class BetaGateway implements Gateway {
  readonly path = '/beta';
  onMessage(client: WsClient, message: WsMessage) { return client.send(`beta:${message.asText()}`); }
}

@Injectable()
class SidePortGateway implements Gateway {
  readonly path = '/side';
  readonly port = 0;
  onMessage(client: WsClient, message: WsMessage) { return client.send(`side:${message.asText()}`); }
}

@Injectable()
class DupOneGateway implements Gateway {
  readonly path = '/dup';
  onMessage() {}
}

@Injectable()
class DupTwoGateway implements Gateway {
  readonly path = '/dup';
  onMessage() {}
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Lets `count` turns of the event loop pass: a handler that awaits something unrelated. */
async function yieldTurns(count: number): Promise<void> {
  for (let turn = 0; turn < count; turn++) await new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------------------------

describe('WebSocket gateways', () => {
  const apps: ToniApplication[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(
    async () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
      await Promise.all(apps.splice(0).map((app) => app.close()));
    },
    { timeout: 10_000 },
  );

  /** An application of `providers` with a capturing logger, listening on port 0. */
  async function start(providers: Class[], options?: WsAdapterOptions) {
    @Module({ providers })
    class TestModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(TestModule, new NodeHttpAdapter(), { logger });
    apps.push(app);
    const adapter = new WsAdapter(options);
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    return { app, adapter, logger };
  }

  /** Opens a client that is closed (abruptly) after the test, whatever happens. */
  async function open(url: string, options?: ConstructorParameters<typeof TestClient>[1]): Promise<TestClient> {
    const client = await connect(url, options);
    cleanups.push(() => client.ws.terminate());
    return client;
  }

  describe('the spec examples', () => {
    it('ChatGateway welcomes a client and echoes what it says', async () => {
      const { adapter } = await start([ChatGateway]);
      const client = await open(adapter.getUrl('/chat'));
      assert.equal(await client.nextText(), 'Welcome to the chat!');
      client.send('hello');
      assert.equal(await client.nextText(), 'You said: hello');
      client.send('again');
      assert.equal(await client.nextText(), 'You said: again');
    });

    it('SecureGateway authenticates the handshake and gives each client its own typed metadata', async () => {
      const { adapter } = await start([SecureGateway, AuthService]);
      const url = adapter.getUrl('/secure');
      const ann = await open(url, { headers: { Authorization: 'Bearer ann-secret' } });
      const bob = await open(url, { headers: { authorization: 'Bearer bob-secret' } });
      assert.equal(await ann.nextText(), 'hello ann (ann-secret)');
      assert.equal(await bob.nextText(), 'hello bob (bob-secret)');
      bob.send('hi');
      ann.send('hey');
      assert.equal(await bob.nextText(), 'bob says hi');
      assert.equal(await ann.nextText(), 'ann says hey');
    });

    it('a refused handshake answers 401 before upgrading and never reaches onConnect', async () => {
      const { app, adapter } = await start([SecureGateway, AuthService]);
      const url = adapter.getUrl('/secure');
      const gateway = app.get(SecureGateway);
      const missing = await expectRefusal(url);
      assert.equal(missing.status, 401);
      assert.equal(JSON.parse(missing.body).statusCode, 401);
      assert.equal((await expectRefusal(url, { headers: { authorization: 'Bearer forged' } })).status, 401);
      assert.deepEqual(gateway.connected, []);
      const ann = await open(url, { headers: { authorization: 'Bearer ann-secret' } });
      assert.equal(await ann.nextText(), 'hello ann (ann-secret)');
      assert.deepEqual(gateway.connected, ['ann']);
    });
  });

  describe('handshake', () => {
    it('an HttpException thrown in onHandshake answers its status', async () => {
      const { app, adapter } = await start([CheckpointGateway]);
      const refusal = await expectRefusal(`${adapter.getUrl('/checkpoint')}?mode=forbid`);
      assert.equal(refusal.status, 403);
      assert.equal(JSON.parse(refusal.body).message, 'Banned from this checkpoint');
      assert.equal((await expectRefusal(`${adapter.getUrl('/checkpoint')}?mode=deny`)).status, 401);
      assert.deepEqual(app.get(CheckpointGateway).connected, []);
    });

    it('any other exception in onHandshake answers 500 and is logged with the gateway', async () => {
      const { app, adapter, logger } = await start([CheckpointGateway]);
      const refusal = await expectRefusal(`${adapter.getUrl('/checkpoint')}?mode=crash`);
      assert.equal(refusal.status, 500);
      assert.doesNotMatch(refusal.body, /database unreachable/, 'the error stays in the log');
      const entry = await logger.waitFor((e) => e.level === 'error' && e.details['gateway'] === 'CheckpointGateway');
      assert.equal((entry.details['err'] as Error).message, 'database unreachable');
      assert.match(entry.message ?? '', /onHandshake/);
      assert.deepEqual(app.get(CheckpointGateway).connected, []);
    });

    it('an async onHandshake holds the upgrade until it resolves', async () => {
      const { app, adapter } = await start([CheckpointGateway]);
      const gateway = app.get(CheckpointGateway);
      const client = new TestClient(`${adapter.getUrl('/checkpoint')}?mode=wait`);
      cleanups.push(() => client.ws.terminate());
      await withTimeout(gateway.waiting.promise, 5_000, 'onHandshake to start');
      assert.equal(client.ws.readyState, client.ws.CONNECTING);
      assert.equal(gateway.connected.length, 0);
      gateway.gate.resolve();
      await nextEvent(client.ws, 'open', 5_000, 'the upgrade');
      assert.equal(gateway.connected.length, 1);
    });

    it('WsHandshake exposes headers, url, path, the decoded query and the remote address', async () => {
      const { app, adapter } = await start([CheckpointGateway]);
      const target = '/checkpoint?mode=ok&room=caf%C3%A9%20au%20lait&tag=a&tag=b+c';
      await open(`${adapter.getUrl('/checkpoint')}${target.slice('/checkpoint'.length)}`, { headers: { 'X-Trace-Id': 'trace-1' } });
      const gateway = app.get(CheckpointGateway);
      const [handshake] = gateway.handshakes;
      assert.ok(handshake);
      assert.equal(handshake.url, target);
      assert.equal(handshake.path, '/checkpoint');
      assert.equal(handshake.query.get('room'), 'café au lait');
      assert.deepEqual(handshake.query.getAll('tag'), ['a', 'b c']);
      assert.ok(handshake.headers instanceof Headers);
      assert.equal(handshake.headers.get('x-trace-id'), 'trace-1');
      assert.equal(handshake.headers.get('X-TRACE-ID'), 'trace-1');
      assert.equal(handshake.headers.get('upgrade'), 'websocket');
      assert.equal(handshake.remoteAddress, '127.0.0.1');
      assert.equal(gateway.connected[0]?.handshake, handshake);
    });

    it('an upgrade to a path without a gateway answers 404 and is never upgraded', async () => {
      const { adapter, app } = await start([ProbeGateway]);
      const refusal = await expectRefusal(adapter.getUrl('/probe').replace('/probe', '/nowhere'));
      assert.equal(refusal.status, 404);
      assert.match(JSON.parse(refusal.body).message, /\/nowhere/);
      assert.equal(app.get(ProbeGateway).connects.length, 0);
      assert.equal(adapter.connectionCount, 0);
    });
  });

  describe('WsClient', () => {
    it('has a unique UUID as its id, the same in every hook', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const ids: string[] = [];
      const clients: TestClient[] = [];
      for (let index = 0; index < 3; index++) {
        clients.push(await open(adapter.getUrl('/probe')));
        ids.push((await gateway.connects.next()).id);
      }
      for (const id of ids) assert.match(id, UUID);
      assert.equal(new Set(ids).size, 3);
      clients[1]!.ws.close();
      assert.equal((await gateway.disconnects.next()).client.id, ids[1]);
    });

    it('send resolves true while the client is open and false once it is gone', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const results: boolean[] = [];
      const done = deferred();
      gateway.hooks.onConnect = async (client) => results.push(await client.send('first'));
      gateway.hooks.onDisconnect = async (client) => {
        results.push(await client.send('too late'));
        results.push(await client.send(WsMessage.binary([1])));
        done.resolve();
      };
      const client = await open(adapter.getUrl('/probe'));
      assert.equal(await client.nextText(), 'first');
      client.ws.close();
      await withTimeout(done.promise, 5_000, 'onDisconnect');
      assert.deepEqual(results, [true, false, false]);
    });

    it('close(code, reason) reaches the peer, and onDisconnect sees server-close before it resolves', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const client = await open(adapter.getUrl('/probe'));
      const serverSide = await gateway.connects.next();
      await assert.rejects(serverSide.close(1005), RangeError);
      await withTimeout(serverSide.close(4001, 'kicked'), 5_000, 'client.close()');
      assert.equal(gateway.disconnectCount, 1);
      const { reason } = await gateway.disconnects.next();
      assert.deepEqual(reason, { kind: 'server-close', code: 4001, reason: 'kicked' });
      assert.deepEqual(await client.waitForClose(), { code: 4001, reason: 'kicked' });
    });

    it('await client.close() inside onConnect, onMessage or onDisconnect does not deadlock', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const returned: string[] = [];
      gateway.hooks.onConnect = async (client) => {
        if (client.handshake.query.has('unwelcome')) {
          await client.close(4003, 'not welcome');
          returned.push('onConnect');
        }
      };
      gateway.hooks.onMessage = async (client, message) => {
        await client.close(4002, `bye ${message.asText()}`);
        returned.push('onMessage');
      };
      gateway.hooks.onDisconnect = async (client) => {
        await client.close();
        returned.push('onDisconnect');
      };

      const unwelcome = await open(`${adapter.getUrl('/probe')}?unwelcome`);
      assert.deepEqual(await unwelcome.waitForClose(), { code: 4003, reason: 'not welcome' });
      assert.deepEqual((await gateway.disconnects.next()).reason, { kind: 'server-close', code: 4003, reason: 'not welcome' });

      const chatty = await open(adapter.getUrl('/probe'));
      chatty.send('now');
      assert.deepEqual(await chatty.waitForClose(), { code: 4002, reason: 'bye now' });
      assert.deepEqual((await gateway.disconnects.next()).reason, { kind: 'server-close', code: 4002, reason: 'bye now' });

      await withTimeout(app.close(), 5_000, 'app.close()');
      assert.deepEqual(returned.sort(), ['onConnect', 'onDisconnect', 'onDisconnect', 'onMessage']);
      assert.equal(gateway.disconnectCount, 2);
    });

    it('a close from the client reaches onDisconnect as client-close with its code and reason', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const client = await open(adapter.getUrl('/probe'));
      const serverSide = await gateway.connects.next();
      client.ws.close(4000, 'see you');
      const { client: gone, reason } = await gateway.disconnects.next();
      assert.equal(gone, serverSide);
      assert.deepEqual(reason, { kind: 'client-close', code: 4000, reason: 'see you' });
      assert.equal((await client.waitForClose()).code, 4000);
    });
  });

  describe('shutdown and broken connections', () => {
    it('app.close() closes clients with 1001 and resolves after their async onDisconnect hooks', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const events: string[] = [];
      const gate = deferred();
      gateway.hooks.onDisconnect = async (client, reason) => {
        const name = client.handshake.query.get('name');
        events.push(`start ${name} ${reason.kind}`);
        await gate.promise;
        await yieldTurns(name === 'early' ? 20 : 1);
        events.push(`end ${name}`);
      };
      const early = await open(`${adapter.getUrl('/probe')}?name=early`);
      const late = await open(`${adapter.getUrl('/probe')}?name=late`);
      const other = await open(`${adapter.getUrl('/probe')}?name=other`);
      early.ws.close(1000);
      await gateway.disconnects.next();

      const closed = app.close().then(() => events.push('app closed'));
      assert.deepEqual(await late.waitForClose(), { code: 1001, reason: 'Server shutting down' });
      assert.equal((await other.waitForClose()).code, 1001);
      await gateway.disconnects.take(2);
      assert.deepEqual(events.sort(), ['start early client-close', 'start late server-shutdown', 'start other server-shutdown']);
      gate.resolve();
      await withTimeout(closed, 5_000, 'app.close()');
      assert.equal(events.at(-1), 'app closed');
      assert.deepEqual(events.filter((event) => event.startsWith('end')).sort(), ['end early', 'end late', 'end other']);
      assert.equal(gateway.disconnectCount, 3);
    });

    it('closes a client that stops answering pings with kind timeout, and keeps one that answers', async () => {
      const { app, adapter } = await start([ProbeGateway], { heartbeatInterval: 20, heartbeatTimeout: 250 });
      const gateway = app.get(ProbeGateway);
      const lively = await open(adapter.getUrl('/probe'));
      const livelyPings = collectEvents(lively.ws, 'ping');
      const livelyId = (await gateway.connects.next()).id;
      const silent = await open(adapter.getUrl('/probe'), { autoPong: false });
      const silentId = (await gateway.connects.next()).id;

      const { client, reason } = await gateway.disconnects.next(5_000);
      assert.equal(client.id, silentId, 'the client that answers pings is not the one timed out');
      assert.deepEqual(reason, { kind: 'timeout' });
      assert.equal((await silent.waitForClose()).code, 1006);

      await livelyPings.next(5_000, 'a heartbeat ping');
      lively.send('still here');
      assert.equal(await lively.nextText(), 'echo:still here');
      assert.equal(gateway.disconnects.length, 0);
      assert.notEqual(livelyId, silentId);
    });

    it('a frame over maxPayload closes the connection with 1009 and kind error', async () => {
      const { app, adapter } = await start([ProbeGateway], { maxPayload: 1024 });
      const gateway = app.get(ProbeGateway);
      const client = await open(adapter.getUrl('/probe'));
      client.send('a'.repeat(1024));
      assert.equal(await client.nextText(), `echo:${'a'.repeat(1024)}`);
      client.send('b'.repeat(1025));
      assert.equal((await client.waitForClose()).code, 1009);
      const { reason } = await gateway.disconnects.next();
      assert.equal(reason.kind, 'error');
      assert.ok(reason.kind === 'error' && reason.error instanceof Error);
      assert.equal(gateway.received.length, 1);
    });

    it('garbage bytes after the upgrade close that connection only', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const bystander = await open(adapter.getUrl('/probe'));
      await gateway.connects.next();

      const { port } = new URL(adapter.getUrl('/probe'));
      const socket: Socket = connectTcp(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      cleanups.push(() => socket.destroy());
      let received = Buffer.alloc(0);
      const headEnd = new AsyncQueue<number>();
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end >= 0) headEnd.push(end);
      });
      await nextEvent(socket, 'connect', 5_000, 'the TCP connection');
      socket.write(
        `GET /probe HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      const end = await headEnd.next(5_000, 'the upgrade response');
      assert.match(received.subarray(0, end).toString(), /^HTTP\/1\.1 101 /);
      const raw = await gateway.connects.next();

      const socketClosed = nextEvent(socket, 'close', 5_000, 'the server to drop the raw socket');
      // FIN with RSV2 and RSV3 set, an unknown opcode and no mask: a protocol error.
      socket.write(Buffer.from([0xff, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05]));
      await socketClosed;
      const closeFrame = received.subarray(end + 4);
      assert.equal(closeFrame[0], 0x88, 'the server sent a close frame');
      assert.equal(closeFrame.readUInt16BE(2), 1002);
      const { client, reason } = await gateway.disconnects.next();
      assert.equal(client, raw);
      assert.equal(reason.kind, 'error');

      bystander.send('unharmed');
      assert.equal(await bystander.nextText(), 'echo:unharmed');
      const newcomer = await open(adapter.getUrl('/probe'));
      newcomer.send('hi');
      assert.equal(await newcomer.nextText(), 'echo:hi');
    });
  });

  describe('hook order', () => {
    it('delivers one client’s messages to an async onMessage one at a time, in order, without holding up another client', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const gate = deferred();
      const blocked = deferred();
      const running = new Map<string, number>();
      const handled = new Map<string, string[]>();
      let overlaps = 0;
      gateway.hooks.onMessage = async (client, message) => {
        const count = (running.get(client.id) ?? 0) + 1;
        running.set(client.id, count);
        if (count > 1) overlaps++;
        const text = message.asText()!;
        if (text === 'block') {
          blocked.resolve();
          await gate.promise;
        } else {
          await yieldTurns(Number(text.split(':')[1]) % 4);
        }
        handled.set(client.id, [...(handled.get(client.id) ?? []), text]);
        await client.send(`ack ${text}`);
        running.set(client.id, running.get(client.id)! - 1);
      };

      const slow = await open(adapter.getUrl('/probe'));
      const slowId = (await gateway.connects.next()).id;
      const slowPongs = collectEvents(slow.ws, 'pong');
      const sent = ['block', ...Array.from({ length: 50 }, (_, index) => `slow:${index}`)];
      for (const text of sent) slow.send(text);
      slow.ws.ping();
      // The pong comes after the server read every frame before the ping: all 51 are queued now.
      await slowPongs.next(5_000, 'the pong');
      await withTimeout(blocked.promise, 5_000, 'the blocking message');

      const fast = await open(adapter.getUrl('/probe'));
      const fastSent = Array.from({ length: 20 }, (_, index) => `fast:${index}`);
      for (const text of fastSent) fast.send(text);
      assert.deepEqual(await fast.texts(20), fastSent.map((text) => `ack ${text}`));
      assert.equal(slow.messages.length, 0, 'the slow client is still held by its first message');

      gate.resolve();
      assert.deepEqual(await slow.texts(sent.length), sent.map((text) => `ack ${text}`));
      assert.deepEqual(handled.get(slowId), sent);
      assert.equal(overlaps, 0);
    });

    it('delivers no message before onConnect has finished', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const log: string[] = [];
      const started = deferred();
      const gate = deferred();
      gateway.hooks.onConnect = async () => {
        log.push('connect start');
        started.resolve();
        await gate.promise;
        log.push('connect end');
      };
      gateway.hooks.onMessage = async (client, message) => {
        log.push(`message ${message.asText()}`);
        await client.send('handled');
      };
      const client = new TestClient(adapter.getUrl('/probe'));
      cleanups.push(() => client.ws.terminate());
      const pongs = collectEvents(client.ws, 'pong');
      client.ws.on('open', () => {
        client.send('first');
        client.ws.ping();
      });
      await withTimeout(started.promise, 5_000, 'onConnect to start');
      await pongs.next(5_000, 'the pong that follows the message');
      assert.deepEqual(log, ['connect start']);
      gate.resolve();
      assert.equal(await client.nextText(), 'handled');
      assert.deepEqual(log, ['connect start', 'connect end', 'message first']);
    });

    it('calls onDisconnect exactly once, after the onMessage still running', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const server = (app.getHttpAdapter() as NodeHttpAdapter).server!;
      const serverSocketClosed = deferred();
      server.on('upgrade', (_request, socket: Duplex) => {
        // Registered before ws's own listener; the setImmediate lets ws emit its 'close' (a
        // nextTick away) first, so the session has been told the socket ended.
        socket.once('close', () => setImmediate(serverSocketClosed.resolve));
      });
      const log: string[] = [];
      const started = deferred();
      gateway.hooks.onMessage = async (client) => {
        log.push('message start');
        started.resolve();
        await serverSocketClosed.promise;
        log.push(`message end, send ${await client.send('late')}`);
      };
      gateway.hooks.onDisconnect = (_client, reason) => log.push(`disconnect ${reason.kind}`);
      const client = await open(adapter.getUrl('/probe'));
      client.send('work');
      await withTimeout(started.promise, 5_000, 'onMessage to start');
      client.ws.close(1000, 'leaving');
      await gateway.disconnects.next();
      await app.close();
      assert.deepEqual(log, ['message start', 'message end, send false', 'disconnect client-close']);
      assert.equal(gateway.disconnectCount, 1);
    });
  });

  describe('exceptions in hooks', () => {
    it('logs exceptions from onMessage (sync and async) and onDisconnect with the client id and gateway', async () => {
      const { app, adapter, logger } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      gateway.hooks.onMessage = (client, message) => {
        const text = message.asText();
        if (text === 'sync') throw new Error('sync failure');
        if (text === 'async') return Promise.reject(new Error('async failure'));
        return client.send(`echo:${text}`);
      };
      gateway.hooks.onDisconnect = async () => {
        throw new Error('disconnect failure');
      };
      const bystander = await open(adapter.getUrl('/probe'));
      await gateway.connects.next();
      const client = await open(adapter.getUrl('/probe'));
      const { id } = await gateway.connects.next();
      client.send('sync');
      client.send('async');
      client.send('after');
      assert.equal(await client.nextText(), 'echo:after');

      const errorFrom = (hook: string) => (entry: { level: string; details: Record<string, unknown> }) =>
        entry.level === 'error' && entry.details['hook'] === hook && entry.details['clientId'] === id && entry.details['gateway'] === 'ProbeGateway';
      const messageErrors = logger.entries.filter(errorFrom('onMessage'));
      assert.deepEqual(messageErrors.map((entry) => (entry.details['err'] as Error).message), ['sync failure', 'async failure']);
      assert.match(messageErrors[0]!.message ?? '', new RegExp(`ProbeGateway.*${id}`));

      client.ws.close();
      const entry = await logger.waitFor(errorFrom('onDisconnect'));
      assert.equal((entry.details['err'] as Error).message, 'disconnect failure');
      bystander.send('fine');
      assert.equal(await bystander.nextText(), 'echo:fine');
    });

    it('an exception in onConnect closes that client with 1011, is logged, and leaves the others alone', async () => {
      const { app, adapter, logger } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      gateway.hooks.onConnect = async (client) => {
        if (client.handshake.query.has('fail')) throw new Error('connect failure');
      };
      const before = await open(adapter.getUrl('/probe'));
      await gateway.connects.next();
      const failing = new TestClient(`${adapter.getUrl('/probe')}?fail`);
      cleanups.push(() => failing.ws.terminate());
      failing.ws.on('open', () => failing.send('ignored'));
      const failingId = (await gateway.connects.next()).id;
      assert.equal((await failing.waitForClose()).code, 1011);
      const { client, reason } = await gateway.disconnects.next();
      assert.equal(client.id, failingId);
      assert.ok(reason.kind === 'error' && reason.error.message === 'connect failure');
      const entry = await logger.waitFor((e) => e.level === 'error' && e.details['hook'] === 'onConnect');
      assert.equal(entry.details['clientId'], failingId);
      assert.equal(entry.details['gateway'], 'ProbeGateway');
      assert.ok(!gateway.received.some((message) => message.clientId === failingId), 'no message of the failed client is delivered');

      before.send('still fine');
      assert.equal(await before.nextText(), 'echo:still fine');
      const after = await open(adapter.getUrl('/probe'));
      after.send('me too');
      assert.equal(await after.nextText(), 'echo:me too');
    });
  });

  describe('messages', () => {
    it('binary messages round trip from Uint8Array, ArrayBuffer and number[]; kind, asText and asBinary', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const seen: { kind: string; text: string | undefined; bytes: number[] | undefined }[] = [];
      gateway.hooks.onMessage = async (client, message) => {
        const bytes = message.asBinary();
        seen.push({ kind: message.kind, text: message.asText(), bytes: bytes && [...bytes] });
        if (bytes === undefined) return client.send(`text:${message.asText()}`);
        await client.send(WsMessage.binary(bytes));
        await client.send(WsMessage.binary(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer));
        await client.send(WsMessage.binary([...bytes]));
      };
      const client = await open(adapter.getUrl('/probe'));
      const payload = [0, 1, 127, 128, 255];
      client.send(Uint8Array.from(payload));
      client.send('words');
      const replies = await client.messages.take(4);
      for (const reply of replies.slice(0, 3)) {
        assert.equal(reply.isBinary, true);
        assert.deepEqual([...reply.data], payload);
      }
      assert.deepEqual({ isBinary: replies[3]!.isBinary, text: replies[3]!.data.toString() }, { isBinary: false, text: 'text:words' });
      assert.deepEqual(seen, [
        { kind: 'binary', text: undefined, bytes: payload },
        { kind: 'text', text: 'words', bytes: undefined },
      ]);
    });

    it('messages of every length encoding and multi-byte text arrive intact', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      app.get(ProbeGateway).hooks.onMessage = (client, message) => {
        const bytes = message.asBinary();
        return client.send(bytes === undefined ? WsMessage.text(message.asText()!) : WsMessage.binary(bytes));
      };
      const client = await open(adapter.getUrl('/probe'));
      const sizes = [0, 125, 126, 65_535, 65_536, 200_000];
      const payloads = sizes.map((size) => Uint8Array.from({ length: size }, (_, index) => (index * 31 + size) % 256));
      for (const payload of payloads) client.send(payload);
      const text = `café ☕ 🎉 ${'ü'.repeat(40_000)}`;
      client.send(text);
      const replies = await client.messages.take(payloads.length + 1);
      payloads.forEach((payload, index) => {
        assert.equal(replies[index]!.isBinary, true);
        assert.ok(Buffer.from(payload).equals(replies[index]!.data), `${payload.byteLength} bytes round trip`);
      });
      assert.equal(replies.at(-1)!.isBinary, false);
      assert.equal(replies.at(-1)!.data.toString(), text);
    });

    it('WsMessage.ping and .pong reach the peer as control frames, and control frames never reach onMessage', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      gateway.hooks.onMessage = async (client, message) => {
        if (message.asText() === 'control please') {
          await client.send(WsMessage.ping([1, 2, 3]));
          await client.send(WsMessage.pong(new Uint8Array([4, 5])));
          await client.send('sent');
        } else {
          await client.send(`kinds ${gateway.received.map((received) => received.kind).join(',')}`);
        }
      };
      const client = await open(adapter.getUrl('/probe'));
      const pings = collectEvents<[Buffer]>(client.ws, 'ping');
      const pongs = collectEvents<[Buffer]>(client.ws, 'pong');
      client.send('control please');
      assert.equal(await client.nextText(), 'sent');
      assert.deepEqual([...(await pings.next())[0]], [1, 2, 3]);
      assert.deepEqual([...(await pongs.next())[0]], [4, 5]);
      // The client answered the ping with a pong (and pings the server itself) before this message.
      client.ws.ping();
      client.send('report');
      assert.equal(await client.nextText(), 'kinds text,text');
    });
  });

  describe('adapter options and routing', () => {
    it('allowedOrigins accepts a listed origin and no origin, and refuses others with 403', async () => {
      const { app, adapter } = await start([ProbeGateway], { allowedOrigins: ['https://chat.example.com'] });
      const url = adapter.getUrl('/probe');
      const refusal = await expectRefusal(url, { origin: 'https://evil.example.com' });
      assert.equal(refusal.status, 403);
      assert.equal(app.get(ProbeGateway).connects.length, 0);
      const listed = await open(url, { origin: 'https://chat.example.com' });
      listed.send('from the app');
      assert.equal(await listed.nextText(), 'echo:from the app');
      const noOrigin = await open(url);
      noOrigin.send('from a server');
      assert.equal(await noOrigin.nextText(), 'echo:from a server');
    });

    it('an allowedOrigins predicate sees the handshake, e.g. to allow only the same origin', async () => {
      const { adapter } = await start([ProbeGateway], { allowedOrigins: (origin, handshake) => origin === `http://${handshake.headers.get('host')}` });
      const url = adapter.getUrl('/probe');
      const sameOrigin = `http://${new URL(url).host}`;
      const same = await open(url, { origin: sameOrigin });
      same.send('same');
      assert.equal(await same.nextText(), 'echo:same');
      assert.equal((await expectRefusal(url, { origin: 'http://other.example.com' })).status, 403);
    });

    it('maxConnections answers 503 beyond the limit and accepts again once a client leaves', async () => {
      const { app, adapter } = await start([ProbeGateway], { maxConnections: 2 });
      const gateway = app.get(ProbeGateway);
      const url = adapter.getUrl('/probe');
      const first = await open(url);
      await open(url);
      assert.equal((await expectRefusal(url)).status, 503);
      first.ws.close();
      await gateway.disconnects.next();
      const third = await open(url);
      third.send('in');
      assert.equal(await third.nextText(), 'echo:in');
    });

    it('serves two gateways on different paths and one on its own port', async () => {
      const { app, adapter } = await start([AlphaGateway, BetaGateway, SidePortGateway]);
      const appPort = new URL(app.getUrl()).port;
      const sideUrl = adapter.getUrl('/side');
      const sidePort = new URL(sideUrl).port;
      assert.notEqual(sidePort, appPort);
      assert.notEqual(sidePort, '0');
      assert.equal(new URL(adapter.getUrl('/alpha')).port, appPort);

      for (const [path, prefix] of [['/alpha', 'alpha'], ['/beta', 'beta'], ['/side', 'side']] as const) {
        const client = await open(adapter.getUrl(path));
        client.send('ping?');
        assert.equal(await client.nextText(), `${prefix}:ping?`);
      }
      assert.equal((await expectRefusal(sideUrl.replace(`:${sidePort}/`, `:${appPort}/`))).status, 404);
      assert.equal((await expectRefusal(sideUrl.replace('/side', '/alpha'))).status, 404);
    });

    it('answers a plain HTTP request to a gateway-only port with 426', async () => {
      const { adapter } = await start([SidePortGateway]);
      const response = await fetch(adapter.getUrl('/side').replace(/^ws/, 'http'));
      assert.equal(response.status, 426);
      assert.equal(response.headers.get('upgrade'), 'websocket');
      assert.equal(((await response.json()) as { statusCode: number }).statusCode, 426);
    });

    it('refuses two gateways on one path with TONI_ERR_DUPLICATE_GATEWAY naming the path and both classes', async () => {
      @Module({ providers: [DupOneGateway, DupTwoGateway] })
      class DuplicateModule {}
      await assert.rejects(ToniFactory.create(DuplicateModule, undefined, { logger: false }), (error: unknown) => {
        assert.ok(error instanceof ToniError);
        assert.equal(error.code, 'TONI_ERR_DUPLICATE_GATEWAY');
        assert.match(error.message, /\/dup/);
        assert.match(error.message, /DupOneGateway/);
        assert.match(error.message, /DupTwoGateway/);
        return true;
      });
    });

    it('uses a default WsAdapter when gateways exist and none was set', async () => {
      const app = await ToniFactory.create(ChatModule, undefined, { logger: captureLogger() });
      apps.push(app);
      await app.listen(0, '127.0.0.1');
      const client = await open(`${app.getUrl().replace(/^http/, 'ws')}/chat`);
      assert.equal(await client.nextText(), 'Welcome to the chat!');
      client.send('defaults');
      assert.equal(await client.nextText(), 'You said: defaults');
    });
  });

  describe('interoperability', () => {
    it('Python’s websockets library completes a round trip with ChatGateway', async () => {
      const { adapter } = await start([ChatGateway]);
      const script = [
        'import asyncio, sys, websockets',
        'async def main():',
        '    async with websockets.connect(sys.argv[1]) as ws:',
        '        print(await ws.recv())',
        '        await ws.send("hello")',
        '        print(await ws.recv())',
        'asyncio.run(main())',
      ].join('\n');
      const { PYTHONPATH: _path, PYTHONHOME: _home, ...env } = process.env;
      const child = spawn('/usr/bin/python3', ['-c', script, adapter.getUrl('/chat')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      cleanups.push(() => child.kill());
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = await nextEvent<[number | null]>(child, 'close', 15_000, 'the Python client to exit');
      assert.equal(code, 0, stderr);
      assert.deepEqual(stdout.trim().split('\n'), ['Welcome to the chat!', 'You said: hello']);
    });
  });
});
