// The baseline: the `ws` README's "Server broadcast" loop, one send per client per message.
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { serve } from './server-kit.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/feed' });
await new Promise((resolve) => wss.once('listening', resolve));

function broadcast(text: string): void {
  for (const client of wss.clients) client.send(text);
}

serve({
  port: (wss.address() as AddressInfo).port,
  path: '/feed',
  protocol: 'ws',
  broadcast,
  // `send` queues synchronously, like toni's broadcast; an async function is what a caller
  // who wants something to await would write (waiting for every send callback would wait for
  // the socket writes, which toni's promise does not).
  broadcastAwaited: async (text) => broadcast(text),
  clientCount: () => wss.clients.size,
});
