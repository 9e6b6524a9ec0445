// A gateway whose onMessage takes 30 ms (a database write, say) and answers `echo` messages at
// once, reporting its process's memory to the orchestrator every 250 ms.
import { Injectable, Module, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import type { Gateway, WsClient, WsMessage } from 'tonijs/websocket';

const HANDLER_MS = Number(process.env['FLOOD_HANDLER_MS'] ?? 30);

@Injectable()
class SlowGateway implements Gateway {
  readonly path = '/flood';
  handled = 0;
  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText() ?? '';
    if (text.startsWith('echo')) {
      await client.send(text);
      return;
    }
    this.handled++;
    await new Promise((resolve) => setTimeout(resolve, HANDLER_MS));
  }
}

@Module({ providers: [SlowGateway] })
class FloodModule {}

const gc = (globalThis as { gc?: () => void }).gc;
const app = await ToniFactory.create(FloodModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter({ heartbeatInterval: 1_000, heartbeatTimeout: 1_000 }));
const url = await app.listen(0, '127.0.0.1');
const gateway = app.get(SlowGateway);
let peakHeap = 0;
const sample = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 20);
setInterval(() => {
  const raw = process.memoryUsage();
  gc?.();
  const retained = process.memoryUsage();
  process.send!({ type: 'memory', heapUsed: raw.heapUsed, peakHeap, retainedHeap: retained.heapUsed, arrayBuffers: retained.arrayBuffers, rss: raw.rss, handled: gateway.handled });
  peakHeap = 0;
}, 250).unref();
process.send!({ type: 'ready', url: url.replace('http', 'ws') + '/flood' });
process.on('SIGTERM', () => {
  clearInterval(sample);
  void app.close().then(() => process.exit(0));
});
