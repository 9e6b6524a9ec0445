// tonijs/client in a real headless Chromium: the browser build (esbuild, the `browser`
// condition) loaded as a module by a page, talking to a real tonijs server through a TCP proxy
// that the test cuts, stalls and resets. Browsers cannot see WebSocket pings nor the status of a
// refused handshake: what is tested here is what the client does about that.
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { Injectable, Module, type ToniApplication, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { BroadcastModule, type Gateway, On, type WsClient, type WsHandshake } from 'tonijs/websocket';
import { AsyncQueue, deferred, withTimeout } from './support/async.js';
import { buildBrowserClient } from './support/browser-client.js';
import { TcpProxy } from './support/tcp-proxy.js';

const WAIT = { timeout: 10_000 };
const POLL = { ...WAIT, polling: 20 };

@Injectable()
class BrowserProbeGateway implements Gateway {
  readonly path = '/probe';
  readonly seen = new AsyncQueue<string>();
  readonly tokens = new AsyncQueue<string | null>();
  refuse = false;
  hold = deferred();

  onHandshake(handshake: WsHandshake) {
    this.tokens.push(handshake.query.get('token'));
    return !this.refuse;
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

  @On('ask')
  async ask(client: WsClient, question: string) {
    return client.request('confirm', question, { timeout: 2_000 });
  }

  @On('tell')
  async tell(client: WsClient, text: string) {
    await client.emit('note', text);
  }
}

@Module({ imports: [BroadcastModule], providers: [BrowserProbeGateway] })
class BrowserProbeModule {}

/** What the page leaves on `window` for the functions the test runs in it. */
interface PageGlobals {
  client: typeof import('tonijs/client');
  sockets: { socket: import('tonijs/client').ToniSocket; log: string[] }[];
  openSocket(url: string, options: object): unknown;
  loaded?: boolean;
}

/** The page: loads the client module and leaves `connect` and a recorder on `window`. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
  import * as client from '/client.js';
  // The functions the test runs here come from tsx, whose esbuild keepNames wraps some in __name().
  window.__name = (fn) => fn;
  window.client = client;
  window.sockets = [];
  window.openSocket = (url, options) => {
    const socket = client.connect(url, options);
    const log = [];
    socket.onOpen(() => log.push('open'));
    socket.onClose((info) => log.push(\`close \${info.code} \${info.willReconnect} \${info.error?.code ?? '-'}\`));
    socket.onReconnect((info) => log.push(\`reconnect \${info.recovered}\`));
    socket.onError((error) => log.push(\`error \${error.code}\`));
    window.sockets.push({ socket, log });
    return socket;
  };
  window.loaded = true;
</script>`;

describe('tonijs/client in a real browser', () => {
  let browser: Browser;
  let pages: Server;
  let pagesUrl: string;
  let app: ToniApplication;
  let probe: BrowserProbeGateway;
  let proxy: TcpProxy;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    const bundle = await buildBrowserClient();
    const script = bundle.outputFiles[0]!.text;
    pages = createServer((request, response) => {
      const isScript = request.url === '/client.js';
      response.writeHead(200, { 'content-type': isScript ? 'text/javascript' : 'text/html; charset=utf-8' });
      response.end(isScript ? script : PAGE);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => pages?.close(resolve));
  });

  beforeEach(async () => {
    app = await ToniFactory.create(BrowserProbeModule, new NodeHttpAdapter(), { logger: false });
    app.useWebSocketAdapter(new WsAdapter({ heartbeatInterval: 0 }));
    await app.listen(0, '127.0.0.1');
    probe = app.get(BrowserProbeGateway);
    proxy = await TcpProxy.start(app.getUrl());
    context = await browser.newContext();
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(pagesUrl);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).loaded === true, undefined, WAIT);
  });
  afterEach(async () => {
    probe.hold.resolve();
    await page.evaluate(() => Promise.all((globalThis as unknown as PageGlobals).sockets.map(({ socket }) => socket.close())));
    await context.close();
    await proxy.close();
    await app.close();
    assert.deepEqual(pageErrors.splice(0), [], 'the page threw');
  });

  /** Opens a socket in the page to `path` through the proxy; returns its index. */
  async function openInPage(path: string, options: Record<string, unknown> = {}): Promise<number> {
    return page.evaluate(
      ([url, given]) => {
        const page = globalThis as unknown as PageGlobals;
        page.openSocket(url, { reconnect: { minDelay: 10, maxDelay: 40 }, heartbeat: false, ...given });
        return page.sockets.length - 1;
      },
      [proxy.url(path), options] as const,
    );
  }

  async function logOf(index: number): Promise<string[]> {
    return page.evaluate((at) => (globalThis as unknown as PageGlobals).sockets[at]!.log, index);
  }

  async function waitForLog(index: number, entry: string): Promise<void> {
    await page.waitForFunction(([at, wanted]) => (globalThis as unknown as PageGlobals).sockets[at]!.log.includes(wanted), [index, entry] as const, POLL).catch(async (error: Error) => {
      throw new Error(`${error.message}\n  waiting for "${entry}" in the log of socket ${index}: ${JSON.stringify(await logOf(index))}`);
    });
  }

  it('requests, emits, handles server events and answers the server\'s requests', async () => {
    const result = await withTimeout(page.evaluate(async (url) => {
      const socket = (globalThis as unknown as PageGlobals).client.connect(url, { heartbeat: false });
      const notes: unknown[] = [];
      socket.on('note', (text) => void notes.push(text));
      socket.on('confirm', async (question) => `browser says yes to ${String(question)}`);
      const queued = socket.request('record', 'queued before open');
      const state = socket.state;
      await socket.ready();
      socket.emit('record', 'emitted');
      const asked = await socket.request('ask', 'tea?');
      await socket.request('tell', 'hello page');
      const answer = { state, queued: await queued, asked, notes, after: socket.state };
      await socket.close();
      return answer;
    }, proxy.url('/probe')), WAIT.timeout, 'the page\'s calls');
    assert.deepEqual(result, { state: 'connecting', queued: 'queued before open', asked: 'browser says yes to tea?', notes: ['hello page'], after: 'open' });
    assert.deepEqual(await probe.seen.take(2), ['queued before open', 'emitted']);
  });

  it('resolves a URL relative to the page, with ws: for http:', async () => {
    const url = await page.evaluate(async () => {
      const socket = (globalThis as unknown as PageGlobals).client.connect('/probe', { reconnect: false });
      await socket.close();
      return socket.url;
    });
    assert.equal(url, `${pagesUrl.replace('http:', 'ws:')}probe`);
  });

  it('reconnects by itself after the link is cut: the request in flight rejects with disconnected, queued calls go once open, in order', async () => {
    const index = await openInPage('/probe');
    await waitForLog(index, 'open');
    const inFlight = page.evaluate((at) => (globalThis as unknown as PageGlobals).sockets[at]!.socket.request('slow', 'cut').then(String, (error: { code: string }) => error.code), index);
    assert.equal(await probe.seen.next(), 'slow:cut');
    proxy.mode('reset');
    proxy.cut();
    await waitForLog(index, 'close 1006 true -');
    assert.equal(await inFlight, 'disconnected');
    const queued = page.evaluate((at) => {
      const { socket } = (globalThis as unknown as PageGlobals).sockets[at]!;
      socket.emit('record', 'offline 1');
      return Promise.all([socket.state, socket.request('record', 'offline 2')]);
    }, index);
    await proxy.arrivals.next();
    proxy.mode('forward');
    assert.deepEqual(await queued, ['reconnecting', 'offline 2']);
    assert.deepEqual(await probe.seen.take(2), ['offline 1', 'offline 2']);
    assert.deepEqual(await logOf(index), ['open', 'close 1006 true -', 'open', 'reconnect false']);
  });

  it('notices a silent dead link with the tonijs.v1 heartbeat (browsers cannot see WebSocket pings) and reconnects', async () => {
    // An attempt made while the link is still stalled hangs: connectTimeout gives it up.
    const index = await openInPage('/probe', { heartbeat: { interval: 100, timeout: 100 }, connectTimeout: 300 });
    await waitForLog(index, 'open');
    proxy.mode('stall');
    await waitForLog(index, 'close 1006 true -');
    proxy.mode('forward');
    await waitForLog(index, 'reconnect false');
    assert.equal(await page.evaluate((at) => (globalThis as unknown as PageGlobals).sockets[at]!.socket.request('record', 'alive again'), index), 'alive again');
  });

  it('evaluates the query function on every attempt: a reconnect sends a fresh token', async () => {
    const index = await page.evaluate((url) => {
      const page = globalThis as unknown as PageGlobals;
      let issued = 0;
      page.openSocket(url, { reconnect: { minDelay: 10, maxDelay: 40 }, heartbeat: false, query: async () => ({ token: `browser-${++issued}` }) });
      return page.sockets.length - 1;
    }, proxy.url('/probe'));
    await waitForLog(index, 'open');
    assert.equal(await probe.tokens.next(), 'browser-1');
    proxy.cut();
    await waitForLog(index, 'reconnect false');
    assert.equal(await probe.tokens.next(), 'browser-2');
  });

  it('cannot see why a handshake was refused, so it retries with backoff and gives up after maxAttempts with unreachable', async () => {
    probe.refuse = true;
    const index = await openInPage('/probe', { reconnect: { minDelay: 10, maxDelay: 40, maxAttempts: 3 } });
    await waitForLog(index, 'close 1006 false unreachable');
    assert.equal((await probe.tokens.take(3)).length, 3);
    assert.equal(await page.evaluate((at) => (globalThis as unknown as PageGlobals).sockets[at]!.socket.state, index), 'closed');
  });
});
