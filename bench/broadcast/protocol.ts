/**
 * What the orchestrator (bench/broadcast.ts), the servers and the load client say to each other
 * over their IPC channels, and the clock and payload they share.
 */

/** How a server's clients speak: plain WebSocket, or Engine.IO/Socket.IO over a WebSocket. */
export type WireProtocol = 'ws' | 'socket.io';

/** `fire`: call broadcast M times in a loop; `await`: await each call before the next. */
export type BurstMode = 'fire' | 'await';

/** Orchestrator → server. */
export type ServerCommand =
  | { readonly type: 'memory' }
  | { readonly type: 'wait-clients'; readonly count: number }
  | { readonly type: 'burst'; readonly messages: number; readonly mode: BurstMode }
  | { readonly type: 'cpu' }
  /** One broadcast carrying `sequence` and the time it is sent, for the latency test. */
  | { readonly type: 'single'; readonly sequence: number };

/** Server → orchestrator. */
export type ServerReport =
  | { readonly type: 'ready'; readonly port: number; readonly path: string; readonly protocol: WireProtocol }
  | { readonly type: 'memory'; readonly heapUsed: number; readonly rss: number }
  | { readonly type: 'clients'; readonly count: number }
  /** `startedAt`: the clock when the first broadcast call began; `returnedAt`: when the loop returned. */
  | { readonly type: 'burst-sent'; readonly startedAt: number; readonly returnedAt: number }
  /** CPU microseconds (user + system) the server spent since the last burst began. */
  | { readonly type: 'cpu'; readonly micros: number }
  | { readonly type: 'single-sent'; readonly sentAt: number };

/** Orchestrator → load client. */
export type LoadCommand =
  | { readonly type: 'connect'; readonly port: number; readonly path: string; readonly protocol: WireProtocol; readonly count: number }
  | { readonly type: 'expect'; readonly frames: number }
  | { readonly type: 'expect-samples'; readonly samples: number }
  /** The server is about to stop: its connections closing is no longer a failure. */
  | { readonly type: 'release' }
  | { readonly type: 'close' };

/** Load client → orchestrator. */
export type LoadReport =
  | { readonly type: 'connected'; readonly ms: number }
  | { readonly type: 'armed' }
  /** Every expected frame arrived at `at`; the load client spent `cpuMicros` since it was armed. */
  | { readonly type: 'counted'; readonly at: number; readonly cpuMicros: number }
  /** The time the last client received single broadcast number `index`. */
  | { readonly type: 'sample'; readonly index: number; readonly at: number }
  | { readonly type: 'released' }
  | { readonly type: 'closed' }
  /** Something a run cannot go on with: a refused handshake, a connection the server dropped. */
  | { readonly type: 'failed'; readonly message: string };

/**
 * Milliseconds on CLOCK_MONOTONIC, which every process on a Linux machine shares, so a time
 * taken in the server and one taken in the load client can be subtracted.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The 64 bytes every broadcast of a burst carries. */
export const PAYLOAD = 'toni-bench:'.padEnd(64, 'x');

/** A single broadcast of the latency test: 64 bytes carrying its sequence number and send time. */
export function stampedPayload(sequence: number, sentAt: number): string {
  return `${sequence}:${sentAt.toFixed(3)}:`.padEnd(64, 'x');
}

/** Sends `message` to the parent process; a child without an IPC channel is a usage error. */
export function report<T>(message: T): void {
  if (process.send === undefined) throw new Error('This process must be started by bench/broadcast.ts (it needs an IPC channel).');
  process.send(message);
}

/** Handles the parent's commands one at a time, in order, and exits when the parent goes away. */
export function onCommands<T>(handle: (command: T) => Promise<void>): void {
  let chain = Promise.resolve();
  process.on('message', (command: T) => {
    chain = chain.then(() => handle(command)).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
  // The orchestrator died or finished: never outlive it.
  process.on('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
}
