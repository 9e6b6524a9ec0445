import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ToniError } from '../errors.js';
import { isStandardSchema } from '../pipeline/validation.js';
import type { WsClient } from './client.js';
import type { AnyEvents, EventAck, EventData, EventName } from './event-map.js';

/** Options of `@On`. */
export interface OnOptions<TSchema extends StandardSchemaV1 | undefined = undefined> {
  /**
   * A Standard Schema (zod, valibot, arktype, …) the event's data must satisfy. A failure is
   * answered with error `invalid_payload` and the validator's `issues`; the handler never runs
   * and sees the schema's output otherwise.
   */
  payload?: TSchema;
}

/** An `@On` handler as declared on a method. */
export interface EventHandlerMetadata {
  readonly event: string;
  readonly payload: StandardSchemaV1 | undefined;
  readonly propertyKey: string | symbol;
}

/** A handler method: `(client, data)`, its result the acknowledgement. */
type HandlerMethod<This> = (this: This, client: never, data: never) => unknown;

type ClientParam<M> = M extends (client: infer C, ...rest: never) => unknown ? C : never;
type DataParam<M> = M extends (client: never, data: infer D) => unknown ? D : M extends (client: never) => unknown ? unknown : never;
type EventsOfHandler<M> = ClientParam<M> extends WsClient<infer E> ? E : AnyEvents;
type ResultOf<M> = M extends (...args: never) => infer R ? Awaited<R> : never;

/** A compile error that names what is wrong with an `@On` handler. */
interface HandlerError<Message extends string> {
  readonly 'tonijs: this @On handler does not fit': Message;
}

type Check<Ok extends boolean, Message extends string> = Ok extends true ? unknown : HandlerError<Message>;
type Accepts<Param, Value> = [Value] extends [Param] ? true : false;

/** The schema's output must fit the handler's data parameter. */
type SchemaCheck<M, S> = S extends StandardSchemaV1
  ? Check<Accepts<DataParam<M>, StandardSchemaV1.InferOutput<S>>, "the data parameter does not accept the payload schema's output">
  : unknown;

/** With a typed client (`client: WsClient<Events>`), the event must be one of the map's and the handler must fit its signature. */
type MapCheck<M, K extends string, S, E = EventsOfHandler<M>> = [E] extends [AnyEvents]
  ? unknown
  : K extends EventName<E, 'client'>
    ? (S extends StandardSchemaV1
        ? Check<Accepts<StandardSchemaV1.InferInput<S>, EventData<E, 'client', K>>, `the payload schema does not accept the data the event map gives "${K}"`>
        : Check<Accepts<DataParam<M>, EventData<E, 'client', K>>, `the data parameter does not accept the data the event map gives "${K}"`>) &
      (EventAck<E, 'client', K> extends void | undefined
        ? unknown
        : Check<Accepts<EventAck<E, 'client', K>, ResultOf<M>>, `the return value is not the acknowledgement the event map gives "${K}"`>)
    : HandlerError<`"${K}" is not a client event of the event map`>;

/** The decorator `@On` returns: it checks the method it decorates at compile time. */
export type OnDecorator<K extends string, S> = <This, M extends HandlerMethod<This>>(
  target: M & SchemaCheck<M, S> & MapCheck<M, K, S>,
  context: ClassMethodDecoratorContext<This>,
) => void;

const handlers = new WeakMap<Function, EventHandlerMetadata[]>();

/**
 * Handles the client event `event` on a gateway: the method receives `(client, data)` and its
 * return value (or resolved promise) is the acknowledgement, sent when the client asked for one.
 * Events of one client are handled one at a time, in arrival order.
 *
 * Type the client parameter with your event map (`client: WsClient<ChatEvents>`) and `tsc`
 * checks the event name, the data and the acknowledgement against it.
 *
 * @example
 * @On('join')
 * async join(client: WsClient, room: string) {
 *   await client.join(room);
 *   return { joined: room };
 * }
 *
 * @On('send', { payload: Send })                       // any Standard Schema validator
 * async send(client: WsClient, data: z.output<typeof Send>) { … }
 */
export function On<K extends string, S extends StandardSchemaV1 | undefined = undefined>(event: K, options: OnOptions<S> = {}): OnDecorator<K, S> {
  if (typeof event !== 'string' || event.length === 0) throw new TypeError(`@On() needs a non-empty event name, got ${JSON.stringify(event)}`);
  const payload = options.payload;
  if (payload !== undefined && !isStandardSchema(payload)) {
    throw new TypeError(`@On('${event}') payload must be a Standard Schema (zod, valibot, arktype, …)`);
  }
  const decorate = (target: Function, context: ClassMethodDecoratorContext): void => {
    if (context.kind !== 'method') throw new TypeError(`@On('${event}') decorates methods only`);
    const list = handlers.get(target) ?? [];
    list.push({ event, payload, propertyKey: context.name });
    handlers.set(target, list);
  };
  return decorate as OnDecorator<K, S>;
}

/** A gateway's `@On` handler, bound to the gateway. */
export interface BoundEventHandler {
  readonly event: string;
  /** `Gateway.method`, for logs. */
  readonly name: string;
  readonly payload: StandardSchemaV1 | undefined;
  /** The decorated method, for guards, interceptors and filters (`ctx.handler`). */
  readonly method: Function;
  readonly invoke: (client: WsClient, data: unknown) => unknown;
}

/**
 * The `@On` handlers of a gateway instance (inherited ones included, an override winning), by
 * event; undefined when it has none. Two handlers for one event are a startup error.
 */
export function getEventHandlers(instance: object): Map<string, BoundEventHandler> | undefined {
  let found: Map<string, BoundEventHandler> | undefined;
  const seen = new Set<string | symbol>();
  const className = instance.constructor.name;
  for (let proto = Object.getPrototypeOf(instance); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Reflect.ownKeys(proto)) {
      if (seen.has(key) || key === 'constructor') continue;
      seen.add(key);
      const method: unknown = Object.getOwnPropertyDescriptor(proto, key)?.value;
      if (typeof method !== 'function') continue;
      for (const metadata of handlers.get(method) ?? []) {
        const name = `${className}.${String(metadata.propertyKey)}`;
        const existing = found?.get(metadata.event);
        if (existing !== undefined) {
          throw new ToniError('TONI_ERR_DUPLICATE_EVENT', `Two handlers on ${className} handle the event "${metadata.event}": ${existing.name} and ${name}. Remove one, or give it another event name.`);
        }
        (found ??= new Map<string, BoundEventHandler>()).set(metadata.event, {
          event: metadata.event,
          name,
          payload: metadata.payload,
          method: method as Function,
          invoke: (client, data) => (method as (client: WsClient, data: unknown) => unknown).call(instance, client, data),
        });
      }
    }
  }
  return found;
}
