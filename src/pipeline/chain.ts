import type { AbstractClass, Class } from '../di/token.js';
import { ToniError } from '../errors.js';
import {
  ENHANCER_METHOD,
  type EnhancerKind,
  type ExceptionFilter,
  type Guard,
  type Interceptor,
  assertEnhancerRef,
  caughtErrors,
  declaredOn,
} from './enhancers.js';
import type { ExecutionContext } from './execution-context.js';

/** An exception filter with the errors it handles (empty: every error). */
export interface FilterEntry {
  readonly filter: ExceptionFilter;
  readonly errors: readonly AbstractClass<unknown>[];
}

/**
 * What runs around one handler, resolved once at startup: guards in order, interceptors from
 * the outermost in, and filters from the most specific (the method's) to the global ones.
 */
export interface Chain {
  readonly guards: readonly Guard[];
  readonly interceptors: readonly Interceptor[];
  readonly filters: readonly FilterEntry[];
}

/**
 * The chains of gateways, for the WebSocket adapter's gateway host: resolved at startup, per
 * gateway instance (and `@On` method).
 */
export interface GatewayChains {
  /** Guards (global and the gateway class's) and filters that run before `onHandshake`. */
  handshake(gateway: object): Chain | undefined;
  /** Guards (global and the method's), interceptors and filters of one `@On` handler. */
  event(gateway: object, handler: Function): Chain | undefined;
}

/**
 * Runs guards in order until one refuses. Synchronous while they are: a guard that returns a
 * boolean costs no promise. Anything but `true` refuses. A guard that throws throws (or rejects).
 */
export function runGuards(guards: readonly Guard[], ctx: ExecutionContext, from = 0): boolean | Promise<boolean> {
  for (let index = from; index < guards.length; index++) {
    const verdict: unknown = guards[index]!.canActivate(ctx);
    if (verdict === true) continue;
    if (verdict instanceof Promise) {
      return verdict.then((settled: unknown) => (settled === true ? runGuards(guards, ctx, index + 1) : false));
    }
    return false;
  }
  return true;
}

/**
 * Runs `inner` (validation and the handler) inside the interceptors, the first one outermost.
 * Each interceptor's `next()` resolves with what the ones inside it (and the handler) produced.
 */
