/**
 * History and recovery (`npm run bench:history`), in memory and in Redis Streams (a redis-server
 * started for the run):
 *
 * - memory per kept message: the server's heap after HISTORY_KEPT (10 000) emits to one room,
 *   against before (in memory), and Redis's MEMORY USAGE of the stream (in Redis), the emits made
 *   in one burst (one entry per turn's run) and one per event-loop turn (one entry each);
 * - replay: HISTORY_CLIENTS (1 000) tonijs/client sockets in a room are dropped (the server closes
 *   them with 1012 and answers their retries 503) while HISTORY_MISSED (1 000) events are emitted
 *   to the room; then the server lets them in again. Measured: from the door opening until every
 *   socket has every missed event (replayed, in order) and `onReconnect` said `recovered: true`,
 *   next to the same reconnect with nothing missed.
 *
 * The burst throughput with the history on against off is `toni-history` in `npm run bench:broadcast`
 * (one instance) and `npm run bench:cluster` (through Redis).
 *
 *   npm run bench:history      HISTORY_CLIENTS=1000 HISTORY_MISSED=1000 HISTORY_KEPT=10000
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisServer } from '../test/support/redis-server.js';
import { Child, startNode } from './broadcast/child.js';
import type { HistoryClientsCommand, HistoryClientsReport } from './history/clients.js';
import type { HistoryServerCommand, HistoryServerReport } from './history/server.js';
import { positiveInteger } from './support.js';

const fail = (message: string): never => {
  console.error(`bench:history: ${message}`);
  process.exit(1);
};
const CLIENTS = positiveInteger(process.env, 'HISTORY_CLIENTS', 1_000, fail);
const MISSED = positiveInteger(process.env, 'HISTORY_MISSED', 1_000, fail);
const KEPT = positiveInteger(process.env, 'HISTORY_KEPT', 10_000, fail);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

type Server = Child<HistoryServerCommand, HistoryServerReport>;
type Clients = Child<HistoryClientsCommand, HistoryClientsReport>;

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const redis = await RedisServer.start();
console.log(`node ${process.version}; redis-server on port ${redis.port}; the server, the clients and Redis are separate processes`);
try {
  console.log(`\nmemory per kept message: ${KEPT.toLocaleString('en-US')} emits to one room (envelopes like {"event":"m","data":1234}), history size ${KEPT.toLocaleString('en-US')}`);
  await memory('in memory', undefined, false);
  await memory('in Redis', redis.url, false);
  await memory('in Redis', redis.url, true);
  console.log(`\nreplay: ${CLIENTS.toLocaleString('en-US')} sockets in one room, dropped while ${MISSED.toLocaleString('en-US')} events are emitted to it, then let in again`);
  for (const [label, url] of [['in memory', undefined], ['in Redis', redis.url]] as const) await replay(label, url);
} finally {
  await redis.stop();
}

function startServer(redisUrl: string | undefined, size: number): { server: Server; pid: number } {
  const env: Record<string, string> = { HISTORY_SIZE: String(size) };
  if (redisUrl !== undefined) env['HISTORY_REDIS_URL'] = redisUrl;
  const child = startNode(here('history/server.ts'), ['--expose-gc'], undefined, env);
  return { server: new Child('history server', child), pid: child.pid! };
}

async function memory(label: string, redisUrl: string | undefined, spread: boolean): Promise<void> {
  const { server, pid } = startServer(redisUrl, KEPT);
  try {
    await server.next('ready', 60_000);
    // A first emit creates the stream and warms the code up.
    await server.request({ type: 'emit', count: 1 }, 'emitted', 30_000);
    const before = await server.request({ type: 'memory' }, 'memory');
    const { ms } = await server.request({ type: 'emit', count: KEPT - 1, spread }, 'emitted', 120_000);
    const full = await server.request({ type: 'memory' }, 'memory');
    let stored = '';
    if (redisUrl !== undefined) {
      // The stream holds the KEPT messages emitted so far, all within its size.
      const client = new Redis(redisUrl);
      try {
        const bytes = Number(await client.call('MEMORY', 'USAGE', `{bench-history-${pid}}:h:lobby`, 'SAMPLES', '0'));
        const entries = await client.xlen(`{bench-history-${pid}}:h:lobby`);
        stored = `Redis holds ${(bytes / KEPT).toFixed(0)} bytes per kept message (MEMORY USAGE of the stream: ${(bytes / 1024 / 1024).toFixed(2)} MiB in ${entries.toLocaleString('en-US')} entries); the server's heap `;
      } finally {
        client.disconnect();
      }
    }
    // Three more histories' worth: the size bounds it, nothing else grows.
    for (let round = 0; round < 3; round++) await server.request({ type: 'emit', count: KEPT, spread }, 'emitted', 120_000);
    const after = await server.request({ type: 'memory' }, 'memory');
    const perMessage = (full.heapUsed - before.heapUsed) / (KEPT - 1);
    const later = (after.heapUsed - full.heapUsed) / 1024 / 1024;
    const heap = redisUrl === undefined ? `${perMessage.toFixed(0)} bytes of the server's heap per kept message, ` : `${stored}changed by ${((full.heapUsed - before.heapUsed) / 1024 / 1024).toFixed(2)} MiB (it keeps nothing per message), `;
    const how = spread ? 'one per turn' : 'in one burst';
    console.log(`  ${label.padEnd(9)}, ${how}: ${heap}then ${later >= 0 ? '+' : ''}${later.toFixed(2)} MiB after ${(3 * KEPT).toLocaleString('en-US')} more emits; ${KEPT - 1} emits kept in ${ms.toFixed(0)} ms`);
  } finally {
    await server.stop();
  }
}

async function replay(label: string, redisUrl: string | undefined): Promise<void> {
  const { server } = startServer(redisUrl, Math.max(2 * MISSED, 100));
  const clients: Clients = new Child('history clients', startNode(here('history/clients.ts'), [], undefined));
  try {
    const { port } = await server.next('ready', 60_000);
    await clients.request({ type: 'open', url: `ws://127.0.0.1:${port}/live`, count: CLIENTS }, 'open', 120_000);
    await server.request({ type: 'clients', count: CLIENTS }, 'clients', 60_000);
    const results: { missed: number; ms: number; reconnectMs: number; recovered: number; cpuMs: number; outOfOrder: number }[] = [];
    for (const missed of [0, MISSED]) {
      await server.request({ type: 'shut' }, 'shut', 60_000);
      await clients.request({ type: 'lost' }, 'lost', 60_000);
      if (missed > 0) await server.request({ type: 'emit', count: missed }, 'emitted', 120_000);
      await clients.request({ type: 'expect', messages: missed, reconnect: true }, 'armed');
      const { at } = await server.request({ type: 'open' }, 'opened');
      const done = await clients.next('done', 300_000);
      results.push({ missed, ms: done.lastAt - at, reconnectMs: done.reconnectedAt - at, recovered: done.recovered, cpuMs: done.cpuMicros / 1000, outOfOrder: done.outOfOrder });
    }
    for (const result of results) {
      const what = result.missed === 0 ? 'nothing missed' : `${result.missed.toLocaleString('en-US')} missed`;
      console.log(`  ${label.padEnd(9)}, ${what.padEnd(14)}: every socket back ${result.reconnectMs} ms and holding everything ${result.ms} ms after the door opened; ` +
        `${result.recovered}/${CLIENTS} said recovered; ${result.outOfOrder} out of order; the clients' process used ${result.cpuMs.toFixed(0)} ms of CPU`);
    }
    const [none, some] = results as [typeof results[0], typeof results[0]];
    const replayed = CLIENTS * MISSED;
    console.log(`  ${label.padEnd(9)}: the replay of ${replayed.toLocaleString('en-US')} events (${CLIENTS} × ${MISSED}) added ${some.ms - none.ms} ms: ${Math.round(replayed / Math.max(1, (some.ms - none.ms) / 1000)).toLocaleString('en-US')} replayed deliveries/s`);
  } finally {
    await clients.request({ type: 'close' }, 'closed', 60_000).catch(() => undefined);
    await clients.stop();
    await server.stop();
  }
}
