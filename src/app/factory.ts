import { Container, type ModuleNode, type ProviderOverride } from '../di/container.js';
import { callLifecycleHook } from '../di/lifecycle.js';
import type { DynamicModule } from '../di/module.js';
import type { Class, Token } from '../di/token.js';
import { ToniError } from '../errors.js';
import type { HttpAdapter } from '../http/adapter.js';
import { RequestHandler } from '../http/request-handler.js';
import { ConsoleLogger, LOGGER, silentLogger } from '../logger.js';
import { PipelineResolver } from '../pipeline/chain.js';
import { findGateways } from '../websocket/gateway-host.js';
import type { WebSocketAdapter } from '../websocket/adapter.js';
import { type ToniApplicationOptions, ToniApplication } from './application.js';
import { assertBodyLimit, buildRouter } from './routes.js';

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT = 10_000;

/**
 * Creates applications.
 *
 * @example
 * const app = await ToniFactory.create(AppModule, new NodeHttpAdapter());
 * await app.listen(3000, '127.0.0.1');
 */
export const ToniFactory = {
  /**
   * Builds the module graph of `rootModule`, creates every provider and controller, runs
   * `onModuleInit` and `onApplicationBootstrap`, and prepares the routes. Setup mistakes
   * (a missing provider, a cycle, a duplicate route) reject with a `ToniError` here.
   * Without `httpAdapter`, a `NodeHttpAdapter` is used.
   */
  create(rootModule: Class | DynamicModule, httpAdapter?: HttpAdapter, options: ToniApplicationOptions = {}): Promise<ToniApplication> {
    return createApplication(rootModule, httpAdapter, options, new Map());
  },
};

/** @internal `ToniFactory.create` with provider overrides, for `tonijs/testing`. */
export async function createApplication(
  rootModule: Class | DynamicModule,
  httpAdapter: HttpAdapter | undefined,
  options: ToniApplicationOptions,
  overrides: ReadonlyMap<Token, ProviderOverride>,
): Promise<ToniApplication> {
  const logger = options.logger === false ? silentLogger : options.logger ?? new ConsoleLogger();
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  assertBodyLimit(bodyLimit, 'the application options');
  const shutdownTimeout = options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT;
  if (!Number.isFinite(shutdownTimeout) || shutdownTimeout < 0) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `shutdownTimeout must be a non-negative number of milliseconds, got ${String(shutdownTimeout)}.`);
  }

  const container = await Container.create(rootModule, { globalProviders: [{ provide: LOGGER, useValue: logger }], overrides });
  const { router, routes } = buildRouter(container, bodyLimit);
  const gateways = findGateways([...container.instances()].map((entry) => entry.instance));
  const scopes = new Map<unknown, ModuleNode>();
  for (const { instance, module } of container.instances()) scopes.set(instance, module);
  const pipeline = new PipelineResolver<ModuleNode>((type, scope, where) => container.instantiateFor(type, scope, [scope.name, where]), container.root);
  // The guards, interceptors and filters that decorators name are created now, so that a missing
  // provider fails here; the chains are composed at listen(), once the global ones are known.
  for (const { route, scope } of routes) pipeline.route(route.type, route.handler, scope, route.name);
  for (const entry of gateways) {
    const scope = scopes.get(entry.gateway)!;
    const type = (entry.gateway as object).constructor;
    pipeline.handshake(type, scope, entry.name);
    for (const handler of entry.events?.values() ?? []) pipeline.event(type, handler.method, scope, handler.name);
  }
  await callLifecycleHook(container, 'onModuleInit');
  await callLifecycleHook(container, 'onApplicationBootstrap');
  return new ToniApplication({
    container,
    http: httpAdapter ?? (await defaultHttpAdapter()),
    handler: new RequestHandler(router, logger),
    routes,
    pipeline,
    scopes,
    logger,
    shutdownTimeout,
    hasGateways: gateways.length > 0,
    defaultWebSocketAdapter,
  });
}

// Loaded on demand so that applications on another adapter never load node:http or ws.
async function defaultHttpAdapter(): Promise<HttpAdapter> {
  const { NodeHttpAdapter } = await import('../platform/node/http-adapter.js');
  return new NodeHttpAdapter();
}

async function defaultWebSocketAdapter(): Promise<WebSocketAdapter> {
  const node: Record<string, unknown> = await import('../platform/node/index.js');
  const WsAdapter = node['WsAdapter'];
  if (typeof WsAdapter !== 'function') {
    throw new ToniError('TONI_ERR_APP_STATE', 'This application has gateways but no WebSocket adapter: call app.useWebSocketAdapter(new WsAdapter()) before listen().');
  }
  return new (WsAdapter as new () => WebSocketAdapter)();
}
