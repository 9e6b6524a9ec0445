import type { Container } from '../di/container.js';
import { callLifecycleHook } from '../di/lifecycle.js';
import type { Token } from '../di/token.js';
import { ToniError } from '../errors.js';
import type { HttpAdapter, ListenAddress } from '../http/adapter.js';
import type { RequestHandler } from '../http/request-handler.js';
import type { Logger } from '../logger.js';
import type { WebSocketAdapter } from '../websocket/adapter.js';

/** Options of `ToniFactory.create`. */
export interface ToniApplicationOptions {
  /** Where toni logs; `false` for nothing. Default: a console logger at level info. */
  logger?: Logger | false;
  /** Largest accepted request body in bytes, unless a route sets its own. Default: 1 MiB. */
  bodyLimit?: number;
  /** Milliseconds `close()` waits for in-flight HTTP requests before cutting them off. Default: 10 000. */
  shutdownTimeout?: number;
}

/** @internal what the factory hands the application */
export interface ApplicationParts {
  container: Container;
  http: HttpAdapter;
  handler: RequestHandler;
  logger: Logger;
  shutdownTimeout: number;
  defaultWebSocketAdapter: () => Promise<WebSocketAdapter>;
  hasGateways: boolean;
}

type State = 'ready' | 'listening' | 'closing' | 'closed';

/**
 * A created application: its singletons, its HTTP server and its WebSocket adapter.
 *
 * @example
 * const app = await ToniFactory.create(AppModule);
 * await app.listen(3000, '127.0.0.1');
 * console.log(`listening on ${app.getUrl()}`);
 */
export class ToniApplication {
  readonly #parts: ApplicationParts;
  #state: State = 'ready';
  #listening = false;
  #address: ListenAddress | undefined;
  #webSocketAdapter: WebSocketAdapter | undefined;
  #closed: Promise<void> | undefined;
  #signalHandlers = new Map<string, () => void>();

  /** @internal created by `ToniFactory.create` */
  constructor(parts: ApplicationParts) {
    this.#parts = parts;
  }

  /** The singleton registered for `token`; throws `ToniError` if there is none. */
  get<T>(token: Token<T>): T {
    return this.#parts.container.get(token);
  }

  /** The HTTP adapter serving this application. */
  getHttpAdapter(): HttpAdapter {
    return this.#parts.http;
  }

  /** Sets the WebSocket adapter; once, and before `listen`. */
  useWebSocketAdapter(adapter: WebSocketAdapter): this {
    if (this.#webSocketAdapter !== undefined) {
      throw new ToniError('TONI_ERR_APP_STATE', 'useWebSocketAdapter() was called twice: an application has one WebSocket adapter.');
    }
    if (this.#state !== 'ready' || this.#listening) {
      throw new ToniError('TONI_ERR_APP_STATE', 'useWebSocketAdapter() must be called before listen().');
    }
    this.#webSocketAdapter = adapter;
    return this;
  }

  /**
   * Starts serving HTTP (and WebSockets, when gateways exist). Port 0 picks a free port.
   * Resolves with the URL once listening.
   */
  async listen(port: number, host?: string): Promise<string> {
    if (this.#state !== 'ready' || this.#listening) {
      throw new ToniError('TONI_ERR_APP_STATE', `listen() can be called once, on an application that is not closed (it is ${this.#listening ? 'listening' : this.#state}).`);
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ToniError('TONI_ERR_INVALID_OPTION', `listen() needs a port from 0 to 65535, got ${String(port)}.`);
    }
    this.#listening = true;
    const { http, handler, logger, container } = this.#parts;
    if (this.#webSocketAdapter === undefined && this.#parts.hasGateways) {
      this.#webSocketAdapter = await this.#parts.defaultWebSocketAdapter();
    }
    try {
      this.#address = await http.listen(handler.handle, port, host);
    } catch (error) {
      this.#listening = false;
      throw error;
    }
    if (this.#webSocketAdapter !== undefined) {
      const instances = [...container.instances()].map((entry) => entry.instance);
      await this.#webSocketAdapter.bind({ http, address: this.#address, instances, logger });
    }
    this.#state = 'listening';
    logger.info({ url: this.getUrl() }, 'toni application listening');
    return this.getUrl();
  }

  /** `http://host:port` once listening; wildcard hosts are shown as the loopback address. */
  getUrl(): string {
    if (this.#address === undefined) throw new ToniError('TONI_ERR_APP_STATE', 'getUrl() needs a listening application: await app.listen() first.');
    const { host, port } = this.#address;
    const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
  }

  /**
   * Closes WebSockets with 1001 (gateways see `server-shutdown`), lets in-flight HTTP
   * requests finish, then runs `onApplicationShutdown` hooks. Safe to call more than once.
   */
  close(signal?: string): Promise<void> {
    this.#closed ??= this.#shutdown(signal);
    return this.#closed;
  }

  /**
   * Closes the application gracefully when the process receives one of `signals`, then
   * lets the signal take its usual course.
   */
  enableShutdownHooks(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): this {
    for (const signal of signals) {
      if (this.#signalHandlers.has(signal)) continue;
      const handler = () => {
        this.#removeSignalHandlers();
        this.close(signal).then(
          () => process.kill(process.pid, signal),
          (error: unknown) => {
            this.#parts.logger.error({ err: error }, 'Error while shutting down');
            process.kill(process.pid, signal);
          },
        );
      };
      this.#signalHandlers.set(signal, handler);
      process.once(signal, handler);
    }
    return this;
  }

  async #shutdown(signal: string | undefined): Promise<void> {
    this.#state = 'closing';
    this.#removeSignalHandlers();
    const { http, logger, container, shutdownTimeout } = this.#parts;
    const step = async (what: string, action: () => Promise<void>) => {
      try {
        await action();
      } catch (error) {
        logger.error({ err: error }, `Error while shutting down: ${what}`);
      }
    };
    if (this.#webSocketAdapter !== undefined && this.#address !== undefined) {
      await step('closing WebSockets', () => this.#webSocketAdapter!.close());
    }
    if (this.#address !== undefined) await step('closing the HTTP server', () => http.close({ timeoutMs: shutdownTimeout }));
    await callLifecycleHook(container, 'onApplicationShutdown', {
      signal,
      onError: (error, name) => logger.error({ err: error }, `onApplicationShutdown of ${name} failed`),
    });
    this.#state = 'closed';
  }

  #removeSignalHandlers(): void {
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler);
    this.#signalHandlers.clear();
  }
}
