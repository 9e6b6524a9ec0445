import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  type DynamicModule,
  type Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
  type Provider,
  type ToniApplication,
  type ToniErrorCode,
  Controller,
  Injectable,
  InjectionToken,
  Module,
  ToniError,
  ToniFactory,
  inject,
} from 'tonijs';

const apps: ToniApplication[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Creates an application (silent unless given a logger) that `afterEach` closes. */
async function create(root: Parameters<typeof ToniFactory.create>[0], logger: Logger | false = false): Promise<ToniApplication> {
  const app = await ToniFactory.create(root, undefined, { logger });
  apps.push(app);
  return app;
}

/** Asserts that `action` fails with a `ToniError` of `code` whose message contains every fragment. */
function isToniError(code: ToniErrorCode, ...fragments: string[]): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof ToniError, `expected a ToniError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" should contain "${fragment}"`);
    return true;
  };
}

async function rejectsWith(root: Parameters<typeof ToniFactory.create>[0], code: ToniErrorCode, ...fragments: string[]): Promise<void> {
  await assert.rejects(create(root), isToniError(code, ...fragments));
}

/** A logger that keeps what it is given. */
function recordingLogger(): Logger & { entries: { level: string; details: object; message: string | undefined }[] } {
  const entries: { level: string; details: object; message: string | undefined }[] = [];
  const log = (level: string) => (details: object, message?: string) => void entries.push({ level, details, message });
  return { entries, error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') };
}

describe('providers', () => {
  it('creates a class provider and returns it from app.get', async () => {
    @Injectable()
    class Greeter {
      greet(name: string) { return `Hello, ${name}`; }
    }
    @Module({ providers: [Greeter] })
    class AppModule {}

    const app = await create(AppModule);
    assert.ok(app.get(Greeter) instanceof Greeter);
    assert.equal(app.get(Greeter).greet('Ada'), 'Hello, Ada');
  });

  it('provides a value with { provide, useValue } under an InjectionToken', async () => {
    const CONFIG = new InjectionToken<{ url: string }>('CONFIG');
    const config = { url: 'redis://localhost' };
    @Injectable()
    class Client {
      readonly config = inject(CONFIG);
    }
    @Module({ providers: [Client, { provide: CONFIG, useValue: config }] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(CONFIG), config);
    assert.equal(app.get(Client).config, config);
  });

  it('provides falsy values as they are', async () => {
    const ZERO = new InjectionToken<number>('ZERO');
    const NOTHING = new InjectionToken<null>('NOTHING');
    @Module({ providers: [{ provide: ZERO, useValue: 0 }, { provide: NOTHING, useValue: null }] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(ZERO), 0);
    assert.equal(app.get(NOTHING), null);
  });

  it('provides another class for a token with { provide, useClass }, including an abstract class token', async () => {
    abstract class Clock {
      abstract now(): number;
    }
    class FixedClock extends Clock {
      now() { return 42; }
    }
    class Service {}
    class SpecialService extends Service {}
    @Injectable()
    class Consumer {
      readonly clock = inject(Clock);
      readonly service = inject(Service);
    }
    @Module({ providers: [Consumer, { provide: Clock, useClass: FixedClock }, { provide: Service, useClass: SpecialService }] })
    class AppModule {}

    const app = await create(AppModule);
    assert.ok(app.get(Clock) instanceof FixedClock);
    assert.equal(app.get(Consumer).clock.now(), 42);
    assert.equal(app.get(Consumer).clock, app.get(Clock));
    assert.ok(app.get(Service) instanceof SpecialService);
    assert.equal(app.get(Consumer).service, app.get(Service));
  });

  it('calls a sync factory once with its inject tokens, in order', async () => {
    const HOST = new InjectionToken<string>('HOST');
    const PORT = new InjectionToken<number>('PORT');
    const URL_TOKEN = new InjectionToken<string>('URL');
    let calls = 0;
    @Module({
      providers: [
        { provide: HOST, useValue: 'localhost' },
        { provide: PORT, useValue: 6379 },
        {
          provide: URL_TOKEN,
          useFactory: (host: string, port: number) => {
            calls += 1;
            return `redis://${host}:${port}`;
          },
          inject: [HOST, PORT],
        },
      ],
    })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(URL_TOKEN), 'redis://localhost:6379');
    assert.equal(calls, 1);
  });

  it('lets a factory call inject() synchronously', async () => {
    class Settings {
      readonly name = 'toni';
    }
    const NAME = new InjectionToken<string>('NAME');
    @Module({ providers: [Settings, { provide: NAME, useFactory: () => inject(Settings).name.toUpperCase() }] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(NAME), 'TONI');
  });

  it('waits for an async factory, and constructs a class that injects it once it resolves', async () => {
    const DB = new InjectionToken<{ connected: boolean }>('DB');
    let constructed = 0;
    @Injectable()
    class Repository {
      readonly db = inject(DB);
      constructor() {
        constructed += 1;
      }
    }
    @Injectable()
    class AfterRepository {
      readonly repository = inject(Repository);
    }
    // Repository is listed before the factory, so its first construction meets the factory still running.
    @Module({
      providers: [
        Repository,
        AfterRepository,
        {
          provide: DB,
          useFactory: async () => {
            await new Promise<void>((resolve) => setImmediate(resolve));
            return { connected: true };
          },
        },
      ],
    })
    class AppModule {}

    const app = await create(AppModule);
    assert.deepEqual(app.get(DB), { connected: true });
    assert.equal(app.get(Repository).db, app.get(DB));
    assert.equal(app.get(AfterRepository).repository, app.get(Repository));
    assert.equal(constructed, 1, 'the constructor body runs once, when the dependency is ready');
  });

  it('gives an async factory the result of another async factory', async () => {
    const A = new InjectionToken<number>('A');
    const B = new InjectionToken<number>('B');
    @Module({
      providers: [
        { provide: B, useFactory: async (a: number) => a + 1, inject: [A] },
        { provide: A, useFactory: async () => 1 },
      ],
    })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(B), 2);
  });

  it('lets an async factory inject a pending async factory before its first await', async () => {
    const A = new InjectionToken<number>('A');
    const B = new InjectionToken<number>('B');
    let calls = 0;
    @Module({
      providers: [
        {
          provide: B,
          useFactory: async () => {
            calls += 1;
            const a = inject(A);
            await Promise.resolve();
            return a + 1;
          },
        },
        {
          provide: A,
          useFactory: async () => {
            await new Promise<void>((resolve) => setImmediate(resolve));
            return 1;
          },
        },
      ],
    })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(B), 2);
    assert.equal(calls, 2, 'called again once A is ready');
  });

  it('injects in field initialisers and in constructor parameter defaults', async () => {
    class Clock {
      now() { return 1; }
    }
    const PREFIX = new InjectionToken<string>('PREFIX');
    @Injectable()
    class Greeter {
      readonly prefix = inject(PREFIX);
      constructor(readonly clock = inject(Clock)) {}
    }
    @Module({ providers: [Greeter, Clock, { provide: PREFIX, useValue: 'Hi' }] })
    class AppModule {}

    const app = await create(AppModule);
    const greeter = app.get(Greeter);
    assert.equal(greeter.prefix, 'Hi');
    assert.equal(greeter.clock, app.get(Clock));
  });

  it('returns undefined from inject(token, { optional: true }) when nothing provides it', async () => {
    const MISSING = new InjectionToken<string>('MISSING');
    const PRESENT = new InjectionToken<string>('PRESENT');
    class Unprovided {}
    @Injectable()
    class Consumer {
      readonly missing = inject(MISSING, { optional: true });
      readonly unprovided = inject(Unprovided, { optional: true });
      readonly present = inject(PRESENT, { optional: true });
    }
    @Module({ providers: [Consumer, { provide: PRESENT, useValue: 'here' }] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(Consumer).missing, undefined);
    assert.equal(app.get(Consumer).unprovided, undefined);
    assert.equal(app.get(Consumer).present, 'here');
  });

  it('lets a module class inject providers', async () => {
    class Service {}
    let seen: Service | undefined;
    @Module({ providers: [Service] })
    class AppModule {
      constructor() {
        seen = inject(Service);
      }
    }

    const app = await create(AppModule);
    assert.equal(seen, app.get(Service));
  });
});

describe('singletons', () => {
  it('shares one instance between consumers and app.get', async () => {
    let created = 0;
    @Injectable()
    class Shared {
      constructor() {
        created += 1;
      }
    }
    @Injectable()
    class First {
      readonly shared = inject(Shared);
    }
    @Injectable()
    class Second {
      constructor(readonly shared = inject(Shared)) {}
    }
    @Module({ providers: [First, Second, Shared] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(created, 1);
    assert.equal(app.get(First).shared, app.get(Second).shared);
    assert.equal(app.get(First).shared, app.get(Shared));
  });

  it('shares an exported provider between the modules that import it', async () => {
    class Shared {}
    @Module({ providers: [Shared], exports: [Shared] })
    class SharedModule {}
    class A { readonly shared = inject(Shared); }
    class B { readonly shared = inject(Shared); }
    @Module({ imports: [SharedModule], providers: [A], exports: [A] })
    class AModule {}
    @Module({ imports: [SharedModule], providers: [B], exports: [B] })
    class BModule {}
    @Module({ imports: [AModule, BModule] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(A).shared, app.get(B).shared);
  });

  it('makes separate singletons for each application', async () => {
    class Counter {
      count = 0;
    }
    @Module({ providers: [Counter] })
    class AppModule {}

    const first = await create(AppModule);
    const second = await create(AppModule);
    first.get(Counter).count = 5;
    assert.notEqual(first.get(Counter), second.get(Counter));
    assert.equal(second.get(Counter).count, 0);
  });
});

describe('modules', () => {
  it('makes exported providers visible to importing modules', async () => {
    @Injectable()
    class UserService {}
    @Module({ providers: [UserService], exports: [UserService] })
    class UsersModule {}
    @Injectable()
    class UsersController {
      readonly users = inject(UserService);
    }
    @Module({ imports: [UsersModule], providers: [UsersController] })
    class AppModule {}

    const app = await create(AppModule);
    assert.ok(app.get(UsersController).users instanceof UserService);
  });

  it('re-exports an imported module', async () => {
    class Database {}
    @Module({ providers: [Database], exports: [Database] })
    class DatabaseModule {}
    @Module({ imports: [DatabaseModule], exports: [DatabaseModule] })
    class CoreModule {}
    class Repository {
      readonly db = inject(Database);
    }
    @Module({ imports: [CoreModule], providers: [Repository] })
    class AppModule {}

    const app = await create(AppModule);
    assert.ok(app.get(Repository).db instanceof Database);
  });

  it('re-exports a token received from an imported module', async () => {
    const TOKEN = new InjectionToken<string>('TOKEN');
    @Module({ providers: [{ provide: TOKEN, useValue: 'deep' }], exports: [TOKEN] })
    class InnerModule {}
    @Module({ imports: [InnerModule], exports: [TOKEN] })
    class MiddleModule {}
    class Consumer {
      readonly value = inject(TOKEN);
    }
    @Module({ imports: [MiddleModule], providers: [Consumer] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(Consumer).value, 'deep');
  });

  it('makes a global module visible to every module without importing it', async () => {
    const CONFIG = new InjectionToken<{ name: string }>('CONFIG');
    @Module({ global: true, providers: [{ provide: CONFIG, useValue: { name: 'global' } }], exports: [CONFIG] })
    class ConfigModule {}
    class FeatureService {
      readonly config = inject(CONFIG);
    }
    @Module({ providers: [FeatureService], exports: [FeatureService] })
    class FeatureModule {}
    @Module({ imports: [FeatureModule, ConfigModule] })
    class AppModule {}

    const app = await create(AppModule);
    assert.deepEqual(app.get(FeatureService).config, { name: 'global' });
  });

  it('does not make a non-global module visible to modules that do not import it', async () => {
    class Config {}
    @Module({ providers: [Config], exports: [Config] })
    class ConfigModule {}
    class FeatureService {
      readonly config = inject(Config);
    }
    @Module({ providers: [FeatureService] })
    class FeatureModule {}
    @Module({ imports: [FeatureModule, ConfigModule] })
    class AppModule {}

    await rejectsWith(AppModule, 'TONI_ERR_UNKNOWN_PROVIDER', 'FeatureModule > FeatureService > Config', 'import ConfigModule into FeatureModule');
  });

  it('accepts a dynamic module from a static forRoot, merged with @Module', async () => {
    interface Options { greeting: string }
    const OPTIONS = new InjectionToken<Options>('GREETER_OPTIONS');
    class Greeter {
      readonly options = inject(OPTIONS);
    }
    @Module({ providers: [Greeter], exports: [Greeter] })
    class GreeterModule {
      static forRoot(options: Options): DynamicModule {
        return { module: GreeterModule, providers: [{ provide: OPTIONS, useValue: options }], exports: [OPTIONS] };
      }
    }
    class Consumer {
      readonly greeter = inject(Greeter);
      readonly options = inject(OPTIONS);
    }
    @Module({ imports: [GreeterModule.forRoot({ greeting: 'hi' })], providers: [Consumer] })
    class AppModule {}

    const app = await create(AppModule);
    assert.deepEqual(app.get(Consumer).greeter.options, { greeting: 'hi' });
    assert.equal(app.get(Consumer).options, app.get(Consumer).greeter.options);
  });

  it('accepts a promise of a dynamic module in imports', async () => {
    const SECRET = new InjectionToken<string>('SECRET');
    @Module({})
    class SecretsModule {
      static async forRootAsync(): Promise<DynamicModule> {
        await new Promise<void>((resolve) => setImmediate(resolve));
        return { module: SecretsModule, providers: [{ provide: SECRET, useValue: 's3cret' }], exports: [SECRET] };
      }
    }
    class Consumer {
      readonly secret = inject(SECRET);
    }
    @Module({ imports: [SecretsModule.forRootAsync()], providers: [Consumer] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(Consumer).secret, 's3cret');
  });

  it('accepts a global dynamic module, and a dynamic module as the root', async () => {
    const CONFIG = new InjectionToken<string>('CONFIG');
    @Module({})
    class ConfigModule {
      static forRoot(value: string): DynamicModule {
        return { module: ConfigModule, global: true, providers: [{ provide: CONFIG, useValue: value }], exports: [CONFIG] };
      }
    }
    class FeatureService {
      readonly config = inject(CONFIG);
    }
    @Module({ providers: [FeatureService], exports: [FeatureService] })
    class FeatureModule {}
    class AppModule {}

    const app = await create({ module: AppModule, imports: [FeatureModule, ConfigModule.forRoot('dynamic')] });
    assert.equal(app.get(FeatureService).config, 'dynamic');
  });

  it('re-exports an imported dynamic module by its class', async () => {
    const OPTIONS = new InjectionToken<string>('OPTIONS');
    @Module({})
    class OptionsModule {
      static forRoot(value: string): DynamicModule {
        return { module: OptionsModule, providers: [{ provide: OPTIONS, useValue: value }], exports: [OPTIONS] };
      }
    }
    @Module({ imports: [OptionsModule.forRoot('re-exported')], exports: [OptionsModule] })
    class CoreModule {}
    class Consumer {
      readonly options = inject(OPTIONS);
    }
    @Module({ imports: [CoreModule], providers: [Consumer] })
    class AppModule {}

    const app = await create(AppModule);
    assert.equal(app.get(Consumer).options, 're-exported');
  });

  it('lets app.get reach a provider declared in any module of the graph', async () => {
    class Internal {}
    @Module({ providers: [Internal] })
    class FeatureModule {}
    @Module({ imports: [FeatureModule] })
    class AppModule {}

    const app = await create(AppModule);
    assert.ok(app.get(Internal) instanceof Internal);
  });
});

describe('lifecycle hooks', () => {
  it('calls onModuleInit, onApplicationBootstrap and onApplicationShutdown(signal) in order', async () => {
    const calls: string[] = [];
    const hooks = (name: string) =>
      class implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
        onModuleInit() { calls.push(`init ${name}`); }
        async onApplicationBootstrap() {
          await Promise.resolve();
          calls.push(`bootstrap ${name}`);
        }
        onApplicationShutdown(signal?: string) { calls.push(`shutdown ${name} ${String(signal)}`); }
      };
    const Database = hooks('Database');
    const Users = hooks('Users');
    const App = hooks('App');
    @Module({ providers: [Database], exports: [Database] })
    class DatabaseModule {}
    @Module({ imports: [DatabaseModule], providers: [Users], exports: [Users] })
    class UsersModule {}
    @Module({ imports: [UsersModule], providers: [App] })
    class AppModule {}

    const app = await create(AppModule);
    assert.deepEqual(calls, [
      'init Database', 'init Users', 'init App',
      'bootstrap Database', 'bootstrap Users', 'bootstrap App',
    ]);
    calls.length = 0;
    await app.close('SIGTERM');
    assert.deepEqual(calls, ['shutdown App SIGTERM', 'shutdown Users SIGTERM', 'shutdown Database SIGTERM']);
  });

  it('passes no signal to onApplicationShutdown on a plain close(), and runs it once', async () => {
    const signals: (string | undefined)[] = [];
    class Service implements OnApplicationShutdown {
      onApplicationShutdown(signal?: string) { signals.push(signal); }
    }
    @Module({ providers: [Service] })
    class AppModule {}

    const app = await create(AppModule);
    await Promise.all([app.close(), app.close()]);
    await app.close();
    assert.deepEqual(signals, [undefined]);
  });

  it('calls hooks on providers, controllers and module classes, module class last', async () => {
    const calls: string[] = [];
    class Service implements OnModuleInit {
      onModuleInit() { calls.push('Service'); }
    }
    @Controller('/things')
    class ThingsController implements OnModuleInit {
      readonly service = inject(Service);
      onModuleInit() { calls.push('ThingsController'); }
    }
    @Module({ providers: [Service], controllers: [ThingsController] })
    class AppModule implements OnModuleInit {
      onModuleInit() { calls.push('AppModule'); }
    }

    const app = await create(AppModule);
    assert.deepEqual(calls, ['Service', 'ThingsController', 'AppModule']);
    assert.ok(app.get(ThingsController).service instanceof Service);
  });

  it('initialises a dependency before its dependents in the same module, and shuts it down after them', async () => {
    const calls: string[] = [];
    class Consumer implements OnModuleInit, OnApplicationShutdown {
      readonly store = inject(Store);
      onModuleInit() { calls.push('init Consumer'); }
      onApplicationShutdown() { calls.push('shutdown Consumer'); }
    }
    class Store implements OnModuleInit, OnApplicationShutdown {
      onModuleInit() { calls.push('init Store'); }
      onApplicationShutdown() { calls.push('shutdown Store'); }
    }
    @Module({ providers: [Consumer, Store] })
    class AppModule {}

    const app = await create(AppModule);
    await app.close();
    assert.deepEqual(calls, ['init Store', 'init Consumer', 'shutdown Consumer', 'shutdown Store']);
  });

  it('initialises a global module used by a module imported before it ahead of that module', async () => {
    const calls: string[] = [];
    class Config implements OnModuleInit {
      ready = false;
      onModuleInit() {
        this.ready = true;
        calls.push('Config');
      }
    }
    @Module({ global: true, providers: [Config], exports: [Config] })
    class ConfigModule {}
    class Feature implements OnModuleInit {
      readonly config = inject(Config);
      onModuleInit() { calls.push(`Feature sees ready=${String(this.config.ready)}`); }
    }
    @Module({ providers: [Feature] })
    class FeatureModule {}
    @Module({ imports: [FeatureModule, ConfigModule] })
    class AppModule {}

    await create(AppModule);
    assert.deepEqual(calls, ['Config', 'Feature sees ready=true']);
  });

  it('logs a failing shutdown hook and still runs the others', async () => {
    const calls: string[] = [];
    class First implements OnApplicationShutdown {
      onApplicationShutdown() { calls.push('First'); }
    }
    class Broken implements OnApplicationShutdown {
      async onApplicationShutdown() {
        calls.push('Broken');
        throw new Error('disk on fire');
      }
    }
    class Last implements OnApplicationShutdown {
      onApplicationShutdown() { calls.push('Last'); }
    }
    @Module({ providers: [First, Broken, Last] })
    class AppModule {}
    const logger = recordingLogger();

    const app = await create(AppModule, logger);
    await app.close();
    assert.deepEqual(calls, ['Last', 'Broken', 'First']);
    const errors = logger.entries.filter((entry) => entry.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? '', /Broken/);
    const { err } = errors[0]?.details as { err?: unknown };
    assert.ok(err instanceof Error && err.message === 'disk on fire');
  });

  it('rejects ToniFactory.create when onModuleInit throws', async () => {
    class Broken implements OnModuleInit {
      onModuleInit() { throw new Error('init failed'); }
    }
    @Module({ providers: [Broken] })
    class AppModule {}

    await assert.rejects(create(AppModule), { message: 'init failed' });
  });
});

describe('construction errors', () => {
  it('rejects ToniFactory.create with the error a constructor throws', async () => {
    const failure = new Error('cannot connect');
    class Database {
      constructor() {
        throw failure;
      }
    }
    class Repository {
      readonly db = inject(Database);
    }
    @Module({ providers: [Repository, Database] })
    class AppModule {}

    await assert.rejects(create(AppModule), (error) => error === failure);
  });

  it('rejects with the error of an async factory that another async factory waits for', async () => {
    const failure = new Error('no config');
    const A = new InjectionToken<number>('A');
    const B = new InjectionToken<number>('B');
    @Module({
      providers: [
        { provide: B, useFactory: async () => inject(A) + 1 },
        {
          provide: A,
          useFactory: async () => {
            await Promise.resolve();
            throw failure;
          },
        },
      ],
    })
    class AppModule {}

    await assert.rejects(create(AppModule), (error) => error === failure);
  });

  it('rejects ToniFactory.create with the error of a rejecting async factory', async () => {
    const failure = new Error('no database');
    const DB = new InjectionToken<object>('DB');
    class Repository {
      readonly db = inject(DB);
    }
    @Module({
      providers: [
        Repository,
        {
          provide: DB,
          useFactory: async () => {
            await Promise.resolve();
            throw failure;
          },
        },
      ],
    })
    class AppModule {}

    await assert.rejects(create(AppModule), (error) => error === failure);
  });
});

describe('DI errors', () => {
  describe('TONI_ERR_UNKNOWN_PROVIDER', () => {
    it('names the chain and suggests importing the module that provides the token', async () => {
      class BroadcastService {}
      @Module({ providers: [BroadcastService], exports: [BroadcastService] })
      class BroadcastModule {}
      @Injectable()
      class EventsController {
        readonly broadcast = inject(BroadcastService);
      }
      @Module({ providers: [EventsController] })
      class AppModule {}

      assert.ok(BroadcastModule);
      await rejectsWith(
        AppModule,
        'TONI_ERR_UNKNOWN_PROVIDER',
        'AppModule > EventsController > BroadcastService',
        'import BroadcastModule into AppModule',
      );
    });

    it('names a longer chain through several providers', async () => {
      const MISSING = new InjectionToken<string>('MISSING');
      class C { readonly missing = inject(MISSING); }
      class B { readonly c = inject(C); }
      class A { readonly b = inject(B); }
      @Module({ providers: [A, B, C] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_UNKNOWN_PROVIDER', 'AppModule > A > B > C > MISSING', 'add MISSING to the providers of AppModule');
    });

    it('suggests adding an unknown token to the providers of the module', async () => {
      class Unknown {}
      class Consumer {
        readonly unknown = inject(Unknown);
      }
      @Module({ providers: [Consumer] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_UNKNOWN_PROVIDER', 'AppModule > Consumer > Unknown', 'add Unknown to the providers of AppModule');
    });

    it('names a missing factory dependency', async () => {
      const MISSING = new InjectionToken<string>('MISSING');
      const VALUE = new InjectionToken<string>('VALUE');
      @Module({ providers: [{ provide: VALUE, useFactory: (missing: string) => missing, inject: [MISSING] }] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_UNKNOWN_PROVIDER', 'AppModule > VALUE > MISSING');
    });

    it('says that two distinct InjectionTokens share a name when the requested one is not the one provided', async () => {
      // Each file that calls new InjectionToken('SECRET') makes a token of its own.
      const PROVIDED_SECRET = new InjectionToken<string>('SECRET');
      const REQUESTED_SECRET = new InjectionToken<string>('SECRET');
      class Vault { readonly secret = inject(REQUESTED_SECRET); }
      @Module({ providers: [Vault, { provide: PROVIDED_SECRET, useValue: 's3cr3t' }] })
      class AppModule {}

      const error = await create(AppModule).then(() => undefined, (caught: unknown) => caught);
      isToniError(
        'TONI_ERR_UNKNOWN_PROVIDER',
        'Cannot resolve SECRET (AppModule > Vault > SECRET): two distinct InjectionTokens are named SECRET, ' +
          'and the one requested is not the one AppModule provides (toni matches tokens by identity, not by name).',
        'Fix: create the token once (export const SECRET = new InjectionToken(…) in one file) and import that constant',
      )(error);
      assert.doesNotMatch((error as Error).message, /add SECRET to the providers/);
    });

    it('says the same of two distinct classes with one name, across modules and from app.get', async () => {
      const First = class Config {};
      const Second = class Config {};
      @Module({ providers: [First], exports: [First] })
      class ConfigModule {}
      class Reader { readonly config = inject(Second); }
      @Module({ imports: [ConfigModule], providers: [Reader] })
      class AppModule {}

      await rejectsWith(
        AppModule,
        'TONI_ERR_UNKNOWN_PROVIDER',
        'AppModule > Reader > Config',
        'two distinct classes are named Config, and the one requested is not the one ConfigModule provides',
        'Fix: declare the class Config once and import it from that file',
      );
      @Module({ imports: [ConfigModule] })
      class GetModule {}
      const app = await create(GetModule);
      assert.equal(app.get(First) instanceof First, true);
      assert.throws(() => app.get(Second), isToniError('TONI_ERR_UNKNOWN_PROVIDER', 'two distinct classes are named Config'));
    });

    it('does not take anonymous classes or unrelated names for namesakes', async () => {
      const anonymous = [class {}, class {}] as const;
      const OTHER = new InjectionToken<string>('OTHER');
      class Consumer { readonly value = inject(anonymous[1]); readonly other = inject(OTHER); }
      @Module({ providers: [anonymous[0], Consumer, { provide: new InjectionToken<string>('OTHER-ISH'), useValue: 'x' }] })
      class AppModule {}

      const error = await create(AppModule).then(() => undefined, (caught: unknown) => caught);
      assert.ok(error instanceof ToniError);
      assert.doesNotMatch(error.message, /two distinct/);
    });

    it('is thrown by app.get for an unknown token', async () => {
      class Unknown {}
      const TOKEN = new InjectionToken<string>('TOKEN');
      @Module({})
      class AppModule {}

      const app = await create(AppModule);
      assert.throws(() => app.get(Unknown), isToniError('TONI_ERR_UNKNOWN_PROVIDER', 'Unknown'));
      assert.throws(() => app.get(TOKEN), isToniError('TONI_ERR_UNKNOWN_PROVIDER', 'TOKEN'));
    });
  });

  it('TONI_ERR_PROVIDER_NOT_EXPORTED: an imported module provides but does not export', async () => {
    class UserService {}
    @Module({ providers: [UserService] })
    class UsersModule {}
    class UsersController {
      readonly users = inject(UserService);
    }
    @Module({ imports: [UsersModule], providers: [UsersController] })
    class AppModule {}

    await rejectsWith(
      AppModule,
      'TONI_ERR_PROVIDER_NOT_EXPORTED',
      'AppModule > UsersController > UserService',
      'UsersModule provides UserService but does not export it',
      'add UserService to the exports of UsersModule',
    );
  });

  it('TONI_ERR_PROVIDER_NOT_EXPORTED: also says to import the module when it is not imported', async () => {
    class UserService {}
    @Module({ providers: [UserService] })
    class UsersModule {}
    class Reports {
      readonly users = inject(UserService);
    }
    @Module({ providers: [Reports] })
    class ReportsModule {}
    @Module({ imports: [UsersModule, ReportsModule] })
    class AppModule {}

    await rejectsWith(
      AppModule,
      'TONI_ERR_PROVIDER_NOT_EXPORTED',
      'ReportsModule > Reports > UserService',
      'add UserService to the exports of UsersModule, and import UsersModule into ReportsModule',
    );
  });

  describe('TONI_ERR_CIRCULAR_DEPENDENCY', () => {
    it('names a two-provider cycle', async () => {
      class A { readonly b: unknown = inject(B); }
      class B { readonly a: unknown = inject(A); }
      @Module({ providers: [A, B] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_CIRCULAR_DEPENDENCY', 'Circular dependency: A > B > A.');
    });

    it('names a three-provider cycle', async () => {
      class A { readonly b: unknown = inject(B); }
      class B { readonly c: unknown = inject(C); }
      class C { readonly a: unknown = inject(A); }
      @Module({ providers: [A, B, C] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_CIRCULAR_DEPENDENCY', 'Circular dependency: A > B > C > A.');
    });

    it('names a provider that injects itself', async () => {
      class Self { readonly self: unknown = inject(Self); }
      @Module({ providers: [Self] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_CIRCULAR_DEPENDENCY', 'Circular dependency: Self > Self.');
    });

    it('names a cycle through factories', async () => {
      const A = new InjectionToken<unknown>('A');
      const B = new InjectionToken<unknown>('B');
      @Module({
        providers: [
          { provide: A, useFactory: (b: unknown) => b, inject: [B] },
          { provide: B, useFactory: () => inject(A) },
        ],
      })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_CIRCULAR_DEPENDENCY', 'A > B > A');
    });
  });

  describe('TONI_ERR_INJECT_OUTSIDE_CONTEXT', () => {
    it('is thrown by inject() at top level', () => {
      class Service {}
      assert.throws(() => inject(Service), isToniError('TONI_ERR_INJECT_OUTSIDE_CONTEXT', 'inject(Service)', 'field initialiser'));
    });

    it('is thrown by inject() in a method called after construction', async () => {
      class Dependency {}
      class Service {
        lookUp() { return inject(Dependency); }
      }
      @Module({ providers: [Service, Dependency] })
      class AppModule {}

      const app = await create(AppModule);
      assert.throws(() => app.get(Service).lookUp(), isToniError('TONI_ERR_INJECT_OUTSIDE_CONTEXT', 'inject(Dependency)'));
    });

    it('makes ToniFactory.create reject when inject() is called in onModuleInit', async () => {
      class Dependency {}
      class Service implements OnModuleInit {
        onModuleInit() { inject(Dependency); }
      }
      @Module({ providers: [Service, Dependency] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INJECT_OUTSIDE_CONTEXT', 'inject(Dependency)');
    });

    it('makes ToniFactory.create reject when an async factory calls inject() after an await', async () => {
      class Dependency {}
      const VALUE = new InjectionToken<Dependency>('VALUE');
      @Module({
        providers: [
          Dependency,
          {
            provide: VALUE,
            useFactory: async () => {
              await Promise.resolve();
              return inject(Dependency);
            },
          },
        ],
      })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INJECT_OUTSIDE_CONTEXT', 'inject(Dependency)', 'before its first await');
    });
  });

  describe('TONI_ERR_INVALID_PROVIDER', () => {
    const TOKEN = new InjectionToken<string>('TOKEN');
    const cases: [string, unknown, string][] = [
      ['{ provide } without use…', { provide: TOKEN }, 'needs one of useValue, useClass or useFactory'],
      ['useClass that is not a class', { provide: TOKEN, useClass: 'nope' }, 'useClass for TOKEN must be a class'],
      ['useFactory that is not a function', { provide: TOKEN, useFactory: 42 }, 'useFactory for TOKEN must be a function'],
      ['inject that is not an array', { provide: TOKEN, useFactory: () => 1, inject: TOKEN }, '"inject" for TOKEN must be an array'],
      ['provide that is not a token', { provide: 'TOKEN', useValue: 1 }, '"provide" must be a class or an InjectionToken, got TOKEN'],
      ['an undefined entry', undefined, 'undefined (often an import cycle between files)'],
      ['a plain object', { useValue: 1 }, 'is not a class or a { provide, use… } object'],
    ];
    for (const [name, provider, fragment] of cases) {
      it(`rejects ${name}`, async () => {
        @Module({ providers: [provider as Provider] })
        class AppModule {}

        await rejectsWith(AppModule, 'TONI_ERR_INVALID_PROVIDER', 'Invalid provider in AppModule', fragment);
      });
    }
  });

  describe('TONI_ERR_INVALID_MODULE', () => {
    it('rejects importing a class that is not decorated with @Module', async () => {
      class NotAModule {}
      @Module({ imports: [NotAModule] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INVALID_MODULE', 'AppModule imports class NotAModule, which is not a module', '@Module(');
    });

    it('rejects importing undefined', async () => {
      @Module({ imports: [undefined as unknown as DynamicModule] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INVALID_MODULE', 'AppModule imports undefined', 'import cycle');
    });

    it('rejects an undecorated root module', async () => {
      class NotAModule {}

      await rejectsWith(NotAModule, 'TONI_ERR_INVALID_MODULE', 'class NotAModule, which is not a module');
    });
  });

  describe('TONI_ERR_INVALID_EXPORT', () => {
    it('rejects exporting a token the module neither provides nor imports', async () => {
      class Stranger {}
      @Module({ exports: [Stranger] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INVALID_EXPORT', 'AppModule exports Stranger', 'add Stranger to the providers of AppModule');
    });

    it('says that two distinct tokens share a name when a module exports another token than the one it provides', async () => {
      const PROVIDED = new InjectionToken<number>('PORT');
      const EXPORTED = new InjectionToken<number>('PORT');
      @Module({ providers: [{ provide: PROVIDED, useValue: 1 }], exports: [EXPORTED] })
      class AppModule {}

      await rejectsWith(
        AppModule,
        'TONI_ERR_INVALID_EXPORT',
        'AppModule exports PORT, but does not provide it: two distinct InjectionTokens are named PORT',
        'create the token once',
      );
    });

    it('rejects exporting a token an imported module provides but does not export', async () => {
      class Hidden {}
      @Module({ providers: [Hidden] })
      class InnerModule {}
      @Module({ imports: [InnerModule], exports: [Hidden] })
      class AppModule {}

      await rejectsWith(AppModule, 'TONI_ERR_INVALID_EXPORT', 'AppModule exports Hidden');
    });
  });
});
