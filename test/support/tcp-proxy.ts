import { type Server, type Socket, connect as connectTcp, createServer } from 'node:net';
import { AsyncQueue } from './async.js';

/** What the proxy does with connections: pass bytes on, hold them (a silent dead link), or cut new ones at once. */
export type ProxyMode = 'forward' | 'stall' | 'reset';

interface Pair {
  readonly client: Socket;
  upstream: Socket | undefined;
  stalled: boolean;
}

/**
 * A TCP proxy on 127.0.0.1, port 0, in front of a server, whose links a test cuts for real:
 * `cut()` destroys every connection (both ends see the TCP connection end, without a WebSocket
 * close frame); `mode('stall')` keeps them open but moves no byte either way (a link that died
 * silently: only a heartbeat notices); `mode('reset')` resets each new connection as it comes.
 * `retarget(port)` points it at another server: a restart without changing the client's URL.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  #targetPort: number;
  #mode: ProxyMode = 'forward';
  /** Connections accepted so far. */
  accepted = 0;
  /** The time of each connection accepted, in arrival order. */
  readonly arrivals = new AsyncQueue<number>();

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Starts a proxy to `target` (`http://127.0.0.1:port`, or a port). */
  static async start(target: string | number): Promise<TcpProxy> {
    const proxy = new TcpProxy(createServer(), typeof target === 'number' ? target : Number(new URL(target).port));
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** `ws://127.0.0.1:<proxy port><path>`. */
  url(path = '/', scheme = 'ws'): string {
    return `${scheme}://127.0.0.1:${this.port}${path}`;
  }

  /** Open connections through the proxy. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** The port connections are forwarded to. */
  get targetPort(): number {
    return this.#targetPort;
  }

  retarget(port: number): void {
    this.#targetPort = port;
  }

  /** Switches the mode for the open connections and the ones to come. */
  mode(mode: ProxyMode): void {
    this.#mode = mode;
    for (const pair of this.#pairs) {
      pair.stalled = mode === 'stall';
      if (mode === 'reset') this.#destroy(pair);
    }
  }

  /** Cuts every open connection now. New ones are still accepted (unless the mode says otherwise). */
  cut(): void {
    for (const pair of this.#pairs) this.#destroy(pair);
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.accepted++;
    this.arrivals.push(Date.now());
    client.on('error', () => {});
    if (this.#mode === 'reset') return void client.resetAndDestroy();
    const pair: Pair = { client, upstream: undefined, stalled: this.#mode === 'stall' };
    this.#pairs.add(pair);
    const upstream = connectTcp(this.#targetPort, '127.0.0.1');
    pair.upstream = upstream;
    upstream.on('error', () => {});
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    // Bytes that arrive while stalled are dropped: a dead link loses them too.
    client.on('data', (chunk) => !pair.stalled && upstream.write(chunk));
    upstream.on('data', (chunk) => !pair.stalled && client.write(chunk));
    client.on('close', () => this.#destroy(pair));
    upstream.on('close', () => this.#destroy(pair));
  }

  #destroy(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
