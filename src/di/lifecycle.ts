import type { Container } from './container.js';

/** Called once the provider's module and everything it imports are created. */
export interface OnModuleInit {
  onModuleInit(): unknown;
}

/** Called once every module is initialised, before the application listens. */
export interface OnApplicationBootstrap {
  onApplicationBootstrap(): unknown;
}

/** Called while the application closes, after connections are closed; `signal` when a signal caused it. */
export interface OnApplicationShutdown {
  onApplicationShutdown(signal?: string): unknown;
}

type Hook = 'onModuleInit' | 'onApplicationBootstrap' | 'onApplicationShutdown';

/** Options of `callLifecycleHook`. */
export interface HookOptions {
  signal?: string | undefined;
  /** When given, a failing hook is reported here and the others still run; otherwise the error propagates. */
  onError?: (error: unknown, instanceName: string) => void;
}

/**
 * Calls `hook` on every instance that has it, dependencies first (imported modules before their
 * importers; reversed for shutdown), awaiting each.
 */
export async function callLifecycleHook(container: Container, hook: Hook, options: HookOptions = {}): Promise<void> {
  const instances = [...container.instances()];
  if (hook === 'onApplicationShutdown') instances.reverse();
  for (const { instance } of instances) {
    const method = (instance as Partial<Record<Hook, unknown>>)[hook];
    if (typeof method !== 'function') continue;
    try {
      await method.call(instance, options.signal);
    } catch (error) {
      if (options.onError === undefined) throw error;
      options.onError(error, (instance as object).constructor.name);
    }
  }
}
