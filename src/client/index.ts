/**
 * tonijs/client: a WebSocket client for tonijs gateways that reconnects by itself, queues while
 * offline, and speaks events and acknowledgements. This module is the browser's (and any
 * platform's with a global WebSocket); Node resolves `tonijs/client` to node.ts, which falls back
 * to `ws`. No Node built-in is imported here.
 */
import type { AnyEvents, EventMap } from '../websocket/event-map.js';
import type { ConnectOptions, Platform, WebSocketConstructor } from './options.js';
import { ToniSocket } from './socket.js';

export { ToniClientError, type ToniClientErrorCode, type ToniClientIssue } from './error.js';
export type { ConnectOptions, HeartbeatOptions, QueryValues, ReconnectOptions, WebSocketConstructor, WebSocketLike } from './options.js';
export { type ClientRequestOptions, type CloseInfo, type RawFrame, type ReconnectInfo, type ServerEventHandler, type SocketState, ToniSocket } from './socket.js';
export type { AnyEvents, EventMap } from '../websocket/event-map.js';

const browser: Platform = {
  get WebSocket() {
    return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  },
  kill: (socket) => socket.close(),
};

/**
 * Connects to a tonijs gateway and keeps the connection up: see `ToniSocket`. `url` may be
 * relative to the page in browsers (`'/chat'`), and `http(s):` stands for `ws(s):`. `E`, an
 * event map shared with the gateway, types `emit`, `request` and `on`.
 *
 * @example
 * import { connect } from 'tonijs/client';
 *
 * const socket = connect<ChatEvents>('wss://chat.example.com/chat', {
 *   query: async () => ({ token: await session.token() }),   // on every (re)connect
 * });
 * socket.on('message', (data) => render(data));
 * const reply = await socket.request('send', { room: 'lobby', text: 'hi' }, { timeout: 5000 });
 */
export function connect<E extends EventMap = AnyEvents>(url: string | URL, options: ConnectOptions = {}): ToniSocket<E> {
  return new ToniSocket<E>(url, options, browser);
}
