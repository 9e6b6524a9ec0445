// Socket.IO 4 with its default in-memory adapter: io.emit to every socket of the main namespace.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { serve } from './server-kit.js';

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));

serve({
  port: (httpServer.address() as AddressInfo).port,
  path: '/socket.io/?EIO=4&transport=websocket',
  protocol: 'socket.io',
  broadcast: (text) => void io.emit('m', text),
  // io.emit queues synchronously; an async function gives the caller something to await.
  broadcastAwaited: async (text) => void io.emit('m', text),
  clientCount: () => io.of('/').sockets.size,
});
