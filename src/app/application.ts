import type { Container, ModuleNode } from '../di/container.js';
import { callLifecycleHook } from '../di/lifecycle.js';
import type { Token } from '../di/token.js';
import { ToniError } from '../errors.js';
import type { HttpAdapter, ListenAddress, StaticAssetsOptions } from '../http/adapter.js';
import { Cors, type CorsOptions } from '../http/cors.js';
import type { Middleware } from '../http/middleware.js';
import type { RequestHandler, StaticMount } from '../http/request-handler.js';
import { joinPaths } from '../http/router.js';
import type { Logger } from '../logger.js';
import type { GatewayChains, PipelineResolver } from '../pipeline/chain.js';
import type { EnhancerRef, ExceptionFilter, Guard, Interceptor } from '../pipeline/enhancers.js';
import type { WebSocketAdapter } from '../websocket/adapter.js';
import type { ScopedRoute } from './routes.js';

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
  routes: readonly ScopedRoute[];
  pipeline: PipelineResolver<ModuleNode>;
  /** The module of every instance, whose injection context its guards and interceptors use. */
  scopes: ReadonlyMap<unknown, ModuleNode>;
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
  readonly #middleware: Middleware[] = [];
  readonly #statics: StaticMount[] = [];
  #cors: Cors | undefined;

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
   * Adds middleware around every HTTP request (unknown routes, CORS preflights and static files
   * included), before routing; the first added is outermost. Before `listen`.
   *
   * @example
   * app.use(async (ctx, next) => {
   *   const response = await next();
   *   return HttpResponse.from(response).header('x-request-id', randomUUID()).build();
   * });
   * app.use(fromNodeMiddleware(helmet()));   // any Express/Connect middleware (tonijs/node)
   */
  use(...middleware: Middleware[]): this {
    this.#assertConfigurable('use()');
    for (const fn of middleware) {
      if (typeof fn !== 'function') {
        throw new ToniError(
          'TONI_ERR_INVALID_PIPELINE',
          `use() takes middleware functions (ctx, next) => HttpResponse, got ${fn === undefined ? 'undefined' : typeof fn}. For Express/Connect middleware, wrap it: app.use(fromNodeMiddleware(fn)) (tonijs/node).`,
        );
      }
    }
    this.#middleware.push(...middleware);
    return this;
  }

  /**
   * Answers CORS preflights for every path and adds the CORS headers the options allow to every
   * response. The options are the `cors` package's, with its meanings. Once, before `listen`.
   *
   * @example
   * app.enableCors({ origin: ['https://app.example.com'], credentials: true });
   */
  enableCors(options: CorsOptions = {}): this {
    this.#assertConfigurable('enableCors()');
    if (this.#cors !== undefined) throw new ToniError('TONI_ERR_APP_STATE', 'enableCors() was called twice: call it once, with every option.');
    this.#cors = new Cors(options);
    return this;
  }

  /**
   * Serves the files of `dir` under `options.prefix` (default `/`) for GET and HEAD requests no
   * route answers: MIME types, `ETag`/`Last-Modified` and 304, `Range` and 206, streamed; never a
   * file outside `dir` (`..`, encoded or not, and symlinks that point out are not found). Before `listen`.
   *
   * @example
   * app.useStaticAssets(new URL('./public', import.meta.url), { prefix: '/static' });
   */
  useStaticAssets(dir: string | URL, options: StaticAssetsOptions = {}): this {
    this.#assertConfigurable('useStaticAssets()');
    const http = this.#parts.http;
    if (http.staticAssets === undefined) {
      throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets() needs an HTTP adapter that serves files, as NodeHttpAdapter does; ${http.constructor.name} does not.`);
    }
    const prefix = options.prefix ?? '/';
    if (typeof prefix !== 'string') throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets(): prefix must be a path such as '/static', got ${String(prefix)}.`);
    this.#statics.push({ prefix: joinPaths('', prefix), assets: http.staticAssets(dir, options) });
    return this;
  }

  /**
   * Guards for every route, every gateway's handshake and every `@On` event; classes are
   * created in the root module (they can `inject()`), instances work too. Before `listen`.
   *
   * @example
   * app.useGlobalGuards(AuthGuard);
   */
  useGlobalGuards(...guards: EnhancerRef<Guard>[]): this {
    return this.#addGlobal('guard', guards, 'useGlobalGuards()');
  }

  /** Interceptors for every route and every `@On` event. Before `listen`. @example app.useGlobalInterceptors(TimingInterceptor); */
  useGlobalInterceptors(...interceptors: EnhancerRef<Interceptor>[]): this {
    return this.#addGlobal('interceptor', interceptors, 'useGlobalInterceptors()');
  }

  /** Exception filters for every route, handshake and `@On` event, asked after the class's and method's own. Before `listen`. @example app.useGlobalFilters(DomainErrorFilter); */
  useGlobalFilters(...filters: EnhancerRef<ExceptionFilter>[]): this {
    return this.#addGlobal('filter', filters, 'useGlobalFilters()');
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
    this.#compilePipeline();
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
      await this.#webSocketAdapter.bind({ http, address: this.#address, instances, logger, pipeline: this.#gatewayChains() });
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

  #assertConfigurable(what: string): void {
    if (this.#state !== 'ready' || this.#listening) throw new ToniError('TONI_ERR_APP_STATE', `${what} must be called before listen().`);
  }

  #addGlobal(kind: 'guard' | 'interceptor' | 'filter', refs: readonly unknown[], what: string): this {
    this.#assertConfigurable(what);
    try {
      this.#parts.pipeline.addGlobal(kind, refs, what);
    } catch (error) {
      if (error instanceof TypeError) throw new ToniError('TONI_ERR_INVALID_PIPELINE', `${error.message}.`);
      throw error;
    }
    return this;
  }

  /** Each route's chain, composed once: a route without one keeps the fast path. */
  #compilePipeline(): void {
    const { pipeline, routes, handler } = this.#parts;
    for (const { route, scope } of routes) {
      route.chain = pipeline.route(route.type, route.handler, scope, route.name);
      route.plain = route.chain === undefined && route.paramsSchema === undefined && route.querySchema === undefined;
    }
    handler.configure({ middleware: [...this.#middleware], cors: this.#cors, statics: [...this.#statics] });
  }

  #gatewayChains(): GatewayChains {
    const { pipeline, scopes } = this.#parts;
    const scopeOf = (gateway: object): ModuleNode => scopes.get(gateway) ?? this.#parts.container.root;
    return {
      handshake: (gateway) => pipeline.handshake(gateway.constructor, scopeOf(gateway), gateway.constructor.name),
      event: (gateway, method) => pipeline.event(gateway.constructor, method, scopeOf(gateway), `${gateway.constructor.name}.${method.name}`),
    };
  }

  #removeSignalHandlers(): void {
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler);
    this.#signalHandlers.clear();
  }
}
