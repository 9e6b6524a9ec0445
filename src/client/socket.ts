import { ackEnvelope, assertEventName, eventEnvelope } from '../websocket/envelope.js';
import type { AnyEvents, EventAck, EventArgs, EventData, EventMap, EventName } from '../websocket/event-map.js';
import { TONIJS_PROTOCOL } from '../websocket/protocol.js';
import { backoffDelay } from './backoff.js';
import { ToniClientError } from './error.js';
import { type Frame, readFrame } from './frame.js';
import { type ConnectOptions, type Platform, type Settings, type WebSocketLike, delay, settingsOf } from './options.js';

/** `connecting` until first open; `reconnecting` between a loss and the next open; `closed` for good. */
export type SocketState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What `onClose` listeners learn. */
export interface CloseInfo {
  /** The WebSocket close code: 1006 when the connection failed or was cut without one. */
  readonly code: number;
  readonly reason: string;
  /** True when the socket reconnects by itself; false exactly once, when it closes for good. */
  readonly willReconnect: boolean;
  /** Why the socket gave up (`refused`, `unreachable`); undefined after `close()` and while it reconnects. */
  readonly error: ToniClientError | undefined;
}

/** What `onReconnect` listeners learn. */
export interface ReconnectInfo {
  /**
   * True when the server replayed every message the socket missed while it was away, in the
   * rooms it is back in (joined by the gateway's `onConnect`, or by the requests `onOpen`
   * listeners made) and the broadcasts to everyone: exactly once and in order, before anything
   * newer. False when the server keeps no history, or it no longer reaches back far enough:
   * reload what the page shows.
   */
  readonly recovered: boolean;
  /** Attempts it took, 1 for the first. */
  readonly attempt: number;
  /** Milliseconds between the loss and this open. */
  readonly downtime: number;
}

/** Options of `request`. */
export interface ClientRequestOptions {
  /** Milliseconds to wait for the answer, counted from the call (queued time included). Default: the socket's `timeout`. */
  timeout?: number;
}

/** A handler of server event `K`: its return value (or promise) answers the server's `request`. */
export type ServerEventHandler<E, K extends EventName<E, 'server'>> = EventAck<E, 'server', K> extends void | undefined
  ? (data: EventData<E, 'server', K>) => unknown
  : (data: EventData<E, 'server', K>) => EventAck<E, 'server', K> | PromiseLike<EventAck<E, 'server', K>>;

/** A frame that is not an event envelope: text as a string, binary as an ArrayBuffer. */
export type RawFrame = string | ArrayBuffer;

type Handler = (data: unknown) => unknown;

