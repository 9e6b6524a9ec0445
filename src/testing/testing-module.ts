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
  /**
   * Called with the application before it listens, to set it up as the app's `main.ts` does:
   * global guards, interceptors and filters, middleware, CORS, static files.
   *
   * @example
   * const app = await module.createApplication({ configure: (app) => app.useGlobalGuards(SignedInGuard).enableCors({ origin: 'https://app.example' }) });
   */
  configure?: (app: ToniApplication) => unknown;
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

/**
 * What a fake for a token of type `T` must have: the public members of `T`, each optional, and
 * nested objects likewise, but every member it does have with the type `T` gives it. Functions
 * (methods included), arrays and primitives are taken whole, so a method's parameters and result
 * are still checked. Private members are not part of it, so a plain object can stand in for a
 * class with `private` or `#private` fields.
 *
 * @example
 * // AuthService has verify(header: string): boolean, userFor(header: string): User and private fields
 * const fake: OverrideValue<AuthService> = { verify: () => true };        // compiles
 * const wrong: OverrideValue<AuthService> = { verify: () => 'yes' };      // fails tsc: not a boolean
 */
export type OverrideValue<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly unknown[]
    ? T
    : T extends object
      ? { [K in keyof T]?: OverrideValue<T[K]> }
      : T;

/**
 * The ways `overrideProvider(token)` can replace a provider. A value or a factory's result may be
 * a partial fake (`OverrideValue<T>`): the members the code under test uses are enough. A class
 * must produce the whole `T` (extend the real class).
 */
export interface OverrideBy<T> {
  useValue(value: OverrideValue<T>): TestingModuleBuilder;
  useClass(type: Class<T>): TestingModuleBuilder;
  useFactory(factory: (...deps: never[]) => OverrideValue<T> | Promise<OverrideValue<T>>, inject?: readonly Token[]): TestingModuleBuilder;
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
    try {
      await options.configure?.(this.#app);
      await this.#app.listen(0, options.host ?? '127.0.0.1');
    } catch (error) {
      await this.#app.close();
      throw error;
    }
    return this.#app;
  }

  /** Closes the application (call it in `afterEach`). */
  close(): Promise<void> {
    return this.#app.close();
  }
}
