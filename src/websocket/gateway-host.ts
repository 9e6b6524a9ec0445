import { ToniError } from '../errors.js';
import type { AbstractClass } from '../di/token.js';
import { HttpException } from '../http/http-exception.js';
import { describeValue } from '../http/http-response.js';
import { joinPaths } from '../http/router.js';
import type { Logger } from '../logger.js';
import { type Chain, type GatewayChains, filterFor, runGuards } from '../pipeline/chain.js';
import { HandshakeExecution } from '../pipeline/execution-context.js';
import { type ClientChannel, type WsConnection, WsClient } from './client.js';
import type { DisconnectReason } from './disconnect-reason.js';
import { type EnvelopeId, type EnvelopeLimits, eventEnvelope, readEnvelope } from './envelope.js';
import { EventRouter } from './event-router.js';
import { type BoundEventHandler, getEventHandlers } from './events.js';
import { type Gateway, hasGatewayPath } from './gateway.js';
import type { WsHandshake } from './handshake.js';
import { frameOf } from './frame.js';
import { WsMessage } from './message.js';
import { WsException } from './ws-exception.js';
import { TONIJS_PROTOCOL, pingOf, pongFrame, welcomeFrame } from './protocol.js';
import { Outbound, type OutboundOwner, closeSegment } from './outbound.js';
import { assertRoomName } from './room.js';
import { assertCloseFrame } from './close-code.js';
import { WEBSOCKET_DELIVERY } from './delivery.js';

/**
 * A provider that wants to know about every client: the broadcast registry implements it.
 * `clientConnected` runs after the handshake and before `onConnect`; `clientDisconnected` as
 * soon as the connection is gone, before the client's last messages are handled.
 */
export interface ConnectionObserver {
  clientConnected(session: ClientSession): unknown;
  /**
   * The gateway's `onConnect` has finished for a client that is still connected. An observer that
   * replays what a reconnecting client missed answers whether it did (the welcome's `recovered`).
   */
  clientReady?(session: ClientSession): boolean | undefined | Promise<boolean | undefined>;
  clientDisconnected(session: ClientSession): unknown;
  roomChanged(session: ClientSession, room: string, joined: boolean): unknown;
}

/** Options of `GatewayHost`. */
export interface GatewayHostOptions {
  /** A client whose unsent bytes pass this is dropped as a slow consumer. */
  maxBufferedBytes: number;
  /** Milliseconds a slow consumer gets to read its 1013 close frame before it is cut off. */
  slowConsumerGrace: number;
  /** Bytes of received, unhandled messages past which a client's socket is no longer read (resumed below half of it). */
  inboundHighWaterMark: number;
  /** Bytes of received, unhandled messages past which a client is closed with 1008 (kind `inbound-overflow`). */
  maxInboundBytes: number;
  /** Milliseconds `onHandshake` may take before the upgrade is refused with 503. */
  handshakeTimeout: number;
  /** What is parsed as an event envelope on gateways with `@On` handlers. */
  eventLimits: EnvelopeLimits;
  /** The guards, interceptors and filters of each gateway, from the application (`WebSocketBinding.pipeline`). */
  pipeline?: GatewayChains | undefined;
}

/** Marks a provider as a `ConnectionObserver`. */
export const CONNECTION_OBSERVER: unique symbol = Symbol.for('toni.connectionObserver');

/** A gateway with the name and address it is served under. */
export interface GatewayEntry {
  readonly gateway: Gateway;
  /** The gateway's class name, for logs. */
  readonly name: string;
  /** The normalised path: single slashes, no trailing slash. */
  readonly path: string;
  /** Its own port, or undefined when it shares the HTTP server's. */
  readonly port: number | undefined;
  /** Its `@On` handlers by event, or undefined when it has none. */
  readonly events: ReadonlyMap<string, BoundEventHandler> | undefined;
}

/** A gateway as the host serves it: with the router of its events, when it has any, and the guards of its handshake. */
interface ServedGateway extends GatewayEntry {
  readonly router: EventRouter | undefined;
  readonly handshakeChain: Chain | undefined;
}

/**
 * The outcome of a handshake. `abandoned`: the client left (or the adapter gave up on it) while
 * `onHandshake` ran, so there is no one to answer.
 */
