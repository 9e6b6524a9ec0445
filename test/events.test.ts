import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type Class, HttpException, Injectable, Module, ToniError, ToniFactory, type ToniApplication, inject } from 'tonijs';
import { NodeHttpAdapter, WsAdapter, type WsAdapterOptions } from 'tonijs/node';
import { BroadcastModule, BroadcastService, type Gateway, On, type WsClient, WsException, type WsMessage } from 'tonijs/websocket';
import * as v from 'valibot';
import { z } from 'zod';
import { AsyncQueue, captureLogger, deferred } from './support/async.js';
import { TestClient, connect } from './support/ws-client.js';

// ---------------------------------------------------------------------------------------------
// The spec's example, unchanged.

const Send = z.object({ room: z.string().min(1), text: z.string().min(1).max(500) });

@Injectable()
export class ChatGateway implements Gateway {
  readonly path = '/chat';
  private readonly broadcast = inject(BroadcastService);

  @On('join')
  async join(client: WsClient, room: string) {
    await client.join(room);
    return { joined: room };
  }

  @On('send', { payload: Send })                       // any Standard Schema validator
  async send(client: WsClient, data: z.output<typeof Send>) {
    if (!client.rooms.has(data.room)) throw new WsException('not_in_room', `Join ${data.room} first`);
    await this.broadcast.to(data.room).emit('message', { from: client.id, text: data.text });
    return { delivered: true };
  }
}

// ---------------------------------------------------------------------------------------------
// Gateways built for the tests.

/** Records what its handlers saw; `hold` makes `slow` wait for the test. */
@Injectable()
class ProbeGateway implements Gateway {
  readonly path = '/probe';
  readonly seen = new AsyncQueue<string>();
  readonly calls: string[] = [];
  hold = deferred();

  @On('echo')
  echo(_client: WsClient, data: unknown) {
    return data;
  }

  @On('count', { payload: z.object({ n: z.coerce.number().int() }) })
  count(_client: WsClient, data: { n: number }) {
    this.calls.push(`count:${data.n}`);
    return data.n + 1;
  }

  @On('async-schema', { payload: v.pipeAsync(v.string(), v.checkAsync(async (text) => text !== 'taken', 'That name is taken')) })
  async asyncSchema(_client: WsClient, name: string) {
    return `welcome ${name}`;
  }

  @On('slow')
  async slow(_client: WsClient, label: string) {
    this.seen.push(`start ${label}`);
    if (label === 'first') await this.hold.promise;
    this.seen.push(`end ${label}`);
    return label;
  }

  @On('fail')
  fail(_client: WsClient, kind: string) {
    if (kind === 'ws') throw new WsException('quota_exceeded', 'Too many rooms', { limit: 3, code: 'ignored', message: 'ignored' });
    if (kind === 'http') throw new HttpException(403, 'Not yours');
    if (kind === 'async') return Promise.reject(new Error('async secret'));
    throw new Error('sync secret');
  }

  @On('bigint')
  bigint() {
    return { big: 1n };
  }

  @On('noreply')
  noreply(_client: WsClient, data: string) {
    this.calls.push(`noreply:${data}`);
  }

  @On('ask')
  async ask(client: WsClient, question: string) {
    // Asks the client back from inside a handler: its answer must not queue behind this handler.
    const answer = await client.request('confirm', question, { timeout: 2_000 });
    return { answer };
  }
}

/** A gateway with both: events to @On, every other frame to onMessage. */
@Injectable()
class MixedGateway implements Gateway {
  readonly path = '/mixed';
  readonly raw = new AsyncQueue<string>();

  @On('ping')
  ping() {
    return 'pong';
  }

  onMessage(client: WsClient, message: WsMessage) {
    this.raw.push(message.kind === 'text' ? `text:${message.asText()}` : `binary:${message.asBinary()?.byteLength}`);
    return client.send('raw ok');
  }
}

