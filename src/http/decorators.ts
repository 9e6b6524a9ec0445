import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { HttpContext } from './context.js';
import { isStandardSchema } from '../pipeline/validation.js';

/** Options of a route decorator. Each schema is any Standard Schema (zod, valibot, arktype, …). */
export interface RouteOptions<
  TBody extends StandardSchemaV1 | undefined = StandardSchemaV1 | undefined,
  TParams extends StandardSchemaV1 | undefined = StandardSchemaV1 | undefined,
  TQuery extends StandardSchemaV1 | undefined = StandardSchemaV1 | undefined,
> {
  /** The JSON body must satisfy it; failures answer 400 with `issues`, and the handler sees its output. */
  body?: TBody;
  /** The path parameters (an object of strings) must satisfy it; the handler sees its output as `ctx.params`. */
  params?: TParams;
  /** The query (an object: a key sent once is a string, several times an array) must satisfy it; the handler sees its output as `ctx.query`. */
  query?: TQuery;
  /** Largest accepted body in bytes for this route (default: the application's `bodyLimit`). */
  bodyLimit?: number;
}

/** The methods a route decorator registers; `ALL` (`@All`) matches any method. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | 'ALL';

/** A route as declared on a method, before the controller's prefix is applied. */
export interface RouteMetadata {
  readonly method: HttpMethod;
  readonly path: string;
  readonly options: RouteOptions;
  readonly propertyKey: string | symbol;
}

/** The type a schema option gives a part of the context, or `Otherwise` (what the handler states) without one. */
type OutputOr<S, Otherwise> = S extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<S> : Otherwise;

/**
 * The decorator a route decorator returns. Without schemas the handler states its context's
 * types; each schema the options declare fixes its part, and the handler must accept the output.
 */
export type RouteDecorator<O extends RouteOptions = RouteOptions<undefined, undefined, undefined>> = <This, TBody, TParams, TQuery>(
  target: (this: This, ctx: HttpContext<OutputOr<O['body'], TBody>, OutputOr<O['params'], TParams>, OutputOr<O['query'], TQuery>>) => unknown,
  context: ClassMethodDecoratorContext<This>,
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
  const name = `@${method[0]}${method.slice(1).toLowerCase()}()`;
  function decorator(path?: string): RouteDecorator;
  function decorator<B extends StandardSchemaV1 | undefined = undefined, P extends StandardSchemaV1 | undefined = undefined, Q extends StandardSchemaV1 | undefined = undefined>(
    path: string,
    options: RouteOptions<B, P, Q>,
  ): RouteDecorator<RouteOptions<B, P, Q>>;
  function decorator(path = '', options: RouteOptions = {}): RouteDecorator<RouteOptions> {
    for (const part of ['body', 'params', 'query'] as const) {
      const schema: unknown = options[part];
      if (schema !== undefined && !isStandardSchema(schema)) {
        throw new TypeError(`${name} option ${part} must be a Standard Schema (zod, valibot, arktype, …), got ${String(schema)}`);
      }
    }
    const decorate = (target: Function, context: ClassMethodDecoratorContext): void => {
      if (context.kind !== 'method') throw new TypeError(`${name} decorates methods only`);
      const list = routes.get(target) ?? [];
      list.push({ method, path, options, propertyKey: context.name });
      routes.set(target, list);
    };
    return decorate as RouteDecorator<RouteOptions>;
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
/**
 * An OPTIONS route. With `app.enableCors()`, OPTIONS requests are CORS preflights answered
 * before routing (as the `cors` package does) unless its `preflightContinue` is set.
 */
export const Options = route('OPTIONS');
/** A route for every method (GET, POST, …, and any other); a route of the method itself wins. @example @All('/proxy/*') forward(ctx: HttpContext) { … } */
export const All = route('ALL');

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
