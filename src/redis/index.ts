export { RedisTransport, type RedisTransportOptions } from './redis-transport.js';
export { PROTOCOL_VERSION } from '../broadcast/wire.js';
