import { ToniError } from '../errors.js';
import { runInInjectionContext } from './inject.js';
import {
  type DynamicModule,
  type ModuleImport,
  assertModule,
  getModuleOptions,
  isDynamicModule,
  ownersOf,
} from './module.js';
import { type NormalizedProvider, type ValueProvider, normalizeProvider } from './provider.js';
import { type Class, type Token, tokenName } from './token.js';

/** One module of the application graph, with its own providers and what it can see. */
export interface ModuleNode {
  readonly name: string;
  readonly type: Class;
  readonly providers: Map<Token, ProviderRecord>;
  readonly controllers: ProviderRecord[];
  readonly imports: ModuleNode[];
  readonly exports: Set<Token>;
  readonly exportedModules: ModuleNode[];
  readonly global: boolean;
  readonly self: ProviderRecord;
}

/** A provider inside one module, and the singleton it produced. */
export interface ProviderRecord {
  readonly definition: NormalizedProvider;
  readonly owner: ModuleNode;
  readonly kind: 'provider' | 'controller' | 'module';
  state: 'new' | 'resolving' | 'pending' | 'done';
  instance?: unknown;
  pending?: Promise<unknown>;
}

/** Thrown through constructors when a dependency is an async factory still running. */
class AwaitDependency {
  constructor(readonly record: ProviderRecord) {}
}

/**
 * The dependency-injection container of one application: the module graph, the provider
 * records, and the resolution that turns them into singletons.
 */
export class Container {
  readonly root: ModuleNode;
  readonly modules: readonly ModuleNode[];
  readonly #globals: ModuleNode[];
  readonly #resolving: ProviderRecord[] = [];
  /** Records in the order their instances were created: every dependency before its dependents. */
  readonly #created: ProviderRecord[] = [];

  private constructor(root: ModuleNode, modules: ModuleNode[]) {
    this.root = root;
    this.modules = modules;
    this.#globals = modules.filter((node) => node.global);
  }

  /** Builds the module graph below `rootModule` and creates every provider and controller. */
  static async create(rootModule: Class | DynamicModule, options: ContainerOptions = {}): Promise<Container> {
    const modules: ModuleNode[] = [];
    const graph: GraphContext = {
      seen: new Map(),
      order: modules,
      configured: await findConfigured(rootModule, 'ToniFactory.create'),
      overrides: options.overrides ?? new Map(),
    };
    if (options.globalProviders !== undefined) {
      const tokens = options.globalProviders.map((provider) => provider.provide);
      const core: DynamicModule = { module: ToniCoreModule, global: true, providers: options.globalProviders, exports: tokens };
      await buildGraph(core, 'ToniFactory.create', graph);
    }
    const root = await buildGraph(rootModule, 'ToniFactory.create', graph);
    for (const node of modules) validateExports(node);
    const container = new Container(root, modules);
    await container.#instantiateAll();
    return container;
  }

  /** The singleton for `token`: visible from the root module, else a provider or controller declared anywhere in the graph. */
  get<T>(token: Token<T>): T {
    const record = this.#lookup(this.root, token) ?? this.#declaredAnywhere(token);
    if (record === undefined) throw this.#missing(token, this.root, [`app.get(${tokenName(token)})`]);
    if (record.state !== 'done') {
      throw new ToniError('TONI_ERR_APP_STATE', `${tokenName(token)} is not created yet: call app.get() after ToniFactory.create() resolves.`);
    }
    return record.instance as T;
  }

  /**
   * Every created instance with the module that owns it, in creation order: imported modules
   * before their importers, and every dependency (a global module's provider too) before its dependents.
   */
  *instances(options: { includeValues?: boolean } = {}): Generator<{ instance: unknown; module: ModuleNode; kind: ProviderRecord['kind'] }> {
    const seen = new Set<unknown>();
    for (const record of this.#created) {
      if (seen.has(record.instance)) continue;
      if (record.definition.kind === 'value' && options.includeValues !== true) continue;
      seen.add(record.instance);
      yield { instance: record.instance, module: record.owner, kind: record.kind };
    }
  }