export function runInterceptors(interceptors: readonly Interceptor[], ctx: ExecutionContext, inner: () => unknown): Promise<unknown> {
  const call = (index: number): Promise<unknown> => {
    try {
      if (index === interceptors.length) return Promise.resolve(inner());
      return Promise.resolve(interceptors[index]!.intercept(ctx, () => call(index + 1)));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return call(0);
}

/** The first filter that handles `error`, or undefined. */
export function filterFor(filters: readonly FilterEntry[], error: unknown): FilterEntry | undefined {
  for (const entry of filters) {
    if (entry.errors.length === 0) return entry;
    for (const type of entry.errors) if (error instanceof (type as Function)) return entry;
  }
  return undefined;
}

/**
 * Creates an enhancer class's instance for a scope (the module of the controller or gateway
 * that uses it): the provider the scope sees when the class is one, else a new instance made
 * with the scope's injection context.
 */
export type EnhancerFactory<Scope> = (type: Class, scope: Scope, where: string) => unknown;

/**
 * Resolves the guards, interceptors and filters of the application once, at startup, and
 * composes each handler's chain: global ones first (filters last), then the class's, then the method's.
 */
export class PipelineResolver<Scope> {
  readonly #create: EnhancerFactory<Scope>;
  readonly #root: Scope;
  readonly #instances = new Map<Scope, Map<Function, unknown>>();
  readonly #global: { guards: Guard[]; interceptors: Interceptor[]; filters: FilterEntry[] } = { guards: [], interceptors: [], filters: [] };

  constructor(create: EnhancerFactory<Scope>, root: Scope) {
    this.#create = create;
    this.#root = root;
  }

  /** Adds global enhancers (`app.useGlobalGuards(…)` and its kin), resolved in the root module. */
  addGlobal(kind: EnhancerKind, refs: readonly unknown[], where: string): void {
    for (const ref of refs) assertEnhancerRef(kind, ref, where);
    if (kind === 'guard') this.#global.guards.push(...this.#resolve<Guard>('guard', refs, this.#root, where));
    else if (kind === 'interceptor') this.#global.interceptors.push(...this.#resolve<Interceptor>('interceptor', refs, this.#root, where));
    else this.#global.filters.push(...this.#resolve<ExceptionFilter>('filter', refs, this.#root, where).map(toFilterEntry));
  }

  /** A route's chain: every guard, interceptor and filter that applies; undefined when none does. */
  route(type: Function, handler: Function, scope: Scope, name: string): Chain | undefined {
    return this.#compose(type, handler, scope, name, { guards: 'all', interceptors: true });
  }

  /** A gateway handshake's chain: the global guards and the gateway class's, and the filters. */
  handshake(type: Function, scope: Scope, name: string): Chain | undefined {
    return this.#compose(type, undefined, scope, name, { guards: 'class', interceptors: false });
  }

  /** An `@On` handler's chain: the global guards and the method's (the class's ran at the handshake), every interceptor and filter. */
  event(type: Function, handler: Function, scope: Scope, name: string): Chain | undefined {
    return this.#compose(type, handler, scope, name, { guards: 'method', interceptors: true });
  }

  #compose(type: Function, handler: Function | undefined, scope: Scope, name: string, take: { guards: 'all' | 'class' | 'method'; interceptors: boolean }): Chain | undefined {
    const onClass = declaredOn(type, true);
    const onMethod = handler === undefined ? undefined : declaredOn(handler, false);
    const global = this.#global;
    const guardRefs = [...(take.guards !== 'method' ? onClass?.guards ?? [] : []), ...(take.guards !== 'class' ? onMethod?.guards ?? [] : [])];
    const interceptorRefs = take.interceptors ? [...(onClass?.interceptors ?? []), ...(onMethod?.interceptors ?? [])] : [];
    const filterRefs = [...(onMethod?.filters ?? []), ...(onClass?.filters ?? [])];
    const guards = [...global.guards, ...this.#resolve<Guard>('guard', guardRefs, scope, name)];
    const interceptors = take.interceptors ? [...global.interceptors, ...this.#resolve<Interceptor>('interceptor', interceptorRefs, scope, name)] : [];
    const filters = [...this.#resolve<ExceptionFilter>('filter', filterRefs, scope, name).map(toFilterEntry), ...global.filters];
    if (guards.length + interceptors.length + filters.length === 0) return undefined;
    return Object.freeze({ guards: Object.freeze(guards), interceptors: Object.freeze(interceptors), filters: Object.freeze(filters) });
  }

  #resolve<T>(kind: EnhancerKind, refs: readonly unknown[], scope: Scope, where: string): T[] {
    return refs.map((ref) => {
      const instance = typeof ref === 'function' ? this.#instance(ref as Class, scope, where) : ref;
      const method = ENHANCER_METHOD[kind];
      if (typeof instance !== 'object' || instance === null || typeof (instance as Record<string, unknown>)[method] !== 'function') {
        const name = typeof ref === 'function' ? ref.name : 'an instance';
        throw new ToniError(
          'TONI_ERR_INVALID_PIPELINE',
          `${name}, used as a ${kind} by ${where}, has no ${method}() method. Implement ${kind === 'guard' ? 'Guard' : kind === 'interceptor' ? 'Interceptor' : 'ExceptionFilter'} (${method}(…)) on it.`,
        );
      }
      return instance as T;
    });
  }

  #instance(type: Class, scope: Scope, where: string): unknown {
    let made = this.#instances.get(scope);
    if (made === undefined) this.#instances.set(scope, (made = new Map()));
    if (!made.has(type)) made.set(type, this.#create(type, scope, where));
    return made.get(type);
  }
}

function toFilterEntry(filter: ExceptionFilter): FilterEntry {
  return { filter, errors: caughtErrors(filter) };
}
