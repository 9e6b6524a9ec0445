/**
 * The part every benchmark server shares: it answers the orchestrator's commands (memory,
 * bursts, CPU, single broadcasts) around the one thing each server does its own way — broadcasting.
 */
import { type ServerCommand, type ServerReport, type WireProtocol, PAYLOAD, now, onCommands, report, stampedPayload } from './protocol.js';

/** One server under test, as the harness drives it. */
export interface BroadcastServer {
  readonly port: number;
  readonly path: string;
  readonly protocol: WireProtocol;
  /** Sends `text` to every connected client and returns at once (fire-and-forget). */
  broadcast(text: string): void;
  /** The same broadcast as a caller awaits it: the server's promise, or its closest equivalent. */
  broadcastAwaited(text: string): Promise<unknown>;
  /** How many clients the server would broadcast to now. */
  clientCount(): number | Promise<number>;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Announces the server to the orchestrator and serves its commands until it is stopped. */
export function serve(server: BroadcastServer): void {
  let cpuAtBurst = process.cpuUsage();
  onCommands<ServerCommand>(async (command) => {
    switch (command.type) {
      case 'memory':
        return send({ type: 'memory', ...(await settledMemory()) });
      case 'wait-clients':
        return send({ type: 'clients', count: await waitForClients(server, command.count) });
      case 'burst': {
        cpuAtBurst = process.cpuUsage();
        const startedAt = now();
        if (command.mode === 'fire') {
          for (let i = 0; i < command.messages; i++) server.broadcast(PAYLOAD);
        } else {
          for (let i = 0; i < command.messages; i++) await server.broadcastAwaited(PAYLOAD);
        }
        return send({ type: 'burst-sent', startedAt, returnedAt: now() });
      }
      case 'cpu': {
        const used = process.cpuUsage(cpuAtBurst);
        return send({ type: 'cpu', micros: used.user + used.system });
      }
      case 'single': {
        const sentAt = now();
        server.broadcast(stampedPayload(command.sequence, sentAt));
        return send({ type: 'single-sent', sentAt });
      }
    }
  });
  send({ type: 'ready', port: server.port, path: server.path, protocol: server.protocol });
}

function send(message: ServerReport): void {
  report(message);
}

/** Heap and RSS after full collections, so that only what is still referenced counts. */
async function settledMemory(): Promise<{ heapUsed: number; rss: number }> {
  if (gc === undefined) throw new Error('Start the server with --expose-gc: the memory figures need it.');
  for (let i = 0; i < 3; i++) {
    gc();
    // Let finalizers and freed sockets' callbacks run between collections.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

async function waitForClients(server: BroadcastServer, count: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  let current = await server.clientCount();
  while (current < count) {
    if (Date.now() > deadline) throw new Error(`The server sees ${current} of ${count} clients after 60 s.`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    current = await server.clientCount();
  }
  return current;
}