  /**
   * An instance of `type` for what `from` uses (a guard, an interceptor…): the provider of that
   * class `from` sees, or else a new instance made with `from`'s injection context, so that its
   * `inject()` calls resolve as they would in a provider of `from`. Such an instance is no
   * provider: it is not shared with other modules and gets no lifecycle hooks.
   */
  instantiateFor(type: Class, from: ModuleNode, chain: readonly string[]): unknown {
    const record = this.#lookup(from, type);
    if (record !== undefined) return this.#instantiate(record, chain);
    const path = [...chain, tokenName(type)];
    const context = { resolve: (token: Token, optional: boolean) => this.#resolveSync(token, from, path, optional) };
    return runInInjectionContext(context, () => new type());
  }

  async #instantiateAll(): Promise<void> {
    for (const module of this.modules) {
      const records = [...module.providers.values(), ...module.controllers, module.self];
      for (const record of records) await this.#resolveAsync(record, [module.name]);
    }
  }

  async #resolveAsync(record: ProviderRecord, chain: readonly string[]): Promise<unknown> {
    for (;;) {
      try {
        return this.#instantiate(record, chain);
      } catch (error) {
        if (!(error instanceof AwaitDependency)) throw error;
        await error.record.pending;
      }
    }
  }

  #resolveSync(token: Token, from: ModuleNode, chain: readonly string[], optional: boolean): unknown {
    const record = this.#lookup(from, token);
    if (record === undefined) {
      if (optional) return undefined;
      throw this.#missing(token, from, chain);
    }
    return this.#instantiate(record, chain);
  }

  #instantiate(record: ProviderRecord, parentChain: readonly string[]): unknown {
    if (record.state === 'done') return record.instance;
    if (record.state === 'pending') throw new AwaitDependency(record);
    const definition = record.definition;
    const chain = [...parentChain, tokenName(definition.token)];
    if (record.state === 'resolving') throw this.#cycle(record);

    record.state = 'resolving';
    this.#resolving.push(record);
    const context = {
      resolve: (token: Token, optional: boolean) => this.#resolveSync(token, record.owner, chain, optional),
    };
    try {
      const value = runInInjectionContext(context, () => construct(definition, context));
      if (definition.kind === 'factory' && isPromiseLike(value)) {
        record.state = 'pending';
        record.pending = Promise.resolve(value).then(
          (instance) => {
            record.instance = instance;
            record.state = 'done';
            this.#created.push(record);
          },
          async (error: unknown) => {
            // An async factory that injected another async factory's token before its first
            // await rejects instead of throwing: wait for that dependency and call it again.
            if (!(error instanceof AwaitDependency)) throw error;
            await error.record.pending;
            record.state = 'new';
            await this.#resolveAsync(record, parentChain);
          },
        );
        throw new AwaitDependency(record);
      }
      record.instance = value;
      record.state = 'done';
      this.#created.push(record);
      return value;
    } finally {
      this.#resolving.pop();
      if (record.state === 'resolving') record.state = 'new';
    }
  }

  #lookup(from: ModuleNode, token: Token): ProviderRecord | undefined {
    return (
      from.providers.get(token) ??
      firstDefined(from.imports, (imported) => exportedRecord(imported, token, new Set())) ??
      firstDefined(this.#globals, (global) => exportedRecord(global, token, new Set()))
    );
  }

  #declaredAnywhere(token: Token): ProviderRecord | undefined {
    return firstDefined(
      this.modules,
      (module) => module.providers.get(token) ?? module.controllers.find((controller) => controller.definition.token === token),
    );
  }

  /** A module that provides another token of the same name as `token`, the sign of a token created twice. */
  #namesakeOwner(token: Token): ModuleNode | undefined {
    return this.modules.find((module) => [...module.providers.keys()].some((provided) => isNamesake(provided, token)));
  }

  #cycle(record: ProviderRecord): ToniError {
    const start = this.#resolving.indexOf(record);
    const names = this.#resolving.slice(start).map((r) => tokenName(r.definition.token));
    const cycle = [...names, tokenName(record.definition.token)].join(' > ');
    return new ToniError(
      'TONI_ERR_CIRCULAR_DEPENDENCY',
      `Circular dependency: ${cycle}. Each of these needs the next one to be constructed first. ` +
        'Move the shared logic into a provider both can inject, or have one side look the other up later ' +
        'instead of injecting it at construction.',
    );
  }

  #missing(token: Token, from: ModuleNode, chain: readonly string[]): ToniError {
    const name = tokenName(token);
    const path = [...chain, name].join(' > ');
    const owner = this.modules.find((module) => module.providers.has(token));
    if (owner !== undefined && !owner.exports.has(token)) {
      const importHint = from.imports.includes(owner) ? '' : `, and import ${owner.name} into ${from.name}`;
      return new ToniError(
        'TONI_ERR_PROVIDER_NOT_EXPORTED',
        `Cannot resolve ${name} (${path}): ${owner.name} provides ${name} but does not export it. ` +
          `Fix: add ${name} to the exports of ${owner.name}${importHint}.`,
      );
    }
    if (owner === undefined) {
      const namesake = this.#namesakeOwner(token);
      if (namesake !== undefined) {
        return new ToniError(
          'TONI_ERR_UNKNOWN_PROVIDER',
          `Cannot resolve ${name} (${path}): ${namesakes(token, namesake.name)} ` +
            `Fix: ${sameTokenFix(token)}`,
        );
      }
    }
    const suggestion = owner?.name ?? ownersOf(token)[0];
    const fix =
      suggestion !== undefined
        ? `import ${suggestion} into ${from.name}`
        : `add ${name} to the providers of ${from.name}, or import a module that exports it`;
    return new ToniError(
      'TONI_ERR_UNKNOWN_PROVIDER',
      `Cannot resolve ${name} (${path}): no provider for ${name} is visible in ${from.name}. Fix: ${fix}.`,
    );
  }
}

