/**
 * A WebSocket gateway: a provider with a `path` and an `onMessage` method. Full typing of
 * its hooks arrives with the WebSocket adapter.
 */
export interface GatewayShape {
  readonly path: string;
  onMessage(...args: never[]): unknown;
}

/** True for a provider instance that is a gateway: a string `path` and an `onMessage` method. */
export function isGateway(instance: unknown): instance is GatewayShape {
  return (
    typeof instance === 'object' &&
    instance !== null &&
    typeof (instance as { path?: unknown }).path === 'string' &&
    typeof (instance as { onMessage?: unknown }).onMessage === 'function'
  );
}
