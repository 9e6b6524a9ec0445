import { ToniError } from '../errors.js';
import type { CheckedProviders, Provider } from './provider.js';
import { type Class, type Token, InjectionToken } from './token.js';

/**
 * A module configured at import time, as returned by `SomeModule.forRoot(options)`.
 * Its fields are merged with those of `@Module` on `module`.
 */
export interface DynamicModule extends ModuleOptions {
  module: Class;
}

/** What a module can import: a module class, a dynamic module, or a promise of one. */
export type ModuleImport = Class | DynamicModule | Promise<DynamicModule>;

/** What a module can export: a token it provides or imports, or an imported module (re-export). */
export type ModuleExport = Token | DynamicModule;

/** The options of `@Module`. */
export interface ModuleOptions {
  /** Modules whose exported providers this module's providers and controllers may inject. */
  imports?: readonly ModuleImport[];
  /** Providers created once per application and visible inside this module. */
  providers?: readonly Provider[];
  /** HTTP controllers (classes decorated with `@Controller`). */
  controllers?: readonly Class[];
  /** Providers (or imported modules) that importing modules may inject. */
  exports?: readonly ModuleExport[];
  /** A global module's exports are visible to every module without importing it. */
  global?: boolean;
}

const moduleOptions = new WeakMap<Function, ModuleOptions>();
const knownOwners = new WeakMap<object, string[]>();

/**
 * Declares a module: a unit of providers and controllers, and the boundary of what they see.
 *
 * @example
 * @Module({ imports: [BroadcastModule], controllers: [EventsController], providers: [NotificationService] })
 * export class AppModule {}
 */
export function Module<const P extends readonly Provider[] = []>(options: ModuleOptions & { providers?: CheckedProviders<P> } = {}) {
  return (target: Class, context: ClassDecoratorContext): void => {
    if (context.kind !== 'class') throw new TypeError('@Module() decorates classes only');
    moduleOptions.set(target, options);
    for (const provider of options.providers ?? []) rememberOwner(provider, target.name);
  };
}

/**
 * Marks a class as a provider. Optional for classes that are listed in a module, but it
 * documents intent and keeps the door open for provider options.
 *
 * @example
 * @Injectable()
 * export class NotificationService { private readonly broadcast = inject(BroadcastService); }
 */
export function Injectable() {
  return (_target: Class, context: ClassDecoratorContext): void => {
    if (context.kind !== 'class') throw new TypeError('@Injectable() decorates classes only');
  };
}

export function getModuleOptions(target: Function): ModuleOptions | undefined {
  return moduleOptions.get(target);
}

export function isDynamicModule(value: unknown): value is DynamicModule {
  return typeof value === 'object' && value !== null && 'module' in value && typeof value.module === 'function';
}

/** Names of the modules (seen so far in the process) that declare a provider for `token`. */
export function ownersOf(token: Token): readonly string[] {
  return knownOwners.get(token) ?? [];
}

function rememberOwner(provider: Provider, moduleName: string): void {
  const token = typeof provider === 'function' ? provider : provider?.provide;
  if (typeof token !== 'function' && !(token instanceof InjectionToken)) return;
  const owners = knownOwners.get(token) ?? [];
  if (!owners.includes(moduleName)) owners.push(moduleName);
  knownOwners.set(token, owners);
}

export function assertModule(value: unknown, importer: string): asserts value is Class | DynamicModule {
  const target = isDynamicModule(value) ? value.module : value;
  if (typeof target === 'function' && (moduleOptions.has(target) || isDynamicModule(value))) return;
  const what = value === undefined ? 'undefined (often an import cycle between files)' : typeof target === 'function' ? `class ${target.name}` : String(value);
  throw new ToniError(
    'TONI_ERR_INVALID_MODULE',
    `${importer} imports ${what}, which is not a module: decorate it with @Module({...}) or import a dynamic module such as SomeModule.forRoot(...).`,
  );
}
