import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { ToniError } from '../../errors.js';
import { statusText } from '../../http/status.js';
import type { WebSocketAdapter, WebSocketBinding } from '../../websocket/adapter.js';
import type { WsConnection } from '../../websocket/client.js';
import { type ClientSession, type GatewayEntry, GatewayHost } from '../../websocket/gateway-host.js';
import { WsHandshake } from '../../websocket/handshake.js';
import { WsMessage } from '../../websocket/message.js';
import { TONIJS_PROTOCOL } from '../../websocket/protocol.js';
import { NodeHttpAdapter } from './http-adapter.js';
import { listenFailed } from './listen-error.js';
import { writeRawError } from './raw-response.js';

/** Options of `WsAdapter`; every one has a default. */
export interface WsAdapterOptions {
  /** Largest accepted message in bytes; a bigger frame closes the connection with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Milliseconds between heartbeat pings to a quiet client; 0 turns heartbeats off. Default 30 000. */
  heartbeatInterval?: number;
  /** Milliseconds a client has to answer a ping before it is closed (kind `timeout`). Default 10 000. */
  heartbeatTimeout?: number;
  /**
   * Origins browsers may connect from (e.g. `['https://app.example.com']`), or a predicate.
   * Others are refused with 403, which stops cross-site WebSocket hijacking. Requests without
   * an `Origin` header (non-browser clients) are not affected. Default: every origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string, handshake: WsHandshake) => boolean);
  /** Most simultaneous connections (handshakes included); beyond, upgrades get 503. Default: no limit. */
  maxConnections?: number;
  /** permessage-deflate; costs CPU and memory per connection. Default: off. */
  perMessageDeflate?: boolean | PerMessageDeflateSettings;
  /** Milliseconds `app.close()` waits for clients to complete the close handshake before cutting them off. Default 5 000. */
  closeTimeout?: number;
  /**
   * Bytes a client may leave unread from earlier event-loop turns. A client that reads slower
   * than it is sent to passes it and is disconnected with 1013 (kind `slow-consumer`), so it never
   * holds up the others nor memory; it may briefly hold the limit plus one turn's frames, which
   * are shared with the other recipients. Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /** Milliseconds a slow consumer gets to read its 1013 close frame before it is cut off. Default 1 000. */
  slowConsumerGrace?: number;
  /**
   * Inbound backpressure: once a client's received, unhandled messages pass this many bytes
   * (each counted as its payload plus 64 bytes), its socket is no longer read — TCP then slows
   * the sender — until `onMessage` has worked the queue down to half of it. A paused client is
   * not timed out by the heartbeat. Default 256 KiB.
   */
  inboundHighWaterMark?: number;
  /**
   * A client whose unhandled messages still pass this many bytes (a socket delivers what it
   * has already read) is closed with 1008 (kind `inbound-overflow`) and its queue dropped.
   * At least `inboundHighWaterMark + maxPayload`. Default: 4 MiB, or `inboundHighWaterMark + 2 × maxPayload` if larger.
   */
  maxInboundBytes?: number;
  /**
   * Milliseconds `onHandshake` may take; past it the upgrade is refused with 503 and
   * `handshake.signal` aborts. Default 10 000.
   */
  handshakeTimeout?: number;
  /**
   * On gateways with `@On` handlers: the longest text frame, in characters, read as an event
   * envelope; longer ones are answered with error `invalid_message`. Default 1 MiB.
   */
  maxEventSize?: number;
  /** On gateways with `@On` handlers: how deep an envelope may nest objects and arrays. Default 32. */
  maxEventDepth?: number;
}

/** permessage-deflate (RFC 7692) settings, with the meanings `ws` gives them. */
export interface PerMessageDeflateSettings {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
  /** Messages smaller than this many bytes are not compressed. */
  threshold?: number;
  /** Most zlib calls at once. */
  concurrencyLimit?: number;
  /** Options of zlib's deflate (`zlib.createDeflateRaw`). */
  zlibDeflateOptions?: Record<string, unknown>;
  /** Options of zlib's inflate (`zlib.createInflateRaw`). */
  zlibInflateOptions?: Record<string, unknown>;
}

