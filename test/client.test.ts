// tonijs/client under Node, against a real tonijs server over real sockets. Links are cut for
// real: through a TCP proxy (test/support/tcp-proxy.ts) that destroys, stalls or resets
// connections, or by closing the server and starting another one behind the proxy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { HttpException, Injectable, Module, type ToniApplication, ToniFactory } from 'tonijs';
import { type CloseInfo, type ConnectOptions, type ReconnectInfo, type SocketState, ToniClientError, ToniSocket, connect } from 'tonijs/client';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { type Gateway, On, type WsClient, WsException, WsMessage, type WsHandshake } from 'tonijs/websocket';
import WebSocket from 'ws';
import { z } from 'zod';
import { backoffDelay } from '../src/client/backoff.js';
import { AsyncQueue, deferred, withTimeout } from './support/async.js';
import { TcpProxy } from './support/tcp-proxy.js';

const WAIT = 5_000;
const FAST: ConnectOptions = { reconnect: { minDelay: 10, maxDelay: 40 }, heartbeat: false };

@Injectable()
class ProbeGateway implements Gateway {
  readonly path = '/probe';
  /** Labels of `record` events, in the order the server handled them. */
  readonly seen = new AsyncQueue<string>();
  readonly connected = new AsyncQueue<WsClient>();
  hold = deferred();

  onConnect(client: WsClient) {
    this.connected.push(client);
  }

  @On('echo')
  echo(_client: WsClient, data: unknown) {
    return data;
  }

  // Event names a client library might be tempted to keep for itself.
  @On('error')
  error(_client: WsClient, data: unknown) {
    return { handled: 'error', data };
  }

  @On('ping')
  ping(_client: WsClient, data: unknown) {
    return { handled: 'ping', data };
  }

  @On('record')
  record(_client: WsClient, label: string) {
    this.seen.push(label);
    return label;
  }

  @On('slow')
  async slow(_client: WsClient, label: string) {
    this.seen.push(`slow:${label}`);
    await this.hold.promise;
    return label;
  }

  @On('send', { payload: z.object({ text: z.string().min(1) }) })
  send() {
    return { ok: true };
  }

  @On('fail')
  fail(_client: WsClient, kind: string) {
    if (kind === 'http') throw new HttpException(403, 'Not yours');
    throw new WsException('quota_exceeded', 'Too many rooms', { limit: 3 });
  }

  /** Asks the client `confirm` and reports what came back. */
  @On('ask')
  async ask(client: WsClient, question: string) {
    try {
      return { answer: await client.request('confirm', question, { timeout: 2_000 }) };
    } catch (error) {
      const { code, message, details } = error as WsException;
      return { code, message, details };
    }
  }

  @On('tell')
  async tell(client: WsClient, data: { event: string; data: unknown }) {
    await client.emit(data.event, data.data);
  }
}

/** Refuses handshakes with `status` (401 as onHandshake's false) while it is set. */
@Injectable()
class GuardedGateway implements Gateway {
  readonly path = '/guarded';
  status: number | undefined = 401;
  readonly handshakes = new AsyncQueue<string | null>();

  onHandshake(handshake: WsHandshake) {
    this.handshakes.push(handshake.query.get('token'));
    if (this.status === undefined) return true;
    if (this.status === 401) return false;
    throw new HttpException(this.status, 'Not now');
  }

  @On('echo')
  echo(_client: WsClient, data: unknown) {
    return data;
  }
}

// Without BroadcastModule: the gateway host itself welcomes tonijs.v1 clients (onReconnect waits
// for the welcome), with recovered: false, as there is no history (recovery.test.ts has one).
@Module({ providers: [ProbeGateway, GuardedGateway] })
class ClientTestModule {}

async function startServer(): Promise<ToniApplication> {
  const app = await ToniFactory.create(ClientTestModule, new NodeHttpAdapter(), { logger: false });
  app.useWebSocketAdapter(new WsAdapter({ heartbeatInterval: 0 }));
  await app.listen(0, '127.0.0.1');
  return app;
}

const portOf = (app: ToniApplication) => Number(new URL(app.getUrl()).port);

/** Every listener of a socket, recorded from its creation. */
function watch(socket: ToniSocket) {
  const opens = new AsyncQueue<SocketState>();
  const closes = new AsyncQueue<CloseInfo>();
  const reconnects = new AsyncQueue<ReconnectInfo>();
  const errors = new AsyncQueue<ToniClientError>();
  socket.onOpen(() => opens.push(socket.state));
  socket.onClose((info) => closes.push(info));
  socket.onReconnect((info) => reconnects.push(info));
  socket.onError((error) => errors.push(error));
  return { opens, closes, reconnects, errors };
}

