import { after, before } from 'node:test';
import { RedisTransport } from 'tonijs/redis';
import { RedisServer } from './support/redis-server.js';
import { describeTransportConformance } from './support/transport-conformance.js';

// The same promises as the in-memory reference, over a real redis-server started for this file.
let redis: RedisServer;
let cluster = 0;

before(async () => {
  redis = await RedisServer.start();
});

after(async () => {
  await redis.stop();
});

describeTransportConformance('RedisTransport', async () => {
  const keyPrefix = `conformance-${++cluster}`;
  return { transport: () => new RedisTransport({ url: redis.url, keyPrefix, heartbeatInterval: 200, instanceTimeout: 2_000 }) };
});