const DEFAULTS = {
  maxPayload: 1024 * 1024,
  heartbeatInterval: 30_000,
  heartbeatTimeout: 10_000,
  maxConnections: Number.POSITIVE_INFINITY,
  closeTimeout: 5_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  slowConsumerGrace: 1_000,
  inboundHighWaterMark: 256 * 1024,
  handshakeTimeout: 10_000,
  maxEventSize: 1024 * 1024,
  maxEventDepth: 32,
};

type ResolvedOptions = Required<Omit<WsAdapterOptions, 'allowedOrigins'>> & Pick<WsAdapterOptions, 'allowedOrigins'>;

type Routes = Map<string, GatewayEntry>;

/**
 * The WebSocket adapter on the `ws` library. Gateways share the HTTP server's port (upgrades are
 * routed by path) unless they declare their own `port`.
 *
 * @example
 * const app = await ToniFactory.create(AppModule, new NodeHttpAdapter());
 * app.useWebSocketAdapter(new WsAdapter({ allowedOrigins: ['https://chat.example.com'] }));
 * await app.listen(3000, '127.0.0.1');
 */
export class WsAdapter implements WebSocketAdapter {
  readonly #options: ResolvedOptions;
  readonly #connections = new Set<NodeConnection>();
  readonly #ownServers = new Map<number, { server: Server; routes: Routes; port: number }>();
  #host: GatewayHost | undefined;
  #binding: WebSocketBinding | undefined;
  #wss: WebSocketServer | undefined;
  #sharedServer: Server | undefined;
  #sharedRoutes: Routes = new Map();
  /** Handshakes whose `onHandshake` is running; each holds a connection slot. */
  readonly #handshakes = new Set<WsHandshake>();
  #closing = false;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Shared by every connection: the heartbeat's clock, and the open connections. */
  readonly #shared: ConnectionShared = { clock: Date.now(), connections: this.#connections };

