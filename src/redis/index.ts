export { RedisTransport, type RedisTransportOptions, type RedisTransportStats } from './redis-transport.js';
export { PROTOCOL_VERSION } from './codec.js';
