export type { Gateway } from './gateway.js';
export { WsClient, type ClientId, type WsConnection } from './client.js';
export { WsMessage, type WsMessageKind, type BinaryInput } from './message.js';
export { WsHandshake } from './handshake.js';
export type { DisconnectReason, DisconnectKind } from './disconnect-reason.js';
export { MetadataKey, type MetadataToken } from './metadata.js';
export type { WebSocketAdapter, WebSocketBinding } from './adapter.js';
export { GatewayHost, ClientSession, CONNECTION_OBSERVER, type ConnectionObserver, type GatewayEntry, type HandshakeVerdict } from './gateway-host.js';
