// Socket.IO 4: socket.on with an acknowledgement callback, the client's emitWithAck.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { Add, add, serveCommands } from './work.js';

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });
io.on('connection', (socket) => {
  socket.on('add', (data: unknown, ack: (answer: unknown) => void) => {
    const parsed = Add.safeParse(data);
    ack(parsed.success ? add(parsed.data) : { error: 'invalid_payload', issues: parsed.error.issues });
  });
});
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
serveCommands({ type: 'ready', port: (httpServer.address() as AddressInfo).port, path: '/socket.io/?EIO=4&transport=websocket', protocol: 'socket.io' });