function construct(definition: NormalizedProvider, context: { resolve(token: Token, optional: boolean): unknown }): unknown {
  switch (definition.kind) {
    case 'value':
      return definition.value;
    case 'class':
      return new definition.useClass();
    case 'factory':
      return definition.factory(...definition.inject.map((token) => context.resolve(token, false)));
  }
}

async function buildGraph(entry: ModuleImport, importer: string, graph: GraphContext): Promise<ModuleNode> {
  const { seen, order, configured, overrides } = graph;
  const awaited = await entry;
  assertModule(awaited, importer);
  // A plain import of a module class that is also imported configured (`X.forRoot(...)`) means that configured module.
  const resolved = isDynamicModule(awaited) ? awaited : configured.get(awaited) ?? awaited;
  const existing = seen.get(resolved);
  if (existing !== undefined) return existing;

  const type = isDynamicModule(resolved) ? resolved.module : resolved;
  const base = getModuleOptions(type) ?? {};
  const dynamic = isDynamicModule(resolved) ? resolved : undefined;
  const node: ModuleNode = {
    name: type.name,
    type,
    providers: new Map(),
    controllers: [],
    imports: [],
    exports: new Set(),
    exportedModules: [],
    global: dynamic?.global ?? base.global ?? false,
    self: undefined as unknown as ProviderRecord,
  };
  (node as { self: ProviderRecord }).self = record({ kind: 'class', token: type, useClass: type }, node, 'module');
  seen.set(resolved, node);

  const imports = [...(base.imports ?? []), ...(dynamic?.imports ?? [])];
  const importedByEntry = new Map<unknown, ModuleNode>();
  for (const imported of imports) {
    const child = await buildGraph(imported, node.name, graph);
    node.imports.push(child);
    importedByEntry.set(await imported, child);
    importedByEntry.set(child.type, child);
  }
  for (const provider of [...(base.providers ?? []), ...(dynamic?.providers ?? [])]) {
    const declared = normalizeProvider(provider, node.name);
    const override = overrides.get(declared.token);
    const definition = override === undefined ? declared : normalizeProvider({ ...override, provide: declared.token }, `the override of ${tokenName(declared.token)}`);
    node.providers.set(definition.token, record(definition, node, 'provider'));
  }
  for (const controller of [...(base.controllers ?? []), ...(dynamic?.controllers ?? [])]) {
    if (typeof controller !== 'function') {
      throw new ToniError('TONI_ERR_INVALID_CONTROLLER', `${node.name} lists ${String(controller)} as a controller; controllers must be classes decorated with @Controller().`);
    }
    node.controllers.push(record({ kind: 'class', token: controller, useClass: controller }, node, 'controller'));
  }
  for (const exported of [...(base.exports ?? []), ...(dynamic?.exports ?? [])]) {
    const reexported = importedByEntry.get(exported);
    if (reexported !== undefined) node.exportedModules.push(reexported);
    else node.exports.add(exported as Token);
  }
  order.push(node);
  return node;
}

/** Options of `Container.create`. */
export interface ContainerOptions {
  /** Values every module sees, e.g. `LOGGER`. */
  globalProviders?: readonly ValueProvider[];
  /** Replacements for declared providers, by token (what `Test.createTestingModule().overrideProvider()` collects). */
  overrides?: ReadonlyMap<Token, ProviderOverride>;
}