/** No @On at all: every frame, envelope-shaped or not, is onMessage's, as before events existed. */
@Injectable()
class RawGateway implements Gateway {
  readonly path = '/raw';
  readonly raw = new AsyncQueue<string>();
  readonly answers = new AsyncQueue<unknown>();

  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText() ?? '';
    this.raw.push(text);
    if (text === 'ask me') {
      try {
        this.answers.push(await client.request('question', 42, { timeout: 2_000 }));
      } catch (error) {
        this.answers.push(error);
      }
    }
  }
}

class BaseGateway {
  @On('inherited')
  inherited() {
    return 'from the base';
  }
}

@Injectable()
class DerivedGateway extends BaseGateway implements Gateway {
  readonly path = '/derived';
  @On('own')
  own() {
    return 'own';
  }
}

/** A client speaking the envelope: `send` objects, `next` the parsed JSON of each frame. */
class EnvelopeClient {
  readonly ws: TestClient;
  constructor(ws: TestClient) {
    this.ws = ws;
  }
  send(envelope: unknown): void {
    this.ws.send(typeof envelope === 'string' ? envelope : JSON.stringify(envelope));
  }
  async next(ms = 5_000): Promise<Record<string, unknown>> {
    return JSON.parse(await this.ws.nextText(ms)) as Record<string, unknown>;
  }
  async call(event: string, data: unknown, id: number | string = 1): Promise<Record<string, unknown>> {
    this.send({ event, data, id });
    return this.next();
  }
}

