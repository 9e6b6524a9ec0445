// toni as an application uses it: BroadcastModule, one gateway, WsAdapter with its defaults,
// and broadcasts from outside any request through app.get(BroadcastService). With
// BENCH_REDIS_URL (set by bench/cluster.ts) it is one instance of a cluster over RedisTransport.
// With BENCH_TONI_EMIT=1 it sends gateway events, broadcast.emit('m', text), instead of raw text;
// with BENCH_TONI_HISTORY=1 too, and keeps them: BroadcastModule.forRoot({ history }), the last
// 1 000 for a minute (in memory, or in Redis Streams over RedisTransport).
import { Injectable, Module, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { BroadcastModule, BroadcastService, ConnectionManager, type Gateway } from 'tonijs/websocket';
import { serve } from './server-kit.js';

@Injectable()
class FeedGateway implements Gateway {
  readonly path = '/feed';
  onMessage(): void {}
}

const redisUrl = process.env['BENCH_REDIS_URL'];
const history = process.env['BENCH_TONI_HISTORY'] === '1' ? { history: { size: 1_000, ttl: 60_000 } } : {};
const broadcasting =
  redisUrl === undefined
    ? BroadcastModule.forRoot(history)
    : BroadcastModule.forRoot({ transport: new (await import('tonijs/redis')).RedisTransport({ url: redisUrl, keyPrefix: 'bench' }), ...history });

@Module({ imports: [broadcasting], providers: [FeedGateway] })
class AppModule {}

const app = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const broadcast = app.get(BroadcastService);
const connections = app.get(ConnectionManager);
const url = await app.listen(0, '127.0.0.1');

const emit = process.env['BENCH_TONI_EMIT'] === '1' || process.env['BENCH_TONI_HISTORY'] === '1';

serve({
  port: Number(new URL(url).port),
  path: '/feed',
  protocol: 'ws',
  broadcast: emit ? (text) => void broadcast.emit('m', text) : (text) => void broadcast.broadcastText(text),
  broadcastAwaited: emit ? (text) => broadcast.emit('m', text) : (text) => broadcast.broadcastText(text),
  // Clients of this process: in a cluster the harness waits for each instance's share.
  clientCount: () => connections.localCount,
});