  constructor(options: WsAdapterOptions = {}) {
    const given = withoutUndefined(options);
    const merged = { ...DEFAULTS, perMessageDeflate: false, ...given };
    const floor = merged.inboundHighWaterMark + 2 * merged.maxPayload;
    this.#options = { ...merged, maxInboundBytes: given.maxInboundBytes ?? Math.max(4 * 1024 * 1024, floor) };
    validate(this.#options);
  }

  async bind(binding: WebSocketBinding): Promise<void> {
    if (this.#host !== undefined) throw new ToniError('TONI_ERR_APP_STATE', 'A WsAdapter serves one application; create one per application.');
    this.#binding = binding;
    const { maxBufferedBytes, slowConsumerGrace, inboundHighWaterMark, maxInboundBytes, handshakeTimeout, maxEventSize, maxEventDepth } = this.#options;
    this.#host = new GatewayHost(binding.instances, binding.logger, {
      maxBufferedBytes,
      slowConsumerGrace,
      inboundHighWaterMark,
      maxInboundBytes,
      handshakeTimeout,
      eventLimits: { maxSize: maxEventSize, maxDepth: maxEventDepth },
      pipeline: binding.pipeline,
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#options.maxPayload,
      perMessageDeflate: this.#options.perMessageDeflate,
      clientTracking: false,
      WebSocket: ToniWebSocket,
      // tonijs's own protocol when the client offers it (tonijs/client does), else ws's choice: the first offered.
      handleProtocols: (offered: Set<string>) => (offered.has(TONIJS_PROTOCOL) ? TONIJS_PROTOCOL : (offered.values().next().value ?? false)),
    });
    for (const entry of this.#host.entries) {
      if (entry.port === undefined) this.#sharedRoutes.set(entry.path, entry);
      else {
        const own = this.#ownServers.get(entry.port) ?? { server: createOwnServer(), routes: new Map(), port: entry.port };
        own.routes.set(entry.path, entry);
        this.#ownServers.set(entry.port, own);
      }
    }
    if (this.#sharedRoutes.size > 0) this.#attachShared(binding);
    for (const own of this.#ownServers.values()) await this.#listenOwn(own, binding.address.host);
    this.#startHeartbeat();
  }

  /** `ws://host:port/path` of a gateway, once the application listens. */
  getUrl(path: string): string {
    const binding = this.#binding;
    const normalized = trimSlash(path);
    const entry = this.#host?.entries.find((candidate) => candidate.path === normalized);
    if (binding === undefined || entry === undefined) {
      throw new ToniError('TONI_ERR_APP_STATE', `No gateway serves ${path} on a listening application.`);
    }
    const port = entry.port === undefined ? binding.address.port : this.#ownServers.get(entry.port)!.port;
    const host = binding.address.host === '0.0.0.0' ? '127.0.0.1' : binding.address.host === '::' ? '::1' : binding.address.host;
    return `ws://${host.includes(':') ? `[${host}]` : host}:${port}${entry.path}`;
  }

  /** Number of open WebSocket connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#heartbeat);
    this.#sharedServer?.off('upgrade', this.#onSharedUpgrade);
    for (const handshake of this.#handshakes) handshake.abandon(new Error('The server is shutting down'));
    // Every session, also those whose socket has closed but whose onDisconnect still runs.
    const sessions = [...(this.#host?.sessions() ?? [])];
    for (const connection of this.#connections) connection.session?.shutdown();
    const finished = Promise.all(sessions.map((session) => session.finished));
    if (await outlasts(finished, this.#options.closeTimeout)) {
      for (const connection of this.#connections) connection.terminate();
      // Bounded whatever the queues hold: what is still queued is never handled.
      const stuck = sessions.filter((session) => session.queuedBytes > 0 || !session.isFinished);
      for (const session of stuck) session.abandon();
      if (stuck.length > 0) {
        this.#binding?.logger.warn(
          { clients: stuck.length, closeTimeout: this.#options.closeTimeout },
          `${stuck.length} WebSocket clients still had hooks running or messages queued after closeTimeout (${this.#options.closeTimeout} ms); closing without them`,
        );
      }
    }
    await Promise.all([...this.#ownServers.values()].map(({ server }) => closeServer(server)));
    this.#wss?.close();
  }

  #attachShared(binding: WebSocketBinding): void {
    const http = binding.http;
    if (!(http instanceof NodeHttpAdapter) || http.server === undefined) {
      const paths = [...this.#sharedRoutes.keys()].join(', ');
      throw new ToniError(
        'TONI_ERR_WS_ADAPTER',
        `WsAdapter shares the node:http server of NodeHttpAdapter, but the application uses ${http.constructor.name}. ` +
          `Use NodeHttpAdapter, or give the gateways on ${paths} their own port.`,
      );
    }
    this.#sharedServer = http.server;
    http.server.on('upgrade', this.#onSharedUpgrade);
  }

  readonly #onSharedUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.#upgrade(req, socket, head, this.#sharedRoutes);
  };

  async #listenOwn(own: { server: Server; routes: Routes; port: number }, host: string): Promise<void> {
    own.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket, head, own.routes));
    await new Promise<void>((resolve, reject) => {
      own.server.once('error', (error: NodeJS.ErrnoException) => {
        reject(listenFailed(error, 'gateways', host, own.port));
      });
      own.server.listen(own.port, host, resolve);
    });
    own.port = (own.server.address() as AddressInfo).port;
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, routes: Routes): Promise<void> {
    socket.on('error', ignore);
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = trimSlash(queryStart < 0 ? url : url.slice(0, queryStart));
    const entry = routes.get(path);
    if (entry === undefined) return writeRawError(socket, 404, `No WebSocket gateway at ${path}`);
    if (this.#closing) return writeRawError(socket, 503, 'Server shutting down');
    // Everything ws would refuse is refused before any user code runs: a broken request never burns a one-time token.
    const invalid = this.#invalidUpgrade(req);
    if (invalid !== undefined) return writeRawError(socket, invalid.status, invalid.message, invalid.headers);
    const origin = req.headers.origin;
    const handshake = new WsHandshake({ url, headers: req.headers, remoteAddress: req.socket.remoteAddress });
    if (origin !== undefined && !this.#originAllowed(origin, handshake)) return writeRawError(socket, 403, `Origin ${origin} is not allowed`);
    if (this.#connections.size + this.#handshakes.size >= this.#options.maxConnections) return writeRawError(socket, 503, 'Too many connections');

    // The slot is held while onHandshake runs, and freed the moment the client hangs up: the
    // socket is read meanwhile to see that, keeping (a little of) what a client sends too early.
    this.#handshakes.add(handshake);
    let early: Buffer = head;
    const onData = (chunk: Buffer) => {
      early = early.length === 0 ? chunk : Buffer.concat([early, chunk]);
      if (early.length > MAX_EARLY_BYTES) socket.destroy();
    };
    const onGone = () => {
      this.#handshakes.delete(handshake);
      handshake.abandon(new Error('The client disconnected during the handshake'));
      socket.destroy();
    };
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    const verdict = await this.#host!.authorize(entry, handshake);
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
    // Still flowing, and nothing can arrive before ws adds its own listener in this same turn.
    this.#handshakes.delete(handshake);
    if (socket.destroyed) return;
    if (!verdict.accepted) {
      if ('status' in verdict) writeRawError(socket, verdict.status, verdict.message);
      else writeRawError(socket, 503, this.#closing ? 'Server shutting down' : 'The handshake was abandoned');
      return;
    }
    if (this.#closing) return writeRawError(socket, 503, 'Server shutting down');
    this.#wss!.handleUpgrade(req, socket, early, (ws) => this.#accept(entry, handshake, ws, socket as Socket));
  }

  /** The checks `ws`'s handleUpgrade makes, so that they come before `onHandshake`. */
  #invalidUpgrade(req: IncomingMessage): { status: number; message: string; headers?: string } | undefined {
    if (req.method !== 'GET') return { status: 405, message: 'A WebSocket upgrade must be a GET request', headers: 'Allow: GET\r\n' };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { status: 400, message: 'Expected Upgrade: websocket' };
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key.trim())) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' };
    const version = Number(req.headers['sec-websocket-version']);
    if (version !== 13 && version !== 8) {
      return { status: 400, message: 'Missing or unsupported Sec-WebSocket-Version header: 13 is supported', headers: 'Sec-WebSocket-Version: 13, 8\r\n' };
    }
    const protocols = req.headers['sec-websocket-protocol'];
    if (protocols !== undefined && !PROTOCOL_LIST.test(protocols)) return { status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
    return undefined;
  }

