// The server of `bench:client`'s reconnect part: a tonijs app with one gateway, on PORT (0: any).
// It reports when it listens, and on demand what the reconnect wave did to it: when each client
// connected, and how late its event loop ran during the wave.
import { Injectable, Module, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { type Gateway, On, type WsClient } from 'tonijs/websocket';

export type ReconnectServerCommand = { type: 'stats' };
export type ReconnectServerReport =
  | { type: 'ready'; port: number; at: number }
  | { type: 'stats'; connects: number[]; disconnectKinds: Record<string, number>; lagMaxMs: number; lagP99Ms: number };

const connects: number[] = [];
const disconnectKinds: Record<string, number> = {};

@Injectable()
class LiveGateway implements Gateway {
  readonly path = '/live';
  onConnect() {
    connects.push(Date.now());
  }
  onDisconnect(_client: WsClient, reason: { kind: string }) {
    disconnectKinds[reason.kind] = (disconnectKinds[reason.kind] ?? 0) + 1;
  }
  @On('echo')
  echo(_client: WsClient, data: unknown) {
    return data;
  }
}

@Module({ providers: [LiveGateway] })
class LiveModule {}

// How late a 10 ms timer fires, with when: the event loop's delay at each moment of the wave.
const TICK = 10;
const lags: { at: number; ms: number }[] = [];
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  lags.push({ at: Date.now(), ms: Math.max(0, now - last - TICK) });
  last = now;
}, TICK).unref();
const app = await ToniFactory.create(LiveModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const url = await app.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1');
process.send!({ type: 'ready', port: Number(new URL(url).port), at: Date.now() } satisfies ReconnectServerReport);

process.on('message', (command: ReconnectServerCommand) => {
  if (command.type !== 'stats') return;
  const during = lags.filter(({ at }) => at >= connects[0]! && at <= connects.at(-1)! + 100).map(({ ms }) => ms).sort((a, b) => a - b);
  const p99 = during[Math.min(during.length - 1, Math.ceil(0.99 * during.length) - 1)] ?? 0;
  process.send!({ type: 'stats', connects, disconnectKinds, lagMaxMs: during.at(-1) ?? 0, lagP99Ms: p99 } satisfies ReconnectServerReport);
});
// A restart as an orchestrator does it: SIGTERM, a graceful close (1001 to every client), exit.
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
