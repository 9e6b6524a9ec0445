export { NodeHttpAdapter, type NodeHttpAdapterOptions } from './http-adapter.js';
