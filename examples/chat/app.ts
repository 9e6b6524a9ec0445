import { type Logger, type ToniApplication, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { BroadcastService, type BroadcastTransport } from 'tonijs/websocket';
import { AppModule } from './app.module.js';
import { BackgroundJobs } from './background-jobs.js';
import { DEFAULT_DEMO_TOKEN } from './config.js';
import type { ChatEvents } from './protocol.js';

/** Options of `createChatApp`. */
export interface ChatAppOptions {
  /** Join the cluster of instances sharing this Redis; in-memory (one process) when absent. */
  redisUrl?: string | undefined;
  /** Milliseconds between heartbeat broadcasts; 0 turns them off. Default 30 000. */
  heartbeatInterval?: number;
  /** The bearer token `/secure` accepts. Default `demo-token`. */
  demoToken?: string;
  /** Where toni logs; `false` for nothing. Default: the console. */
  logger?: Logger | false;
}

/**
 * Creates the example application, ready to `listen()`: the chat page on `/`, the gateways on
 * `/chat`, `/echo` and `/secure`, the `/events` endpoints, and the heartbeat.
 *
 * @example
 * const app = await createChatApp({ heartbeatInterval: 0 });
 * const url = await app.listen(0, '127.0.0.1');
 */
export async function createChatApp(options: ChatAppOptions = {}): Promise<ToniApplication> {
  const transport = options.redisUrl === undefined ? undefined : await redisTransport(options.redisUrl);
  const app = await ToniFactory.create(
    AppModule.forRoot({ transport, demoToken: options.demoToken ?? DEFAULT_DEMO_TOKEN }),
    new NodeHttpAdapter(),
    { logger: options.logger },
  );
  app.useWebSocketAdapter(new WsAdapter({ maxPayload: 64 * 1024 }));
  app.useStaticAssets(new URL('./public', import.meta.url));   // the chat page, public/index.html, at /
  startHeartbeat(app, options.heartbeatInterval ?? 30_000);
  return app;
}

/** A background task that tells every chat client the time and how many people are online. */
function startHeartbeat(app: ToniApplication, intervalMs: number): void {
  if (intervalMs === 0) return;
  const chat = app.get(BroadcastService<ChatEvents>).gateway('/chat');
  app.get(BackgroundJobs).every(intervalMs, 'heartbeat', async () => {
    await chat.emit('heartbeat', { time: new Date().toISOString(), online: await chat.getClientCount() });
  });
}

// Loaded only when asked for, so that the in-memory setup never loads the Redis client.
async function redisTransport(url: string): Promise<BroadcastTransport> {
  const { RedisTransport } = await import('tonijs/redis');
  return new RedisTransport({ url });
}