interface Pending {
  readonly id: number;
  readonly event: string;
  readonly frame: string;
  readonly resolve: (value: never) => void;
  readonly reject: (error: ToniClientError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** An emit (its frame) or a request, waiting for the socket to open. */
type Queued = string | Pending;

/** A reconnect on a tonijs server, until `onReconnect` is told. */
interface Reconnecting {
  readonly ws: WebSocketLike;
  readonly info: Omit<ReconnectInfo, 'recovered'>;
  /** False once the welcome or a position frame says something was not replayed. */
  recovered: boolean;
  welcomed: boolean;
  /** The requests `onOpen` listeners made are answered (or failed). */
  settled: boolean;
}

interface Listeners {
  open: Set<() => void>;
  close: Set<(info: CloseInfo) => void>;
  reconnect: Set<(info: ReconnectInfo) => void>;
  error: Set<(error: ToniClientError) => void>;
  raw: Set<(frame: RawFrame) => void>;
}

// Refused handshakes that retrying would not fix; 408 and 429 say "later", and are retried.
const FINAL_STATUS = (status: number) => status >= 400 && status < 500 && status !== 408 && status !== 429;
const CLOSE_GRACE = 2_000;
/** The query parameter the server reads the recovery request from, and how many streams it takes. */
const RECOVERY_PARAMETER = 'tonijs-recover';
const MAX_RECOVERED_STREAMS = 256;

/**
 * A connection to a tonijs gateway that survives losing it: it reconnects by itself with
 * backoff, queues `emit` and `request` while it is not open, notices dead links with its own
 * heartbeat, and types events with an event map `E` (see `EventMap`). Made by `connect`.
 *
 * @example
 * const socket = connect<ChatEvents>('/chat');
 * socket.on('message', (data) => render(data));
 * const reply = await socket.request('send', { room: 'lobby', text: 'hi' }, { timeout: 5000 });
 */
export class ToniSocket<E extends EventMap = AnyEvents> {
  /** The URL it connects to, without the `query` of each attempt. */
  readonly url: string;
  readonly #settings: Settings;
  readonly #platform: Platform;
  #state: SocketState = 'connecting';
  /** The connection, open or opening; undefined between attempts and while the query is computed. */
  #ws: WebSocketLike | undefined;
  /** Counts attempts, so that an attempt still computing its query knows when it was superseded. */
  #generation = 0;
  #queue: Queued[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly #handlers = new Map<string, Handler[]>();
  readonly #listeners: Listeners = { open: new Set(), close: new Set(), reconnect: new Set(), error: new Set(), raw: new Set() };
  /** Attempts since the last open (or the start); what `maxAttempts` bounds. */
  #attempt = 0;
  /** The backoff exponent: failed attempts since a connection last stayed open `maxDelay` ms. */
  #failures = 0;
  #everOpened = false;
  #openedAt = 0;
  #lostAt = 0;
  /** The reconnect delay, a connection attempt's deadline, or the heartbeat. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastSeen = 0;
  #pingAt = 0;
  #pings = 0;
  /** Why it closed for good, when it gave up. */
  #error: ToniClientError | undefined;
  #ready: ReturnType<typeof deferred> | undefined;
  #closed: ReturnType<typeof deferred> | undefined;
  /** The server's id for the last connection (its welcome), which a reconnect presents to recover. */
  #connectionId: string | undefined;
  /** Per stream (a room, or `''`), the epoch and offset of the last kept event received. */
  readonly #positions = new Map<string, [epoch: string, offset: number]>();
  /** The streams the server put this connection on (their positions are current). */
  #followed = new Set<string>();
  /** A reconnect not yet reported: it waits for the server's welcome and for the requests of `onOpen`. */
  #reconnecting: Reconnecting | undefined;
  /** While `onOpen` listeners run after a reconnect: the requests they make (re-joining rooms). */
  #openRequests: Promise<unknown>[] | undefined;

  /** @internal made by `connect` */
  constructor(url: string | URL, options: ConnectOptions, platform: Platform) {
    this.#settings = settingsOf(options, platform);
    this.#platform = platform;
    this.url = webSocketUrl(url);
    void this.#attemptConnect();
  }

  /** `'connecting' | 'open' | 'reconnecting' | 'closed'`. */
  get state(): SocketState {
    return this.#state;
  }

  /**
   * Sends event `event` with `data`: now when open, else once open, after what was queued
   * before. Delivery is at most once: an emit written just before a loss may be lost with it.
   * Throws a `ToniClientError` `queue_full` when `maxQueue` calls already wait, `closed` once
   * closed, and a `TypeError` for data JSON cannot carry.
   *
   * @example
   * socket.emit('typing', { room: 'lobby' });
   */
  emit<K extends EventName<E, 'client'>>(event: K, ...data: EventArgs<E, 'client', K>): void {
    assertEventName(event);
    const refusal = this.#refusal();
    if (refusal !== undefined) throw refusal;
    this.#enqueue(eventEnvelope(event, data[0]));
  }

  /**
   * Asks the server: sends `event` with an id and resolves with the handler's acknowledgement.
   * Rejects with a `ToniClientError`: `timeout` (counted from the call), `disconnected` (sent,
   * and the connection was lost before the answer), `queue_full`, `closed`, or the server's
   * code (`invalid_payload` with `issues`, …). Throws a `TypeError` for data JSON cannot carry.
   *
   * @example
   * const { joined } = await socket.request('join', 'lobby', { timeout: 5_000 });
   */
  request<K extends EventName<E, 'client'>>(event: K, ...args: [...EventArgs<E, 'client', K>, options?: ClientRequestOptions]): Promise<EventAck<E, 'client', K>> {
    assertEventName(event);
    const timeout = delay('request() timeout', (args.length > 1 ? (args[1] as ClientRequestOptions | undefined)?.timeout : undefined) ?? this.#settings.timeout);
    const id = this.#nextId++;
    const frame = eventEnvelope(event, args[0], id);
    const answer = new Promise<EventAck<E, 'client', K>>((resolve, reject) => {
      const refusal = this.#refusal();
      if (refusal !== undefined) return reject(refusal);
      const pending: Pending = { id, event, frame, resolve, reject, timer: undefined };
      this.#enqueue(pending);
      pending.timer = setTimeout(() => this.#expire(pending, timeout), timeout);
    });
    this.#openRequests?.push(answer);
    return answer;
  }

  /**
   * Handles server event `event`. For a server's `request`, the first handler's return value
   * (or promise) is the answer; a `ToniClientError` it throws answers with that error. Returns
   * a function that removes the handler.
   *
   * @example
   * socket.on('message', (data) => render(data));
   * socket.on('confirm', (question) => window.confirm(question));
   */
  on<K extends EventName<E, 'server'>>(event: K, handler: ServerEventHandler<E, K>): () => void {
    assertEventName(event);
    const list = this.#handlers.get(event);
    if (list === undefined) this.#handlers.set(event, [handler as Handler]);
    else list.push(handler as Handler);
    return () => this.off(event, handler);
  }

  /** Removes a handler added with `on`. */
  off<K extends EventName<E, 'server'>>(event: K, handler: ServerEventHandler<E, K>): void {
    const list = this.#handlers.get(event);
    const index = list?.indexOf(handler as Handler) ?? -1;
    if (index < 0) return;
    list!.splice(index, 1);
    if (list!.length === 0) this.#handlers.delete(event);
  }

  /** Resolves once open (at once if it is); rejects with the reason once it closes for good. */
  ready(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(this.#error ?? closedError());
    return (this.#ready ??= deferred()).promise;
  }

  /**
   * Closes for good: no reconnecting. Queued calls reject with `closed`; requests in flight get
   * their answer if it comes before the connection ends, else `disconnected`. Resolves once the
   * connection has ended (after a bounded wait for the server's close frame).
   */
  close(): Promise<void> {
    if (this.#state !== 'closed') this.#end(1000, '', undefined);
    return this.#closed?.promise ?? Promise.resolve();
  }

  /** Calls `listener` each time the socket opens, before the queue is sent: what it sends goes first. */
  onOpen(listener: () => void): () => void {
    return listen(this.#listeners.open, listener);
  }

  /** Calls `listener` when an open connection is lost (`willReconnect` true) and once when the socket closes for good. */
  onClose(listener: (info: CloseInfo) => void): () => void {
    return listen(this.#listeners.close, listener);
  }

  /**
   * Calls `listener` each time the socket opens again after a loss, after `onOpen`: on a tonijs
   * server, once it has welcomed the socket and the requests `onOpen` listeners made are settled,
   * so that `recovered` covers the rooms they joined again.
   */
  onReconnect(listener: (info: ReconnectInfo) => void): () => void {
    return listen(this.#listeners.reconnect, listener);
  }

  /**
   * Calls `listener` with what has nowhere else to go: a handler or listener that threw
   * (`handler_error`), a failing `query` function (`query_failed`), and the server's `error`
   * events (a failed `emit`) when no `on('error')` handler takes them. Without a listener they
   * are logged with `console.error`.
   */
  onError(listener: (error: ToniClientError) => void): () => void {
    return listen(this.#listeners.error, listener);
  }

  /** Calls `listener` with frames that are not event envelopes (a gateway's own `onMessage` protocol). */
  onRaw(listener: (frame: RawFrame) => void): () => void {
    return listen(this.#listeners.raw, listener);
  }

  async #attemptConnect(): Promise<void> {
    this.#attempt++;
    const generation = ++this.#generation;
    this.#timer = setTimeout(() => this.#lost(this.#ws, 1006, `No connection within ${this.#settings.connectTimeout} ms`, true), this.#settings.connectTimeout);
    let url: string;
    try {
      url = await this.#urlWithQuery();
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#report(new ToniClientError('query_failed', `The query function failed: ${String(error)}`, {}, { cause: error }));
      return this.#lost(undefined, 1006, 'The query function failed');
    }
    if (generation !== this.#generation) return;
    let refused: number | undefined;
    let ws: WebSocketLike;
    try {
      ws = new this.#settings.WebSocket(url, TONIJS_PROTOCOL);
    } catch (error) {
      // The platform will not open it at all (a blocked port, ws: from an https: page): retrying cannot help.
      return this.#end(1006, '', new ToniClientError('unreachable', `Cannot open a WebSocket to ${this.url}: ${String(error)}`, {}, { cause: error }));
    }
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    this.#platform.watch?.(ws, (status) => (refused = status));
    ws.addEventListener('open', () => this.#opened(ws));
    ws.addEventListener('message', (event: { data: unknown }) => this.#receive(ws, event.data));
    ws.addEventListener('close', (event: { code: number; reason: string }) => this.#lost(ws, event.code, event.reason, false, refused));
    // Once open, an error is followed by the close event, which says all there is to say. Before,
    // it ends the attempt: some WebSockets (Node 20's undici) fire no close event for a refused handshake.
    ws.addEventListener('error', () => this.#state !== 'open' && this.#lost(ws, 1006, '', true, refused));
  }

  async #urlWithQuery(): Promise<string> {
    const query = this.#settings.query;
    const values = typeof query === 'function' ? await query() : query;
    const recovery = this.#recoveryRequest();
    if (values === undefined && recovery === undefined) return this.url;
    const url = new URL(this.url);
    const entries = values === undefined ? [] : values instanceof URLSearchParams ? values : Object.entries(values);
    for (const [name, value] of entries) if (value !== undefined) url.searchParams.set(name, String(value));
    if (recovery !== undefined) url.searchParams.set(RECOVERY_PARAMETER, recovery);
    return url.href;
  }

  /** What the socket has of each stream, for the server to replay the rest: `{"id":…,"s":{"room":[epoch,offset]}}`. */
  #recoveryRequest(): string | undefined {
    // Without a welcome (lost before it came) there is no previous id, but the positions still hold.
    if (this.#positions.size === 0) return undefined;
    const streams: Record<string, [string, number]> = {};
    let count = 0;
    for (const [stream, position] of this.#positions) {
      if (++count > MAX_RECOVERED_STREAMS) break;
      streams[stream] = position;
    }
    return JSON.stringify(this.#connectionId === undefined ? { s: streams } : { id: this.#connectionId, s: streams });
  }

  #opened(ws: WebSocketLike): void {
    if (ws !== this.#ws) return;
    clearTimeout(this.#timer);
    const reconnected = this.#everOpened;
    const info = { attempt: this.#attempt, downtime: Date.now() - this.#lostAt };
    this.#followed = new Set();
    this.#state = 'open';
    this.#everOpened = true;
    this.#openedAt = Date.now();
    this.#attempt = 0;
    if (ws.protocol === TONIJS_PROTOCOL && this.#settings.heartbeat !== false) {
      this.#lastSeen = Date.now();
      this.#pingAt = 0;
      this.#timer = setTimeout(this.#beat, this.#settings.heartbeat.interval);
    }
    this.#ready?.resolve();
    this.#ready = undefined;
    // A tonijs server replays what the socket missed (the positions #urlWithQuery sent) in the
    // streams it joins again: while connecting (its welcome says how that went), and for the
    // requests of onOpen listeners (the position frames do). onReconnect waits for both.
    const tonijs = reconnected && ws.protocol === TONIJS_PROTOCOL;
    const reconnecting: Reconnecting | undefined = tonijs ? { ws, info, recovered: true, welcomed: false, settled: false } : undefined;
    this.#reconnecting = reconnecting;
    this.#openRequests = tonijs ? [] : undefined;
    this.#emit(this.#listeners.open, undefined);
    const asked = this.#openRequests ?? [];
    this.#openRequests = undefined;
    if (reconnecting !== undefined) {
      void Promise.allSettled(asked).then(() => {
        reconnecting.settled = true;
        this.#reportReconnect(reconnecting);
      });
    } else if (reconnected) this.#emit(this.#listeners.reconnect, { ...info, recovered: false });
    const queue = this.#queue;
    this.#queue = [];
    for (let index = 0; index < queue.length; index++) {
      // A listener or an earlier write may have closed it: the rest waits for the next open.
      if (ws !== this.#ws || this.#state !== 'open') {
        this.#queue = queue.slice(index).concat(this.#queue);
        return;
      }
      this.#write(ws, queue[index]!);
    }
  }

  #receive(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.#ws) return;
    this.#lastSeen = Date.now();
    const frame: Frame = typeof data === 'string' ? readFrame(data) : { kind: 'raw' };
    switch (frame.kind) {
      case 'control':
        return;
      case 'position':
        this.#positions.set(frame.position.room, [frame.position.epoch, frame.position.offset]);
        this.#followed.add(frame.position.room);
        if (frame.recovered === false && this.#reconnecting !== undefined) this.#reconnecting.recovered = false;
        return;
      case 'left':
        this.#positions.delete(frame.room);
        return;
      case 'welcome': {
        this.#connectionId = frame.id;
        const reconnecting = this.#reconnecting;
        if (reconnecting === undefined) return;
        reconnecting.welcomed = true;
        if (!frame.recovered) reconnecting.recovered = false;
        return this.#reportReconnect(reconnecting);
      }
      case 'raw':
        return this.#emit(this.#listeners.raw, data as RawFrame);
      case 'ack':
        return this.#settle(frame.id, frame.data, frame.error);
      case 'event': {
        const position = frame.position;
        if (position !== undefined) {
          const known = this.#positions.get(position.room);
          // Without an epoch, the event is in the one the socket was last told (a position frame, or an event that had one).
          const epoch = position.epoch ?? known?.[0];
          // Seen already (a replay overlapping what arrived live): exactly once means not again.
          if (known !== undefined && known[0] === epoch && position.offset <= known[1]) return;
          if (epoch !== undefined) this.#positions.set(position.room, [epoch, position.offset]);
        }
        return this.#dispatch(ws, frame.event, frame.data, frame.id);
      }
    }
  }

  /** Tells `onReconnect` listeners, once the server has welcomed the socket and the requests of `onOpen` are settled. */
  #reportReconnect(reconnecting: Reconnecting): void {
    if (!reconnecting.welcomed || !reconnecting.settled || reconnecting !== this.#reconnecting || reconnecting.ws !== this.#ws) return;
    this.#reconnecting = undefined;
    // The streams it follows now are those the server started it on again: the rest it left.
    for (const stream of this.#positions.keys()) if (!this.#followed.has(stream)) this.#positions.delete(stream);
    this.#emit(this.#listeners.reconnect, { ...reconnecting.info, recovered: reconnecting.recovered });
  }

  #dispatch(ws: WebSocketLike, event: string, data: unknown, id: number | string | undefined): void {
    const handlers = this.#handlers.get(event)?.slice();
    if (handlers === undefined) {
      if (id !== undefined) this.#answer(ws, id, false, new ToniClientError('unknown_event', `No handler for "${event}" on this client`));
      else if (event === 'error') this.#report(serverError(data));
      return;
    }
    for (let index = 0; index < handlers.length; index++) {
      let result: unknown;
      try {
        result = handlers[index]!(data);
      } catch (error) {
        if (index === 0 && id !== undefined) this.#answer(ws, id, false, error);
        else this.#report(handlerError(event, error));
        continue;
      }
      if (index === 0 && id !== undefined) {
        Promise.resolve(result).then(
          (value) => this.#answer(ws, id, true, value),
          (error: unknown) => this.#answer(ws, id, false, error),
        );
      } else if (isThenable(result)) {
        result.then(undefined, (error: unknown) => this.#report(handlerError(event, error)));
      }
    }
  }

  /** Answers the server's request `id` on the connection that asked; a lost connection's answer is dropped. */
  #answer(ws: WebSocketLike, id: number | string, ok: boolean, value: unknown): void {
    let text: string;
    try {
      if (ok) text = ackEnvelope(id, value);
      else if (value instanceof ToniClientError) text = `{"id":${JSON.stringify(id)},"error":${JSON.stringify(value)}}`;
      else throw value;
    } catch (failure) {
      this.#report(handlerError(`request ${JSON.stringify(id)}`, failure));
      text = `{"id":${JSON.stringify(id)},"error":{"code":"internal","message":"The client failed to answer"}}`;
    }
    if (ws === this.#ws && this.#state === 'open') ws.send(text);
  }

  #settle(id: number | string, data: unknown, error: unknown): void {
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending === undefined) return;
    this.#pending.delete(id as number);
    clearTimeout(pending.timer);
    if (error === undefined) pending.resolve(data as never);
    else pending.reject(serverError(error));
  }

  /** Undefined when calls can be made (now or queued), else the error they fail with. */
  #refusal(): ToniClientError | undefined {
    if (this.#state === 'closed') return new ToniClientError('closed', `The socket to ${this.url} is closed${this.#error === undefined ? '' : ` (${this.#error.message})`}`, {}, { cause: this.#error });
    if (this.#state !== 'open' && this.#queue.length >= this.#settings.maxQueue) {
      return new ToniClientError('queue_full', `The socket to ${this.url} is not open and ${this.#settings.maxQueue} calls already wait (maxQueue)`);
    }
    return undefined;
  }

  #enqueue(item: Queued): void {
    if (this.#state === 'open') this.#write(this.#ws!, item);
    else this.#queue.push(item);
  }

  #write(ws: WebSocketLike, item: Queued): void {
    if (typeof item === 'string') return ws.send(item);
    this.#pending.set(item.id, item);
    ws.send(item.frame);
  }

  #expire(pending: Pending, timeout: number): void {
    // Never sent: it leaves the queue, so the server never acts on a request its caller gave up.
    if (!this.#pending.delete(pending.id)) {
      const index = this.#queue.indexOf(pending);
      if (index >= 0) this.#queue.splice(index, 1);
    }
    pending.reject(new ToniClientError('timeout', `No answer to "${pending.event}" within ${timeout} ms`));
  }

  /** The heartbeat: a ping when nothing arrived for `interval`; nothing at all within `timeout` of it means the link is dead. */
  readonly #beat = (): void => {
    const ws = this.#ws!;
    const { interval, timeout } = this.#settings.heartbeat as { interval: number; timeout: number };
    const now = Date.now();
    if (this.#pingAt !== 0 && this.#lastSeen < this.#pingAt) return this.#lost(ws, 1006, `No answer to the heartbeat within ${timeout} ms`, true);
    this.#pingAt = 0;
    const idle = now - this.#lastSeen;
    if (idle < interval) {
      this.#timer = setTimeout(this.#beat, interval - idle);
      return;
    }
    this.#pingAt = now;
    ws.send(`{"ping":${++this.#pings}}`);
    this.#timer = setTimeout(this.#beat, timeout);
  };

  /** The connection (or attempt) `ws` ended: reconnect, or give up. */
  #lost(ws: WebSocketLike | undefined, code: number, reason: string, kill = false, refused?: number): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    // After forgetting it: a WebSocket may report its own closing synchronously.
    if (kill && ws !== undefined) this.#platform.kill(ws);
    // An attempt still computing its query is over too: the retry makes its own.
    this.#generation++;
    clearTimeout(this.#timer);
    this.#failPending();
    if (this.#state === 'closed') return this.#closed!.resolve();
    const { reconnect } = this.#settings;
    const wasOpen = this.#state === 'open';
    if (refused !== undefined && FINAL_STATUS(refused)) {
      return this.#end(code, reason, new ToniClientError('refused', `The server refused the connection to ${this.url} with HTTP ${refused}`, { status: refused }));
    }
    if (reconnect === false || this.#attempt >= reconnect.maxAttempts) {
      const tries = wasOpen ? 'the connection was lost' : `${this.#attempt} attempt${this.#attempt === 1 ? '' : 's'} failed`;
      return this.#end(code, reason, new ToniClientError('unreachable', `Gave up on ${this.url}: ${tries}`));
    }
    if (wasOpen) {
      if (Date.now() - this.#openedAt >= reconnect.maxDelay) this.#failures = 0;
      this.#state = 'reconnecting';
      this.#lostAt = Date.now();
      this.#emit(this.#listeners.close, { code, reason, willReconnect: true, error: undefined });
      if (this.#state !== 'reconnecting') return;
    }
    this.#timer = setTimeout(() => void this.#attemptConnect(), backoffDelay(this.#failures++, reconnect.minDelay, reconnect.maxDelay));
  }

  /** Closes for good: by `close()` (`error` undefined) or because it gave up. */
  #end(code: number, reason: string, error: ToniClientError | undefined): void {
    this.#state = 'closed';
    this.#error = error;
    this.#generation++;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#closed = deferred();
    if (ws === undefined) this.#closed.resolve();
    else {
      // A dead link never sends its close frame back: stop waiting for it.
      const { heartbeat } = this.#settings;
      this.#timer = setTimeout(() => this.#lost(ws, 1006, '', true), heartbeat === false ? CLOSE_GRACE : Math.min(heartbeat.timeout, CLOSE_GRACE));
      ws.close(1000);
    }
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) {
      if (typeof item === 'string') continue;
      clearTimeout(item.timer);
      item.reject(error ?? closedError());
    }
    this.#ready?.reject(error ?? closedError());
    this.#ready = undefined;
    this.#emit(this.#listeners.close, { code, reason, willReconnect: false, error });
  }

  #failPending(): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new ToniClientError('disconnected', `The connection was lost before the answer to "${pending.event}"`));
    }
    this.#pending.clear();
  }

  #emit<T>(listeners: Set<(value: T) => void>, value: T): void {
    for (const listener of [...listeners]) {
      try {
        listener(value);
      } catch (error) {
        this.#report(handlerError('a listener', error));
      }
    }
  }

  #report(error: ToniClientError): void {
    if (this.#listeners.error.size === 0) console.error(error);
    for (const listener of [...this.#listeners.error]) {
      try {
        listener(error);
      } catch (failure) {
        console.error(failure);
      }
    }
  }
}

/** `url` as a WebSocket URL: relative to the page in browsers, `http(s):` as `ws(s):`. */
function webSocketUrl(url: string | URL): string {
  const resolved = new URL(url, (globalThis as { location?: { href: string } }).location?.href);
  if (resolved.protocol === 'http:' || resolved.protocol === 'https:') resolved.protocol = resolved.protocol === 'http:' ? 'ws:' : 'wss:';
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') throw new TypeError(`connect() needs a ws:, wss:, http: or https: URL, got ${resolved.href}`);
  return resolved.href;
}

function serverError(error: unknown): ToniClientError {
  const { code, message, ...details } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  return new ToniClientError(typeof code === 'string' ? code : 'internal', typeof message === 'string' ? message : 'The server reported an error', details);
}

function handlerError(what: string, error: unknown): ToniClientError {
  return new ToniClientError('handler_error', `The handler of ${what} threw: ${String(error)}`, {}, { cause: error });
}

function closedError(): ToniClientError {
  return new ToniClientError('closed', 'The socket was closed');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function listen<T>(set: Set<T>, listener: T): () => void {
  set.add(listener);
  return () => void set.delete(listener);
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: ToniClientError) => void } {
  let resolve!: () => void;
  let reject!: (error: ToniClientError) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
