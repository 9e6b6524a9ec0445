import type { Container, ModuleNode } from '../di/container.js';
import { type AbstractClass, tokenName } from '../di/token.js';
import { ToniError } from '../errors.js';
import { getControllerPrefix, getRoutes } from '../http/decorators.js';
import type { BoundRoute } from '../http/request-handler.js';
import { Router, joinPaths } from '../http/router.js';

/** A route with the module of its controller, whose injection context its guards and interceptors use. */
export interface ScopedRoute {
  readonly route: BoundRoute;
  readonly scope: ModuleNode;
}

/** Builds the router from every controller in the container. */
export function buildRouter(container: Container, defaultBodyLimit: number): { router: Router<BoundRoute>; routes: ScopedRoute[] } {
  const router = new Router<BoundRoute>();
  const routes: ScopedRoute[] = [];
  for (const { instance, module, kind } of container.instances()) {
    if (kind !== 'controller') continue;
    const type = (instance as object).constructor as AbstractClass<unknown>;
    const prefix = getControllerPrefix(type);
    if (prefix === undefined) {
      throw new ToniError(
        'TONI_ERR_INVALID_CONTROLLER',
        `${tokenName(type)} is listed in the controllers of ${module.name} but is not decorated with @Controller(). ` +
          `Fix: add @Controller('/prefix') to it, or move it to providers.`,
      );
    }
    for (const { metadata, handler } of getRoutes(instance as object)) {
      const name = `${tokenName(type)}.${String(metadata.propertyKey)}`;
      const bodyLimit = metadata.options.bodyLimit ?? defaultBodyLimit;
      assertBodyLimit(bodyLimit, name);
      const { body, params, query } = metadata.options;
      const route: BoundRoute = {
        name,
        type,
        handler,
        invoke: (ctx) => handler.call(instance, ctx),
        bodySchema: body,
        paramsSchema: params,
        querySchema: query,
        bodyLimit,
        chain: undefined,
        plain: params === undefined && query === undefined,
      };
      router.add(metadata.method, joinPaths(prefix, metadata.path), route);
      routes.push({ route, scope: module });
    }
  }
  return { router, routes };
}

export function assertBodyLimit(value: number, where: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `bodyLimit of ${where} must be a non-negative integer number of bytes, got ${String(value)}.`);
  }
}
