// The server of `bench:history`: one instance with BroadcastModule.forRoot({ history }) — in
// memory, or in Redis Streams with HISTORY_REDIS_URL — and a gateway whose clients are in room
// `lobby` from onConnect (as recovery wants). Driven over IPC: emit bursts, shut its door (every
// client dropped with 1012 and its handshakes answered 503, so that the clients retry and miss what
// is emitted meanwhile), open it again, and report its heap.
import { HttpException, Injectable, Module, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { BroadcastModule, BroadcastService, ConnectionManager, type Delivery, type Gateway, type Recipient, type WsClient } from 'tonijs/websocket';

export type HistoryServerCommand =
  | { type: 'emit'; count: number; spread?: boolean }
  | { type: 'clients'; count: number }
  | { type: 'shut' }
  | { type: 'open' }
  | { type: 'memory' };
export type HistoryServerReport =
  | { type: 'ready'; port: number }
  | { type: 'emitted'; ms: number }
  | { type: 'clients'; count: number }
  | { type: 'shut' }
  | { type: 'opened'; at: number }
  | { type: 'memory'; heapUsed: number }
  | { type: 'failed'; message: string };

let shut = false;

@Injectable()
class LobbyGateway implements Gateway {
  readonly path = '/live';
  onHandshake() {
    if (shut) throw new HttpException(503, 'Shut for the benchmark');
    return true;
  }
  async onConnect(client: WsClient) {
    await client.join('lobby');
  }
  onMessage() {}
}

const size = Number(process.env['HISTORY_SIZE'] ?? 2_000);
const redisUrl = process.env['HISTORY_REDIS_URL'];
const transport = redisUrl === undefined ? {} : { transport: new (await import('tonijs/redis')).RedisTransport({ url: redisUrl, keyPrefix: `bench-history-${process.pid}`, operationTimeout: 30_000 }) };

@Module({ imports: [BroadcastModule.forRoot({ ...transport, history: { size, ttl: 600_000 } })], providers: [LobbyGateway] })
class HistoryBenchModule {}

const app = await ToniFactory.create(HistoryBenchModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const url = await app.listen(0, '127.0.0.1');
const broadcast = app.get(BroadcastService);
const connections = app.get(ConnectionManager);
const gc = (globalThis as { gc?: () => void }).gc;

// A stand-in member of the room, without a socket: it counts what the room receives, so that an
// emit burst is over once its last message came back (through Redis, the stream's order).
let delivered = 0;
const counting: Delivery = { fanOut: () => void delivered++, send: () => true };
const probe: Recipient = {
  id: 'bench-probe', gateway: '/probe', rooms: new Set(['lobby']), delivery: counting, speaksTonijs: false,
  client: { id: 'bench-probe' } as WsClient, join: async () => undefined, leave: async () => undefined, requestClose: async () => undefined,
};
await connections.clientConnected(probe);

const send = (report: HistoryServerReport) => process.send!(report);
process.on('message', (command: HistoryServerCommand) => {
  handle(command).then(send, (error: unknown) => send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', port: Number(new URL(url).port) });

async function handle(command: HistoryServerCommand): Promise<HistoryServerReport> {
  switch (command.type) {
    case 'emit': {
      const started = performance.now();
      const lobby = broadcast.to('lobby');
      const target = delivered + command.count;
      // spread: one emit per event-loop turn (each its own entry in Redis); else all in one turn.
      for (let index = 0; index < command.count; index++) {
        void lobby.emit('m', index);
        if (command.spread === true) await new Promise((resolve) => setImmediate(resolve));
      }
      while (delivered < target) await new Promise((resolve) => setImmediate(resolve));
      return { type: 'emitted', ms: performance.now() - started };
    }
    case 'clients': {
      // In the room: joined by onConnect.
      const inLobby = () => [...connections.localClients({ rooms: ['lobby'] })].length - 1;   // the probe
      while (inLobby() < command.count) await new Promise((resolve) => setTimeout(resolve, 5));
      return { type: 'clients', count: inLobby() };
    }
    case 'shut':
      shut = true;
      await broadcast.disconnect(1012, 'Back soon');
      while (connections.localCount > 1) await new Promise((resolve) => setTimeout(resolve, 5));
      return { type: 'shut' };
    case 'open':
      shut = false;
      return { type: 'opened', at: Date.now() };
    case 'memory':
      for (let round = 0; round < 3; round++) gc?.();
      return { type: 'memory', heapUsed: process.memoryUsage().heapUsed };
  }
}