/** Resolves once `socket` is open, failing the test after a while instead of hanging it. */
function opened(socket: ToniSocket): Promise<void> {
  return withTimeout(socket.ready(), WAIT, 'the socket to open');
}

async function rejection(promise: Promise<unknown>): Promise<ToniClientError> {
  const error = await withTimeout(promise.then(() => assert.fail('expected a rejection'), (failure: unknown) => failure), WAIT, 'the rejection');
  assert.ok(error instanceof ToniClientError, `expected a ToniClientError, got ${String(error)}`);
  return error;
}

function thrown(call: () => unknown): ToniClientError {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof ToniClientError, `expected a ToniClientError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected a throw');
}

describe('tonijs/client', () => {
  let app: ToniApplication;
  let probe: ProbeGateway;
  let guarded: GuardedGateway;
  let proxy: TcpProxy;
  const sockets: ToniSocket[] = [];
  const apps: ToniApplication[] = [];

  /** A socket through the proxy, closed after the test. */
  function open(path = '/probe', options: ConnectOptions = FAST): ToniSocket {
    const socket = connect(proxy.url(path), options);
    sockets.push(socket);
    return socket;
  }

  beforeEach(async () => {
    app = await startServer();
    apps.push(app);
    probe = app.get(ProbeGateway);
    guarded = app.get(GuardedGateway);
    proxy = await TcpProxy.start(portOf(app));
  });

  afterEach(async () => {
    probe.hold.resolve();
    await Promise.all(sockets.splice(0).map((socket) => socket.close()));
    await proxy.close();
    await Promise.all(apps.splice(0).map((each) => each.close()));
  });

  describe('events and acknowledgements', () => {
    it('requests, emits and handles server events, in order, over one connection', async () => {
      const socket = open();
      assert.ok(socket instanceof ToniSocket);
      assert.equal(socket.state, 'connecting');
      const notes = new AsyncQueue<unknown>();
      socket.on('note', (data) => notes.push(data));
      await opened(socket);
      assert.equal(socket.state, 'open');

      assert.deepEqual(await socket.request('echo', { nested: [1, 'two', null] }), { nested: [1, 'two', null] });
      assert.equal(await socket.request('echo'), undefined, 'an acknowledgement without data');
      socket.emit('record', 'a');
      socket.emit('record', 'b');
      assert.equal(await socket.request('record', 'c'), 'c');
      assert.deepEqual(await probe.seen.take(3), ['a', 'b', 'c']);

      await socket.request('tell', { event: 'note', data: { from: 'server' } });
      assert.deepEqual(await notes.next(WAIT), { from: 'server' });
    });

    it("answers the server's request with the first handler's return value, sync or async, and with a thrown ToniClientError", async () => {
      const socket = open();
      const events = watch(socket);
      const answers = ['sync', 'async', 'refuse', 'crash'];
      const seenBySecond: unknown[] = [];
      socket.on('confirm', (question) => {
        if (question === 'sync') return 'yes';
        if (question === 'async') return Promise.resolve({ later: true });
        if (question === 'refuse') throw new ToniClientError('declined', 'The user said no', { reason: 'busy' });
        throw new Error('client secret');
      });
      // A second handler runs too, and its return value answers nothing.
      socket.on('confirm', (question) => {
        seenBySecond.push(question);
        return 'ignored';
      });
      assert.deepEqual(await socket.request('ask', answers[0]), { answer: 'yes' });
      assert.deepEqual(await socket.request('ask', answers[1]), { answer: { later: true } });
      assert.deepEqual(await socket.request('ask', answers[2]), { code: 'declined', message: 'The user said no', details: { reason: 'busy' } });
      assert.deepEqual(await socket.request('ask', answers[3]), { code: 'internal', message: 'The client failed to answer', details: {} });
      const reported = await events.errors.next(WAIT);
      assert.equal(reported.code, 'handler_error');
      assert.equal((reported.cause as Error).message, 'client secret');
      assert.deepEqual(seenBySecond, answers);
    });

    it('answers a request no handler takes with unknown_event, and off() removes a handler', async () => {
      const socket = open();
      const handler = () => 'here';
      const remove = socket.on('confirm', handler);
      assert.deepEqual(await socket.request('ask', 'q'), { answer: 'here' });
      remove();
      assert.deepEqual(await socket.request('ask', 'q'), { code: 'unknown_event', message: 'No handler for "confirm" on this client', details: {} });
      socket.on('confirm', handler);
      socket.off('confirm', handler);
      assert.equal(((await socket.request('ask', 'q')) as { code: string }).code, 'unknown_event');
    });

    it("rejects with the server's error codes: invalid_payload with issues, unknown_event, a WsException's code and details, an HttpException's", async () => {
      const socket = open();
      const invalid = await rejection(socket.request('send', { text: '' }));
      assert.equal(invalid.code, 'invalid_payload');
      assert.equal(invalid.message, 'The data of event "send" is invalid');
      assert.equal(invalid.issues?.length, 1);
      assert.deepEqual(invalid.issues?.[0]?.path, ['text']);

      const unknown = await rejection(socket.request('sned', {}));
      assert.equal(unknown.code, 'unknown_event');
      assert.equal(unknown.issues, undefined);

      const custom = await rejection(socket.request('fail', 'ws'));
      assert.deepEqual([custom.code, custom.message, custom.details], ['quota_exceeded', 'Too many rooms', { limit: 3 }]);

      const http = await rejection(socket.request('fail', 'http'));
      assert.deepEqual([http.code, http.status], ['forbidden', 403]);
    });

    it('reports the server\'s error events for failed emits to on("error"), or to onError when none takes them', async () => {
      const socket = open();
      const events = watch(socket);
      socket.emit('sned', {});
      const reported = await events.errors.next(WAIT);
      assert.deepEqual([reported.code, reported.details], ['unknown_event', { event: 'sned' }]);

      const handled = new AsyncQueue<unknown>();
      socket.on('error', (data) => handled.push(data));
      socket.emit('sned', {});
      assert.equal(((await handled.next(WAIT)) as { code: string }).code, 'unknown_event');
      assert.equal(events.errors.length, 0, 'an event someone handles is not reported again');
    });

    it('rejects with timeout when the answer does not come in time, and drops the late answer', async () => {
      const socket = open();
      const error = await rejection(socket.request('slow', 'late', { timeout: 50 }));
      assert.deepEqual([error.code, error.message], ['timeout', 'No answer to "slow" within 50 ms']);
      probe.hold.resolve();
      // The late answer matches nothing; the connection goes on.
      assert.equal(await socket.request('echo', 'after'), 'after');
      assert.equal(socket.state, 'open');
    });

    it('hands frames that are not envelopes to onRaw, text as strings and binary as ArrayBuffers', async () => {
      const socket = open();
      const raw = new AsyncQueue<unknown>();
      socket.onRaw((frame) => raw.push(frame));
      const client = await probe.connected.next(WAIT);
      await client.send('plain words');
      await client.send(WsMessage.binary(new Uint8Array([1, 2, 3])));
      await client.send('{"neither":"an event nor an answer"}');
      await client.send('{"id":999,"data":"an answer nobody awaits"}');
      assert.equal(await raw.next(WAIT), 'plain words');
      const binary = await raw.next(WAIT);
      assert.ok(binary instanceof ArrayBuffer);
      assert.deepEqual([...new Uint8Array(binary)], [1, 2, 3]);
      assert.equal(await raw.next(WAIT), '{"neither":"an event nor an answer"}');
      assert.equal(await socket.request('echo', 'after'), 'after');
      assert.equal(raw.length, 0, 'an unexpected answer is dropped, not raw');
    });

    it('reserves no event name: open, close, error, ping, pong, connect and reconnect are application events both ways', async () => {
      const socket = open();
      const events = watch(socket);
      const names = ['open', 'close', 'error', 'ping', 'pong', 'connect', 'reconnect', 'disconnect', 'message'];
      const received = new AsyncQueue<string>();
      for (const name of names) socket.on(name, (data) => received.push(`${name}:${String(data)}`));
      for (const name of names) await socket.request('tell', { event: name, data: name.length });
      assert.deepEqual(await received.take(names.length), names.map((name) => `${name}:${name.length}`));
      assert.deepEqual(await socket.request('error', 1), { handled: 'error', data: 1 });
      assert.deepEqual(await socket.request('ping', 2), { handled: 'ping', data: 2 });
      socket.emit('ping', 3);
      socket.emit('record', 'after the ping event');
      assert.equal(await probe.seen.next(WAIT), 'after the ping event');
      assert.equal(events.errors.length, 0);
      assert.deepEqual([events.opens.length, events.closes.length], [1, 0], 'the server events reached no listener');
    });

    it('throws TypeError and RangeError at once for data JSON cannot carry and bad arguments', async () => {
      const socket = open();
      assert.throws(() => socket.emit('echo', { big: 1n }), TypeError);
      assert.throws(() => socket.request('echo', { big: 1n }), TypeError);
      assert.throws(() => socket.emit(''), TypeError);
      assert.throws(() => socket.on('', () => {}), TypeError);
      assert.throws(() => socket.request('echo', 1, { timeout: 0 }), RangeError);
      assert.throws(() => socket.request('echo', 1, { timeout: Infinity }), RangeError);
      assert.throws(() => connect('ftp://example.com/'), /needs a ws:, wss:, http: or https: URL/);
      assert.throws(() => connect(proxy.url('/probe'), { reconnect: { minDelay: -1 } }), /reconnect.minDelay must be/);
      assert.throws(() => connect(proxy.url('/probe'), { reconnect: { minDelay: 100, maxDelay: 10 } }), /must not be below/);
      assert.throws(() => connect(proxy.url('/probe'), { maxQueue: 1.5 }), /maxQueue must be an integer/);
      assert.throws(() => connect(proxy.url('/probe'), { heartbeat: { interval: 0 } }), /heartbeat.interval must be/);
      assert.equal(await socket.request('echo', 'still fine'), 'still fine');
    });

    it('connects to http: URLs as ws:, and with a WebSocket class given in the options', async () => {
      const sent: string[] = [];
      class RecordingWebSocket extends WebSocket {
        override send(data: string) {
          sent.push(data);
          super.send(data);
        }
      }
      const socket = open('/probe', { ...FAST, WebSocket: RecordingWebSocket });
      assert.match(socket.url, /^ws:\/\//);
      const viaHttp = connect(proxy.url('/probe', 'http'), FAST);
      sockets.push(viaHttp);
      assert.equal(viaHttp.url, proxy.url('/probe'));
      assert.equal(await socket.request('echo', 1), 1);
      assert.equal(await viaHttp.request('echo', 2), 2);
      assert.deepEqual(sent, ['{"event":"echo","id":1,"data":1}']);
    });
  });

  describe('state, ready() and close()', () => {
    it('closes for good: state closed, one final onClose, ready() and calls fail with closed, nothing left running', async () => {
      const before = process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
      const socket = open('/probe', { ...FAST, heartbeat: { interval: 1_000, timeout: 500 } });
      const events = watch(socket);
      await opened(socket);
      assert.equal(await events.opens.next(WAIT), 'open');
      const inFlight = socket.request('slow', 'pending');
      await probe.seen.next(WAIT);
      const closing = socket.close();
      assert.equal(socket.state, 'closed');
      assert.equal(socket.close(), closing, 'close() twice waits for the same close');
      assert.deepEqual(await events.closes.next(WAIT), { code: 1000, reason: '', willReconnect: false, error: undefined });
      await closing;
      assert.equal((await rejection(inFlight)).code, 'disconnected');
      assert.equal(thrown(() => socket.emit('echo', 1)).code, 'closed');
      assert.equal((await rejection(socket.request('echo', 1))).code, 'closed');
      assert.equal((await rejection(socket.ready())).code, 'closed');
      assert.equal(events.closes.length, 0);
      assert.equal(process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length, before, 'a timer outlived close()');
    });

    it('close() while reconnecting stops the attempts and rejects what was queued with closed', async () => {
      proxy.mode('reset');
      const socket = open();
      const events = watch(socket);
      const queued = socket.request('echo', 'never');
      await proxy.arrivals.take(2);
      await socket.close();
      assert.equal((await rejection(queued)).code, 'closed');
      assert.equal((await events.closes.next(WAIT)).willReconnect, false);
      assert.equal((await rejection(socket.ready())).code, 'closed');
    });

    it('close() on a dead link resolves within the heartbeat timeout, without the server\'s close frame', async () => {
      const socket = open('/probe', { ...FAST, heartbeat: { interval: 5_000, timeout: 100 } });
      await opened(socket);
      proxy.mode('stall');
      const started = Date.now();
      await withTimeout(socket.close(), 2_000, 'close() on a stalled link');
      assert.ok(Date.now() - started >= 90, 'close() waited for the close frame a while');
    });
  });

  describe('reconnecting', () => {
    it('reconnects after the link is cut: onClose, reconnecting, onOpen and onReconnect; requests in flight reject with disconnected', async () => {
      const socket = open();
      const events = watch(socket);
      await opened(socket);
      await events.opens.next(WAIT);
      const inFlight = socket.request('slow', 'cut');
      assert.equal(await probe.seen.next(WAIT), 'slow:cut');
      proxy.cut();
      const lost = await events.closes.next(WAIT);
      assert.deepEqual([lost.code, lost.willReconnect, lost.error], [1006, true, undefined]);
      assert.equal(socket.state, 'reconnecting');
      const error = await rejection(inFlight);
      assert.deepEqual([error.code, error.message], ['disconnected', 'The connection was lost before the answer to "slow"']);
      assert.equal(await events.opens.next(WAIT), 'open');
      const info = await events.reconnects.next(WAIT);
      assert.equal(info.recovered, false);
      assert.equal(info.attempt, 1);
      assert.ok(info.downtime >= 10, `downtime ${info.downtime} ms is at least minDelay`);
      assert.equal(await socket.request('echo', 'again'), 'again');
    });

    it('comes back after a server restart (1001 from app.close(), then a new server on another port behind the same address)', async () => {
      const socket = open();
      const events = watch(socket);
      await opened(socket);
      await events.opens.next(WAIT);
      await app.close();
      const lost = await events.closes.next(WAIT);
      assert.deepEqual([lost.code, lost.willReconnect], [1001, true]);
      const restarted = await startServer();
      apps.push(restarted);
      proxy.retarget(portOf(restarted));
      await events.reconnects.next(WAIT);
      assert.equal(await socket.request('echo', 'restarted'), 'restarted');
    });

    it('queues emits and requests while offline and sends them in order once open, after what onOpen listeners send', async () => {
      proxy.mode('reset');
      const socket = open();
      socket.onOpen(() => socket.emit('record', 'from onOpen'));
      socket.emit('record', 'q1');
      const answer = socket.request('record', 'q2');
      socket.emit('record', 'q3');
      await proxy.arrivals.take(2);
      assert.equal(socket.state, 'connecting');
      proxy.mode('forward');
      assert.equal(await answer, 'q2');
      assert.deepEqual(await probe.seen.take(4), ['from onOpen', 'q1', 'q2', 'q3']);

      // The same after a loss.
      proxy.mode('reset');
      proxy.cut();
      await withTimeout(new Promise((resolve) => socket.onClose(resolve)), WAIT, 'the loss');
      socket.emit('record', 'r1');
      const again = socket.request('record', 'r2');
      proxy.mode('forward');
      assert.equal(await again, 'r2');
      assert.deepEqual(await probe.seen.take(3), ['from onOpen', 'r1', 'r2']);
    });

    it('bounds the queue by maxQueue: queue_full for the call beyond it, and the queued ones still go', async () => {
      proxy.mode('reset');
      const socket = open('/probe', { ...FAST, maxQueue: 2 });
      socket.emit('record', 'one');
      const two = socket.request('record', 'two');
      const full = thrown(() => socket.emit('record', 'three'));
      assert.equal(full.code, 'queue_full');
      assert.match(full.message, /2 calls already wait \(maxQueue\)/);
      assert.equal((await rejection(socket.request('record', 'four'))).code, 'queue_full');
      proxy.mode('forward');
      assert.equal(await two, 'two');
      assert.deepEqual(await probe.seen.take(2), ['one', 'two']);
      socket.emit('record', 'five');
      assert.equal(await probe.seen.next(WAIT), 'five');

      const none = open('/probe', { ...FAST, maxQueue: 0 });
      assert.equal(thrown(() => none.emit('record', 'x')).code, 'queue_full');
    });

    it('drops a queued request that timed out, so the server never acts on it', async () => {
      proxy.mode('reset');
      const socket = open();
      const expired = socket.request('record', 'expired', { timeout: 30 });
      assert.equal((await rejection(expired)).code, 'timeout');
      socket.emit('record', 'kept');
      proxy.mode('forward');
      await opened(socket);
      assert.equal(await socket.request('record', 'last'), 'last');
      assert.deepEqual(await probe.seen.take(2), ['kept', 'last']);
    });

    it('evaluates the query function on every attempt, so a reconnect sends a fresh token', async () => {
      let issued = 0;
      guarded.status = undefined;
      const socket = open('/guarded', { ...FAST, query: async () => ({ token: `t${++issued}`, unused: undefined }) });
      await opened(socket);
      assert.equal(await guarded.handshakes.next(WAIT), 't1');
      proxy.cut();
      assert.equal(await guarded.handshakes.next(WAIT), 't2');
      await withTimeout(new Promise((resolve) => socket.onReconnect(resolve)), WAIT, 'the reconnect');

      const fixed = open('/guarded', { ...FAST, query: new URLSearchParams({ token: 'static' }) });
      await opened(fixed);
      assert.equal(await guarded.handshakes.next(WAIT), 'static');
    });

    it('reports a query function that throws as query_failed and retries', async () => {
      let calls = 0;
      guarded.status = undefined;
      const socket = open('/guarded', {
        ...FAST,
        query: () => {
          if (++calls === 1) throw new Error('token service down');
          return { token: 'recovered' };
        },
      });
      const events = watch(socket);
      const error = await events.errors.next(WAIT);
      assert.equal(error.code, 'query_failed');
      assert.equal((error.cause as Error).message, 'token service down');
      await opened(socket);
      assert.equal(await guarded.handshakes.next(WAIT), 'recovered');
    });

    it('gives up an attempt whose query function hangs past connectTimeout, and never opens it when the query finally answers', async () => {
      const gate = deferred<{ token: string }>();
      let calls = 0;
      let constructed = 0;
      class CountingWebSocket extends WebSocket {
        constructor(url: string, protocols: string) {
          super(url, protocols);
          constructed++;
        }
      }
      guarded.status = undefined;
      const socket = open('/guarded', { ...FAST, connectTimeout: 50, WebSocket: CountingWebSocket, query: () => (++calls === 1 ? gate.promise : { token: 'second' }) });
      await opened(socket);
      assert.equal(await guarded.handshakes.next(WAIT), 'second');
      gate.resolve({ token: 'stale' });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(constructed, 1, 'the stale attempt opened a second connection');
      assert.equal(calls, 2);
    });

    it('draws each delay between minDelay and a ceiling that doubles per failure, capped at maxDelay', () => {
      assert.deepEqual([0, 1, 2, 3, 10, 100].map((failures) => backoffDelay(failures, 100, 1_000, () => 1)), [200, 400, 800, 1_000, 1_000, 1_000]);
      assert.deepEqual([0, 5].map((failures) => backoffDelay(failures, 100, 1_000, () => 0)), [100, 100]);
      assert.equal(backoffDelay(1, 100, 1_000, () => 0.5), 250);
      // Real random draws spread over the range.
      const draws = Array.from({ length: 1_000 }, () => backoffDelay(3, 100, 1_000));
      assert.ok(Math.min(...draws) >= 100 && Math.max(...draws) <= 1_000);
      assert.ok(Math.max(...draws) - Math.min(...draws) > 600, 'the draws spread over the range');
    });

    it('waits at least minDelay between attempts against a server that resets every connection', async () => {
      proxy.mode('reset');
      const socket = open('/probe', { ...FAST, reconnect: { minDelay: 25, maxDelay: 60 } });
      const times = await proxy.arrivals.take(5);
      const gaps = times.slice(1).map((time, index) => time - times[index]!);
      for (const gap of gaps) assert.ok(gap >= 24, `attempts ${gap} ms apart, under minDelay: ${gaps.join(', ')}`);
      assert.equal(socket.state, 'connecting');
    });

    it('gives up after maxAttempts failed attempts in a row with unreachable, rejecting what was queued', async () => {
      proxy.mode('reset');
      const socket = open('/probe', { ...FAST, reconnect: { minDelay: 5, maxDelay: 10, maxAttempts: 3 } });
      const events = watch(socket);
      const queued = socket.request('echo', 1);
      const ready = socket.ready();
      const final = await events.closes.next(WAIT);
      assert.equal(final.willReconnect, false);
      assert.equal(final.error?.code, 'unreachable');
      assert.match(final.error!.message, /3 attempts failed/);
      assert.equal(proxy.accepted, 3);
      assert.equal(socket.state, 'closed');
      assert.equal(await rejection(queued), final.error);
      assert.equal(await rejection(ready), final.error);
      const late = thrown(() => socket.emit('echo', 1));
      assert.equal(late.code, 'closed');
      assert.equal(late.cause, final.error);
    });

    it('with reconnect: false, closes for good on the first loss', async () => {
      const socket = open('/probe', { reconnect: false, heartbeat: false });
      const events = watch(socket);
      await opened(socket);
      proxy.cut();
      const final = await events.closes.next(WAIT);
      assert.deepEqual([final.code, final.willReconnect, final.error?.code], [1006, false, 'unreachable']);
      assert.equal(socket.state, 'closed');
    });

    it('starts the backoff over only once a connection stayed open maxDelay: a server that accepts and drops at once is not hammered', async () => {
      const socket = open('/probe', { ...FAST, reconnect: { minDelay: 20, maxDelay: 1_000 } });
      await opened(socket);
      await proxy.arrivals.next(WAIT);
      // From now on every connection is cut as soon as it opens.
      socket.onOpen(() => proxy.cut());
      proxy.cut();
      const times = await proxy.arrivals.take(6);
      const gaps = times.slice(1).map((time, index) => time - times[index]!);
      for (const gap of gaps) assert.ok(gap >= 19, `a gap under minDelay: ${gaps.join(', ')} ms`);
      // Were the backoff reset by each open, every gap would be under 2 × minDelay (plus the time to
      // connect); with ceilings of 80, 160, 320, 640 and 1000 ms, all five under 45 ms is a 1 in 10⁴ draw.
      assert.ok(Math.max(...gaps) > 45, `the delays did not grow: ${gaps.join(', ')} ms`);
    });
  });

  describe('refused handshakes', () => {
    for (const status of [401, 403, 400]) {
      it(`stops retrying when the handshake is refused with HTTP ${status}: state closed, error refused`, async () => {
        guarded.status = status;
        const socket = open('/guarded');
        const events = watch(socket);
        const ready = socket.ready();
        const final = await events.closes.next(WAIT);
        assert.deepEqual([final.willReconnect, final.error?.code, final.error?.status], [false, 'refused', status]);
        assert.match(final.error!.message, new RegExp(`refused the connection to ws://127\\.0\\.0\\.1:\\d+/guarded with HTTP ${status}`));
        assert.equal(await rejection(ready), final.error);
        assert.equal(socket.state, 'closed');
        assert.equal(await guarded.handshakes.next(WAIT), null);
        // A retry would have come within maxDelay (40 ms); ten times that shows none.
        await new Promise((resolve) => setTimeout(resolve, 400));
        assert.equal(guarded.handshakes.length, 0, 'the socket tried again');
      });
    }

    it('retries a 503 (the server is busy or restarting) until the handshake is accepted', async () => {
      guarded.status = 503;
      const socket = open('/guarded');
      await guarded.handshakes.take(3);
      assert.equal(socket.state, 'connecting');
      guarded.status = undefined;
      await opened(socket);
      assert.equal(await socket.request('echo', 'in'), 'in');
    });
  });

  describe('the tonijs.v1 heartbeat', () => {
    it('notices a silent dead link within interval + timeout, drops it and reconnects', async () => {
      // An attempt made while the link is still stalled hangs: connectTimeout gives it up.
      const socket = open('/probe', { ...FAST, heartbeat: { interval: 100, timeout: 100 }, connectTimeout: 300 });
      const events = watch(socket);
      await opened(socket);
      const inFlight = socket.request('slow', 'stalled');
      await probe.seen.next(WAIT);
      proxy.mode('stall');
      const lost = await events.closes.next(WAIT);
      assert.deepEqual([lost.code, lost.reason, lost.willReconnect], [1006, 'No answer to the heartbeat within 100 ms', true]);
      assert.equal((await rejection(inFlight)).code, 'disconnected');
      proxy.mode('forward');
      await events.reconnects.next(WAIT);
      assert.equal(await socket.request('echo', 'alive'), 'alive');
    });

    it('keeps an idle but live link: pings are answered and never reach the gateway', async () => {
      const pings: string[] = [];
      class CountingWebSocket extends WebSocket {
        override send(data: string) {
          if (data.startsWith('{"ping":')) pings.push(data);
          super.send(data);
        }
      }
      const socket = open('/probe', { ...FAST, heartbeat: { interval: 30, timeout: 400 }, WebSocket: CountingWebSocket });
      const events = watch(socket);
      await opened(socket);
      const raw: unknown[] = [];
      socket.onRaw((frame) => raw.push(frame));
      await withTimeout(
        (async () => {
          while (pings.length < 4) await new Promise((resolve) => setTimeout(resolve, 20));
        })(),
        WAIT,
        'four pings',
      );
      assert.deepEqual(pings.slice(0, 3), ['{"ping":1}', '{"ping":2}', '{"ping":3}']);
      assert.equal(await socket.request('echo', 'idle'), 'idle');
      assert.equal(events.closes.length, 0);
      assert.equal(socket.state, 'open');
      assert.deepEqual(raw, [], 'the pongs are not raw frames');
    });

    it('gives up an attempt whose handshake never completes after connectTimeout, and retries', async () => {
      proxy.mode('stall');
      const socket = open('/probe', { ...FAST, connectTimeout: 80 });
      const first = await proxy.arrivals.next(WAIT);
      const second = await proxy.arrivals.next(WAIT);
      // 80 ms, then minDelay: well over what the backoff alone would wait (10 to 20 ms).
      assert.ok(second - first >= 50, `retried after ${second - first} ms`);
      proxy.mode('forward');
      await opened(socket);
      assert.equal(await socket.request('echo', 'through'), 'through');
    });
  });

  describe("with Node's own WebSocket (undici, where Node has one)", () => {
    /** Runs `body` in a child node with a global WebSocket that counts its sockets; its output lines, as they come. */
    function child(body: string): { lines: AsyncQueue<string>; exited: Promise<number | null> } {
      const script = `
        const Native = globalThis.WebSocket;
        let made = 0;
        globalThis.WebSocket = class extends Native { constructor(...args) { super(...args); made++; } };
        const { connect } = await import('tonijs/client');
        const say = (...words) => console.log(words.join(' '));
        ${body}`;
      const process_ = spawn(process.execPath, ['--experimental-websocket', '--conditions=tonijs-source', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines = new AsyncQueue<string>();
      createInterface({ input: process_.stdout }).on('line', (line) => lines.push(line));
      return { lines, exited: new Promise((resolve) => process_.once('exit', resolve)) };
    }

    it('uses the global WebSocket instead of ws, with the heartbeat protocol, and reconnects after a cut', async () => {
      const { lines, exited } = child(`
        const socket = connect(${JSON.stringify(proxy.url('/probe'))}, { reconnect: { minDelay: 10, maxDelay: 40 }, heartbeat: { interval: 50, timeout: 1000 } });
        await socket.ready();
        say('open', await socket.request('echo', 'first'), made);
        socket.onReconnect(async () => {
          say('reconnected', await socket.request('echo', 'second'), made);
          await socket.close();
        });`);
      assert.equal(await lines.next(20_000, 'the child to connect'), 'open first 1');
      proxy.cut();
      assert.equal(await lines.next(WAIT, 'the child to reconnect'), 'reconnected second 2');
      assert.equal(await withTimeout(exited, WAIT, 'the child to exit'), 0);
    });

    it('cannot see the status of a refused handshake there either, so maxAttempts ends the retrying', async () => {
      const { lines, exited } = child(`
        const socket = connect(${JSON.stringify(proxy.url('/guarded'))}, { reconnect: { minDelay: 5, maxDelay: 10, maxAttempts: 2 } });
        socket.onClose((info) => say('closed', info.error.code, made));`);
      assert.equal(await lines.next(20_000, 'the child to give up'), 'closed unreachable 2');
      assert.equal((await guarded.handshakes.take(2)).length, 2);
      assert.equal(await withTimeout(exited, WAIT, 'the child to exit'), 0);
    });
  });

  it('gives each listener its own removal function, and a throwing listener is reported, not fatal', async () => {
    const socket = open();
    const events = watch(socket);
    const calls: string[] = [];
    const remove = socket.onOpen(() => calls.push('removed'));
    remove();
    for (const removeListener of [socket.onClose(() => calls.push('close')), socket.onReconnect(() => calls.push('reconnect')), socket.onRaw(() => calls.push('raw')), socket.onError(() => calls.push('error'))]) {
      removeListener();
    }
    socket.onOpen(() => {
      throw new Error('listener bug');
    });
    socket.onOpen(() => calls.push('kept'));
    await opened(socket);
    const error = await events.errors.next(WAIT);
    assert.equal(error.code, 'handler_error');
    assert.equal(await socket.request('echo', 1), 1);
    (await probe.connected.next(WAIT)).send('raw text');
    proxy.cut();
    await events.reconnects.next(WAIT);
    assert.deepEqual(calls, ['kept', 'kept'], 'a removed listener was called');
  });
});