export type HandshakeVerdict =
  | { accepted: true }
  | { accepted: false; status: number; message: string }
  | { accepted: false; abandoned: true };

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
    const { pipeline } = options;
    this.entries = findGateways(instances).map(
      (entry): ServedGateway => ({ ...entry, router: routerOf(entry, logger, options.eventLimits, pipeline), handshakeChain: pipeline?.handshake(entry.gateway) }),
    );
    this.#context = { logger, observers: instances.filter(isObserver), sessions: this.#sessions, ...options };
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  sessions(): IterableIterator<ClientSession> {
    return this.#sessions.values();
  }

  /**
   * Runs the guards (global ones and the gateway class's), then `onHandshake`, bounded by
   * `handshakeTimeout` and by `handshake.signal` (which the adapter aborts when the client leaves
   * or the server shuts down); never rejects.
   */
  async authorize(entry: GatewayEntry, handshake: WsHandshake): Promise<HandshakeVerdict> {
    const { gateway, name } = entry;
    const chain = served(entry).handshakeChain;
    // Without a guard or onHandshake nothing can refuse it (nor throw for a filter to catch).
    if (gateway.onHandshake === undefined && (chain === undefined || chain.guards.length === 0)) return { accepted: true };
    const { logger, handshakeTimeout } = this.#context;
    const signal = handshake.signal;
    if (signal.aborted) return { accepted: false, abandoned: true };
    let settle!: (verdict: HandshakeVerdict) => void;
    const cut = new Promise<HandshakeVerdict>((resolve) => (settle = resolve));
    const onAbort = () => settle({ accepted: false, abandoned: true });
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      logger.warn({ gateway: name, path: handshake.path, handshakeTimeout }, `${name}.onHandshake did not settle within ${handshakeTimeout} ms; the upgrade is refused with 503`);
      settle({ accepted: false, status: 503, message: 'The handshake timed out' });
      handshake.abandon(new Error(`onHandshake did not settle within ${handshakeTimeout} ms`));
    }, handshakeTimeout);
    try {
      return await Promise.race([this.#runHandshake(entry, handshake, chain), cut]);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Starts a session for an upgraded connection: registration, `onConnect`, then messages. */
  open(entry: GatewayEntry, handshake: WsHandshake, connection: WsConnection): ClientSession {
    const session = new ClientSession(served(entry), handshake, connection, this.#context);
    this.#sessions.add(session);
    session.start();
    return session;
  }

  async #runHandshake(entry: GatewayEntry, handshake: WsHandshake, chain: Chain | undefined): Promise<HandshakeVerdict> {
    const { logger } = this.#context;
    const ctx = chain === undefined ? undefined : new HandshakeExecution(handshake, (entry.gateway as object).constructor as AbstractClass<unknown>);
    try {
      if (chain !== undefined && chain.guards.length > 0) {
        const allowed = runGuards(chain.guards, ctx!);
        if (!(allowed instanceof Promise ? await allowed : allowed)) throw new HttpException(403, 'Forbidden');
      }
      if (entry.gateway.onHandshake === undefined) return { accepted: true };
      const verdict: unknown = await entry.gateway.onHandshake(handshake);
      if (verdict === true) return { accepted: true };
      if (verdict !== false) {
        logger.warn({ gateway: entry.name, returned: typeof verdict }, `${entry.name}.onHandshake returned ${String(verdict)} instead of a boolean; the connection is refused. Return true to accept.`);
      }
      return { accepted: false, status: 401, message: 'Unauthorized' };
    } catch (thrown) {
      const error = chain === undefined ? thrown : await this.#filtered(entry, chain, ctx!, thrown);
      if (error instanceof HttpException) return { accepted: false, status: error.status, message: error.message };
      // The path only: browsers pass tokens in the query string, and tokens must not reach logs.
      logger.error({ err: error, gateway: entry.name, path: handshake.path }, `The handshake of ${entry.name} threw (a guard, or onHandshake); the connection is refused with 500`);
      return { accepted: false, status: 500, message: 'Internal Server Error' };
    }
  }

  /** What the first filter that handles `error` makes of it: an HttpException refuses with its status; anything else is an error. */
  async #filtered(entry: GatewayEntry, chain: Chain, ctx: HandshakeExecution, error: unknown): Promise<unknown> {
    const filter = filterFor(chain.filters, error);
    if (filter === undefined) return error;
    try {
      const result: unknown = await filter.filter.catch(error, ctx);
      if (result instanceof HttpException) return result;
      return new TypeError(
        `The exception filter ${(filter.filter as object).constructor.name} answered a handshake of ${entry.name} with ${describeValue(result)}: at a handshake, return (or throw) an HttpException to refuse with its status.`,
        { cause: error },
      );
    } catch (failure) {
      return failure;
    }
  }
}

interface SessionContext extends GatewayHostOptions {
  readonly logger: Logger;
  readonly observers: readonly ConnectionObserver[];
  readonly sessions: Set<ClientSession>;
}

/** What a queued message is counted as beyond its payload: the message object and its queue slot. */
const MESSAGE_OVERHEAD = 64;

/**
 * One client's life: its outbound queue, its rooms, its inbound queue and the order of its
 * hooks. The adapter reports what the socket does (`receive`, `ended`); the session decides
 * when hooks run and when the socket is read.
 */
export class ClientSession implements ClientChannel, OutboundOwner {
  readonly client: WsClient;
  readonly entry: GatewayEntry;
  readonly #router: EventRouter | undefined;
  /** The server's `client.request()`s awaiting an answer, by id; made on the first. */
  #requests: Map<EnvelopeId, PendingRequest> | undefined;
  #nextRequestId = 1;
  readonly #speaksTonijs: boolean;
  readonly connection: WsConnection;
  readonly outbound: Outbound;
  #rooms: Set<string> | undefined;
  readonly #context: SessionContext;
  #queue: (WsMessage | undefined)[] | undefined;
  #head = 0;
  /** Bytes of the messages received and not yet handed to `onMessage`, overhead included. */
  #queuedBytes = 0;
  #paused = false;
  #ready = false;
  #busy = false;
  #rejected = false;
  #cause: DisconnectReason | undefined;
  #ended: { code: number; reason: string; error: Error | undefined } | undefined;
  /** Registration with the observers: pending until `clientConnected` ran for all of them. */
  #registered: Promise<void> | undefined;
  #deregistered: Promise<void> | undefined;
  #disconnecting = false;
  // Promises and continuations are made only when something waits: most clients never need them.
  #finished: Latch | undefined;
  #closed: Latch | undefined;
  #isFinished = false;
  #resume: (() => void) | undefined;
  #resumeAfterError: ((error: unknown) => void) | undefined;

  constructor(entry: ServedGateway, handshake: WsHandshake, connection: WsConnection, context: SessionContext) {
    this.entry = entry;
    this.#router = entry.router;
    this.#speaksTonijs = connection.protocol === TONIJS_PROTOCOL;
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

  /** Whether the client speaks `tonijs.v1` (tonijs/client does): it understands control frames. */
  get speaksTonijs(): boolean {
    return this.#speaksTonijs;
  }

  /** How the broadcast registry reaches this client (shared by every WebSocket session). */
  get delivery(): typeof WEBSOCKET_DELIVERY {
    return WEBSOCKET_DELIVERY;
  }

  get gateway(): string {
    return this.entry.path;
  }

  get isOpen(): boolean {
    return this.connection.isOpen;
  }

  /** True once `onDisconnect` has run and the client is deregistered. */
  get isFinished(): boolean {
    return this.#isFinished;
  }

  /** Bytes of received messages waiting for `onMessage`. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  send(message: WsMessage): boolean {
    return this.outbound.push(frameOf(message));
  }

  async join(room: string): Promise<void> {
    assertRoomName(room);
    // Once the connection is gone the client is out of the registry: joining would put it back.
    if (this.#rooms?.has(room) || this.#ended !== undefined || this.#disconnecting) return;
    (this.#rooms ??= new Set()).add(room);
    await this.#notifyRoom(room, true);
  }

  async leave(room: string): Promise<void> {
    assertRoomName(room);
    if (this.#rooms?.delete(room) !== true) return;
    await this.#notifyRoom(room, false);
  }

  /** The outbound buffer passed its limit: close with 1013, and cut off if the client does not read it. */
  onSlowConsumer(bufferedBytes: number): void {
    this.markCause({ kind: 'slow-consumer', bufferedBytes });
    this.#closeConnection(1013, 'Slow consumer');
    setTimeout(() => this.connection.terminate(), this.#context.slowConsumerGrace).unref();
  }

  /** Closes for `app.close()`: flushes what is queued, then sends 1001. */
  shutdown(): void {
    this.markCause({ kind: 'server-shutdown' });
    this.outbound.flushNow();
    if (this.connection.isOpen) this.#closeConnection(1001, 'Server shutting down');
  }

  /** Gives up on the messages still queued (`app.close()` ran out of time): they are never handled. */
  abandon(): void {
    this.#queue = undefined;
    this.#head = 0;
    this.#queuedBytes = 0;
  }

  /** Registration, then `onConnect`; messages received meanwhile wait. */
  start(): void {
    void this.#connect();
  }

  /** A text or binary message arrived. */
  receive(message: WsMessage): void {
    if (this.#rejected) return;
    if (message.kind === 'text' && this.#speaksTonijs && this.#answerPing(message.data as string)) return;
    // Answers to the server's requests skip the queue: the handler that asked may be what holds it.
    if (this.#requests !== undefined && this.#requests.size > 0 && message.kind === 'text' && this.#settleRequest(message.data as string)) return;
    (this.#queue ??= []).push(message);
    this.#queuedBytes += sizeOf(message);
    if (this.#queuedBytes > this.#context.maxInboundBytes) this.#overflow();
    else if (!this.#paused && this.#queuedBytes >= this.#context.inboundHighWaterMark && this.#ended === undefined) this.#pauseReading();
    if (this.#ready && !this.#busy) this.#pump();
  }

  request(event: string, data: unknown, timeout: number): Promise<unknown> {
    if (this.#ended !== undefined || !this.connection.isOpen) {
      return Promise.reject(new WsException('disconnected', `Client ${this.id} is gone: it cannot answer "${event}"`));
    }
    const id = this.#nextRequestId++;
    const text = eventEnvelope(event, data, id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests?.delete(id);
        reject(new WsException('timeout', `Client ${this.id} did not answer "${event}" within ${timeout} ms`));
      }, timeout);
      (this.#requests ??= new Map()).set(id, { event, resolve, reject, timer });
      this.send(WsMessage.text(text));
    });
  }

  /** Records why the server is closing the connection, before it closes (first cause wins). */
  markCause(reason: DisconnectReason): void {
    this.#cause ??= reason;
  }

  /**
   * The socket is closed: the client leaves the registry at once; `onDisconnect` runs once the
   * running and queued messages are handled.
   */
  ended(code: number, reason: string, error?: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = { code, reason, error };
    this.#paused = false;
    this.client.handshake.abandon(new Error('The connection closed'));
    this.#rejectRequests();
    this.#closed ??= latch(true);
    this.#closed.resolve();
    if (this.#registered !== undefined) this.#deregister();
    if (this.#ready && !this.#busy) void this.#disconnect();
  }

  requestClose(code: number, reason: string): Promise<void> {
    try {
      assertCloseFrame(code, reason);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.connection.isOpen) {
      this.markCause({ kind: 'server-close', code, reason });
      this.outbound.flushNow();
      this.#closeConnection(code, reason);
    }
    // From this client's own hook, waiting for onDisconnect would wait for that very hook.
    return !this.#ready || this.#busy || this.#disconnecting ? (this.#closed ??= latch(this.#ended !== undefined)).promise : this.finished;
  }

  async #connect(): Promise<void> {
    const { gateway } = this.entry;
    try {
      this.#registered = this.#register();
      await this.#registered;
      if (gateway.onConnect !== undefined && this.#ended === undefined) await gateway.onConnect(this.client);
      let recovered = false;
      if (this.#ended === undefined) for (const observer of this.#context.observers) if ((await observer.clientReady?.(this)) === true) recovered = true;
      // A tonijs client learns its id, and whether what it missed was replayed: its onReconnect waits for this.
      if (this.#speaksTonijs && this.#ended === undefined) this.send(WsMessage.text(welcomeFrame(this.id, recovered)));
    } catch (error) {
      this.#logError('onConnect', error);
      this.#rejected = true;
      this.abandon();
      this.markCause({ kind: 'error', error: toError(error) });
      if (this.connection.isOpen) this.#closeConnection(1011, 'Internal error');
    }
    this.#ready = true;
    this.#pump();
  }

  async #register(): Promise<void> {
    for (const observer of this.#context.observers) await observer.clientConnected(this);
  }

  /** Removes the client from every observer, once, after its registration (`ended` calls it, also mid-registration). */
  #deregister(): Promise<void> {
    this.#deregistered ??= this.#registered!.then(undefined, () => undefined).then(async () => {
      for (const observer of this.#context.observers) {
        try {
          await observer.clientDisconnected(this);
        } catch (error) {
          this.#logError('clientDisconnected', error);
        }
      }
      this.#rooms = undefined;
    });
    return this.#deregistered;
  }

  #pump(): void {
    this.#busy = true;
    const { gateway } = this.entry;
    while (this.#queue !== undefined && this.#head < this.#queue.length) {
      const queue = this.#queue;
      const message = queue[this.#head]!;
      queue[this.#head++] = undefined;
      this.#dequeued(message);
      let result: unknown;
      try {
        result = this.#router !== undefined ? this.#router.handle(this, message) : gateway.onMessage!(this.client, message);
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
    if (this.#queue !== undefined) this.#queue.length = 0;
    this.#head = 0;
    this.#busy = false;
    if (this.#ended !== undefined) void this.#disconnect();
  }

  /** Answers a `tonijs.v1` heartbeat at once, ahead of what is queued; false when `text` is not one. */
  #answerPing(text: string): boolean {
    const ping = pingOf(text);
    if (ping === undefined) return false;
    this.send(WsMessage.text(pongFrame(ping)));
    return true;
  }

  /** Resolves or rejects the request an acknowledgement answers; false when `text` is not one. */
  #settleRequest(text: string): boolean {
    const envelope = readEnvelope(text, this.#context.eventLimits);
    if (envelope.kind !== 'ack') return false;
    const pending = this.#requests!.get(envelope.id);
    if (pending === undefined) return false;
    this.#requests!.delete(envelope.id);
    clearTimeout(pending.timer);
    if (envelope.error === undefined) pending.resolve(envelope.data);
    else pending.reject(clientError(pending.event, envelope.error));
    return true;
  }

  #rejectRequests(): void {
    const requests = this.#requests;
    if (requests === undefined) return;
    this.#requests = undefined;
    for (const pending of requests.values()) {
      clearTimeout(pending.timer);
      pending.reject(new WsException('disconnected', `Client ${this.id} disconnected before it answered "${pending.event}"`));
    }
  }

  #dequeued(message: WsMessage): void {
    this.#queuedBytes -= sizeOf(message);
    if (this.#paused && this.#queuedBytes <= this.#context.inboundHighWaterMark / 2) {
      this.#paused = false;
      this.connection.resume();
      this.#context.logger.debug({ clientId: this.id, gateway: this.entry.name, queuedBytes: this.#queuedBytes }, `Resumed reading from client ${this.id}`);
    }
  }

  #pauseReading(): void {
    this.#paused = true;
    this.connection.pause();
    this.#context.logger.debug(
      { clientId: this.id, gateway: this.entry.name, queuedBytes: this.#queuedBytes },
      `Paused reading from client ${this.id}: ${this.#queuedBytes} bytes of messages wait for ${this.entry.name}.onMessage`,
    );
  }

  /** The client sent past the hard cap although its socket was paused: drop it and what it queued. */
  #overflow(): void {
    const queuedBytes = this.#queuedBytes;
    this.#rejected = true;
    this.abandon();
    this.markCause({ kind: 'inbound-overflow', queuedBytes });
    this.#context.logger.warn(
      { clientId: this.id, gateway: this.entry.name, queuedBytes, maxInboundBytes: this.#context.maxInboundBytes },
      `Closed client ${this.id} with 1008: ${queuedBytes} bytes of unhandled messages passed maxInboundBytes`,
    );
    this.#closeConnection(1008, 'Inbound queue overflow');
  }

  /** Closing needs the peer's close frame: a paused socket is read again first. */
  #closeConnection(code: number, reason: string): void {
    if (this.#paused) {
      this.#paused = false;
      this.connection.resume();
    }
    this.connection.close(code, reason);
  }

  async #disconnect(): Promise<void> {
    if (this.#disconnecting) return;
    this.#disconnecting = true;
    const ended = this.#ended!;
    const reason: DisconnectReason =
      this.#cause ?? (ended.error !== undefined ? { kind: 'error', error: ended.error } : { kind: 'client-close', code: ended.code, reason: ended.reason });
    this.outbound.discard();
    await this.#deregister();
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

/**
 * The gateways among `instances`; throws on an invalid or duplicate path, and for a class
 * instance with a string `path` that handles nothing (it would silently not be a gateway).
 */
export function findGateways(instances: readonly unknown[]): GatewayEntry[] {
  const entries: GatewayEntry[] = [];
  const byAddress = new Map<string, GatewayEntry>();
  for (const instance of instances) {
    if (!hasGatewayPath(instance)) continue;
    const events = getEventHandlers(instance);
    if (typeof instance.onMessage !== 'function' && events === undefined) {
      assertNotAHalfGateway(instance);
      continue;
    }
    const name = (instance as object).constructor.name;
    const { port } = instance;
    if (!instance.path.startsWith('/')) {
      throw new ToniError('TONI_ERR_INVALID_GATEWAY', `${name}.path must start with "/", got "${instance.path}".`);
    }
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new ToniError('TONI_ERR_INVALID_GATEWAY', `${name}.port must be an integer from 0 to 65535, got ${String(port)}.`);
    }
    // Normalised as request paths are, so that '/ws/' serves upgrades to /ws and collides with '/ws'.
    const path = joinPaths('', instance.path);
    const entry: GatewayEntry = { gateway: instance, name, path, port, events };
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

function assertNotAHalfGateway(instance: Gateway): void {
  const type = (instance as object).constructor;
  // Plain objects (factory results such as settings) may well have a path; classes with one are meant as gateways.
  if (type === Object || type === undefined) return;
  throw new ToniError(
    'TONI_ERR_INVALID_GATEWAY',
    `${type.name} has a string \`path\` ("${instance.path}") but neither an onMessage method nor an @On handler, so it cannot serve WebSocket clients. ` +
      `Add onMessage(client, message) or @On('event') handlers to make it a gateway, or rename the property if it is not meant to be one.`,
  );
}

function routerOf(entry: GatewayEntry, logger: Logger, limits: EnvelopeLimits, pipeline: GatewayChains | undefined): EventRouter | undefined {
  if (entry.events === undefined) return undefined;
  const { gateway } = entry;
  const onMessage = gateway.onMessage === undefined ? undefined : (client: WsClient, message: WsMessage) => gateway.onMessage!(client, message);
  const chains = new Map<string, Chain>();
  for (const handler of entry.events.values()) {
    const chain = pipeline?.event(gateway, handler.method);
    if (chain !== undefined) chains.set(handler.event, chain);
  }
  const type = (gateway as object).constructor as AbstractClass<unknown>;
  return new EventRouter({ name: entry.name, path: entry.path, handlers: entry.events, onMessage, limits, logger, type, chains });
}

/** An entry the adapter hands back, with the router and handshake guards the host gave it. */
function served(entry: GatewayEntry): ServedGateway {
  return 'router' in entry ? (entry as ServedGateway) : { ...entry, router: undefined, handshakeChain: undefined };
}

/** The client's answer to a request was an error: `{ code, message, … }`. */
function clientError(event: string, error: unknown): WsException {
  if (typeof error === 'object' && error !== null) {
    const { code, message, ...details } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && code.length > 0) return new WsException(code, typeof message === 'string' ? message : '', details);
  }
  return new WsException('invalid_message', `The client answered "${event}" with a malformed error: ${JSON.stringify(error)}`);
}

function isObserver(instance: unknown): instance is ConnectionObserver {
  return typeof instance === 'object' && instance !== null && CONNECTION_OBSERVER in instance;
}

/** What a queued message costs: its payload (a string's length approximates its heap bytes) and overhead. */
function sizeOf(message: WsMessage): number {
  const data = message.data;
  return (typeof data === 'string' ? data.length : data.byteLength) + MESSAGE_OVERHEAD;
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

const NO_ROOMS: ReadonlySet<string> = new Set();

interface PendingRequest {
  readonly event: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: WsException) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

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
