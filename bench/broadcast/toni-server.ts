// toni as an application uses it: BroadcastModule, one gateway, WsAdapter with its defaults,
// and broadcasts from outside any request through app.get(BroadcastService).
import { Injectable, Module, ToniFactory } from 'toni';
import { NodeHttpAdapter, WsAdapter } from 'toni/node';
import { BroadcastModule, BroadcastService, type Gateway } from 'toni/websocket';
import { serve } from './server-kit.js';

@Injectable()
class FeedGateway implements Gateway {
  readonly path = '/feed';
  onMessage(): void {}
}

@Module({ imports: [BroadcastModule], providers: [FeedGateway] })
class AppModule {}

const app = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const broadcast = app.get(BroadcastService);
const url = await app.listen(0, '127.0.0.1');

serve({
  port: Number(new URL(url).port),
  path: '/feed',
  protocol: 'ws',
  broadcast: (text) => void broadcast.broadcastText(text),
  broadcastAwaited: (text) => broadcast.broadcastText(text),
  clientCount: () => broadcast.getClientCount(),
});
