// What one client (or one broken request) must not be able to do to an instance: flood it,
// pin its memory, hold its handshake slots, or hold up its shutdown. Scaled-down regressions of
// holes found by attacking a running instance.
import assert from 'node:assert/strict';
import { type Socket, connect as connectTcp } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, it } from 'node:test';
import { type Class, Injectable, InjectionToken, Module, ToniError, ToniFactory, type ToniApplication, inject } from 'tonijs';
import { NodeHttpAdapter, WsAdapter, type WsAdapterOptions } from 'tonijs/node';
import {
  BroadcastModule,
  BroadcastService,
  CONNECTION_OBSERVER,
  type ClientSession,
  type ConnectionObserver,
  type DisconnectReason,
  type Gateway,
  type WsClient,
  type WsHandshake,
  WsMessage,
} from 'tonijs/websocket';
import { AsyncQueue, captureLogger, deferred, nextEvent, withTimeout } from './support/async.js';
import { clientFrame, openRawWebSocket, writeAll } from './support/raw-ws.js';
import { TestClient, connect, expectRefusal } from './support/ws-client.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Every session, by client id, as the registry sees them (an observer is how adapters and the registry hook in). */
@Injectable()
class Sessions implements ConnectionObserver {
  readonly [CONNECTION_OBSERVER] = true;
  readonly byId = new Map<string, ClientSession>();
  readonly connected = new AsyncQueue<ClientSession>();
  readonly departed = new AsyncQueue<ClientSession>();
  clientConnected(session: ClientSession) {
    this.byId.set(session.id, session);
    this.connected.push(session);
  }
  clientDisconnected(session: ClientSession) {
    this.departed.push(session);
  }
  roomChanged() {}
}

/**
 * Handles one message at a time, slowly: each waits a turn, or for `gate` while it is set. Records
 * what it handled and the largest queue it saw. `echo:x` is answered with `x`.
 */
@Injectable()
class SlowGateway implements Gateway {
  readonly path = '/slow';
  private readonly sessions = inject(Sessions);
  gate: Promise<void> | undefined;
  readonly received: string[] = [];
  readonly handled = new AsyncQueue<string>();
  readonly disconnects = new AsyncQueue<{ client: WsClient; reason: DisconnectReason }>();
  maxQueuedBytes = 0;

  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText() ?? '';
    this.maxQueuedBytes = Math.max(this.maxQueuedBytes, this.sessions.byId.get(client.id)?.queuedBytes ?? 0);
    this.received.push(text);
    this.handled.push(text);
    if (text.startsWith('echo:')) {
      await client.send(text.slice(5));
      return;
    }
    await (this.gate ?? new Promise((resolve) => setImmediate(resolve)));
  }

  onDisconnect(client: WsClient, reason: DisconnectReason) {
    this.disconnects.push({ client, reason });
  }
}

/** `onHandshake` waits for `gate`, recording each call and each abort of its signal. */
@Injectable()
class WaitingGateway implements Gateway {
  readonly path = '/waiting';
  gate = deferred<boolean>();
  readonly calls = new AsyncQueue<WsHandshake>();
  readonly aborts = new AsyncQueue<unknown>();
  callCount = 0;

  onHandshake(handshake: WsHandshake) {
    this.callCount++;
    handshake.signal.addEventListener('abort', () => this.aborts.push(handshake.signal.reason));
    this.calls.push(handshake);
    return this.gate.promise;
  }

  onMessage(client: WsClient, message: WsMessage) {
    return client.send(`echo:${message.asText()}`);
  }
}

/** A 1,000-byte text payload that names its place in a sequence. */
function numbered(index: number): string {
  return `${index}:`.padEnd(1000, 'x');
}

