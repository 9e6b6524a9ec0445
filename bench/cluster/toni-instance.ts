// One toni instance of the cluster benchmark: BroadcastModule over RedisTransport (REDIS_URL),
// one gateway, WsAdapter with its defaults. Broadcasts go through app.get(BroadcastService).
import { Injectable, Module, ToniFactory } from 'toni';
import { NodeHttpAdapter, WsAdapter } from 'toni/node';
import { RedisTransport } from 'toni/redis';
import { BroadcastModule, BroadcastService, ConnectionManager, type Gateway } from 'toni/websocket';
import { serve } from '../broadcast/server-kit.js';

@Injectable()
class FeedGateway implements Gateway {
  readonly path = '/feed';
  onMessage(): void {}
}

@Module({
  imports: [BroadcastModule.forRoot({ transport: new RedisTransport({ url: process.env['REDIS_URL'], keyPrefix: 'bench' }) })],
  providers: [FeedGateway],
})
class InstanceModule {}

const app = await ToniFactory.create(InstanceModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const broadcast = app.get(BroadcastService);
const connections = app.get(ConnectionManager);
const url = await app.listen(0, '127.0.0.1');

serve({
  port: Number(new URL(url).port),
  path: '/feed',
  protocol: 'ws',
  broadcast: (text) => void broadcast.broadcastText(text),
  broadcastAwaited: (text) => broadcast.broadcastText(text),
  // Clients of this instance: the harness waits for each instance's half.
  clientCount: () => connections.localCount,
});
