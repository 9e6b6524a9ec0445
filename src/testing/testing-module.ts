import type { ToniApplication, ToniApplicationOptions } from '../app/application.js';
import { createApplication } from '../app/factory.js';
import type { ProviderOverride } from '../di/container.js';
import { Module, type ModuleImport } from '../di/module.js';
import type { Provider } from '../di/provider.js';
import { type Class, type Token, tokenName } from '../di/token.js';
import { ToniError } from '../errors.js';
import type { HttpAdapter } from '../http/adapter.js';
import type { WebSocketAdapter } from '../websocket/adapter.js';

/** What a testing module contains, as in `@Module`. */
export interface TestingModuleMetadata {
  imports?: readonly ModuleImport[];
  providers?: readonly Provider[];
  controllers?: readonly Class[];
}

/** Options of `TestingModule.createApplication`. */
export interface TestApplicationOptions {
  /** The HTTP adapter; default `NodeHttpAdapter`. */
  httpAdapter?: HttpAdapter;
  /** The WebSocket adapter; default a `WsAdapter` with defaults when gateways exist. */
  webSocketAdapter?: WebSocketAdapter;
  /** Host to listen on; default `127.0.0.1`. The port is always a free one. */
  host?: string;
}

/**
 * Builds an application for a test, with providers replaced by fakes.
 *
 * @example
 * const module = await Test.createTestingModule({ imports: [AppModule] })
 *   .overrideProvider(AuthService).useValue({ verify: () => true, userFor: () => new User('ann') })
 *   .compile();
 * const app = await module.createApplication();
 * const client = await TestWsClient.connect(app, '/secure', { headers: { authorization: 'x' } });
 * await client.expectMessage();
 */
export const Test = {
  createTestingModule(metadata: TestingModuleMetadata): TestingModuleBuilder {
    return new TestingModuleBuilder(metadata);
  },
};

/** Collects overrides, then `compile()`s the testing module. */
export class TestingModuleBuilder {
  readonly #metadata: TestingModuleMetadata;
  readonly #overrides = new Map<Token, ProviderOverride>();
  #options: ToniApplicationOptions = { logger: false };

  /** @internal */
  constructor(metadata: TestingModuleMetadata) {
    this.#metadata = metadata;
  }

  /** Replaces the provider of `token`, wherever a module declares it. */
  overrideProvider<T>(token: Token<T>): OverrideBy<T> {
    return {
      useValue: (value) => this.#override(token, { useValue: value }),
      useClass: (type) => this.#override(token, { useClass: type }),
      useFactory: (factory, inject) => this.#override(token, { useFactory: factory, ...(inject === undefined ? {} : { inject }) }),
    };
  }

  /** Application options (logger, bodyLimit, …); the logger is off unless given. */
  withOptions(options: ToniApplicationOptions): this {
    this.#options = { logger: false, ...options };
    return this;
  }

  /** Creates every provider (failing like `ToniFactory.create` would) and returns the module. */
  async compile(options: TestApplicationOptions = {}): Promise<TestingModule> {
    @Module({})
    class TestingRootModule {}
    const root = { module: TestingRootModule, ...this.#metadata };
    const app = await createApplication(root, options.httpAdapter, this.#options, this.#overrides);
    for (const token of this.#overrides.keys()) {
      try {
        app.get(token);
      } catch (error) {
        await app.close();
        throw new ToniError('TONI_ERR_UNKNOWN_PROVIDER', `overrideProvider(${tokenName(token)}) replaced nothing: no module of the testing module provides ${tokenName(token)}.`, { cause: error });
      }
    }
    return new TestingModule(app);
  }

  #override(token: Token, override: ProviderOverride): this {
    this.#overrides.set(token, override);
    return this;
  }
}

/** The ways `overrideProvider(token)` can replace a provider. */
export interface OverrideBy<T> {
  useValue(value: T): TestingModuleBuilder;
  useClass(type: Class<T>): TestingModuleBuilder;
  useFactory(factory: (...deps: never[]) => T | Promise<T>, inject?: readonly Token[]): TestingModuleBuilder;
}

/** A compiled testing module: its singletons, and an application to listen with. */
export class TestingModule {
  readonly #app: ToniApplication;
  #listening = false;

  /** @internal */
  constructor(app: ToniApplication) {
    this.#app = app;
  }

  /** The singleton for `token`. */
  get<T>(token: Token<T>): T {
    return this.#app.get(token);
  }

  /** The application, listening on a free port of `127.0.0.1` (WebSockets included). */
  async createApplication(options: Omit<TestApplicationOptions, 'httpAdapter'> = {}): Promise<ToniApplication> {
    if (this.#listening) throw new ToniError('TONI_ERR_APP_STATE', 'createApplication() was called twice on one testing module; compile another.');
    this.#listening = true;
    if (options.webSocketAdapter !== undefined) this.#app.useWebSocketAdapter(options.webSocketAdapter);
    await this.#app.listen(0, options.host ?? '127.0.0.1');
    return this.#app;
  }

  /** Closes the application (call it in `afterEach`). */
  close(): Promise<void> {
    return this.#app.close();
  }
}
