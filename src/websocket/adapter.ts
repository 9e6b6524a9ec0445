import type { HttpAdapter, ListenAddress } from '../http/adapter.js';
import type { Logger } from '../logger.js';
import type { GatewayChains } from '../pipeline/chain.js';

/** What the application hands a WebSocket adapter when it starts listening. */
export interface WebSocketBinding {
  /** The HTTP adapter whose server the WebSocket adapter shares. */
  readonly http: HttpAdapter;
  /** Where the HTTP adapter listens; gateways on their own port use the same host. */
  readonly address: ListenAddress;
  /** Every provider instance of the application; the adapter picks the gateways among them. */
  readonly instances: readonly unknown[];
  readonly logger: Logger;
  /** The guards, interceptors and filters of each gateway (global ones included), for the gateway host. */
  readonly pipeline?: GatewayChains;
}

/**
 * A WebSocket server implementation that `app.useWebSocketAdapter()` accepts.
 * `WsAdapter` (in `tonijs/node`) implements it on the `ws` library.
 */
export interface WebSocketAdapter {
  /** Starts accepting upgrades, once the HTTP adapter listens. */
  bind(binding: WebSocketBinding): Promise<void>;
  /** Closes every connection with 1001 and waits for the gateways' `onDisconnect` hooks. */
  close(): Promise<void>;
}
