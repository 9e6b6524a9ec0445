/** Query parameters: `undefined` values are left out, others sent as strings. */
export type QueryValues = Record<string, string | number | boolean | undefined> | URLSearchParams;

/** Options of `connect`; every one has a default. */
export interface ConnectOptions {
  /**
   * Query parameters added to the URL of every attempt, or a function (async too) that
   * computes them for each attempt, so that a reconnect sends a fresh token. Browsers cannot
   * set headers on a WebSocket: this is how they authenticate. A function that throws fails the
   * attempt (reported to `onError` as `query_failed`), which is retried.
   */
  query?: QueryValues | (() => QueryValues | Promise<QueryValues>);
  /** How to reconnect after a loss, or `false` to close for good on the first one. */
  reconnect?: ReconnectOptions | false;
  /** Most `emit` and `request` calls that wait while the socket is not open. Default 100; 0 queues nothing. */
  maxQueue?: number;
  /** Default milliseconds a `request` waits for its answer. Default 10 000. */
  timeout?: number;
  /**
   * The `tonijs.v1` heartbeat, which notices a silent dead link (browsers cannot see WebSocket
   * pings): after `interval` ms without a frame from the server the client sends a ping; without
   * any frame `timeout` ms later it drops the link and reconnects. `false` turns it off.
   */
  heartbeat?: HeartbeatOptions | false;
  /** Milliseconds an attempt may take to open (the `query` function included) before it is given up and retried. Default 10 000. */
  connectTimeout?: number;
  /** The WebSocket class, e.g. `ws`'s. Default: the global `WebSocket`; in Node without one, `ws`. */
  WebSocket?: WebSocketConstructor;
}

/** `reconnect` options. A delay is drawn at random between `minDelay` and a ceiling that doubles with each failure, up to `maxDelay`. */
export interface ReconnectOptions {
  /** Shortest wait before an attempt, in milliseconds. Default 500. */
  minDelay?: number;
  /** Longest wait before an attempt; a connection that stayed open this long starts the backoff over. Default 10 000. */
  maxDelay?: number;
  /** Attempts in a row that may fail before the socket gives up (`unreachable`). Default: no limit. */
  maxAttempts?: number;
}

/** `heartbeat` options, in milliseconds. */
export interface HeartbeatOptions {
  /** Quiet time before a ping. Default 25 000. */
  interval?: number;
  /** Time the server has to answer it. Default 10 000. */
  timeout?: number;
}

/** What the client needs of a WebSocket: the browser's, `ws`'s, undici's all fit. */
export interface WebSocketLike {
  readonly protocol: string;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
}

/** A WebSocket class. */
export type WebSocketConstructor = new (url: string, protocols: string) => WebSocketLike;

/** @internal What an entry point knows of its platform. */
export interface Platform {
  /** The WebSocket class when the options name none. */
  readonly WebSocket: WebSocketConstructor | undefined;
  /** Watches a new socket for a refused handshake's HTTP status, where the platform can see it. */
  watch?(socket: WebSocketLike, refused: (status: number) => void): void;
  /** Cuts a connection at once, without waiting for the peer's close frame. */
  kill(socket: WebSocketLike): void;
}

/** @internal The options with their defaults, checked. */
export interface Settings {
  readonly query: ConnectOptions['query'];
  readonly reconnect: Required<ReconnectOptions> | false;
  readonly maxQueue: number;
  readonly timeout: number;
  readonly heartbeat: Required<HeartbeatOptions> | false;
  readonly connectTimeout: number;
  readonly WebSocket: WebSocketConstructor;
}

/** @internal */
export function settingsOf(options: ConnectOptions, platform: Platform): Settings {
  const { reconnect = {}, heartbeat = {} } = options;
  const WebSocket = options.WebSocket ?? platform.WebSocket;
  if (reconnect && reconnect.maxDelay !== undefined && reconnect.maxDelay < (reconnect.minDelay ?? 500)) {
    throw new RangeError(`reconnect.maxDelay (${reconnect.maxDelay}) must not be below reconnect.minDelay (${reconnect.minDelay ?? 500})`);
  }
  if (typeof WebSocket !== 'function') throw new TypeError('connect() found no WebSocket class: pass one as the WebSocket option (e.g. the ws package\'s)');
  return {
    query: options.query,
    reconnect: reconnect && {
      minDelay: delay('reconnect.minDelay', reconnect.minDelay ?? 500, true),
      maxDelay: delay('reconnect.maxDelay', reconnect.maxDelay ?? Math.max(10_000, reconnect.minDelay ?? 0)),
      maxAttempts: count('reconnect.maxAttempts', reconnect.maxAttempts ?? Infinity, 1),
    },
    maxQueue: count('maxQueue', options.maxQueue ?? 100, 0),
    timeout: delay('timeout', options.timeout ?? 10_000),
    heartbeat: heartbeat && { interval: delay('heartbeat.interval', heartbeat.interval ?? 25_000), timeout: delay('heartbeat.timeout', heartbeat.timeout ?? 10_000) },
    connectTimeout: delay('connectTimeout', options.connectTimeout ?? 10_000),
    WebSocket,
  };
}

/** @internal A number of milliseconds a timer can wait (positive, or 0 when allowed). */
export function delay(name: string, value: number, zero = false): number {
  if (typeof value === 'number' && (value > 0 || (zero && value === 0)) && value <= 0x7fffffff) return value;
  throw new RangeError(`${name} must be a number of milliseconds between ${zero ? 0 : 1} and 2147483647, got ${String(value)}`);
}

function count(name: string, value: number, min: number): number {
  if (value === Infinity || (Number.isInteger(value) && value >= min)) return value;
  throw new RangeError(`${name} must be an integer of at least ${min}, got ${String(value)}`);
}