/** `count` text frames, joined into chunks of 64 KiB or so, as a sender writing fast would put them on the wire. */
function floodChunks(count: number, text: (index: number) => string = numbered): Buffer[] {
  const chunks: Buffer[] = [];
  let batch: Buffer[] = [];
  let bytes = 0;
  for (let index = 0; index < count; index++) {
    const frame = clientFrame(text(index));
    batch.push(frame);
    bytes += frame.byteLength;
    if (bytes >= 64 * 1024) {
      chunks.push(Buffer.concat(batch));
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) chunks.push(Buffer.concat(batch));
  return chunks;
}

/**
 * `arrayBuffers` once a full GC has freed what nothing holds. V8 releases the memory of dead
 * ArrayBuffers on a background thread after the GC, so collect and yield until the figure stops falling.
 */
async function retainedArrayBuffers(): Promise<number> {
  let previous = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 20; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    const now = process.memoryUsage().arrayBuffers;
    if (now >= previous) return now;
    previous = now;
  }
  return previous;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('gateway limits', () => {
  const apps: ToniApplication[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(
    async () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
      await Promise.all(apps.splice(0).map((app) => app.close()));
    },
    { timeout: 10_000 },
  );

  async function start(options: WsAdapterOptions = {}, providers: Class[] = [SlowGateway]) {
    @Module({ imports: [BroadcastModule], providers: [Sessions, ...providers] })
    class TestModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(TestModule, new NodeHttpAdapter(), { logger });
    apps.push(app);
    const adapter = new WsAdapter(options);
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    return { app, adapter, logger, sessions: app.get(Sessions), broadcast: app.get(BroadcastService) };
  }

  async function open(url: string): Promise<TestClient> {
    const client = await connect(url);
    cleanups.push(() => client.ws.terminate());
    return client;
  }

  async function raw(url: string, pauseAfterUpgrade = false): Promise<Socket> {
    const { socket } = await openRawWebSocket(url, { pauseAfterUpgrade });
    cleanups.push(() => socket.destroy());
    return socket;
  }

  describe('inbound backpressure', () => {
    it('stops reading a flooding client past inboundHighWaterMark, keeps its queue bounded, and handles every message in order', async () => {
      const highWater = 64 * 1024;
      const { app, adapter, logger, sessions } = await start({ inboundHighWaterMark: highWater });
      const gateway = app.get(SlowGateway);
      const bystander = await open(adapter.getUrl('/slow'));
      await sessions.connected.next();
      const flooder = await raw(adapter.getUrl('/slow'));
      await sessions.connected.next();

      const count = 8192;
      const flood = writeAll(flooder, floodChunks(count));
      await logger.waitFor((entry) => entry.level === 'debug' && /^Paused reading/.test(entry.message ?? ''), 10_000, 'the flooder to be paused');
      // The flooder does not starve another client of the same gateway.
      bystander.send('echo:still served');
      assert.equal(await bystander.nextText(10_000), 'still served');

      await withTimeout(flood, 30_000, 'the whole flood to be written');
      await withTimeout((async () => { while (gateway.received.filter((text) => !text.startsWith('echo:')).length < count) await gateway.handled.next(30_000); })(), 30_000, 'every flood message');
      const flooded = gateway.received.filter((text) => !text.startsWith('echo:'));
      assert.ok(flooded.every((text, index) => text === numbered(index)), 'every message, in order');
      // Without backpressure the queue grew with everything sent (8 MiB here); now it stays at the
      // mark plus what one read of the socket delivers.
      assert.ok(gateway.maxQueuedBytes <= highWater + 128 * 1024, `queue peaked at ${gateway.maxQueuedBytes} bytes`);
      assert.ok(logger.entries.some((entry) => entry.level === 'debug' && /^Resumed reading/.test(entry.message ?? '')));
      assert.equal(gateway.disconnects.length, 0);
    });

    it('does not time out a paused client for the pongs it cannot be read to send', async () => {
      const { app, adapter, logger, sessions } = await start({ inboundHighWaterMark: 16 * 1024, heartbeatInterval: 20, heartbeatTimeout: 60 });
      const gateway = app.get(SlowGateway);
      const gate = deferred();
      gateway.gate = gate.promise;
      const flooder = await raw(adapter.getUrl('/slow'));
      const flooderSession = await sessions.connected.next();
      const count = 1024;
      const flood = writeAll(flooder, floodChunks(count));
      await logger.waitFor((entry) => entry.level === 'debug' && /^Paused reading/.test(entry.message ?? ''), 10_000, 'the flooder to be paused');

      // A client that never reads cannot answer pings: once it is timed out, the heartbeat has
      // run past heartbeatTimeout while the flooder was paused.
      await raw(adapter.getUrl('/slow'), true);
      const silent = await sessions.connected.next();
      const { client, reason } = await gateway.disconnects.next(5_000, 'the silent client to time out');
      assert.equal(client.id, silent.id);
      assert.deepEqual(reason, { kind: 'timeout' });
      assert.equal(flooderSession.isOpen, true, 'the paused flooder is still connected');

      gate.resolve();
      await withTimeout(flood, 10_000, 'the flood to be written');
      await withTimeout((async () => { while (gateway.received.length < count) await gateway.handled.next(10_000); })(), 10_000, 'every flood message');
      assert.equal(flooderSession.isOpen, true);
    });

    it('closes a client that overruns maxInboundBytes with 1008 and kind inbound-overflow, dropping its queue', async () => {
      const { app, adapter, logger } = await start({ maxPayload: 1024, inboundHighWaterMark: 1024, maxInboundBytes: 2048 });
      const gateway = app.get(SlowGateway);
      const gate = deferred();
      gateway.gate = gate.promise;
      const client = await open(adapter.getUrl('/slow'));
      // Sent in one go, so the server reads them in one chunk: pausing the socket cannot stop them.
      for (let index = 0; index < 32; index++) client.send(numbered(index));
      const closed = await client.waitForClose();
      assert.deepEqual(closed, { code: 1008, reason: 'Inbound queue overflow' });
      gate.resolve();
      const { reason } = await gateway.disconnects.next();
      assert.equal(reason.kind, 'inbound-overflow');
      assert.ok(reason.kind === 'inbound-overflow' && reason.queuedBytes > 2048);
      assert.equal(gateway.received.length, 1, 'the queued messages were dropped, not handled');
      const warning = await logger.waitFor((entry) => entry.level === 'warn' && /maxInboundBytes/.test(entry.message ?? ''));
      assert.equal(warning.details['maxInboundBytes'], 2048);
    });

    it('takes a client that hung up out of the registry at once, and still handles what it sent before onDisconnect', async () => {
      const { app, adapter, sessions, broadcast } = await start();
      const gateway = app.get(SlowGateway);
      const gate = deferred();
      gateway.gate = gate.promise;
      const client = await open(adapter.getUrl('/slow'));
      const session = await sessions.connected.next();
      for (let index = 0; index < 5; index++) client.send(`m${index}`);
      await gateway.handled.next();
      client.ws.close(1000, 'bye');

      const departed = await sessions.departed.next(5_000, 'the client to leave the registry');
      assert.equal(departed, session);
      assert.equal(await broadcast.getClientCount(), 0, 'out of the count while its first message still runs');
      assert.equal(gateway.disconnects.length, 0, 'onDisconnect waits for the messages');

      gate.resolve();
      const { reason } = await gateway.disconnects.next();
      assert.deepEqual(reason, { kind: 'client-close', code: 1000, reason: 'bye' });
      assert.deepEqual(gateway.received, ['m0', 'm1', 'm2', 'm3', 'm4']);
    });

    it('app.close() is bounded by closeTimeout whatever the queues hold', async () => {
      const { app, adapter, logger } = await start({ closeTimeout: 100 });
      const gateway = app.get(SlowGateway);
      gateway.gate = new Promise(() => {});   // a handler that never returns
      const client = await open(adapter.getUrl('/slow'));
      for (let index = 0; index < 3; index++) client.send(`m${index}`);
      await gateway.handled.next();
      await withTimeout(app.close(), 5_000, 'app.close() with a handler that never returns');
      const warning = await logger.waitFor((entry) => entry.level === 'warn' && /closeTimeout/.test(entry.message ?? ''));
      assert.equal(warning.details['clients'], 1);
      assert.equal(gateway.received.length, 1);
    });

    it('rejects maxInboundBytes below inboundHighWaterMark + maxPayload with a message saying why', () => {
      assert.throws(
        () => new WsAdapter({ maxPayload: 1024, inboundHighWaterMark: 1024, maxInboundBytes: 2047 }),
        (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION' && /at least inboundHighWaterMark \+ maxPayload \(2048\)/.test(error.message),
      );
      assert.throws(() => new WsAdapter({ handshakeTimeout: 0 }), /handshakeTimeout must be an integer >= 1/);
    });
  });

  describe('outbound memory', () => {
    it('a client that stops reading holds about its own bytes, not the shared slabs its small frames were cut from', async () => {
      const { adapter, sessions, broadcast } = await start({ maxBufferedBytes: 64 * 1024 * 1024 });
      await raw(adapter.getUrl('/slow'), true);
      const slow = await sessions.connected.next();
      await raw(adapter.getUrl('/slow'));
      const reader = await sessions.connected.next();

      // Fill the kernel's buffers so that what follows stays in the process.
      const big = WsMessage.binary(new Uint8Array(64 * 1024));
      for (let sent = 0; slow.connection.sink.writableLength === 0; sent++) {
        assert.ok(sent < 1024, 'the socket stopped taking bytes within 64 MiB');
        await broadcast.sendTo(slow.id, big);
        await nextTurn();
      }
      const before = await retainedArrayBuffers();
      const turns = 2000;
      const filler = 'f'.repeat(4000);
      for (let turn = 0; turn < turns; turn++) {
        // One small frame for the stuck client, and a slab's worth of frames for a reading one.
        await broadcast.sendTo(slow.id, `small ${turn}`);
        for (let index = 0; index < 16; index++) await broadcast.sendTo(reader.id, `${index}${filler}`);
        await nextTurn();
      }
      const grown = (await retainedArrayBuffers()) - before;
      // What both clients are counted for is theirs to hold (the reader may lag on a busy
      // machine); anything beyond it is pinned for nothing. Each small frame used to pin its own
      // 64 KiB slab: 2000 of them held ~128 MiB here.
      const counted = slow.outbound.bufferedBytes + reader.outbound.bufferedBytes;
      const uncounted = grown - counted;
      assert.ok(uncounted < 8 * 1024 * 1024, `arrayBuffers grew by ${mib(grown)} MiB, ${mib(uncounted)} MiB more than the ${mib(counted)} MiB the clients are counted for`);
      assert.equal(slow.isOpen, true);
    });
  });

  describe('handshakes', () => {
    it('refuses an onHandshake that outlasts handshakeTimeout with 503 and aborts its signal', async () => {
      const { app, adapter, logger } = await start({ handshakeTimeout: 100 }, [WaitingGateway]);
      const gateway = app.get(WaitingGateway);
      const refusal = await expectRefusal(adapter.getUrl('/waiting'));
      assert.equal(refusal.status, 503);
      assert.match(refusal.body, /handshake timed out/);
      const reason = await gateway.aborts.next();
      assert.ok(reason instanceof Error && reason.name === 'AbortError');
      await logger.waitFor((entry) => entry.level === 'warn' && /did not settle within 100 ms/.test(entry.message ?? ''));
    });

    it('frees the slot of a client that hangs up during onHandshake at once, and tells onHandshake', async () => {
      const { app, adapter } = await start({ maxConnections: 1 }, [WaitingGateway]);
      const gateway = app.get(WaitingGateway);
      const { port } = new URL(adapter.getUrl('/waiting'));
      const quitter = connectTcp(Number(port), '127.0.0.1');
      quitter.on('error', () => {});
      cleanups.push(() => quitter.destroy());
      await nextEvent(quitter, 'connect', 5_000, 'the TCP connection');
      quitter.write(upgradeRequest('/waiting', port));
      await gateway.calls.next();
      quitter.destroy();
      const reason = await gateway.aborts.next(5_000, 'onHandshake to hear that the client left');
      assert.match(String((reason as Error).message), /disconnected during the handshake/);

      // The one slot is free again: the next client reaches onHandshake instead of a 503.
      gateway.gate = deferred<boolean>();
      const next = connect(adapter.getUrl('/waiting'));
      await gateway.calls.next();
      gateway.gate.resolve(true);
      const client = await next;
      cleanups.push(() => client.ws.terminate());
      client.send('hi');
      assert.equal(await client.nextText(), 'echo:hi');
    });

    it('app.close() does not wait for a pending onHandshake: the client gets 503', async () => {
      const { app, adapter } = await start({ handshakeTimeout: 60_000 }, [WaitingGateway]);
      const gateway = app.get(WaitingGateway);
      const refusal = expectRefusal(adapter.getUrl('/waiting'));
      await gateway.calls.next();
      await withTimeout(app.close(), 5_000, 'app.close() with an onHandshake pending for a minute');
      assert.equal((await refusal).status, 503);
      await gateway.aborts.next();
    });

    it('validates the upgrade request before any user code runs', async () => {
      const { app, adapter } = await start({}, [WaitingGateway]);
      const gateway = app.get(WaitingGateway);
      const { port } = new URL(adapter.getUrl('/waiting'));
      const cases: [string, RegExp][] = [
        [upgradeRequest('/waiting', port, { key: 'not-a-key' }), /^HTTP\/1\.1 400 [^]*Sec-WebSocket-Key/],
        [upgradeRequest('/waiting', port, { version: '12' }), /^HTTP\/1\.1 400 [^]*Sec-WebSocket-Version: 13, 8/],
        [upgradeRequest('/waiting', port, { method: 'POST' }), /^HTTP\/1\.1 405 [^]*Allow: GET/],
        [upgradeRequest('/waiting', port, { protocol: 'a b' }), /^HTTP\/1\.1 400 [^]*Sec-WebSocket-Protocol/],
      ];
      for (const [request, expected] of cases) assert.match(await rawExchange(Number(port), request), expected);
      assert.equal(gateway.callCount, 0, 'onHandshake never ran for a broken request');
    });

    it('logs a failing handshake with its path, never its query string (where browsers put tokens)', async () => {
      @Injectable()
      class ThrowingGateway implements Gateway {
        readonly path = '/throwing';
        onHandshake(): boolean { throw new Error('boom'); }
        onMessage() {}
      }
      const { adapter, logger } = await start({}, [ThrowingGateway]);
      const refusal = await expectRefusal(`${adapter.getUrl('/throwing')}?token=s3cr3t-token`);
      assert.equal(refusal.status, 500);
      const entry = await logger.waitFor((candidate) => candidate.level === 'error');
      assert.equal(entry.details['path'], '/throwing');
      assert.ok(!JSON.stringify({ ...entry.details, err: undefined }).includes('s3cr3t'), 'no token in the log');
    });
  });

  describe('paths and rooms', () => {
    it('normalises a gateway path as request paths are: /ws/ serves /ws, and collides with /ws', async () => {
      @Injectable()
      class SlashGateway implements Gateway {
        readonly path = '/ws/';
        onMessage(client: WsClient, message: WsMessage) { return client.send(`slash:${message.asText()}`); }
      }
      @Injectable()
      class PlainGateway implements Gateway {
        readonly path = '/ws';
        onMessage() {}
      }
      const { adapter } = await start({}, [SlashGateway]);
      for (const url of [adapter.getUrl('/ws'), adapter.getUrl('/ws/'), `${adapter.getUrl('/ws')}/`]) {
        const client = await open(url);
        client.send('hi');
        assert.equal(await client.nextText(), 'slash:hi');
      }
      @Module({ providers: [SlashGateway, PlainGateway] })
      class Both {}
      await assert.rejects(async () => {
        const app = await ToniFactory.create(Both, new NodeHttpAdapter(), { logger: false });
        apps.push(app);
        await app.listen(0, '127.0.0.1');
      }, (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_DUPLICATE_GATEWAY' && /SlashGateway and PlainGateway/.test(error.message));
    });

    it('a class with a path but no onMessage is a startup error, not a silent non-gateway; plain objects with a path are left alone', async () => {
      @Injectable()
      class HalfGateway {
        readonly path = '/half';
      }
      @Module({ providers: [HalfGateway] })
      class Half {}
      await assert.rejects(
        ToniFactory.create(Half, new NodeHttpAdapter(), { logger: false }),
        (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_GATEWAY' && /HalfGateway has a string `path` \("\/half"\) but neither an onMessage method nor an @On handler/.test(error.message),
      );
      const SETTINGS = new InjectionToken<{ path: string }>('settings');
      @Module({ providers: [{ provide: SETTINGS, useFactory: () => ({ path: '/data' }) }] })
      class Settings {}
      const app = await ToniFactory.create(Settings, new NodeHttpAdapter(), { logger: false });
      apps.push(app);
      await app.listen(0, '127.0.0.1');
    });

    it('refuses room names that are not well-formed Unicode with a TypeError', async () => {
      @Injectable()
      class RoomGateway implements Gateway {
        readonly path = '/rooms';
        async onMessage(client: WsClient, message: WsMessage) {
          const room = JSON.parse(message.asText() ?? '""') as string;
          try {
            await client.join(room);
            await client.send('joined');
          } catch (error) {
            await client.send(`${(error as Error).name}: ${(error as Error).message}`);
          }
        }
      }
      const { adapter, broadcast } = await start({}, [RoomGateway]);
      const client = await open(adapter.getUrl('/rooms'));
      client.send('"\\ud800"');
      assert.match(await client.nextText(), /^TypeError: A room name must be well-formed Unicode, got "\\ud800"/);
      client.send('"\\ud83d\\ude00 party"');
      assert.equal(await client.nextText(), 'joined');
      assert.throws(() => broadcast.to('\udc00'), TypeError);
      assert.throws(() => broadcast.to(''), /non-empty string/);
    });
  });
});

/** A WebSocket upgrade request, with one part broken if asked. */
function upgradeRequest(path: string, port: string, broken: { key?: string; version?: string; method?: string; protocol?: string } = {}): string {
  return (
    `${broken.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${broken.key ?? 'dGhlIHNhbXBsZSBub25jZQ=='}\r\nSec-WebSocket-Version: ${broken.version ?? '13'}\r\n` +
    (broken.protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${broken.protocol}\r\n`) +
    '\r\n'
  );
}

/** Sends `request` on a new TCP connection and resolves with everything the server answered before closing. */
async function rawExchange(port: number, request: string): Promise<string> {
  const socket = connectTcp(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  await nextEvent(socket, 'connect', 5_000, 'the TCP connection');
  socket.write(request);
  await nextEvent(socket, 'close', 5_000, 'the server to answer and close');
  return received;
}