  #accept(entry: GatewayEntry, handshake: WsHandshake, ws: WebSocket, socket: Socket): void {
    const connection = new NodeConnection(ws as ToniWebSocket, socket, this.#shared);
    this.#connections.add(connection);
    connection.session = this.#host!.open(entry, handshake, connection);
  }

  #originAllowed(origin: string, handshake: WsHandshake): boolean {
    const allowed = this.#options.allowedOrigins;
    if (allowed === undefined) return true;
    if (typeof allowed === 'function') return allowed(origin, handshake);
    const normalized = origin.toLowerCase();
    return allowed.some((candidate) => candidate.toLowerCase() === normalized);
  }

  #startHeartbeat(): void {
    const { heartbeatInterval, heartbeatTimeout } = this.#options;
    if (heartbeatInterval === 0) return;
    this.#heartbeat = setInterval(() => {
      const now = (this.#shared.clock = Date.now());
      for (const connection of this.#connections) {
        // A paused socket is not read, so its pongs cannot arrive; the client is busy sending, not dead.
        if (connection.paused) {
          connection.alive();
          continue;
        }
        if (connection.awaitingPongSince > 0) {
          if (now - connection.awaitingPongSince >= heartbeatTimeout) {
            connection.session?.markCause({ kind: 'timeout' });
            connection.terminate();
          }
        } else if (now - connection.lastSeen >= heartbeatInterval) {
          connection.awaitingPongSince = now;
          connection.ping();
        }
      }
    }, Math.max(1, Math.min(heartbeatInterval, heartbeatTimeout)));
    this.#heartbeat.unref();
  }
}

/** What every connection of one adapter shares. */
interface ConnectionShared {
  clock: number;
  readonly connections: Set<NodeConnection>;
}

/**
 * A `ws` WebSocket that hands its events straight to its connection: no listener closures and
 * no event table per client.
 */
class ToniWebSocket extends WebSocket {
  connection: NodeConnection | undefined;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const connection = this.connection;
    if (connection === undefined) return super.emit(event, ...args);
    switch (event) {
      case 'message':
        connection.received(args[0] as Buffer, args[1] as boolean);
        return true;
      case 'pong':
        connection.alive();
        return true;
      case 'error':
        connection.error ??= args[0] as Error;
        return true;
      case 'close':
        connection.closed(args[0] as number, args[1] as Buffer);
        return true;
      default:
        return false;
    }
  }
}

