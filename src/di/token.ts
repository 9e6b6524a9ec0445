/** A class that can be constructed without arguments: what toni instantiates. */
export type Class<T = unknown> = new () => T;

/** Any class, including abstract ones and those with constructor parameters: usable as a token. */
export type AbstractClass<T = unknown> = abstract new (...args: never[]) => T;

/**
 * A typed token for values that are not classes: configuration objects, functions, strings.
 *
 * @example
 * export const CONFIG = new InjectionToken<{ url: string }>('CONFIG');
 * // providers: [{ provide: CONFIG, useValue: { url: 'redis://…' } }]
 * // in a provider: private readonly config = inject(CONFIG);
 */
export class InjectionToken<T> {
  declare readonly __type?: T;
  readonly description: string;

  constructor(description: string) {
    this.description = description;
  }

  toString(): string {
    return `InjectionToken(${this.description})`;
  }
}

/** Anything a provider can be registered under and injected by. */
export type Token<T = unknown> = AbstractClass<T> | InjectionToken<T>;

/** A readable name for a token, used in error messages. */
export function tokenName(token: unknown): string {
  if (typeof token === 'function') return token.name || '<anonymous class>';
  if (token instanceof InjectionToken) return token.description;
  return String(token);
}
