/**
 * tonijs/client under Node (the `node` export condition): the same client, with `ws` when Node
 * has no global WebSocket (Node 20), and, on `ws` sockets, the HTTP status of a refused
 * handshake, which stops the retrying. The only file of src/client/ that imports a Node package.
 */
import WebSocket from 'ws';
import type { AnyEvents, EventMap } from '../websocket/event-map.js';
import type { ConnectOptions, Platform, WebSocketConstructor } from './options.js';
import { ToniSocket } from './socket.js';

export { ToniClientError, type ToniClientErrorCode, type ToniClientIssue } from './error.js';
export type { ConnectOptions, HeartbeatOptions, QueryValues, ReconnectOptions, WebSocketConstructor, WebSocketLike } from './options.js';
export { type ClientRequestOptions, type CloseInfo, type RawFrame, type ReconnectInfo, type ServerEventHandler, type SocketState, ToniSocket } from './socket.js';
export type { AnyEvents, EventMap } from '../websocket/event-map.js';

const node: Platform = {
  WebSocket: (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? (WebSocket as unknown as WebSocketConstructor),
  watch(socket, refused) {
    if (!(socket instanceof WebSocket)) return;
    // With a listener, ws leaves the failed handshake to us: note the status, then end it as ws would.
    socket.once('unexpected-response', (_request, response) => {
      refused(response.statusCode ?? 0);
      response.resume();
      socket.terminate();
    });
  },
  kill: (socket) => (socket instanceof WebSocket ? socket.terminate() : socket.close()),
};

/** Connects to a tonijs gateway: see `connect` in tonijs/client's browser build, which this mirrors. */
export function connect<E extends EventMap = AnyEvents>(url: string | URL, options: ConnectOptions = {}): ToniSocket<E> {
  return new ToniSocket<E>(url, options, node);
}
