// The example app (examples/chat) serves every example of the spec, over real sockets.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import type { ToniApplication } from 'tonijs';
import { HandshakeRefusedError, TestWsClient } from 'tonijs/testing';
import { type ChatAppOptions, createChatApp } from '../examples/chat/app.js';
import type { Joined } from '../examples/chat/protocol.js';
import { WsException } from 'tonijs/websocket';
import { withTimeout } from './support/async.js';
import { RedisServer } from './support/redis-server.js';

const DEMO = { authorization: 'Bearer demo-token' };

describe('the example chat app', () => {
  const apps: ToniApplication[] = [];
  const clients: TestWsClient[] = [];
  const children: ChildProcess[] = [];
  const redises: RedisServer[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(apps.splice(0).map((app) => app.close()));
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(redises.splice(0).map((redis) => redis.stop()));
  });

  async function start(options: ChatAppOptions = {}): Promise<ToniApplication> {
    const app = await createChatApp({ logger: false, heartbeatInterval: 0, ...options });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return app;
  }

  async function connect(app: ToniApplication, path: string, headers?: Record<string, string>): Promise<TestWsClient> {
    const client = await TestWsClient.connect(app, path, { headers });
    clients.push(client);
    return client;
  }

  /** Connects as the page does and joins `room`, resolving with the join's acknowledgement. */
  async function joinRoom(app: ToniApplication, name: string, room: string) {
    const client = await connect(app, `/chat?name=${encodeURIComponent(name)}`);
    const joined = (await client.request('join', room)) as Joined;
    return { client, joined };
  }

  function announce(app: ToniApplication, body: unknown): Promise<Response> {
    return fetch(`${app.getUrl()}/events/announce`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  describe('EchoGateway on /echo', () => {
    it('welcomes a client and echoes what it says (the spec\'s first gateway)', async () => {
      const app = await start();
      const client = await connect(app, '/echo');
      assert.equal(await client.expectMessage(), 'Welcome to the chat!');
      client.send('hello toni');
      assert.equal(await client.expectMessage(), 'You said: hello toni');
      client.send('second');
      assert.equal(await client.expectMessage(), 'You said: second');
    });
  });

  describe('ChatGateway on /chat (gateway events)', () => {
    it('joins rooms with an acknowledgement, relays messages to the room\'s others only, and tells the room who comes and goes', async () => {
      const app = await start();
      const ann = await joinRoom(app, 'Ann', 'tea');
      assert.deepEqual(ann.joined, { room: 'tea', name: 'Ann', inRoom: 1, online: 1 });
      const cleo = await joinRoom(app, 'Cleo', 'coffee');
      assert.deepEqual(cleo.joined, { room: 'coffee', name: 'Cleo', inRoom: 1, online: 2 });
      const bob = await joinRoom(app, 'Bob', 'tea');
      assert.deepEqual(bob.joined, { room: 'tea', name: 'Bob', inRoom: 2, online: 3 });
      assert.deepEqual(await ann.client.expectEvent('presence'), { room: 'tea', change: 'join', name: 'Bob', inRoom: 2, online: 3 });

      assert.deepEqual(await ann.client.request('send', { room: 'tea', text: 'tea anyone?' }), { delivered: true });
      assert.deepEqual(await bob.client.expectEvent('message'), { room: 'tea', from: 'Ann', text: 'tea anyone?' });
      ann.client.emit('typing', { room: 'tea' });
      assert.deepEqual(await bob.client.expectEvent('typing'), { room: 'tea', name: 'Ann' });

      await bob.client.close();
      assert.deepEqual(await ann.client.expectEvent('presence'), { room: 'tea', change: 'leave', name: 'Bob', inRoom: 1, online: 2 });
      await ann.client.expectNoMessage(50);
      await cleo.client.expectNoMessage(50);
    });

    it('moves a member to another room, leaving the first', async () => {
      const app = await start();
      const ann = await joinRoom(app, 'Ann', 'tea');
      const bob = await joinRoom(app, 'Bob', 'tea');
      await ann.client.expectEvent('presence');
      assert.deepEqual(await bob.client.request('join', 'coffee'), { room: 'coffee', name: 'Bob', inRoom: 1, online: 2 });
      assert.deepEqual(await ann.client.expectEvent('presence'), { room: 'tea', change: 'leave', name: 'Bob', inRoom: 1, online: 2 });
      await assert.rejects(bob.client.request('send', { room: 'tea', text: 'still here?' }), (error: unknown) => error instanceof WsException && error.code === 'not_in_room');
    });

    it('answers a send to a room not joined, or an invalid one, with an error and keeps the connection', async () => {
      const app = await start();
      const { client } = await joinRoom(app, 'Ann', 'tea');
      await assert.rejects(client.request('send', { room: 'coffee', text: 'hi' }), (error: unknown) => error instanceof WsException && error.code === 'not_in_room' && error.message === 'Join coffee first');
      await assert.rejects(client.request('send', { room: 'tea', text: '' }), (error: unknown) => error instanceof WsException && error.code === 'invalid_payload');
      await assert.rejects(client.request('join', '<script>'), (error: unknown) => error instanceof WsException && error.code === 'invalid_payload');
      assert.deepEqual(await client.request('send', { room: 'tea', text: 'still connected' }), { delivered: true });
    });

    it('joins the room of the handshake\'s query while connecting, as the page does, and announces it once', async () => {
      const app = await start();
      const ann = await joinRoom(app, 'Ann', 'tea');
      const bob = await connect(app, '/chat?name=Bob&room=tea');
      assert.deepEqual(await ann.client.expectEvent('presence'), { room: 'tea', change: 'join', name: 'Bob', inRoom: 2, online: 2 });
      // The page asks again on every open, for the counts: already there, nothing is announced.
      assert.deepEqual(await bob.request('join', 'tea'), { room: 'tea', name: 'Bob', inRoom: 2, online: 2 });
      assert.deepEqual(await bob.request('send', { room: 'tea', text: 'hello' }), { delivered: true });
      assert.deepEqual(await ann.client.expectEvent('message'), { room: 'tea', from: 'Bob', text: 'hello' });
      await ann.client.expectNoMessage(50);
    });

    it('refuses a malformed name or room with HTTP 400', async () => {
      const app = await start();
      for (const query of ['?name=%3Cscript%3E', `?name=${'x'.repeat(25)}`, '?name=', '?name=Ann&room=%3Cscript%3E', `?room=${'r'.repeat(33)}`]) {
        await assert.rejects(TestWsClient.connect(app, `/chat${query}`), (error: unknown) => error instanceof HandshakeRefusedError && error.status === 400, query);
      }
    });
  });

  describe('SecureGateway on /secure', () => {
    it('refuses a handshake without a valid token with HTTP 401', async () => {
      const app = await start();
      for (const headers of [undefined, { authorization: 'Bearer wrong' }, { authorization: 'demo-token' }]) {
        await assert.rejects(connect(app, '/secure', headers), (error: unknown) => error instanceof HandshakeRefusedError && error.status === 401, JSON.stringify(headers));
      }
    });

    it('greets the user of the demo token, and announces what they send to everyone', async () => {
      const app = await start();
      const listener = await joinRoom(app, 'Ann', 'tea');
      const ada = await connect(app, '/secure', DEMO);
      assert.equal(await ada.expectMessage(), 'Hello Ada, you are signed in');
      ada.send('doors close at six');
      assert.deepEqual(await listener.client.expectEvent('announcement'), { text: 'doors close at six', from: 'Ada' });
      assert.deepEqual(await ada.expectEvent('announcement'), { text: 'doors close at six', from: 'Ada' });
    });

    it('accepts the token it is configured with', async () => {
      const app = await start({ demoToken: 's3cret' });
      await assert.rejects(connect(app, '/secure', DEMO), (error: unknown) => error instanceof HandshakeRefusedError && error.status === 401);
      const ada = await connect(app, '/secure', { authorization: 'bearer s3cret' });
      assert.equal(await ada.expectMessage(), 'Hello Ada, you are signed in');
    });
  });

  describe('EventsController on /events', () => {
    it('broadcasts POST /events/announce to every connected client', async () => {
      const app = await start();
      const chat = await joinRoom(app, 'Ann', 'tea');
      const secure = await connect(app, '/secure', DEMO);
      assert.equal(await secure.expectMessage(), 'Hello Ada, you are signed in');

      const response = await announce(app, { message: 'Maintenance at noon' });
      assert.equal(response.status, 200);
      assert.deepEqual(await chat.client.expectEvent('announcement'), { text: 'Maintenance at noon' });
      assert.deepEqual(await secure.expectEvent('announcement'), { text: 'Maintenance at noon' });
    });

    it('refuses an announcement without a message with 400, and sends nothing', async () => {
      const app = await start();
      const chat = await joinRoom(app, 'Ann', 'tea');
      for (const body of [{}, { message: '   ' }, { message: 42 }]) {
        const response = await announce(app, body);
        assert.equal(response.status, 400, JSON.stringify(body));
        const error = (await response.json()) as { statusCode: number; issues: unknown[] };
        assert.equal(error.statusCode, 400);
        assert.ok(error.issues.length > 0);
      }
      await chat.client.expectNoMessage(50);
    });

    it('reports connected clients per gateway and the rooms in GET /events/stats', async () => {
      const app = await start();
      const stats = async () => (await fetch(`${app.getUrl()}/events/stats`)).json();
      assert.deepEqual(await stats(), { online: 0, gateways: { '/chat': 0, '/echo': 0, '/secure': 0 }, rooms: [] });
      await joinRoom(app, 'Ann', 'tea');
      await joinRoom(app, 'Bob', 'tea');
      await joinRoom(app, 'Cleo', 'coffee');
      const ada = await connect(app, '/secure', DEMO);
      assert.equal(await ada.expectMessage(), 'Hello Ada, you are signed in');
      assert.deepEqual(await stats(), {
        online: 4,
        gateways: { '/chat': 3, '/echo': 0, '/secure': 1 },
        rooms: [{ name: 'coffee', clients: 1 }, { name: 'tea', clients: 2 }],
      });
    });
  });

  it('serves the chat page at /', async () => {
    const app = await start();
    const response = await fetch(`${app.getUrl()}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.ok(response.headers.get('etag') !== null, 'served by useStaticAssets, with a validator');
    const html = await response.text();
    assert.match(html, /<title>toni chat<\/title>/);
    assert.match(html, /import \{ connect \} from '\/tonijs-client\.js'/);
  });

  it('serves tonijs/client to the page as one browser module, without ws or Node built-ins', async () => {
    const app = await start();
    const response = await fetch(`${app.getUrl()}/tonijs-client.js`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const script = await response.text();
    assert.match(script, /export\{[^}]*\bconnect\b/);
    assert.doesNotMatch(script, /\bimport\b[^;]*\bfrom\b|require\(|node:/, 'the module loads nothing else');
  });

  it('sends the heartbeat from its background task to every chat client', async () => {
    const app = await start({ heartbeatInterval: 20 });
    const chat = await connect(app, '/chat');
    for (let beat = 0; beat < 2; beat++) {
      const data = (await chat.expectEvent('heartbeat')) as { time: string; online: number };
      assert.equal(data.online, 1);
      assert.ok(Math.abs(Date.parse(data.time) - Date.now()) < 60_000, data.time);
    }
    const secure = await connect(app, '/secure', DEMO);
    assert.equal(await secure.expectMessage(), 'Hello Ada, you are signed in');
    await chat.expectEvent('heartbeat');
    await secure.expectNoMessage(60);
  });

  it('joins two instances through Redis: rooms, chat and announcements span both', async () => {
    const redis = await RedisServer.start();
    redises.push(redis);
    const east = await start({ redisUrl: redis.url });
    const west = await start({ redisUrl: redis.url });
    const ann = await joinRoom(east, 'Ann', 'tea');
    const bob = await joinRoom(west, 'Bob', 'tea');
    assert.deepEqual(bob.joined, { room: 'tea', name: 'Bob', inRoom: 2, online: 2 });
    assert.deepEqual(await ann.client.expectEvent('presence'), { room: 'tea', change: 'join', name: 'Bob', inRoom: 2, online: 2 });

    assert.deepEqual(await bob.client.request('send', { room: 'tea', text: 'hello from the west' }), { delivered: true });
    assert.deepEqual(await ann.client.expectEvent('message'), { room: 'tea', from: 'Bob', text: 'hello from the west' });
    assert.equal((await announce(east, { message: 'both instances' })).status, 200);
    assert.deepEqual(await bob.client.expectEvent('announcement'), { text: 'both instances' });
    assert.deepEqual(await ann.client.expectEvent('announcement'), { text: 'both instances' });
  });

  it('runs as `npm start` does: prints its URL, serves, and closes gracefully on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../examples/chat/main.ts', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1' };
    delete env['REDIS_URL'];
    const child = spawn(process.execPath, ['--conditions=tonijs-source', '--import', 'tsx', main], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const exited = once(child, 'exit');

    const lines = createInterface({ input: child.stdout! });
    const announced = new Promise<string>((resolve) => {
      lines.on('line', (line) => {
        const match = /^toni chat example listening on (http:\/\/\S+) \(in-memory broadcasting\)$/.exec(line);
        if (match) resolve(match[1]!);
      });
    });
    const url = await withTimeout(announced, 20_000, 'the example to print its URL');
    assert.equal((await fetch(`${url}/`)).status, 200);
    const client = await TestWsClient.connect(url.replace(/^http/, 'ws'), '/echo');
    clients.push(client);
    assert.equal(await client.expectMessage(), 'Welcome to the chat!');

    child.kill('SIGTERM');
    await client.expectClose(1001, 10_000);
    const [code, signal] = await withTimeout(exited, 15_000, 'the example to exit');
    assert.deepEqual([code, signal], [null, 'SIGTERM']);
  });
});
