import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { HttpContext } from './context.js';

/** Options of a route decorator. */
export interface RouteOptions<TSchema extends StandardSchemaV1 | undefined = undefined> {
  /** A Standard Schema (zod, valibot, arktype, …) the JSON body must satisfy; failures answer 400. */
  body?: TSchema;
  /** Largest accepted body in bytes for this route (default: the application's `bodyLimit`). */
  bodyLimit?: number;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A route as declared on a method, before the controller's prefix is applied. */
export interface RouteMetadata {
  readonly method: HttpMethod;
  readonly path: string;
  readonly options: RouteOptions<StandardSchemaV1 | undefined>;
  readonly propertyKey: string | symbol;
}

type Handler<This, TBody> = (this: This, ctx: HttpContext<TBody>) => unknown;

/** A route decorator for a route without a body schema: the handler states its body type. */
export type RouteDecorator = <This, TBody>(
  target: Handler<This, TBody>,
  context: ClassMethodDecoratorContext<This, Handler<This, TBody>>,
) => void;

/** A route decorator for a route with a body schema: the handler must accept the schema's output. */
export type ValidatedRouteDecorator<TBody> = <This>(
  target: Handler<This, TBody>,
  context: ClassMethodDecoratorContext<This, Handler<This, TBody>>,
) => void;

const controllers = new WeakMap<Function, string>();
const routes = new WeakMap<Function, RouteMetadata[]>();

/**
 * Declares an HTTP controller; its routes are the methods decorated with `@Get`, `@Post`, ….
 * Prefix and paths are joined with single slashes.
 *
 * @example
 * @Controller('/events')
 * export class EventsController { @Post('/announce') announce(ctx: HttpContext<{ message: string }>) { … } }
 */
export function Controller(prefix = '') {
  return (target: new () => object, context: ClassDecoratorContext): void => {
    if (context.kind !== 'class') throw new TypeError('@Controller() decorates classes only');
    controllers.set(target, prefix);
  };
}

function route(method: HttpMethod) {
  function decorator(path?: string, options?: RouteOptions): RouteDecorator;
  function decorator<S extends StandardSchemaV1>(path: string, options: RouteOptions<S> & { body: S }): ValidatedRouteDecorator<StandardSchemaV1.InferOutput<S>>;
  function decorator(path = '', options: RouteOptions<StandardSchemaV1 | undefined> = {}): RouteDecorator {
    const decorate = (target: Function, context: ClassMethodDecoratorContext): void => {
      if (context.kind !== 'method') throw new TypeError(`@${method[0]}${method.slice(1).toLowerCase()}() decorates methods only`);
      const list = routes.get(target) ?? [];
      list.push({ method, path, options, propertyKey: context.name });
      routes.set(target, list);
    };
    return decorate as RouteDecorator;
  }
  return decorator;
}

/** A GET route. @example @Get('/users/:id') find(ctx: HttpContext) { … } */
export const Get = route('GET');
/** A POST route. @example @Post('/users', { body: UserSchema }) create(ctx: HttpContext<User>) { … } */
export const Post = route('POST');
/** A PUT route. */
export const Put = route('PUT');
/** A PATCH route. */
export const Patch = route('PATCH');
/** A DELETE route. */
export const Delete = route('DELETE');

export function getControllerPrefix(target: Function): string | undefined {
  return controllers.get(target);
}

/** The routes declared on a controller instance's methods, including inherited ones. */
export function getRoutes(instance: object): { metadata: RouteMetadata; handler: Function }[] {
  const found: { metadata: RouteMetadata; handler: Function }[] = [];
  const seen = new Set<string | symbol>();
  for (let proto = Object.getPrototypeOf(instance); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Reflect.ownKeys(proto)) {
      if (seen.has(key) || key === 'constructor') continue;
      seen.add(key);
      const handler: unknown = Object.getOwnPropertyDescriptor(proto, key)?.value;
      if (typeof handler !== 'function') continue;
      for (const metadata of routes.get(handler) ?? []) found.push({ metadata, handler });
    }
  }
  return found;
}
