// The example chat page, driven in a real headless Chromium: two people chat in one room, an
// announcement posted over HTTP reaches both, and the pages come back by themselves when their
// connections are cut or the server restarts. Screenshots land in test-artifacts/.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import type { ToniApplication } from 'tonijs';
import { createChatApp } from '../examples/chat/app.js';
import { TcpProxy } from './support/tcp-proxy.js';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const WAIT = { timeout: 10_000 };

describe('the chat page in a real browser', () => {
  let browser: Browser;
  let app: ToniApplication;
  let url: string;
  const contexts: BrowserContext[] = [];
  const pageErrors: Error[] = [];

  before(async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    app = await createChatApp({ logger: false, heartbeatInterval: 0 });
    url = await app.listen(0, '127.0.0.1');
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    await app.close();
    assert.deepEqual(pageErrors.splice(0).map(String), [], 'the page threw');
  });

  /** A fresh browser profile (no shared localStorage) with the page open, from `base` (the app, or a proxy in front of it). */
  async function openPage(base = url): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 760, height: 620 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error));
    const response = await page.goto(`${base}/`);
    assert.equal(response?.status(), 200);
    return page;
  }

  async function join(page: Page, name: string, room: string): Promise<void> {
    await page.fill('#name', name);
    await page.fill('#room', room);
    await page.click('#join');
    await page.locator('.msg--system', { hasText: `You joined #${room} as ${name}.` }).waitFor(WAIT);
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#message', text);
    await page.press('#message', 'Enter');
    await page.locator('.msg--own', { hasText: text }).waitFor(WAIT);
  }

  /** Waits until `selector` shows exactly `expected`, then returns what it shows. */
  async function textOnceEqual(page: Page, selector: string, expected: string): Promise<string | null> {
    await page.locator(selector, { hasText: new RegExp(`^${expected}$`) }).waitFor(WAIT).catch(() => undefined);
    return page.textContent(selector);
  }

  it('serves the page with its join form', async () => {
    const page = await openPage();
    assert.equal(await page.title(), 'toni chat');
    assert.equal(await page.isVisible('#join-view'), true);
    assert.equal(await page.isVisible('#chat-view'), false);
    assert.equal(await page.inputValue('#room'), 'lobby');
    assert.equal(await page.textContent('#status'), 'offline');
    await page.screenshot({ path: `${ARTIFACTS}chat-join.png` });
  });

  it('lets two pages in the same room chat with each other and shows that two are connected', async () => {
    const ann = await openPage();
    const bob = await openPage();
    await join(ann, 'Ann', 'tea-room');
    await join(bob, 'Bob', 'tea-room');

    await ann.locator('.msg--system', { hasText: 'Bob joined.' }).waitFor(WAIT);
    assert.equal(await textOnceEqual(ann, '#room-count', '2'), '2');
    assert.equal(await textOnceEqual(bob, '#room-count', '2'), '2');
    assert.equal(await textOnceEqual(ann, '#online-count', '2'), '2');
    assert.equal(await ann.textContent('#status'), 'online');

    // Typing is relayed as an event; the line is acknowledged once delivered (the tick).
    await ann.type('#message', 'Hello Bob');
    await bob.locator('#typing', { hasText: 'Ann is typing…' }).waitFor(WAIT);
    await ann.fill('#message', '');
    await say(ann, 'Hello Bob, tea?');
    await ann.locator('.msg--own:not(.pending) .tick', { hasText: '✓' }).waitFor(WAIT);
    const fromAnn = bob.locator('.msg--other', { hasText: 'Hello Bob, tea?' });
    await fromAnn.waitFor(WAIT);
    assert.equal(await fromAnn.locator('.author').textContent(), 'Ann');
    assert.equal(await bob.textContent('#typing'), '', 'a message ends the typing notice');
    await bob.screenshot({ path: `${ARTIFACTS}chat-two-pages.png` });

    await say(bob, 'Yes please!');
    const fromBob = ann.locator('.msg--other', { hasText: 'Yes please!' });
    await fromBob.waitFor(WAIT);
    assert.equal(await fromBob.locator('.author').textContent(), 'Bob');

    // Each sees their own line once, as their own, and the other's as the other's.
    assert.equal(await ann.locator('.msg--own').count(), 1);
    assert.equal(await bob.locator('.msg--other').count(), 1);

    await bob.click('#leave');
    await ann.locator('.msg--system', { hasText: 'Bob left.' }).waitFor(WAIT);
    assert.equal(await textOnceEqual(ann, '#room-count', '1'), '1');
    assert.equal(await bob.isVisible('#join-view'), true);
  });

  it('keeps rooms apart', async () => {
    const ann = await openPage();
    const cleo = await openPage();
    const bob = await openPage();
    await join(ann, 'Ann', 'tea-room');
    await join(cleo, 'Cleo', 'coffee-room');
    await join(bob, 'Bob', 'tea-room');
    await say(cleo, 'Anyone for coffee?');
    await say(ann, 'Tea here');
    await bob.locator('.msg--other', { hasText: 'Tea here' }).waitFor(WAIT);
    // Cleo's line was sent before Ann's; had it reached the tea room, Bob would have it by now.
    assert.equal(await bob.locator('.msg--other', { hasText: 'Anyone for coffee?' }).count(), 0);
    assert.equal(await cleo.locator('.msg--other').count(), 0);
    assert.equal(await textOnceEqual(cleo, '#room-count', '1'), '1');
    assert.equal(await textOnceEqual(bob, '#online-count', '3'), '3');
  });

  it('shows an announcement posted over HTTP on both pages', async () => {
    const ann = await openPage();
    const bob = await openPage();
    await join(ann, 'Ann', 'tea-room');
    await join(bob, 'Bob', 'tea-room');
    await say(ann, 'Hello Bob, tea?');
    await bob.locator('.msg--other', { hasText: 'Hello Bob, tea?' }).waitFor(WAIT);
    await say(bob, 'Yes please! Milk, no sugar.');
    await ann.locator('.msg--other', { hasText: 'Yes please! Milk, no sugar.' }).waitFor(WAIT);

    const response = await fetch(`${url}/events/announce`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'The kettle is on in 5 minutes' }),
    });
    assert.equal(response.status, 200);

    for (const page of [ann, bob]) {
      const announcement = page.locator('.msg--announcement', { hasText: 'The kettle is on in 5 minutes' });
      await announcement.waitFor(WAIT);
      assert.equal(await announcement.locator('.text').textContent(), 'The kettle is on in 5 minutes');
    }

    await ann.screenshot({ path: `${ARTIFACTS}chat-ann.png` });
    await bob.screenshot({ path: `${ARTIFACTS}chat-bob.png` });
  });

  it('comes back by itself when the connections are cut or the server restarts, and the chat goes on', async () => {
    // Each page reaches the app through its own TCP proxy, which the test cuts for real.
    const proxies = [await TcpProxy.start(url), await TcpProxy.start(url)];
    const [toAnn, toBob] = proxies as [TcpProxy, TcpProxy];
    const reconnected = (page: Page, times: number) => page.locator('.msg--system', { hasText: 'Reconnected.' }).nth(times - 1).waitFor(WAIT);
    try {
      const ann = await openPage(toAnn.url('', 'http'));
      const bob = await openPage(toBob.url('', 'http'));
      await join(ann, 'Ann', 'tea-room');
      await join(bob, 'Bob', 'tea-room');
      await say(ann, 'Before the cut');
      await bob.locator('.msg--other', { hasText: 'Before the cut' }).waitFor(WAIT);

      // Both links cut: each page says so, reconnects, joins the room again.
      toAnn.cut();
      toBob.cut();
      for (const page of [ann, bob]) await reconnected(page, 1);
      for (const page of [ann, bob]) assert.equal(await textOnceEqual(page, '#room-count', '2'), '2');
      assert.equal(await ann.textContent('#status'), 'online');
      assert.equal(await ann.locator('.msg--system', { hasText: 'Connection lost. Reconnecting…' }).count(), 1);
      await say(bob, 'After the cut');
      await ann.locator('.msg--other', { hasText: 'After the cut' }).waitFor(WAIT);

      // Ann offline (her proxy resets every connection): her line waits in the client's queue and
      // is delivered, acknowledged, once she is back.
      toAnn.mode('reset');
      toAnn.cut();
      await ann.locator('#status', { hasText: 'reconnecting' }).waitFor(WAIT);
      await ann.fill('#message', 'Sent while offline');
      await ann.press('#message', 'Enter');
      await ann.locator('.msg--own.pending', { hasText: 'Sent while offline' }).waitFor(WAIT);
      // What Bob says meanwhile is replayed to her when she is back, once, before anything new.
      await say(bob, 'While Ann was away');
      await bob.locator('.msg--own', { hasText: 'While Ann was away' }).locator('.tick').waitFor(WAIT);
      await ann.screenshot({ path: `${ARTIFACTS}chat-reconnecting.png` });
      toAnn.mode('forward');
      await ann.locator('.msg--own:not(.pending)', { hasText: 'Sent while offline' }).locator('.tick').waitFor(WAIT);
      await bob.locator('.msg--other', { hasText: 'Sent while offline' }).waitFor(WAIT);
      await reconnected(ann, 2);
      assert.equal(await ann.locator('.msg--system .text', { hasText: 'Reconnected.' }).nth(1).textContent(), 'Reconnected. Nothing was missed.');
      await say(bob, 'Welcome back');
      await ann.locator('.msg--other', { hasText: 'Welcome back' }).waitFor(WAIT);
      const othersSeen = await ann.locator('.msg--other .text').allTextContents();
      assert.deepEqual(othersSeen.slice(-2), ['While Ann was away', 'Welcome back']);
      assert.equal(othersSeen.filter((text) => text === 'While Ann was away').length, 1, 'replayed once');

      // The server restarts: a new application, on another port behind the same addresses.
      await app.close();
      app = await createChatApp({ logger: false, heartbeatInterval: 0 });
      const port = Number(new URL(await app.listen(0, '127.0.0.1')).port);
      for (const proxy of proxies) proxy.retarget(port);
      await reconnected(ann, 3);
      await reconnected(bob, 2);
      // The new server's history starts afresh: the pages are told they may have missed something.
      assert.equal(await ann.locator('.msg--system .text', { hasText: 'Reconnected.' }).nth(2).textContent(), 'Reconnected. Some messages may be missing.');
      for (const page of [ann, bob]) assert.equal(await textOnceEqual(page, '#room-count', '2'), '2');
      await say(ann, 'After the restart');
      await bob.locator('.msg--other', { hasText: 'After the restart' }).waitFor(WAIT);
      await say(bob, 'Still here');
      await ann.locator('.msg--other', { hasText: 'Still here' }).waitFor(WAIT);
      assert.equal(await ann.locator('.msg--own.failed').count(), 0, 'a line failed');
      await bob.screenshot({ path: `${ARTIFACTS}chat-after-restart.png` });
    } finally {
      await Promise.all(proxies.map((proxy) => proxy.close()));
    }
  });
});