/** How an override builds its token's value. */
export type ProviderOverride =
  | { useValue: unknown }
  | { useClass: Class }
  | { useFactory: (...deps: never[]) => unknown; inject?: readonly Token[] };

interface GraphContext {
  readonly seen: Map<unknown, ModuleNode>;
  readonly order: ModuleNode[];
  readonly configured: ReadonlyMap<Function, DynamicModule>;
  readonly overrides: ReadonlyMap<Token, ProviderOverride>;
}

/** Holds what toni itself provides to every module, such as `LOGGER`. */
class ToniCoreModule {}

/** The first dynamic module of each module class in the import tree below `entry`. */
async function findConfigured(entry: ModuleImport, importer: string, found = new Map<Function, DynamicModule>(), visited = new Set<unknown>()): Promise<Map<Function, DynamicModule>> {
  const resolved = await entry;
  assertModule(resolved, importer);
  if (visited.has(resolved)) return found;
  visited.add(resolved);
  const type = isDynamicModule(resolved) ? resolved.module : resolved;
  if (isDynamicModule(resolved) && !found.has(type)) found.set(type, resolved);
  const imports = [...(getModuleOptions(type)?.imports ?? []), ...(isDynamicModule(resolved) ? resolved.imports ?? [] : [])];
  for (const imported of imports) await findConfigured(imported, type.name, found, visited);
  return found;
}

function record(definition: NormalizedProvider, owner: ModuleNode, kind: ProviderRecord['kind']): ProviderRecord {
  return { definition, owner, kind, state: 'new' };
}

function exportedRecord(module: ModuleNode, token: Token, seen: Set<ModuleNode>): ProviderRecord | undefined {
  if (seen.has(module)) return undefined;
  seen.add(module);
  if (module.exports.has(token)) {
    return module.providers.get(token) ?? firstDefined(module.imports, (imported) => exportedRecord(imported, token, seen));
  }
  return firstDefined(module.exportedModules, (reexported) => exportedRecord(reexported, token, seen));
}

function validateExports(module: ModuleNode): void {
  for (const token of module.exports) {
    if (module.providers.has(token)) continue;
    if (module.imports.some((imported) => exportedRecord(imported, token, new Set()) !== undefined)) continue;
    const namesake = [...module.providers.keys()].some((provided) => isNamesake(provided, token));
    throw new ToniError(
      'TONI_ERR_INVALID_EXPORT',
      namesake
        ? `${module.name} exports ${tokenName(token)}, but does not provide it: ${namesakes(token, module.name)} Fix: ${sameTokenFix(token)}`
        : `${module.name} exports ${tokenName(token)}, but neither provides it nor imports a module that exports it. ` +
          `Fix: add ${tokenName(token)} to the providers of ${module.name}, or remove it from its exports.`,
    );
  }
}

/** Two tokens of one kind with one (non-empty) name: the same token created twice, or two classes declared alike. */
function isNamesake(a: Token, b: Token): boolean {
  if (a === b || typeof a !== typeof b) return false;
  const name = typeof a === 'function' ? a.name : a.description;
  return name !== '' && name === (typeof b === 'function' ? b.name : b.description);
}

/** Says that `token` and a token `owner` provides are two objects with one name. */
function namesakes(token: Token, owner: string): string {
  const name = tokenName(token);
  const what = typeof token === 'function' ? 'classes' : 'InjectionTokens';
  return `two distinct ${what} are named ${name}, and the one requested is not the one ${owner} provides (toni matches tokens by identity, not by name).`;
}

function sameTokenFix(token: Token): string {
  const name = tokenName(token);
  return typeof token === 'function'
    ? `declare the class ${name} once and import it from that file both where it is provided and where it is injected ` +
        '(two copies usually come from two files declaring it, or from the package being loaded twice, e.g. from src/ and dist/).'
    : `create the token once (export const ${name} = new InjectionToken(…) in one file) and import that constant both where it is provided ` +
        'and where it is injected, instead of calling new InjectionToken() in each file.';
}

function firstDefined<T, R>(items: Iterable<T>, pick: (item: T) => R | undefined): R | undefined {
  for (const item of items) {
    const found = pick(item);
    if (found !== undefined) return found;
  }
  return undefined;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
