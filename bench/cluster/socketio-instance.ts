// One Socket.IO 4 instance of the cluster benchmark, with @socket.io/redis-adapter on ioredis
// (REDIS_URL): io.emit publishes to Redis and every instance emits to its own sockets.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { serve } from '../broadcast/server-kit.js';

const publisher = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const subscriber = publisher.duplicate();
const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false, adapter: createAdapter(publisher, subscriber) });
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));

serve({
  port: (httpServer.address() as AddressInfo).port,
  path: '/socket.io/?EIO=4&transport=websocket',
  protocol: 'socket.io',
  broadcast: (text) => void io.emit('m', text),
  broadcastAwaited: async (text) => void io.emit('m', text),
  clientCount: () => io.of('/').sockets.size,
});
