export { NodeHttpAdapter, type NodeHttpAdapterOptions } from './http-adapter.js';
export { WsAdapter, type WsAdapterOptions, type PerMessageDeflateSettings } from './ws-adapter.js';
export { fromNodeMiddleware, type NodeMiddleware } from './node-middleware.js';
