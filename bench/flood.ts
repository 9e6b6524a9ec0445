/**
 * Inbound flood: one or more clients send 1 KB frames as fast as TCP lets them, for FLOOD_SECONDS,
 * at a gateway whose onMessage takes 30 ms; another client measures echo round trips meanwhile.
 * Prints the server's heap (peak, and retained after a GC) and the echo latency. Before inbound
 * backpressure, one flooder grew the heap by ~1 KB per KB received until the process died.
 *
 *   npm run bench:flood            FLOOD_CLIENTS=1 FLOOD_SECONDS=5
 */
import { randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { Child, startNode } from './broadcast/child.js';
import { percentile, positiveInteger } from './support.js';

type Report =
  | { type: 'ready'; url: string }
  | { type: 'memory'; heapUsed: number; peakHeap: number; retainedHeap: number; arrayBuffers: number; rss: number; handled: number };

const fail = (message: string): never => {
  console.error(message);
  process.exit(2);
};
const CLIENTS = positiveInteger(process.env, 'FLOOD_CLIENTS', 1, fail);
const SECONDS = positiveInteger(process.env, 'FLOOD_SECONDS', 5, fail);
const MB = 1024 * 1024;

const server = new Child<{ type: string }, Report>('flood server', startNode(fileURLToPath(new URL('./flood/server.ts', import.meta.url)), ['--expose-gc'], undefined));
const { url } = await server.next('ready');
const memory: Extract<Report, { type: 'memory' }>[] = [];
const baseline = await server.next('memory');

const frame = maskedFrame(Buffer.alloc(1024, 'f'));
const chunk = Buffer.concat(Array.from({ length: 64 }, () => frame));
const deadline = Date.now() + SECONDS * 1000;
const flooders = await Promise.all(Array.from({ length: CLIENTS }, () => flood(url)));
let flooding = true;
const collecting = (async () => {
  while (flooding || memory.length < 2) memory.push(await server.next('memory'));
})();
const rtts = await echoUntil(url, deadline);
const sent = flooders.reduce((total, flooder) => total + flooder.stop(), 0);
flooding = false;
await collecting;
await server.stop();

const peak = Math.max(...memory.map((report) => report.peakHeap));
const retained = Math.max(...memory.map((report) => report.retainedHeap));
const sorted = rtts.sort((a, b) => a - b);
console.log(`inbound flood: ${CLIENTS} client(s) × ${SECONDS} s of 1 KB frames at a 30 ms onMessage (node ${process.version})`);
console.log(`  sent by the flooders: ${(sent / MB).toFixed(1)} MiB (TCP slowed them: the server handled ${memory.at(-1)!.handled} messages)`);
console.log(`  server heap: baseline ${(baseline.retainedHeap / MB).toFixed(1)} MiB, peak ${(peak / MB).toFixed(1)} MiB, retained after GC ≤ ${(retained / MB).toFixed(1)} MiB` +
  ` → ${((retained - baseline.retainedHeap) / MB / CLIENTS).toFixed(2)} MiB retained per flooder`);
console.log(`  echo round trips of another client during the flood: ${sorted.length}, p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99 ${percentile(sorted, 0.99).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms`);

/** A raw client that writes `chunk` as fast as the socket takes it until stopped; `stop` returns the bytes written. */
async function flood(target: string): Promise<{ stop: () => number }> {
  const { port, pathname } = new URL(target);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise((resolve) => socket.once('data', resolve));
  socket.resume();
  let written = 0;
  let stopped = false;
  const pump = () => {
    while (!stopped && socket.write(chunk)) written += chunk.byteLength;
    if (!stopped) written += chunk.byteLength;
  };
  socket.on('drain', pump);
  pump();
  return { stop: () => { stopped = true; socket.destroy(); return written; } };
}

/** Echo round trips, one at a time, 5 ms apart, until `deadline`. */
async function echoUntil(target: string, deadline: number): Promise<number[]> {
  const ws = new WebSocket(target);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const rtts: number[] = [];
  while (Date.now() < deadline) {
    const started = performance.now();
    ws.send('echo');
    await new Promise((resolve) => ws.once('message', resolve));
    rtts.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  ws.terminate();
  return rtts;
}

function maskedFrame(payload: Buffer): Buffer {
  const header = Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([header, payload]);
}
