/**
 * The catalogue of errors toni raises for programming and configuration mistakes.
 * Every code is documented in `docs/error-codes.md` with its cause and fix; a test keeps
 * the two in step.
 */
export const ERROR_CODES = {
  TONI_ERR_UNKNOWN_PROVIDER: 'A provider was requested that no visible module provides.',
  TONI_ERR_PROVIDER_NOT_EXPORTED: 'A provider exists in an imported module that does not export it.',
  TONI_ERR_CIRCULAR_DEPENDENCY: 'Providers depend on each other in a cycle.',
  TONI_ERR_INJECT_OUTSIDE_CONTEXT: 'inject() was called outside the construction of a provider.',
  TONI_ERR_INVALID_PROVIDER: 'A provider definition has an unsupported shape.',
  TONI_ERR_INVALID_MODULE: 'Something used as a module is not a class decorated with @Module or a dynamic module.',
  TONI_ERR_INVALID_EXPORT: 'A module exports a token it neither provides nor imports.',
  TONI_ERR_INVALID_CONTROLLER: 'A class listed in `controllers` is not decorated with @Controller.',
  TONI_ERR_DUPLICATE_ROUTE: 'Two handlers are registered for the same method and path.',
  TONI_ERR_INVALID_ROUTE: 'A route path cannot be parsed.',
  TONI_ERR_INVALID_OPTION: 'An option has a value outside its allowed range.',
  TONI_ERR_APP_STATE: 'An application method was called in a state that does not allow it.',
  TONI_ERR_INVALID_GATEWAY: 'A gateway has an invalid path or port.',
  TONI_ERR_DUPLICATE_GATEWAY: 'Two gateways serve the same path.',
  TONI_ERR_DUPLICATE_EVENT: 'Two @On handlers of one gateway handle the same event.',
  TONI_ERR_WS_ADAPTER: 'The WebSocket adapter cannot work with this application.',
  TONI_ERR_INVALID_PIPELINE: 'A guard, interceptor, exception filter or middleware is not what its role needs.',
  TONI_ERR_LISTEN_FAILED: 'The HTTP server could not listen on the requested address.',
} as const;

/** A stable, documented error code. */
export type ToniErrorCode = keyof typeof ERROR_CODES;

/**
 * The error toni throws for mistakes in an application's setup. `code` is stable across
 * versions and documented in `docs/error-codes.md`; `message` says what went wrong and what to do.
 *
 * @example
 * try { await ToniFactory.create(AppModule); }
 * catch (error) { if (error instanceof ToniError && error.code === 'TONI_ERR_UNKNOWN_PROVIDER') … }
 */
export class ToniError extends Error {
  override readonly name = 'ToniError';
  readonly code: ToniErrorCode;

  constructor(code: ToniErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
