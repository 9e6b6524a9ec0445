import { ToniError } from '../errors.js';
import { HttpException } from '../http/http-exception.js';
import type { Logger } from '../logger.js';
import { type ClientChannel, type WsConnection, WsClient } from './client.js';
import type { DisconnectReason } from './disconnect-reason.js';
import { type Gateway, isGateway } from './gateway.js';
import type { WsHandshake } from './handshake.js';
import { frameOf } from './frame.js';
import type { WsMessage } from './message.js';
import { Outbound, type OutboundOwner, closeSegment } from './outbound.js';

/**
 * A provider that wants to know about every client: the broadcast registry implements it.
 * `clientConnected` runs after the handshake and before `onConnect`.
 */
export interface ConnectionObserver {
  clientConnected(session: ClientSession): unknown;
  clientDisconnected(session: ClientSession): unknown;
  roomChanged(session: ClientSession, room: string, joined: boolean): unknown;
}

/** Options of `GatewayHost`. */
export interface GatewayHostOptions {
  /** A client whose unsent bytes pass this is dropped as a slow consumer. */
  maxBufferedBytes: number;
  /** Milliseconds a slow consumer gets to read its 1013 close frame before it is cut off. */
  slowConsumerGrace: number;
}

/** Marks a provider as a `ConnectionObserver`. */
export const CONNECTION_OBSERVER: unique symbol = Symbol.for('toni.connectionObserver');

/** A gateway with the name and address it is served under. */
export interface GatewayEntry {
  readonly gateway: Gateway;
  /** The gateway's class name, for logs. */
  readonly name: string;
  readonly path: string;
  /** Its own port, or undefined when it shares the HTTP server's. */
  readonly port: number | undefined;
}

/** The outcome of `onHandshake`. */
export type HandshakeVerdict = { accepted: true } | { accepted: false; status: number; message: string };

/**
 * The transport-independent half of WebSocket support: finds the gateways, runs their hooks in
 * the promised order with every exception caught and logged, and tracks the open sessions.
 * WebSocket adapters own the sockets and call into it.
 */
export class GatewayHost {
  readonly entries: readonly GatewayEntry[];
  readonly #context: SessionContext;
  readonly #sessions = new Set<ClientSession>();

