export { NodeHttpAdapter, type NodeHttpAdapterOptions } from './http-adapter.js';
export { WsAdapter, type WsAdapterOptions } from './ws-adapter.js';