describe('gateway events', () => {
  const apps: ToniApplication[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(
    async () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
      await Promise.all(apps.splice(0).map((app) => app.close()));
    },
    { timeout: 10_000 },
  );

  async function start(providers: Class[], options?: WsAdapterOptions) {
    @Module({ imports: [BroadcastModule], providers })
    class TestModule {}
    const logger = captureLogger();
    const app = await ToniFactory.create(TestModule, new NodeHttpAdapter(), { logger });
    apps.push(app);
    const adapter = new WsAdapter(options);
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    const open = async (path: string) => {
      const ws = await connect(adapter.getUrl(path));
      cleanups.push(() => ws.ws.terminate());
      return new EnvelopeClient(ws);
    };
    return { app, adapter, logger, open };
  }

  describe('the spec example', () => {
    it('joins with an acknowledgement, refuses to send before joining, and broadcasts to the room with an ack', async () => {
      const { open } = await start([ChatGateway]);
      const ann = await open('/chat');
      const bob = await open('/chat');

      assert.deepEqual(await ann.call('join', 'lobby', 1), { id: 1, data: { joined: 'lobby' } });
      assert.deepEqual(await bob.call('send', { room: 'lobby', text: 'hi' }, 'b1'), { id: 'b1', error: { code: 'not_in_room', message: 'Join lobby first' } });
      assert.deepEqual(await bob.call('join', 'lobby', 2), { id: 2, data: { joined: 'lobby' } });

      bob.send({ event: 'send', data: { room: 'lobby', text: 'hello' }, id: 3 });
      const [toBob, ack] = [await bob.next(), await bob.next()];
      assert.equal(toBob['event'], 'message');
      assert.deepEqual(ack, { id: 3, data: { delivered: true } });
      const toAnn = await ann.next();
      assert.deepEqual(toAnn, { event: 'message', data: { from: (toBob['data'] as { from: string }).from, text: 'hello' } });
    });

    it('answers a payload the schema refuses with invalid_payload and its issues, without running the handler', async () => {
      const { open } = await start([ChatGateway]);
      const client = await open('/chat');
      const reply = await client.call('send', { room: '', text: 'x'.repeat(501) }, 7);
      const error = reply['error'] as { code: string; message: string; issues: { message: string; path: string[] }[] };
      assert.equal(reply['id'], 7);
      assert.equal(error.code, 'invalid_payload');
      assert.match(error.message, /data of event "send" is invalid/);
      assert.deepEqual(error.issues.map((issue) => issue.path).sort(), [['room'], ['text']]);
      // Without an id the failure comes as the error event, naming the event.
      client.send({ event: 'send', data: 'nonsense' });
      const event = await client.next();
      assert.equal(event['event'], 'error');
      assert.deepEqual(Object.keys(event['data'] as object).sort(), ['code', 'event', 'issues', 'message']);
      assert.equal((event['data'] as { event: string }).event, 'send');
    });
  });

  describe('handlers', () => {
    it('acknowledges with the return value (sync, async, undefined), and sends nothing when no id was given', async () => {
      const { app, open } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('echo', { nested: [1, 'two', null] }), { id: 1, data: { nested: [1, 'two', null] } });
      assert.deepEqual(await client.call('count', { n: '41' }, 2), { id: 2, data: 42 }, 'the handler sees the schema output (coerced)');
      assert.deepEqual(await client.call('noreply', 'x', 3), { id: 3 });
      client.send({ event: 'noreply', data: 'quiet' });
      assert.deepEqual(await client.call('echo', 'after', 4), { id: 4, data: 'after' }, 'nothing was sent for the event without id');
      assert.deepEqual(app.get(ProbeGateway).calls, ['count:41', 'noreply:x', 'noreply:quiet']);
    });

    it('runs async Standard Schemas (valibot) before the handler', async () => {
      const { open } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('async-schema', 'ann'), { id: 1, data: 'welcome ann' });
      const reply = await client.call('async-schema', 'taken', 2);
      assert.equal((reply['error'] as { code: string }).code, 'invalid_payload');
      assert.deepEqual((reply['error'] as { issues: { message: string }[] }).issues.map((issue) => issue.message), ['That name is taken']);
    });

    it('handles one client’s events one at a time, in order, and another client’s meanwhile', async () => {
      const { app, open } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const client = await open('/probe');
      const other = await open('/probe');
      client.send({ event: 'slow', data: 'first', id: 1 });
      client.send({ event: 'slow', data: 'second', id: 2 });
      assert.equal(await gateway.seen.next(), 'start first');
      assert.deepEqual(await other.call('echo', 'not held up'), { id: 1, data: 'not held up' });
      assert.equal(gateway.seen.length, 0, 'the second event waits for the first');
      gateway.hold.resolve();
      assert.deepEqual(await gateway.seen.take(3), ['end first', 'start second', 'end second']);
      assert.deepEqual([await client.next(), await client.next()], [{ id: 1, data: 'first' }, { id: 2, data: 'second' }]);
    });

    it('finds handlers declared on a base class', async () => {
      const { open } = await start([DerivedGateway]);
      const client = await open('/derived');
      assert.deepEqual(await client.call('inherited', undefined), { id: 1, data: 'from the base' });
      assert.deepEqual(await client.call('own', undefined, 2), { id: 2, data: 'own' });
    });
  });

  describe('errors are data, never a closed connection', () => {
    it('a WsException answers with its code, message and details (which cannot override code or message)', async () => {
      const { open } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('fail', 'ws'), { id: 1, error: { code: 'quota_exceeded', message: 'Too many rooms', limit: 3 } });
      client.send({ event: 'fail', data: 'ws' });
      assert.deepEqual(await client.next(), { event: 'error', data: { code: 'quota_exceeded', message: 'Too many rooms', limit: 3, event: 'fail' } });
    });

    it('an HttpException below 500 answers with a code named after its status', async () => {
      const { open } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('fail', 'http'), { id: 1, error: { code: 'forbidden', message: 'Not yours', status: 403 } });
    });

    it('any other exception answers internal without its message, and is logged with client, gateway and event', async () => {
      const { open, logger } = await start([ProbeGateway]);
      const client = await open('/probe');
      for (const [kind, id] of [['sync', 1], ['async', 2]] as const) {
        const reply = await client.call('fail', kind, id);
        assert.deepEqual(reply, { id, error: { code: 'internal', message: 'Internal server error' } });
        assert.ok(!JSON.stringify(reply).includes('secret'));
      }
      const entries = logger.entries.filter((entry) => entry.level === 'error');
      assert.equal(entries.length, 2);
      for (const entry of entries) {
        assert.equal(entry.details['gateway'], 'ProbeGateway');
        assert.equal(entry.details['event'], 'fail');
        assert.equal(typeof entry.details['clientId'], 'string');
        assert.match(entry.message ?? '', /ProbeGateway\.fail threw for event "fail"/);
      }
      assert.deepEqual(await client.call('echo', 'still open', 3), { id: 3, data: 'still open' });
    });

    it('an acknowledgement JSON cannot carry answers internal and is logged as such', async () => {
      const { open, logger } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('bigint', undefined), { id: 1, error: { code: 'internal', message: 'Internal server error' } });
      const entry = await logger.waitFor((candidate) => candidate.level === 'error');
      assert.match(entry.message ?? '', /ProbeGateway\.bigint returned an acknowledgement that cannot be sent as JSON/);
    });

    it('an unknown event answers unknown_event, with and without an id', async () => {
      const { open } = await start([ProbeGateway]);
      const client = await open('/probe');
      assert.deepEqual(await client.call('nope', 1, 'x'), { id: 'x', error: { code: 'unknown_event', message: 'No handler for event "nope" on /probe' } });
      client.send({ event: 'nope' });
      assert.deepEqual(await client.next(), { event: 'error', data: { code: 'unknown_event', message: 'No handler for event "nope" on /probe', event: 'nope' } });
    });

    it('answers malformed frames with invalid_message, replying to their id when it can be read', async () => {
      const { open } = await start([ProbeGateway], { maxEventSize: 2048, maxEventDepth: 8 });
      const client = await open('/probe');
      const cases: [string | Uint8Array, RegExp, unknown][] = [
        ['not json at all', /accepts JSON event envelopes .* not text frames that are not JSON event envelopes/, undefined],
        ['{"event": tru', /not text frames that are not JSON event envelopes/, undefined],
        ['[1,2,3]', /not text frames that are not JSON event envelopes/, undefined],
        ['{"data":1}', /not text frames that are not JSON event envelopes/, undefined],
        ['{"event":5,"id":9}', /"event" must be a non-empty string/, 9],
        ['{"event":"","id":10}', /"event" must be a non-empty string/, 10],
        ['{"event":"echo","id":{"nested":true}}', /"id" must be a finite number or a string/, undefined],
        [`{"event":"echo","id":"${'i'.repeat(129)}"}`, /"id" must be a finite number or a string of at most 128/, undefined],
        [`{"event":"echo","data":"${'x'.repeat(2100)}"}`, /limited to 2048 characters \(maxEventSize\)/, undefined],
        [`{"event":"echo","data":${'['.repeat(9)}${']'.repeat(9)}}`, /8 levels deep \(maxEventDepth\)/, undefined],
        ['{"event":"echo","id":11,"data":{"__proto__":{"admin":true}}}', /"__proto__" and "constructor.prototype" keys are not accepted/, 11],
        [new Uint8Array([1, 2, 3]), /not binary frames/, undefined],
      ];
      for (const [frame, message, id] of cases) {
        client.ws.send(frame);
        const reply = await client.next();
        const error = (id === undefined ? (reply['data'] as object) : reply['error']) as { code: string; message: string };
        if (id === undefined) assert.equal(reply['event'], 'error', `error event for ${String(frame).slice(0, 40)}`);
        else assert.equal(reply['id'], id);
        assert.equal(error.code, 'invalid_message');
        assert.match(error.message, message);
      }
      // A string inside the data with brackets does not count as nesting.
      assert.deepEqual(await client.call('echo', '[[[[[[[[[[[[', 12), { id: 12, data: '[[[[[[[[[[[[' });
    });
  });

  describe('frames that are not events', () => {
    it('go to onMessage on a gateway that has one, events to their handler', async () => {
      const { app, open } = await start([MixedGateway]);
      const gateway = app.get(MixedGateway);
      const client = await open('/mixed');
      client.send('hello there');
      assert.equal(await client.ws.nextText(), 'raw ok');
      client.ws.send(new Uint8Array(5));
      assert.equal(await client.ws.nextText(), 'raw ok');
      assert.deepEqual(await client.call('ping', undefined), { id: 1, data: 'pong' });
      assert.deepEqual(await gateway.raw.take(2), ['text:hello there', 'binary:5']);
    });

    it('all go to onMessage untouched on a gateway without @On handlers, envelope-shaped or not', async () => {
      const { app, open } = await start([RawGateway]);
      const gateway = app.get(RawGateway);
      const client = await open('/raw');
      client.send({ event: 'join', data: 'x', id: 1 });
      client.send({ id: 1, data: 'looks like an ack' });
      assert.deepEqual(await gateway.raw.take(2), ['{"event":"join","data":"x","id":1}', '{"id":1,"data":"looks like an ack"}']);
      assert.equal(client.ws.messages.length, 0);
    });
  });

  describe('client.emit and broadcast.emit', () => {
    it('client.emit sends the event envelope; broadcast.emit reaches everyone, a room, all but one, or a gateway', async () => {
      const { app, open } = await start([ChatGateway, ProbeGateway]);
      const broadcast = app.get(BroadcastService);
      const [ann, bob, cat] = [await open('/chat'), await open('/chat'), await open('/probe')];
      await ann.call('join', 'red');
      const annId = ((await (async () => { await broadcast.to('red').emit('who'); return ann.next(); })()) as { event: string }).event;
      assert.equal(annId, 'who');

      await broadcast.emit('hello', { n: 1 });
      for (const client of [ann, bob, cat]) assert.deepEqual(await client.next(), { event: 'hello', data: { n: 1 } });
      await broadcast.to('red').emit('red only', 'r');
      await broadcast.gateway('/probe').emit('probe only');
      const [annIdValue] = await broadcast.to('red').getClientIds();
      await broadcast.except(annIdValue!).emit('not ann', [1, 2]);
      assert.deepEqual(await ann.next(), { event: 'red only', data: 'r' });
      assert.deepEqual(await cat.next(), { event: 'probe only' });
      assert.deepEqual(await bob.next(), { event: 'not ann', data: [1, 2] });
      assert.deepEqual(await cat.next(), { event: 'not ann', data: [1, 2] });
      assert.equal(ann.ws.messages.length, 0);

      const client = app.get(BroadcastService);
      const ids = await client.gateway('/probe').getClientIds();
      assert.equal(ids.length, 1);
    });

    it('throws a TypeError at once for an empty event name or data JSON cannot carry', async () => {
      const { app } = await start([ChatGateway]);
      const broadcast = app.get(BroadcastService);
      assert.throws(() => broadcast.emit(''), /event name must be a non-empty string/);
      assert.throws(() => broadcast.emit('x', { big: 1n }), /the data of event "x" cannot be sent as JSON/);
      const circular: Record<string, unknown> = {};
      circular['self'] = circular;
      assert.throws(() => broadcast.to('room').emit('x', circular), TypeError);
    });
  });

  describe('client.request', () => {
    it('asks the client from inside a handler and acknowledges with its answer (the answer does not wait behind the handler)', async () => {
      const { open } = await start([ProbeGateway]);
      const client = await open('/probe');
      client.send({ event: 'ask', data: 'sure?', id: 1 });
      const question = await client.next();
      assert.equal(question['event'], 'confirm');
      assert.equal(question['data'], 'sure?');
      assert.equal(typeof question['id'], 'number');
      client.send({ id: question['id'], data: true });
      assert.deepEqual(await client.next(), { id: 1, data: { answer: true } });
    });

    it('rejects with the client’s error, with timeout, and with disconnected', async () => {
      const { app, open } = await start([RawGateway]);
      const gateway = app.get(RawGateway);
      const client = await open('/raw');

      client.send('ask me');
      const first = await client.next();
      client.send({ id: first['id'], error: { code: 'no_way', message: 'I refuse', reason: 'tired' } });
      const refused = await gateway.answers.next();
      assert.ok(refused instanceof WsException);
      assert.deepEqual([refused.code, refused.message, refused.details], ['no_way', 'I refuse', { reason: 'tired' }]);

      client.send('ask me');
      await client.next();                                   // never answered
      const timedOut = await gateway.answers.next(5_000);
      assert.ok(timedOut instanceof WsException && timedOut.code === 'timeout', String(timedOut));
      assert.match(timedOut.message, /did not answer "question" within 2000 ms/);

      client.send('ask me');
      await client.next();
      client.ws.ws.close();
      const gone = await gateway.answers.next(5_000);
      assert.ok(gone instanceof WsException && gone.code === 'disconnected', String(gone));
      assert.deepEqual(await gateway.raw.take(3), ['ask me', 'ask me', 'ask me'], 'acknowledgements never reached onMessage');
    });

    it('drops a late acknowledgement with a debug log, without an error reply', async () => {
      const { open, logger } = await start([ProbeGateway]);
      const client = await open('/probe');
      client.send({ id: 999, data: 'too late' });
      await logger.waitFor((entry) => entry.level === 'debug' && /no request of the server awaits/.test(entry.message ?? ''));
      assert.deepEqual(await client.call('echo', 'next'), { id: 1, data: 'next' }, 'the late ack got no reply');
    });

    it('rejects at once for a client that is gone', async () => {
      const { app, open } = await start([RawGateway]);
      const client = await open('/raw');
      const gateway = app.get(RawGateway);
      client.send('hello');
      await gateway.raw.next();
      let held: WsClient | undefined;
      const manager = app.get(BroadcastService);
      const [id] = await manager.getClientIds();
      const { ConnectionManager } = await import('tonijs/websocket');
      held = app.get(ConnectionManager).getLocalClient(id!);
      client.ws.ws.close();
      await client.ws.waitForClose();
      await assert.rejects(
        (async () => {
          for (;;) {
            if (!held!.isOpen) return held!.request('anything', 1);
            await new Promise((resolve) => setImmediate(resolve));
          }
        })(),
        (error: unknown) => error instanceof WsException && error.code === 'disconnected',
      );
    });
  });

  describe('startup', () => {
    it('two handlers for one event are TONI_ERR_DUPLICATE_EVENT naming both', async () => {
      @Injectable()
      class TwiceGateway implements Gateway {
        readonly path = '/twice';
        @On('same') one() {}
        @On('same') two() {}
      }
      @Module({ providers: [TwiceGateway] })
      class Twice {}
      await assert.rejects(
        ToniFactory.create(Twice, new NodeHttpAdapter(), { logger: false }),
        (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_DUPLICATE_EVENT' && /TwiceGateway\.one and TwiceGateway\.two/.test(error.message),
      );
    });

    it('@On refuses an empty event name and a payload that is not a Standard Schema', () => {
      assert.throws(() => On(''), /non-empty event name/);
      assert.throws(() => On('x', { payload: {} as never }), /must be a Standard Schema/);
    });
  });

  describe('the tonijs.v1 subprotocol', () => {
    it('is chosen when offered, and answers heartbeats at once, ahead of a busy handler', async () => {
      const { app, adapter } = await start([ProbeGateway]);
      const gateway = app.get(ProbeGateway);
      const ws = await connect(adapter.getUrl('/probe'), { protocols: 'tonijs.v1' });
      cleanups.push(() => ws.ws.terminate());
      assert.equal(ws.ws.protocol, 'tonijs.v1');
      const client = new EnvelopeClient(ws);
      // With BroadcastModule, a tonijs.v1 client is greeted once onConnect has run, before anything else.
      assert.deepEqual(Object.keys(await client.next()), ['welcome']);
      client.send({ event: 'slow', data: 'first', id: 1 });
      await gateway.seen.next();
      client.send('{"ping":41}');
      assert.deepEqual(await client.next(), { pong: 41 }, 'answered while the handler still holds the queue');
      gateway.hold.resolve();
      assert.deepEqual(await client.next(), { id: 1, data: 'first' });
    });

    it('leaves other subprotocols and plain clients alone: a ping frame is just a frame there', async () => {
      const { adapter } = await start([ProbeGateway]);
      const other = await connect(adapter.getUrl('/probe'), { protocols: ['chat.v2', 'tonijs.v0'] });
      cleanups.push(() => other.ws.terminate());
      assert.equal(other.ws.protocol, 'chat.v2');
      const plain = new EnvelopeClient(other);
      plain.send('{"ping":1}');
      const reply = await plain.next();
      assert.equal((reply['data'] as { code: string }).code, 'invalid_message');
    });
  });
});
