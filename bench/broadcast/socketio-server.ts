// Socket.IO 4 with its default in-memory adapter: io.emit to every socket of the main namespace.
// With BENCH_REDIS_URL (set by bench/cluster.ts) it uses @socket.io/redis-adapter on ioredis:
// io.emit publishes to Redis and every instance emits to its own sockets.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { serve } from './server-kit.js';

const redisUrl = process.env['BENCH_REDIS_URL'];
const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });
if (redisUrl !== undefined) {
  const [{ createAdapter }, { Redis }] = await Promise.all([import('@socket.io/redis-adapter'), import('ioredis')]);
  const publisher = new Redis(redisUrl);
  io.adapter(createAdapter(publisher, publisher.duplicate()));
}
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));

serve({
  port: (httpServer.address() as AddressInfo).port,
  path: '/socket.io/?EIO=4&transport=websocket',
  protocol: 'socket.io',
  broadcast: (text) => void io.emit('m', text),
  // io.emit queues synchronously; an async function gives the caller something to await.
  broadcastAwaited: async (text) => void io.emit('m', text),
  // Sockets of this process (the Redis adapter keeps remote ones out of this map).
  clientCount: () => io.of('/').sockets.size,
});
