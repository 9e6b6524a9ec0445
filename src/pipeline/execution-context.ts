import type { AbstractClass } from '../di/token.js';
import type { HttpContext } from '../http/context.js';
import type { WsClient } from '../websocket/client.js';
import type { WsHandshake } from '../websocket/handshake.js';
import type { MetadataToken } from '../websocket/metadata.js';

/** What kind of call a guard, interceptor or filter sees. */
export type ExecutionKind = 'http' | 'handshake' | 'event';

/** What every execution context has, whatever its kind. */
export interface ExecutionContextBase {
  readonly kind: ExecutionKind;
  /** The request's headers: the HTTP request's, or the handshake's (for events too). */
  readonly headers: Headers;
  /** The controller or gateway class that handles the call. */
  readonly class: AbstractClass<unknown>;
  /** The route or `@On` method that will handle the call; `undefined` at a handshake. */
  readonly handler: Function | undefined;
  /**
   * Passes a typed value on to the handler: on HTTP, `ctx.get(key)` in the handler; at a
   * handshake or an event, the client's metadata (`client.getMetadata(key)`), kept for the connection.
   */
  set<T>(key: MetadataToken<T>, value: T): void;
  /** A value set by `set` (or, on a gateway, the client's metadata). */
  get<T>(key: MetadataToken<T>): T | undefined;
}

/** An HTTP request to a route. */
export interface HttpExecutionContext extends ExecutionContextBase {
  readonly kind: 'http';
  readonly http: HttpContext;
  readonly handler: Function;
}

/** A WebSocket upgrade request to a gateway, before `onHandshake`. */
export interface HandshakeExecutionContext extends ExecutionContextBase {
  readonly kind: 'handshake';
  readonly handshake: WsHandshake;
  readonly handler: undefined;
}

/** A gateway event, before its payload is validated. */
export interface EventExecutionContext extends ExecutionContextBase {
  readonly kind: 'event';
  readonly client: WsClient;
  readonly handshake: WsHandshake;
  /** The event's name. */
  readonly event: string;
  /** The event's data as the client sent it (not yet validated). */
  readonly data: unknown;
  readonly handler: Function;
}

/**
 * The call a guard, interceptor or exception filter runs for; narrow it on `kind`.
 *
 * @example
 * canActivate(ctx: ExecutionContext) {
 *   if (ctx.kind === 'event' && ctx.event === 'delete') return ctx.get(User)?.admin === true;
 *   return ctx.headers.has('authorization');
 * }
 */
export type ExecutionContext = HttpExecutionContext | HandshakeExecutionContext | EventExecutionContext;

/** What the HTTP side gives its execution context: the request's own value store. */
export interface ValueStore {
  readonly headers: Headers;
  set<T>(key: MetadataToken<T>, value: T): void;
  get<T>(key: MetadataToken<T>): T | undefined;
}

/** @internal the execution context of an HTTP route call */
export class HttpExecution implements HttpExecutionContext {
  readonly kind = 'http';
  readonly http: HttpContext & ValueStore;
  readonly class: AbstractClass<unknown>;
  readonly handler: Function;

  constructor(http: HttpContext & ValueStore, type: AbstractClass<unknown>, handler: Function) {
    this.http = http;
    this.class = type;
    this.handler = handler;
  }

  get headers(): Headers { return this.http.headers; }
  set<T>(key: MetadataToken<T>, value: T): void { this.http.set(key, value); }
  get<T>(key: MetadataToken<T>): T | undefined { return this.http.get(key); }
}

/** @internal the execution context of a handshake */
export class HandshakeExecution implements HandshakeExecutionContext {
  readonly kind = 'handshake';
  readonly handshake: WsHandshake;
  readonly class: AbstractClass<unknown>;
  readonly handler = undefined;

  constructor(handshake: WsHandshake, type: AbstractClass<unknown>) {
    this.handshake = handshake;
    this.class = type;
  }

  get headers(): Headers { return this.handshake.headers; }
  set<T>(key: MetadataToken<T>, value: T): void { this.handshake.setMetadata(key, value); }
  get<T>(key: MetadataToken<T>): T | undefined { return this.handshake.getMetadata(key); }
}

/** @internal the execution context of a gateway event */
export class EventExecution implements EventExecutionContext {
  readonly kind = 'event';
  readonly client: WsClient;
  readonly event: string;
  readonly data: unknown;
  readonly class: AbstractClass<unknown>;
  readonly handler: Function;

  constructor(client: WsClient, event: string, data: unknown, type: AbstractClass<unknown>, handler: Function) {
    this.client = client;
    this.event = event;
    this.data = data;
    this.class = type;
    this.handler = handler;
  }

  get handshake(): WsHandshake { return this.client.handshake; }
  get headers(): Headers { return this.client.handshake.headers; }
  set<T>(key: MetadataToken<T>, value: T): void { this.client.handshake.setMetadata(key, value); }
  get<T>(key: MetadataToken<T>): T | undefined { return this.client.handshake.getMetadata(key); }
}
