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
import type { ChatEvent } from '../examples/chat/protocol.js';
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

  /**
   * Connects to a room as the page does, past the welcome and the `joined` event. Across
   * instances, the news that someone else joined just before may still be on its way through
   * Redis: such a `presence` event may come first (`earlier`) when `allowEarlierPresence` is set.
   */
  async function joinRoom(app: ToniApplication, name: string, room: string, options: { allowEarlierPresence?: boolean } = {}) {
    const client = await connect(app, `/chat?name=${encodeURIComponent(name)}&room=${encodeURIComponent(room)}`);
    assert.equal(await client.expectMessage(), 'Welcome to the chat!');
    const earlier: ChatEvent[] = [];
    let joined = await expectEvent(client);
    while (options.allowEarlierPresence && joined.type === 'presence' && joined.name !== name && earlier.length < 5) {
      earlier.push(joined);
      joined = await expectEvent(client);
    }
    assert.equal(joined.type, 'joined', JSON.stringify(joined));
    return { client, joined, earlier };
  }

  async function expectEvent(client: TestWsClient): Promise<ChatEvent> {
    return JSON.parse(await client.expectMessage()) as ChatEvent;
  }

  function announce(app: ToniApplication, body: unknown): Promise<Response> {
    return fetch(`${app.getUrl()}/events/announce`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  describe('ChatGateway on /chat', () => {
    it('welcomes a client and echoes what it says', async () => {
      const app = await start();
      const client = await connect(app, '/chat');
      assert.equal(await client.expectMessage(), 'Welcome to the chat!');
      client.send('hello toni');
      assert.equal(await client.expectMessage(), 'You said: hello toni');
      client.send('second');
      assert.equal(await client.expectMessage(), 'You said: second');
    });

    it('relays room chat to the room\'s other members only, with join and leave events', async () => {
      const app = await start();
      const ann = await joinRoom(app, 'Ann', 'tea');
      assert.deepEqual(ann.joined, { type: 'joined', name: 'Ann', room: 'tea', inRoom: 1, online: 1 });
      const cleo = await joinRoom(app, 'Cleo', 'coffee');
      assert.deepEqual(cleo.joined, { type: 'joined', name: 'Cleo', room: 'coffee', inRoom: 1, online: 2 });
      const bob = await joinRoom(app, 'Bob', 'tea');
      assert.deepEqual(bob.joined, { type: 'joined', name: 'Bob', room: 'tea', inRoom: 2, online: 3 });
      assert.deepEqual(await expectEvent(ann.client), { type: 'presence', change: 'join', name: 'Bob', room: 'tea', inRoom: 2, online: 3 });

      ann.client.send('tea anyone?');
      assert.equal(await ann.client.expectMessage(), 'You said: tea anyone?');
      assert.equal(await bob.client.expectMessage(), 'Ann: tea anyone?');

      await bob.client.close();
      assert.deepEqual(await expectEvent(ann.client), { type: 'presence', change: 'leave', name: 'Bob', room: 'tea', inRoom: 1, online: 2 });
      await cleo.client.expectNoMessage(50);
    });

    it('refuses a malformed name or room with HTTP 400', async () => {
      const app = await start();
      for (const query of ['?name=%3Cscript%3E', `?room=${'x'.repeat(33)}`, '?name=&room=tea']) {
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
      const listener = await connect(app, '/chat');
      assert.equal(await listener.expectMessage(), 'Welcome to the chat!');
      const ada = await connect(app, '/secure', DEMO);
      assert.equal(await ada.expectMessage(), 'Hello Ada, you are signed in');
      ada.send('doors close at six');
      assert.equal(await listener.expectMessage(), '[Ada] doors close at six');
      assert.equal(await ada.expectMessage(), '[Ada] doors close at six');
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
      const chat = await connect(app, '/chat');
      assert.equal(await chat.expectMessage(), 'Welcome to the chat!');
      const secure = await connect(app, '/secure', DEMO);
      assert.equal(await secure.expectMessage(), 'Hello Ada, you are signed in');

      const response = await announce(app, { message: 'Maintenance at noon' });
      assert.equal(response.status, 200);
      assert.equal(await chat.expectMessage(), '[Announcement] Maintenance at noon');
      assert.equal(await secure.expectMessage(), '[Announcement] Maintenance at noon');
    });

    it('refuses an announcement without a message with 400, and sends nothing', async () => {
      const app = await start();
      const chat = await connect(app, '/chat');
      assert.equal(await chat.expectMessage(), 'Welcome to the chat!');
      for (const body of [{}, { message: '   ' }, { message: 42 }]) {
        const response = await announce(app, body);
        assert.equal(response.status, 400, JSON.stringify(body));
        const error = (await response.json()) as { statusCode: number; issues: unknown[] };
        assert.equal(error.statusCode, 400);
        assert.ok(error.issues.length > 0);
      }
      await chat.expectNoMessage(50);
    });

    it('reports connected clients per gateway and the rooms in GET /events/stats', async () => {
      const app = await start();
      const stats = async () => (await fetch(`${app.getUrl()}/events/stats`)).json();
      assert.deepEqual(await stats(), { online: 0, gateways: { '/chat': 0, '/secure': 0 }, rooms: [] });
      await joinRoom(app, 'Ann', 'tea');
      await joinRoom(app, 'Bob', 'tea');
      await joinRoom(app, 'Cleo', 'coffee');
      const ada = await connect(app, '/secure', DEMO);
      assert.equal(await ada.expectMessage(), 'Hello Ada, you are signed in');
      assert.deepEqual(await stats(), {
        online: 4,
        gateways: { '/chat': 3, '/secure': 1 },
        rooms: [{ name: 'coffee', clients: 1 }, { name: 'tea', clients: 2 }],
      });
    });
  });

  it('serves the chat page at /', async () => {
    const app = await start();
    const response = await fetch(`${app.getUrl()}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await response.text();
    assert.match(html, /<title>toni chat<\/title>/);
    assert.match(html, /new WebSocket\(url\)/);
  });

  it('sends the heartbeat from its background task to every client', async () => {
    const app = await start({ heartbeatInterval: 20 });
    const chat = await connect(app, '/chat');
    const secure = await connect(app, '/secure', DEMO);
    // A beat may come before or after the greeting; everything else is a heartbeat.
    for (const [client, greeting] of [[chat, 'Welcome to the chat!'], [secure, 'Hello Ada, you are signed in']] as const) {
      const received = [await client.expectMessage(), await client.expectMessage(), await client.expectMessage()];
      assert.equal(received.filter((text) => text === greeting).length, 1, `${greeting} in ${received.join(' | ')}`);
      const beats = received.filter((text) => text !== greeting).map((text) => JSON.parse(text) as ChatEvent);
      assert.equal(beats.length, 2);
      for (const beat of beats) {
        assert.equal(beat.type, 'heartbeat');
        if (beat.type !== 'heartbeat') continue;
        assert.equal(beat.online, 1);
        assert.ok(Math.abs(Date.parse(beat.time) - Date.now()) < 60_000, beat.time);
      }
    }
  });

  it('joins two instances through Redis: rooms, chat and announcements span both', async () => {
    const redis = await RedisServer.start();
    redises.push(redis);
    const east = await start({ redisUrl: redis.url });
    const west = await start({ redisUrl: redis.url });
    const ann = await joinRoom(east, 'Ann', 'tea');
    const bob = await joinRoom(west, 'Bob', 'tea', { allowEarlierPresence: true });
    for (const event of bob.earlier) assert.deepEqual(event, { type: 'presence', change: 'join', name: 'Ann', room: 'tea', inRoom: 1, online: 1 });
    assert.deepEqual(bob.joined, { type: 'joined', name: 'Bob', room: 'tea', inRoom: 2, online: 2 });
    assert.deepEqual(await expectEvent(ann.client), { type: 'presence', change: 'join', name: 'Bob', room: 'tea', inRoom: 2, online: 2 });

    bob.client.send('hello from the west');
    assert.equal(await ann.client.expectMessage(), 'Bob: hello from the west');
    assert.equal((await announce(east, { message: 'both instances' })).status, 200);
    assert.equal(await bob.client.expectMessage(), 'You said: hello from the west');
    assert.equal(await bob.client.expectMessage(), '[Announcement] both instances');
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
    const client = await TestWsClient.connect(url.replace(/^http/, 'ws'), '/chat');
    clients.push(client);
    assert.equal(await client.expectMessage(), 'Welcome to the chat!');

    child.kill('SIGTERM');
    await client.expectClose(1001, 10_000);
    const [code, signal] = await withTimeout(exited, 15_000, 'the example to exit');
    assert.deepEqual([code, signal], [null, 'SIGTERM']);
  });
});
