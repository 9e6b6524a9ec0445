import type { AbstractClass, Class } from '../di/token.js';
import type { ExecutionContext } from './execution-context.js';

/**
 * Decides whether a call goes ahead: an HTTP route, a WebSocket handshake or a gateway event.
 * `false` answers 403 (HTTP and handshakes) or error `forbidden` (events); a thrown
 * `HttpException` answers its status. Guards run before validation.
 *
 * @example
 * @Injectable()
 * export class AuthGuard implements Guard {
 *   private readonly auth = inject(AuthService);
 *   canActivate(ctx: ExecutionContext) {
 *     const user = this.auth.userFor(ctx.headers.get('authorization'));
 *     if (user === undefined) throw new HttpException(401, 'Sign in first');
 *     ctx.set(User, user);
 *     return true;
 *   }
 * }
 */
export interface Guard {
  canActivate(ctx: ExecutionContext): boolean | Promise<boolean>;
}

/**
 * Wraps a route or event handler: `next()` runs validation and the handler and resolves with
 * the handler's result (the route's return value, or the event's acknowledgement); what
 * `intercept` returns replaces it.
 *
 * @example
 * @Injectable()
 * export class TimingInterceptor implements Interceptor {
 *   private readonly logger = inject(LOGGER);
 *   async intercept(ctx: ExecutionContext, next: () => Promise<unknown>) {
 *     const start = performance.now();
 *     try { return await next(); }
 *     finally { this.logger.info({ ms: performance.now() - start }, `${ctx.class.name}.${String(ctx.handler?.name)}`); }
 *   }
 * }
 */
export interface Interceptor {
  intercept(ctx: ExecutionContext, next: () => Promise<unknown>): unknown;
}

/**
 * Maps what a route or event handler (or a guard, an interceptor, validation) threw to what the
 * call answers instead: on HTTP an `HttpResponse`, an `HttpException` or any value a handler
 * could return; on an event a `WsException` (the error reply) or a value (the acknowledgement).
 * `@Catch(ErrorClass, …)` says which errors it takes; without `@Catch`, or with `@Catch()`, every one.
 *
 * @example
 * @Catch(OutOfStock)
 * export class OutOfStockFilter implements ExceptionFilter<OutOfStock> {
 *   catch(error: OutOfStock, ctx: ExecutionContext) {
 *     return ctx.kind === 'event' ? new WsException('out_of_stock', error.message) : new HttpException(409, error.message);
 *   }
 * }
 */
export interface ExceptionFilter<E = unknown> {
  catch(error: E, ctx: ExecutionContext): unknown;
}

/** A guard, interceptor or filter as decorators and `app.useGlobal…` take it: a class toni creates (with `inject()`), or an instance. */
export type EnhancerRef<T> = Class<T> | T;

/** The three kinds of enhancer, for messages. */
export type EnhancerKind = 'guard' | 'interceptor' | 'filter';

/** What each kind must implement. */
export const ENHANCER_METHOD: Readonly<Record<EnhancerKind, string>> = { guard: 'canActivate', interceptor: 'intercept', filter: 'catch' };

const USE_DECORATOR: Readonly<Record<EnhancerKind, string>> = { guard: 'UseGuards', interceptor: 'UseInterceptors', filter: 'UseFilters' };

/** The enhancers declared on a class or a method, in source order (the top decorator first). */
export interface DeclaredEnhancers {
  readonly guards: readonly EnhancerRef<Guard>[];
  readonly interceptors: readonly EnhancerRef<Interceptor>[];
  readonly filters: readonly EnhancerRef<ExceptionFilter>[];
}

const declared = new WeakMap<Function, { guards: unknown[]; interceptors: unknown[]; filters: unknown[] }>();
const caught = new WeakMap<Function, readonly AbstractClass<unknown>[]>();

type EnhancerDecorator = (target: Function, context: ClassDecoratorContext | ClassMethodDecoratorContext) => void;

/**
 * Guards for every route of a controller, the handshake of a gateway, or (on a method) one
 * route or `@On` event. Classes are created by toni and can `inject()`; instances work too.
 *
 * @example
 * @UseGuards(AuthGuard)
 * @Controller('/teams')
 * export class TeamsController { … }
 */
export function UseGuards(...guards: EnhancerRef<Guard>[]): EnhancerDecorator {
  return enhancerDecorator('guard', 'guards', guards);
}

