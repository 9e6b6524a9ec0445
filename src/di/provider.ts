import { ToniError } from '../errors.js';
import { type Class, type Token, InjectionToken, tokenName } from './token.js';

export interface ValueProvider<T = unknown> {
  provide: Token<T>;
  useValue: T;
}

export interface ClassProvider<T = unknown> {
  provide: Token<T>;
  useClass: Class<T>;
}

export interface FactoryProvider<T = unknown> {
  provide: Token<T>;
  /** Called once with the resolved `inject` tokens, in order; may return a promise. */
  useFactory: (...deps: never[]) => T | Promise<T>;
  inject?: readonly Token[];
}

/** How a module declares a provider: a class, or an object naming the token and how to build it. */
export type Provider<T = unknown> = Class<T> | ValueProvider<T> | ClassProvider<T> | FactoryProvider<T>;

/**
 * `P` checked against its own token: a value, class or factory must produce the type of `provide`.
 * `Provider` alone cannot relate the two, since each entry of a module's `providers` has its own type.
 */
export type CheckedProvider<P> = P extends { provide: Token<infer T> }
  ? P extends { useValue: unknown } ? ValueProvider<T>
  : P extends { useClass: unknown } ? ClassProvider<T>
  : P extends { useFactory: unknown } ? FactoryProvider<T>
  : Provider
  : Provider;

/** A list of providers, each checked against its own token. */
export type CheckedProviders<P extends readonly Provider[]> = P & { readonly [K in keyof P]: CheckedProvider<P[K]> };

/** A provider reduced to one shape. */
export type NormalizedProvider =
  | { kind: 'class'; token: Token; useClass: Class }
  | { kind: 'value'; token: Token; value: unknown }
  | { kind: 'factory'; token: Token; factory: (...deps: unknown[]) => unknown; inject: readonly Token[] };

export function normalizeProvider(provider: unknown, owner: string): NormalizedProvider {
  if (typeof provider === 'function') {
    return { kind: 'class', token: provider as Class, useClass: provider as Class };
  }
  if (provider === null || typeof provider !== 'object' || !('provide' in provider)) {
    throw invalid(owner, `${describe(provider)} is not a class or a { provide, use… } object`);
  }
  const { provide } = provider;
  if (typeof provide !== 'function' && !(provide instanceof InjectionToken)) {
    throw invalid(owner, `"provide" must be a class or an InjectionToken, got ${describe(provide)}`);
  }
  const token = provide as Token;
  if ('useValue' in provider) return { kind: 'value', token, value: provider.useValue };
  if ('useClass' in provider) {
    if (typeof provider.useClass !== 'function') {
      throw invalid(owner, `useClass for ${tokenName(token)} must be a class`);
    }
    return { kind: 'class', token, useClass: provider.useClass as Class };
  }
  if ('useFactory' in provider) {
    if (typeof provider.useFactory !== 'function') {
      throw invalid(owner, `useFactory for ${tokenName(token)} must be a function`);
    }
    const inject = 'inject' in provider && provider.inject !== undefined ? provider.inject : [];
    if (!Array.isArray(inject)) throw invalid(owner, `"inject" for ${tokenName(token)} must be an array of tokens`);
    return { kind: 'factory', token, factory: provider.useFactory as (...deps: unknown[]) => unknown, inject };
  }
  throw invalid(owner, `the provider for ${tokenName(token)} needs one of useValue, useClass or useFactory`);
}

function invalid(owner: string, detail: string): ToniError {
  return new ToniError('TONI_ERR_INVALID_PROVIDER', `Invalid provider in ${owner}: ${detail}.`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined (often an import cycle between files)';
  if (value === null) return 'null';
  return typeof value === 'object' ? JSON.stringify(value) ?? typeof value : String(value);
}
