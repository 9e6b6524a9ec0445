import type { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import type { ToniApplication } from '../app/application.js';
import { WsException } from '../websocket/ws-exception.js';

/** Options of `TestWsClient.connect`. */
export interface TestWsClientOptions {
  /** Headers of the upgrade request, e.g. `authorization`. */
  headers?: Record<string, string>;
  /** Milliseconds to wait for the upgrade. Default 5 000. */
  timeout?: number;
}

/** A message as the test client received it. */
export type ReceivedMessage = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array };

/** The `ws` WebSocket under a `TestWsClient`, as far as tests reach for it (it is `ws`'s `WebSocket`). */
export interface RawTestSocket extends EventEmitter {
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  ping(data?: Uint8Array): void;
  pong(data?: Uint8Array): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

/** Why a connection attempt failed: the HTTP status of a refused handshake. */
export class HandshakeRefusedError extends Error {
  override readonly name = 'HandshakeRefusedError';
  constructor(readonly status: number, readonly body: string) {
    super(`The WebSocket handshake was refused with HTTP ${status}: ${body}`);
  }
}

/**
 * A WebSocket client for tests: it records every message from the moment it connects, so a
 * test waits for what it expects instead of sleeping.
 *
 * @example
 * const client = await TestWsClient.connect(app, '/chat');
 * assert.equal(await client.expectMessage(), 'Welcome to the chat!');
 * client.send('hi');
 * assert.equal(await client.expectMessage(), 'You said: hi');
 * assert.deepEqual(await client.request('join', 'lobby'), { joined: 'lobby' });   // gateway events
 * await client.close();
 */
export class TestWsClient {
  readonly #ws: WebSocket;
  readonly #received: ReceivedMessage[] = [];
  readonly #waiters: (() => void)[] = [];
  #closed: { code: number; reason: string } | undefined;
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#received.push(isBinary ? { kind: 'binary', bytes: new Uint8Array(data) } : { kind: 'text', text: data.toString() });
      this.#wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.#closed = { code, reason: reason.toString() };
      this.#wake();
    });
    ws.on('error', () => this.#wake());
  }

  /**
   * Connects to `path` of a listening application (or to a full `ws://` URL). Rejects with
   * `HandshakeRefusedError` (with the status) if the server refuses the upgrade.
   */
  static connect(target: ToniApplication | string, path = '', options: TestWsClientOptions = {}): Promise<TestWsClient> {
    const url = typeof target === 'string' ? `${target}${path}` : `${target.getUrl().replace(/^http/, 'ws')}${path}`;
    const ws = new WebSocket(url, { headers: options.headers });
    const client = new TestWsClient(ws);
    const timeout = options.timeout ?? 5_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`TestWsClient could not connect to ${url} within ${timeout} ms`));
      }, timeout);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          clearTimeout(timer);
          ws.terminate();
          reject(new HandshakeRefusedError(response.statusCode ?? 0, Buffer.concat(chunks).toString()));
        });
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** The next text message (a binary one fails the expectation), within `timeout` ms. */
  async expectMessage(timeout = 2_000): Promise<string> {
    const message = await this.expectAny(timeout);
    if (message.kind !== 'text') throw new Error(`Expected a text message, got a binary message of ${message.bytes.byteLength} bytes`);
    return message.text;
  }

  /** The next binary message, within `timeout` ms. */
  async expectBinary(timeout = 2_000): Promise<Uint8Array> {
    const message = await this.expectAny(timeout);
    if (message.kind !== 'binary') throw new Error(`Expected a binary message, got text ${JSON.stringify(message.text)}`);
    return message.bytes;
  }

  /** The next message of either kind, within `timeout` ms. */
  async expectAny(timeout = 2_000): Promise<ReceivedMessage> {
    await this.#until(() => this.#received.length > 0 || this.#closed !== undefined, timeout, () => `Expected a message within ${timeout} ms, but none arrived`);
    const message = this.#received.shift();
    if (message === undefined) throw new Error(`Expected a message, but the connection closed with ${this.#closed!.code} ${this.#closed!.reason}`.trim());
    return message;
  }

  /** Waits for the server to close the connection, and checks the code when given. */
  async expectClose(code?: number, timeout = 2_000): Promise<{ code: number; reason: string }> {
    await this.#until(() => this.#closed !== undefined, timeout, () => `Expected the connection to close${code === undefined ? '' : ` with ${code}`} within ${timeout} ms, but it is still open`);
    const closed = this.#closed!;
    if (code !== undefined && closed.code !== code) throw new Error(`Expected close code ${code}, got ${closed.code} ${closed.reason}`.trim());
    return closed;
  }

  /** Fails if a message arrives within `ms` milliseconds. */
  async expectNoMessage(ms = 100): Promise<void> {
    const arrived = await this.#until(() => this.#received.length > 0, ms, undefined);
    if (arrived) throw new Error(`Expected no message for ${ms} ms, got ${describe(this.#received[0]!)}`);
  }

  send(data: string | Uint8Array): void {
    this.#ws.send(data);
  }

  /** Closes from the client side and waits for the close to complete. */
  async close(code = 1000, reason = ''): Promise<void> {
    if (this.#closed !== undefined) return;
    this.#ws.close(code, reason);
    await this.#until(() => this.#closed !== undefined, 5_000, () => 'The connection did not close within 5000 ms');
  }

  /** Sends the event envelope `{"event":…,"data":…}` to a gateway with `@On` handlers. */
  emit(event: string, data?: unknown): void {
    this.#ws.send(JSON.stringify({ event, data }));
  }

  /**
   * Sends an event asking for an acknowledgement and resolves with it, leaving every other
   * message in place for the `expect…` calls. Rejects with a `WsException` carrying the
   * server's error code, or after `timeout` ms.
   */
  async request(event: string, data?: unknown, timeout = 2_000): Promise<unknown> {
    const id = `test-${this.#nextId++}`;
    this.#ws.send(JSON.stringify({ event, data, id }));
    let ack: { data?: unknown; error?: { code: string; message: string; [detail: string]: unknown } } | undefined;
    const find = () => {
      const index = this.#received.findIndex((message) => message.kind === 'text' && ackOf(message.text, id) !== undefined);
      if (index < 0) return false;
      ack = ackOf((this.#received.splice(index, 1)[0] as { text: string }).text, id);
      return true;
    };
    await this.#until(() => find() || this.#closed !== undefined, timeout, () => `Expected the acknowledgement of "${event}" within ${timeout} ms, but none arrived`);
    if (ack === undefined) throw new Error(`Expected the acknowledgement of "${event}", but the connection closed with ${this.#closed!.code}`);
    if (ack.error !== undefined) {
      const { code, message, ...details } = ack.error;
      throw new WsException(code, message, details);
    }
    return ack.data;
  }

  /** The next message, which must be the event `event` (any event when omitted); resolves with its data. */
  async expectEvent(event?: string, timeout = 2_000): Promise<unknown> {
    const text = await this.expectMessage(timeout);
    let envelope: { event?: unknown; data?: unknown };
    try {
      envelope = JSON.parse(text) as typeof envelope;
    } catch {
      throw new Error(`Expected ${event === undefined ? 'an event' : `the event "${event}"`}, got text ${JSON.stringify(text)}`);
    }
    if (typeof envelope.event !== 'string' || (event !== undefined && envelope.event !== event)) {
      throw new Error(`Expected ${event === undefined ? 'an event' : `the event "${event}"`}, got ${text}`);
    }
    return envelope.data;
  }

  /** The underlying `ws` WebSocket, for what this client does not wrap. */
  get raw(): RawTestSocket {
    return this.#ws;
  }

  /** Resolves true when `ready` holds within `ms`; false, or rejects with `failure()`, otherwise. */
  #until(ready: () => boolean, ms: number, failure: (() => string) | undefined): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ready()) {
          this.#waiters.push(check);
          return;
        }
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(check);
        if (index >= 0) this.#waiters.splice(index, 1);
        if (failure === undefined) resolve(false);
        else reject(new Error(failure()));
      }, ms);
      this.#waiters.push(check);
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}

/** The acknowledgement `text` holds for `id`, if it is one. */
function ackOf(text: string, id: string): { data?: unknown; error?: { code: string; message: string } } | undefined {
  if (!text.includes(id)) return undefined;
  try {
    const value = JSON.parse(text) as { id?: unknown; event?: unknown; data?: unknown; error?: { code: string; message: string } };
    return value.id === id && value.event === undefined ? value : undefined;
  } catch {
    return undefined;
  }
}

function describe(message: ReceivedMessage): string {
  return message.kind === 'text' ? `text ${JSON.stringify(message.text)}` : `${message.bytes.byteLength} binary bytes`;
}