  constructor(instances: readonly unknown[], logger: Logger, options: GatewayHostOptions) {
    this.entries = findGateways(instances);
    this.#context = { logger, observers: instances.filter(isObserver), sessions: this.#sessions, ...options };
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  sessions(): IterableIterator<ClientSession> {
    return this.#sessions.values();
  }

  /** Runs `onHandshake`; never rejects. */
  async authorize(entry: GatewayEntry, handshake: WsHandshake): Promise<HandshakeVerdict> {
    if (entry.gateway.onHandshake === undefined) return { accepted: true };
    try {
      const verdict: unknown = await entry.gateway.onHandshake(handshake);
      if (verdict === true) return { accepted: true };
      if (verdict !== false) {
        this.#context.logger.warn({ gateway: entry.name, returned: typeof verdict }, `${entry.name}.onHandshake returned ${String(verdict)} instead of a boolean; the connection is refused. Return true to accept.`);
      }
      return { accepted: false, status: 401, message: 'Unauthorized' };
    } catch (error) {
      if (error instanceof HttpException) return { accepted: false, status: error.status, message: error.message };
      this.#context.logger.error({ err: error, gateway: entry.name, url: handshake.url }, `${entry.name}.onHandshake threw; the connection is refused with 500`);
      return { accepted: false, status: 500, message: 'Internal Server Error' };
    }
  }

  /** Starts a session for an upgraded connection: registration, `onConnect`, then messages. */
  open(entry: GatewayEntry, handshake: WsHandshake, connection: WsConnection): ClientSession {
    const session = new ClientSession(entry, handshake, connection, this.#context);
    this.#sessions.add(session);
    session.start();
    return session;
  }
}

interface SessionContext extends GatewayHostOptions {
  readonly logger: Logger;
  readonly observers: readonly ConnectionObserver[];
  readonly sessions: Set<ClientSession>;
}

/**
 * One client's life: its outbound queue, its rooms, its message queue and the order of its
 * hooks. The adapter reports what the socket does (`receive`, `ended`); the session decides
 * when hooks run.
 */
export class ClientSession implements ClientChannel, OutboundOwner {
  readonly client: WsClient;
  readonly entry: GatewayEntry;
  readonly connection: WsConnection;
  readonly outbound: Outbound;
  #rooms: Set<string> | undefined;
  readonly #context: SessionContext;
  #queue: (WsMessage | undefined)[] | undefined;
  #head = 0;
  #ready = false;
  #busy = false;
  #rejected = false;
  #cause: DisconnectReason | undefined;
  #ended: { code: number; reason: string; error: Error | undefined } | undefined;
  #disconnecting = false;
  // Promises and continuations are made only when something waits: most clients never need them.
  #finished: Latch | undefined;
  #closed: Latch | undefined;
  #isFinished = false;
  #resume: (() => void) | undefined;
  #resumeAfterError: ((error: unknown) => void) | undefined;

  constructor(entry: GatewayEntry, handshake: WsHandshake, connection: WsConnection, context: SessionContext) {
    this.entry = entry;
    this.connection = connection;
    this.#context = context;
    this.outbound = new Outbound(connection.sink, this, context.maxBufferedBytes);
    this.client = new WsClient(handshake, this);
  }

  /** Resolves once `onDisconnect` has run and the client is deregistered. */
  get finished(): Promise<void> {
    return (this.#finished ??= latch(this.#isFinished)).promise;
  }

  /** The rooms this client is in. */
  get rooms(): ReadonlySet<string> {
    return this.#rooms ?? NO_ROOMS;
  }

  get id(): string {
    return this.client.id;
  }

  get gateway(): string {
    return this.entry.path;
  }

  get isOpen(): boolean {
    return this.connection.isOpen;
  }

  send(message: WsMessage): boolean {
    return this.outbound.push(frameOf(message));
  }

  async join(room: string): Promise<void> {
    assertRoom(room);
    if (this.#rooms?.has(room) || this.#disconnecting) return;
    (this.#rooms ??= new Set()).add(room);
    await this.#notifyRoom(room, true);
  }

  async leave(room: string): Promise<void> {
    assertRoom(room);
    if (this.#rooms?.delete(room) !== true) return;
    await this.#notifyRoom(room, false);
  }

  /** The outbound buffer passed its limit: close with 1013, and cut off if the client does not read it. */
  onSlowConsumer(bufferedBytes: number): void {
    this.markCause({ kind: 'slow-consumer', bufferedBytes });
    this.connection.close(1013, 'Slow consumer');
    setTimeout(() => this.connection.terminate(), this.#context.slowConsumerGrace).unref();
  }

  /** Closes for `app.close()`: flushes what is queued, then sends 1001. */
  shutdown(): void {
    this.markCause({ kind: 'server-shutdown' });
    this.outbound.flushNow();
    if (this.connection.isOpen) this.connection.close(1001, 'Server shutting down');
  }

  /** Registration, then `onConnect`; messages received meanwhile wait. */
  start(): void {
    void this.#connect();
  }

  /** A text or binary message arrived. */
  receive(message: WsMessage): void {
    if (this.#rejected) return;
    (this.#queue ??= []).push(message);
    if (this.#ready && !this.#busy) this.#pump();
  }

  /** Records why the server is closing the connection, before it closes (first cause wins). */
  markCause(reason: DisconnectReason): void {
    this.#cause ??= reason;
  }

  /** The socket is closed: run `onDisconnect` once the running and queued messages are done. */
  ended(code: number, reason: string, error?: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = { code, reason, error };
    this.#closed ??= latch(true);
    this.#closed.resolve();
    if (this.#ready && !this.#busy) void this.#disconnect();
  }

  requestClose(code: number, reason: string): Promise<void> {
    if (!isSendableCloseCode(code)) {
      return Promise.reject(new RangeError(`Invalid WebSocket close code ${code}: use 1000, 1001-1003, 1007-1014 or 3000-4999`));
    }
    if (encoder.encode(reason).byteLength > 123) return Promise.reject(new RangeError('A close reason is limited to 123 bytes'));
    if (this.connection.isOpen) {
      this.markCause({ kind: 'server-close', code, reason });
      this.outbound.flushNow();
      this.connection.close(code, reason);
    }
    // From this client's own hook, waiting for onDisconnect would wait for that very hook.
    return !this.#ready || this.#busy || this.#disconnecting ? (this.#closed ??= latch(this.#ended !== undefined)).promise : this.finished;
  }

  async #connect(): Promise<void> {
    const { gateway } = this.entry;
    try {
      for (const observer of this.#context.observers) await observer.clientConnected(this);
      if (gateway.onConnect !== undefined && this.#ended === undefined) await gateway.onConnect(this.client);
    } catch (error) {
      this.#logError('onConnect', error);
      this.#rejected = true;
      this.#queue = undefined;
      this.markCause({ kind: 'error', error: toError(error) });
      if (this.connection.isOpen) this.connection.close(1011, 'Internal error');
    }
    this.#ready = true;
    this.#pump();
  }

  #pump(): void {
    this.#busy = true;
    const { gateway } = this.entry;
    const queue = this.#queue ?? [];
    while (this.#head < queue.length) {
      const message = queue[this.#head]!;
      queue[this.#head++] = undefined;
      let result: unknown;
      try {
        result = gateway.onMessage(this.client, message);
      } catch (error) {
        this.#logError('onMessage', error);
        continue;
      }
      if (result instanceof Promise) {
        this.#resume ??= () => this.#pump();
        this.#resumeAfterError ??= (error: unknown) => {
          this.#logError('onMessage', error);
          this.#pump();
        };
        result.then(this.#resume, this.#resumeAfterError);
        return;
      }
    }
    queue.length = 0;
    this.#head = 0;
    this.#busy = false;
    if (this.#ended !== undefined) void this.#disconnect();
  }

  async #disconnect(): Promise<void> {
    if (this.#disconnecting) return;
    this.#disconnecting = true;
    const ended = this.#ended!;
    const reason: DisconnectReason =
      this.#cause ?? (ended.error !== undefined ? { kind: 'error', error: ended.error } : { kind: 'client-close', code: ended.code, reason: ended.reason });
    this.outbound.discard();
    for (const observer of this.#context.observers) {
      try {
        await observer.clientDisconnected(this);
      } catch (error) {
        this.#logError('clientDisconnected', error);
      }
    }
    this.#rooms = undefined;
    try {
      await this.entry.gateway.onDisconnect?.(this.client, reason);
    } catch (error) {
      this.#logError('onDisconnect', error);
    }
    this.#context.sessions.delete(this);
    this.#isFinished = true;
    this.#finished?.resolve();
  }

  async #notifyRoom(room: string, joined: boolean): Promise<void> {
    closeSegment();
    for (const observer of this.#context.observers) await observer.roomChanged(this, room, joined);
  }

  #logError(hook: string, error: unknown): void {
    this.#context.logger.error(
      { err: error, clientId: this.client.id, gateway: this.entry.name, hook },
      `${this.entry.name}.${hook} threw for client ${this.client.id}`,
    );
  }
}

/** The gateways among `instances`; throws on an invalid or duplicate path. */
export function findGateways(instances: readonly unknown[]): GatewayEntry[] {
  const entries: GatewayEntry[] = [];
  const byAddress = new Map<string, GatewayEntry>();
  for (const instance of instances) {
    if (!isGateway(instance)) continue;
    const name = (instance as object).constructor.name;
    const { path, port } = instance;
    if (!path.startsWith('/')) {
      throw new ToniError('TONI_ERR_INVALID_GATEWAY', `${name}.path must start with "/", got "${path}".`);
    }
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new ToniError('TONI_ERR_INVALID_GATEWAY', `${name}.port must be an integer from 0 to 65535, got ${String(port)}.`);
    }
    const entry: GatewayEntry = { gateway: instance, name, path, port };
    const address = `${port ?? 'http'} ${path}`;
    const existing = byAddress.get(address);
    if (existing !== undefined) {
      throw new ToniError(
        'TONI_ERR_DUPLICATE_GATEWAY',
        `Two gateways serve the path ${path}${port === undefined ? '' : ` on port ${port}`}: ${existing.name} and ${name}. Give one of them another path.`,
      );
    }
    byAddress.set(address, entry);
    entries.push(entry);
  }
  return entries;
}

function assertRoom(room: unknown): asserts room is string {
  if (typeof room !== 'string' || room.length === 0) throw new TypeError(`A room name must be a non-empty string, got ${JSON.stringify(room)}`);
}

function isObserver(instance: unknown): instance is ConnectionObserver {
  return typeof instance === 'object' && instance !== null && CONNECTION_OBSERVER in instance;
}

function isSendableCloseCode(code: number): boolean {
  return Number.isInteger(code) && (code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999));
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

const encoder = new TextEncoder();
const NO_ROOMS: ReadonlySet<string> = new Set();

interface Latch {
  readonly promise: Promise<void>;
  resolve(): void;
}

function latch(done: boolean): Latch {
  if (done) return { promise: Promise.resolve(), resolve() {} };
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