/**
 * Interceptors for every route or event of a controller or gateway, or (on a method) one route or event.
 *
 * @example
 * @UseInterceptors(TimingInterceptor)
 * @Post('/:team/messages', { body: NewMessage })
 * post(ctx: HttpContext<z.output<typeof NewMessage>>) { … }
 */
export function UseInterceptors(...interceptors: EnhancerRef<Interceptor>[]): EnhancerDecorator {
  return enhancerDecorator('interceptor', 'interceptors', interceptors);
}

/**
 * Exception filters for every route or event of a controller or gateway, or (on a method) one
 * route or event. The method's filters are asked first, then the class's, then the global ones;
 * the first whose `@Catch` matches handles the error.
 *
 * @example
 * @UseFilters(OutOfStockFilter)
 * @Controller('/orders')
 * export class OrdersController { … }
 */
export function UseFilters(...filters: EnhancerRef<ExceptionFilter>[]): EnhancerDecorator {
  return enhancerDecorator('filter', 'filters', filters);
}

/**
 * Says which errors an `ExceptionFilter` class handles: instances of the given classes (their
 * subclasses included). `@Catch()` without classes, like no `@Catch` at all, handles every error.
 *
 * @example
 * @Catch(OutOfStock, PaymentDeclined)
 * export class DomainErrorFilter implements ExceptionFilter<OutOfStock | PaymentDeclined> { … }
 */
export function Catch(...errors: AbstractClass<unknown>[]) {
  for (const error of errors) {
    if (typeof error !== 'function') throw new TypeError(`@Catch() takes error classes, got ${describeRef(error)}`);
  }
  return (target: Function, context: ClassDecoratorContext): void => {
    if (context.kind !== 'class') throw new TypeError('@Catch() decorates exception filter classes only');
    caught.set(target, errors);
  };
}

/** The error classes a filter handles; empty: every error. */
export function caughtErrors(filter: object): readonly AbstractClass<unknown>[] {
  for (let type: unknown = filter.constructor; typeof type === 'function' && type !== Object; type = Object.getPrototypeOf(type)) {
    const errors = caught.get(type);
    if (errors !== undefined) return errors;
  }
  return [];
}

/** The enhancers declared on a class (its base classes' first) or on a method. */
export function declaredOn(target: Function, isClass: boolean): DeclaredEnhancers | undefined {
  if (!isClass) return declared.get(target) as DeclaredEnhancers | undefined;
  let found: { guards: unknown[]; interceptors: unknown[]; filters: unknown[] } | undefined;
  const chain: Function[] = [];
  for (let type: unknown = target; typeof type === 'function' && type !== Function.prototype; type = Object.getPrototypeOf(type)) chain.unshift(type);
  for (const type of chain) {
    const own = declared.get(type);
    if (own === undefined) continue;
    found ??= { guards: [], interceptors: [], filters: [] };
    found.guards.push(...own.guards);
    found.interceptors.push(...own.interceptors);
    found.filters.push(...own.filters);
  }
  return found as DeclaredEnhancers | undefined;
}

/** Throws a `TypeError` unless `ref` is a class or an instance with the kind's method. */
export function assertEnhancerRef(kind: EnhancerKind, ref: unknown, where: string): void {
  if (typeof ref === 'function') return;
  const method = ENHANCER_METHOD[kind];
  if (typeof ref === 'object' && ref !== null && typeof (ref as Record<string, unknown>)[method] === 'function') return;
  throw new TypeError(`${where} takes ${kind} classes or instances with a ${method}() method, got ${describeRef(ref)}`);
}

function enhancerDecorator(kind: EnhancerKind, list: 'guards' | 'interceptors' | 'filters', refs: readonly unknown[]): EnhancerDecorator {
  const name = `@${USE_DECORATOR[kind]}()`;
  if (refs.length === 0) throw new TypeError(`${name} needs at least one ${kind}`);
  for (const ref of refs) assertEnhancerRef(kind, ref, name);
  return (target, context) => {
    if (context.kind !== 'class' && context.kind !== 'method') throw new TypeError(`${name} decorates classes and methods only`);
    let own = declared.get(target);
    if (own === undefined) declared.set(target, (own = { guards: [], interceptors: [], filters: [] }));
    // Decorators apply from the bottom up: prepending keeps the order in which they are written.
    own[list].unshift(...refs);
  };
}

function describeRef(value: unknown): string {
  if (value === undefined) return 'undefined (often an import cycle between files)';
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object without the method (${Object.keys(value).join(', ') || 'no keys'})`;
  return `${typeof value} ${String(value)}`;
}
