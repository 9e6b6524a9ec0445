/**
 * The types that let one declaration type both ends of a gateway's events.
 *
 * An event map has two sides, each a set of method signatures `name(data): Ack`:
 * `client` lists what clients send (the gateway's `@On` handlers; the return type is the
 * acknowledgement), `server` what the server sends with `emit` or asks with `request` (the return
 * type is the client's answer). A side that is left out has no events.
 *
 * @example
 * export interface ChatEvents {
 *   client: {
 *     join(room: string): { joined: string };
 *     send(data: { room: string; text: string }): { delivered: boolean };
 *     typing(data: { room: string }): void;
 *   };
 *   server: {
 *     message(data: { from: string; text: string }): void;
 *     confirm(question: string): boolean;
 *   };
 * }
 */
export interface EventMap {
  client?: object;
  server?: object;
}

/** The map of an untyped gateway or client: any event name, any data. */
export interface AnyEvents {
  client: Record<string, (data: unknown) => unknown>;
  server: Record<string, (data: unknown) => unknown>;
}

/** Which end sends an event: `client` events are handled by `@On`, `server` events by the client's `on`. */
export type EventSide = 'client' | 'server';

/**
 * The events of one side of `E`. `EventMap` itself (what TypeScript infers for a generic class
 * passed as a value, e.g. `inject(BroadcastService)`) is untyped, as `AnyEvents` is.
 */
export type EventsOf<E, S extends EventSide> = [EventMap] extends [E]
  ? AnyEvents[S]
  : E extends { readonly [K in S]: infer M }
    ? M extends object ? M : never
    : {};

/** The event names of one side of `E`. */
export type EventName<E, S extends EventSide> = keyof EventsOf<E, S> & string;

/** The data an event carries: its signature's parameter (`undefined` for none). */
export type EventData<E, S extends EventSide, K extends EventName<E, S>> = EventsOf<E, S>[K] extends (...args: infer A) => unknown
  ? A extends readonly [] ? undefined : A[0]
  : never;

/** The acknowledgement (answer) to an event: its signature's return type, awaited. */
export type EventAck<E, S extends EventSide, K extends EventName<E, S>> = EventsOf<E, S>[K] extends (...args: never) => infer R ? Awaited<R> : never;

/** The arguments after the event name: the data, optional when the event takes none. */
export type EventArgs<E, S extends EventSide, K extends EventName<E, S>> = undefined extends EventData<E, S, K>
  ? [data?: EventData<E, S, K>]
  : [data: EventData<E, S, K>];
