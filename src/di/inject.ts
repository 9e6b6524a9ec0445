import { ToniError } from '../errors.js';
import { type Token, tokenName } from './token.js';

/** Options of `inject()`. */
export interface InjectOptions {
  /** Resolve to `undefined` instead of failing when no provider is visible. */
  optional?: boolean;
}

/** The resolver that is constructing a provider right now. */
export interface InjectionContext {
  resolve(token: Token, optional: boolean): unknown;
}

let current: InjectionContext | undefined;

/**
 * Returns the instance for `token`. Call it while toni constructs a provider, controller,
 * gateway or module: in a field initialiser, a constructor (or its parameter defaults), or a
 * `useFactory` function before its first `await`.
 *
 * @example
 * @Injectable()
 * export class NotificationService {
 *   private readonly broadcast = inject(BroadcastService);
 *   constructor(private readonly config = inject(CONFIG)) {}
 * }
 */
export function inject<T>(token: Token<T>): T;
export function inject<T>(token: Token<T>, options: InjectOptions & { optional: true }): T | undefined;
export function inject<T>(token: Token<T>, options: InjectOptions & { optional?: false }): T;
export function inject<T>(token: Token<T>, options?: InjectOptions): T | undefined;
export function inject<T>(token: Token<T>, options?: InjectOptions): T | undefined {
  if (current === undefined) {
    throw new ToniError(
      'TONI_ERR_INJECT_OUTSIDE_CONTEXT',
      `inject(${tokenName(token)}) was called outside the construction of a provider. ` +
        'Call inject() in a field initialiser or a constructor of a class that toni creates, ' +
        'or in a useFactory function before its first await; keep the result in a field to use it later.',
    );
  }
  return current.resolve(token, options?.optional === true) as T | undefined;
}

/** Runs `construct` with `context` as the active injection context. */
export function runInInjectionContext<R>(context: InjectionContext, construct: () => R): R {
  const previous = current;
  current = context;
  try {
    return construct();
  } finally {
    current = previous;
  }
}
