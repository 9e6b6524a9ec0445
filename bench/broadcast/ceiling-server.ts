// Not a peer but a yardstick (opt-in: BENCH_SERVERS=…,ceiling): the least a Node server can do
// for the same work. No framework and no `ws` objects: the upgrade is answered by hand, and the
// broadcasts of one event-loop turn are framed into one buffer written once to every socket.
// Its throughput is what this machine and load client allow; its heap per connection is the
// cost of a bare net.Socket.
import { createHash } from 'node:crypto';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { serve } from './server-kit.js';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const sockets = new Set<Socket>();
let pending: Buffer[] = [];

const server = createServer((_req, res) => res.writeHead(426).end());
server.on('upgrade', (req: IncomingMessage, duplex: Duplex) => {
  const socket = duplex as Socket;
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${WEBSOCKET_GUID}`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
  socket.resume();
  sockets.add(socket);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

function broadcast(text: string): void {
  pending.push(textFrame(text));
  if (pending.length === 1) setImmediate(flush);
}

function flush(): void {
  const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
  pending = [];
  for (const socket of sockets) socket.write(bytes);
}

/** An unmasked text frame; the bench only sends payloads under 126 bytes. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

serve({
  port: (server.address() as AddressInfo).port,
  path: '/feed',
  protocol: 'ws',
  broadcast,
  broadcastAwaited: async (text) => broadcast(text),
  clientCount: () => sockets.size,
});
