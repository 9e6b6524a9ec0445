import type { Container } from '../di/container.js';
import { tokenName } from '../di/token.js';
import { ToniError } from '../errors.js';
import { getControllerPrefix, getRoutes } from '../http/decorators.js';
import type { BoundRoute } from '../http/request-handler.js';
import { Router, joinPaths } from '../http/router.js';

/** Builds the router from every controller in the container. */
export function buildRouter(container: Container, defaultBodyLimit: number): Router<BoundRoute> {
  const router = new Router<BoundRoute>();
  for (const { instance, module, kind } of container.instances()) {
    if (kind !== 'controller') continue;
    const type = (instance as object).constructor;
    const prefix = getControllerPrefix(type);
    if (prefix === undefined) {
      throw new ToniError(
        'TONI_ERR_INVALID_CONTROLLER',
        `${tokenName(type)} is listed in the controllers of ${module.name} but is not decorated with @Controller(). ` +
          `Fix: add @Controller('/prefix') to it, or move it to providers.`,
      );
    }
    for (const { metadata, handler } of getRoutes(instance as object)) {
      const bodyLimit = metadata.options.bodyLimit ?? defaultBodyLimit;
      assertBodyLimit(bodyLimit, `${tokenName(type)}.${String(metadata.propertyKey)}`);
      router.add(metadata.method, joinPaths(prefix, metadata.path), {
        name: `${tokenName(type)}.${String(metadata.propertyKey)}`,
        invoke: (ctx) => handler.call(instance, ctx),
        bodySchema: metadata.options.body,
        bodyLimit,
      });
    }
  }
  return router;
}

export function assertBodyLimit(value: number, where: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `bodyLimit of ${where} must be a non-negative integer number of bytes, got ${String(value)}.`);
  }
}