/** One `ws` socket as the core's `WsConnection`. */
class NodeConnection implements WsConnection {
  readonly ws: ToniWebSocket;
  /** toni writes its frames straight to the socket; `ws` parses what arrives and closes. */
  readonly sink: Socket;
  readonly #shared: ConnectionShared;
  session: ClientSession | undefined;
  error: Error | undefined;
  lastSeen: number;
  awaitingPongSince = 0;
  paused = false;

  constructor(ws: ToniWebSocket, socket: Socket, shared: ConnectionShared) {
    this.ws = ws;
    this.sink = socket;
    this.#shared = shared;
    this.lastSeen = shared.clock;
    ws.connection = this;
  }

  received(data: Buffer, isBinary: boolean): void {
    this.alive();
    this.session!.receive(isBinary ? WsMessage.binary(data) : WsMessage.text(data.toString()));
  }

  alive(): void {
    this.lastSeen = this.#shared.clock;
    this.awaitingPongSince = 0;
  }

  closed(code: number, reason: Buffer): void {
    this.#shared.connections.delete(this);
    this.session!.ended(code, reason.toString(), this.error);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  ping(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  pause(): void {
    this.paused = true;
    this.ws.pause();
  }

  resume(): void {
    this.paused = false;
    this.alive();
    this.ws.resume();
  }
}

function createOwnServer(): Server {
  return createServer((_req, res) => {
    const body = JSON.stringify({ statusCode: 426, message: 'This port serves WebSocket gateways only', error: statusText(426) });
    res.writeHead(426, { 'content-type': 'application/json; charset=utf-8', upgrade: 'websocket', connection: 'Upgrade' });
    res.end(body);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function ignore(): void {}

/** Resolves true if `pending` has not settled within `ms` milliseconds. */
async function outlasts(pending: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([pending.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, true)))]);
  clearTimeout(timer);
  return timedOut;
}

/** Bytes a client may send before its upgrade is answered (it should send none) before it is dropped. */
const MAX_EARLY_BYTES = 64 * 1024;

/** 16 random bytes in base64, as RFC 6455 §4.1 requires of Sec-WebSocket-Key. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** A comma-separated list of tokens (RFC 6455 §4.1, RFC 7230 §3.2.6). */
const PROTOCOL_LIST = /^\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*,\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*\s*$/;

function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function validate(options: ResolvedOptions): void {
  const check = (name: string, value: number, min: number) => {
    if (typeof value !== 'number' || Number.isNaN(value) || value < min || (!Number.isInteger(value) && value !== Number.POSITIVE_INFINITY)) {
      throw new ToniError('TONI_ERR_INVALID_OPTION', `WsAdapter option ${name} must be an integer >= ${min}, got ${String(value)}.`);
    }
  };
  check('maxPayload', options.maxPayload, 1);
  check('heartbeatInterval', options.heartbeatInterval, 0);
  check('heartbeatTimeout', options.heartbeatTimeout, 1);
  check('maxConnections', options.maxConnections, 1);
  check('closeTimeout', options.closeTimeout, 0);
  check('maxBufferedBytes', options.maxBufferedBytes, 1);
  check('slowConsumerGrace', options.slowConsumerGrace, 0);
  check('inboundHighWaterMark', options.inboundHighWaterMark, 1);
  check('handshakeTimeout', options.handshakeTimeout, 1);
  check('maxEventSize', options.maxEventSize, 2);
  check('maxEventDepth', options.maxEventDepth, 1);
  check('maxInboundBytes', options.maxInboundBytes, 1);
  if (options.maxInboundBytes < options.inboundHighWaterMark + options.maxPayload) {
    throw new ToniError(
      'TONI_ERR_INVALID_OPTION',
      `WsAdapter option maxInboundBytes (${options.maxInboundBytes}) must be at least inboundHighWaterMark + maxPayload (${options.inboundHighWaterMark + options.maxPayload}): ` +
        'a client may deliver one whole message after its socket is paused.',
    );
  }
  const origins = options.allowedOrigins;
  if (origins !== undefined && typeof origins !== 'function' && (!Array.isArray(origins) || origins.some((origin) => typeof origin !== 'string'))) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', 'WsAdapter option allowedOrigins must be an array of origin strings or a function.');
  }
}
