import type { AbstractClass } from '../di/token.js';
import { HttpException } from '../http/http-exception.js';
import type { Logger } from '../logger.js';
import { type Chain, filterFor, runGuards, runInterceptors } from '../pipeline/chain.js';
import { EventExecution } from '../pipeline/execution-context.js';
import { type ValidationOutcome, validate } from '../pipeline/validation.js';
import type { WsClient } from './client.js';
import { type EnvelopeId, type EnvelopeLimits, type ReadEnvelope, ackEnvelope, errorEnvelope, readEnvelope } from './envelope.js';
import type { BoundEventHandler } from './events.js';
import { WsMessage } from './message.js';
import { WsException } from './ws-exception.js';

/** The side of a session the router answers through. */
export interface EventSession {
  readonly client: WsClient;
  send(message: WsMessage): boolean;
}

/** What a router needs to know of its gateway. */
export interface EventRouterOptions {
  /** The gateway's class name, for logs. */
  readonly name: string;
  readonly path: string;
  readonly handlers: ReadonlyMap<string, BoundEventHandler>;
  /** The gateway's `onMessage`, for frames that are not event envelopes. */
  readonly onMessage: ((client: WsClient, message: WsMessage) => unknown) | undefined;
  readonly limits: EnvelopeLimits;
  readonly logger: Logger;
  /** The gateway's class, for execution contexts. */
  readonly type?: AbstractClass<unknown>;
  /** Guards, interceptors and filters by event, for the handlers that have any. */
  readonly chains?: ReadonlyMap<string, Chain>;
}

/**
 * Routes the frames of a gateway with `@On` handlers: an event envelope to its handler (after
 * validating its payload), the handler's result back as the acknowledgement, any failure back
 * as an error — never a closed connection. Other frames go to `onMessage`, or are answered with
 * `invalid_message`. Synchronous all the way when handler and schema are: no promise per event.
 */
export class EventRouter {
  readonly #options: EventRouterOptions;
  /** Undefined when no handler has a chain: the dispatch of every event then skips the lookup. */
  readonly #chains: ReadonlyMap<string, Chain> | undefined;

  constructor(options: EventRouterOptions) {
    this.#options = options;
    this.#chains = options.chains !== undefined && options.chains.size > 0 ? options.chains : undefined;
  }

  /**
   * Handles one frame. Returns a promise while it is still being handled (it never rejects for
   * an event; it may for `onMessage`, whose errors the session logs), anything else when done.
   */
  handle(session: EventSession, message: WsMessage): unknown {
    const text = message.asText();
    if (text === undefined) return this.#notAnEvent(session, message, 'binary frames');
    const envelope = readEnvelope(text, this.#options.limits);
    switch (envelope.kind) {
      case 'event':
        return this.#dispatch(session, envelope);
      case 'other':
        return this.#notAnEvent(session, message, 'text frames that are not JSON event envelopes');
      case 'invalid':
        this.#reply(session, envelope.id, undefined, new WsException('invalid_message', `Invalid event envelope: ${envelope.reason}`));
        return undefined;
      case 'ack':
        this.#lateAck(session, envelope.id);
        return undefined;
    }
  }

  /** An acknowledgement that matches no pending request (it came too late, or was never asked for). */
  #lateAck(session: EventSession, id: EnvelopeId): void {
    this.#options.logger.debug({ clientId: session.client.id, gateway: this.#options.name, id }, `Dropped an acknowledgement for id ${JSON.stringify(id)}, which no request of the server awaits`);
  }

  #notAnEvent(session: EventSession, message: WsMessage, what: string): unknown {
    const { onMessage, path } = this.#options;
    if (onMessage !== undefined) return onMessage(session.client, message);
    this.#reply(session, undefined, undefined, new WsException('invalid_message', `The gateway at ${path} accepts JSON event envelopes ({"event":"name","data":…}), not ${what}`));
    return undefined;
  }

  #dispatch(session: EventSession, envelope: Extract<ReadEnvelope, { kind: 'event' }>): unknown {
    const { event, data, id } = envelope;
    const handler = this.#options.handlers.get(event);
    if (handler === undefined) {
      this.#reply(session, id, event, new WsException('unknown_event', `No handler for event "${event}" on ${this.#options.path}`));
      return undefined;
    }
    const chain = this.#chains?.get(event);
    if (chain !== undefined) return this.#dispatchChained(session, handler, chain, data, id);
    if (handler.payload === undefined) return this.#invoke(session, handler, data, id);
    let outcome: ValidationOutcome | Promise<ValidationOutcome>;
    try {
      outcome = validate(handler.payload, data);
    } catch (error) {
      this.#fail(session, handler, id, error);
      return undefined;
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (settled) => this.#afterValidation(session, handler, id, settled),
        (error: unknown) => this.#fail(session, handler, id, error),
      );
    }
    return this.#afterValidation(session, handler, id, outcome);
  }

  #afterValidation(session: EventSession, handler: BoundEventHandler, id: EnvelopeId | undefined, outcome: ValidationOutcome): unknown {
    if (!outcome.ok) {
      this.#reply(session, id, handler.event, new WsException('invalid_payload', `The data of event "${handler.event}" is invalid`, { issues: outcome.issues }));
      return undefined;
    }
    return this.#invoke(session, handler, outcome.value, id);
  }

  #invoke(session: EventSession, handler: BoundEventHandler, data: unknown, id: EnvelopeId | undefined): unknown {
    let result: unknown;
    try {
      result = handler.invoke(session.client, data);
    } catch (error) {
      this.#fail(session, handler, id, error);
      return undefined;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => this.#acknowledge(session, handler, id, value),
        (error: unknown) => this.#fail(session, handler, id, error),
      );
    }
    this.#acknowledge(session, handler, id, result);
    return undefined;
  }

  /**
   * An event whose handler has guards, interceptors or filters: guards → interceptors →
   * validation → handler, and filters for whatever fails. Synchronous up to the guards' verdict
   * when they are.
   */
  #dispatchChained(session: EventSession, handler: BoundEventHandler, chain: Chain, data: unknown, id: EnvelopeId | undefined): unknown {
    const ctx = new EventExecution(session.client, handler.event, data, this.#options.type ?? Object, handler.method);
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = runGuards(chain.guards, ctx);
    } catch (error) {
      return this.#filter(session, handler, chain, ctx, id, error);
    }
    if (verdict instanceof Promise) {
      return verdict.then(
        (allowed) => this.#afterGuards(session, handler, chain, ctx, id, allowed),
        (error: unknown) => this.#filter(session, handler, chain, ctx, id, error),
      );
    }
    return this.#afterGuards(session, handler, chain, ctx, id, verdict);
  }

  #afterGuards(session: EventSession, handler: BoundEventHandler, chain: Chain, ctx: EventExecution, id: EnvelopeId | undefined, allowed: boolean): unknown {
    if (!allowed) return this.#filter(session, handler, chain, ctx, id, new WsException('forbidden', `The event "${handler.event}" was refused`));
    const produce = () => this.#produce(session, handler, ctx.data);
    const result = chain.interceptors.length === 0 ? produce() : runInterceptors(chain.interceptors, ctx, produce);
    return result.then(
      (value: unknown) => this.#acknowledge(session, handler, id, value),
      (error: unknown) => this.#filter(session, handler, chain, ctx, id, error),
    );
  }

  /** Validation and the handler, as a promise of the acknowledgement: what interceptors wrap. */
  async #produce(session: EventSession, handler: BoundEventHandler, data: unknown): Promise<unknown> {
    let value = data;
    if (handler.payload !== undefined) {
      const outcome = await validate(handler.payload, data);
      if (!outcome.ok) throw new WsException('invalid_payload', `The data of event "${handler.event}" is invalid`, { issues: outcome.issues });
      value = outcome.value;
    }
    return handler.invoke(session.client, value);
  }

  /** The first filter that handles `error` answers instead (a value acknowledges, an error replies); without one, the error is answered as usual. */
  #filter(session: EventSession, handler: BoundEventHandler, chain: Chain, ctx: EventExecution, id: EnvelopeId | undefined, error: unknown): unknown {
    const entry = filterFor(chain.filters, error);
    if (entry === undefined) {
      this.#fail(session, handler, id, error);
      return undefined;
    }
    let result: unknown;
    try {
      result = entry.filter.catch(error, ctx);
    } catch (failure) {
      this.#fail(session, handler, id, failure);
      return undefined;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => this.#filtered(session, handler, id, value),
        (failure: unknown) => this.#fail(session, handler, id, failure),
      );
    }
    this.#filtered(session, handler, id, result);
    return undefined;
  }

  #filtered(session: EventSession, handler: BoundEventHandler, id: EnvelopeId | undefined, value: unknown): void {
    if (value instanceof Error) this.#fail(session, handler, id, value);
    else this.#acknowledge(session, handler, id, value);
  }

  #acknowledge(session: EventSession, handler: BoundEventHandler, id: EnvelopeId | undefined, value: unknown): void {
    if (id === undefined) return;
    let text: string;
    try {
      text = ackEnvelope(id, value);
    } catch (error) {
      this.#fail(session, handler, id, error, `${handler.name} returned an acknowledgement that cannot be sent as JSON`);
      return;
    }
    session.send(WsMessage.text(text));
  }

  #fail(session: EventSession, handler: BoundEventHandler, id: EnvelopeId | undefined, error: unknown, logMessage?: string): void {
    if (error instanceof WsException) {
      this.#reply(session, id, handler.event, error);
      return;
    }
    if (error instanceof HttpException && error.status < 500) {
      this.#reply(session, id, handler.event, new WsException(codeOfStatus(error.status), error.message, { status: error.status }));
      return;
    }
    const clientId = session.client.id;
    this.#options.logger.error(
      { err: error, clientId, gateway: this.#options.name, event: handler.event, handler: handler.name },
      logMessage ?? `${handler.name} threw for event "${handler.event}" of client ${clientId}`,
    );
    // The message stays in the log: it may say more than a client should know.
    this.#reply(session, id, handler.event, new WsException('internal', 'Internal server error'));
  }

  #reply(session: EventSession, id: EnvelopeId | undefined, event: string | undefined, error: WsException): void {
    let text: string;
    try {
      text = errorEnvelope(id, error.toJSON(), event);
    } catch (failure) {
      this.#options.logger.error({ err: failure, clientId: session.client.id, gateway: this.#options.name, code: error.code }, `The details of WsException "${error.code}" cannot be sent as JSON`);
      text = errorEnvelope(id, { code: error.code, message: error.message }, event);
    }
    session.send(WsMessage.text(text));
  }
}

/** `403` → `forbidden`, `404` → `not_found`: an HTTP status as an event error code. */
function codeOfStatus(status: number): string {
  return STATUS_CODES[status] ?? `http_${status}`;
}

const STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 410: 'gone',
  413: 'too_large', 422: 'unprocessable', 429: 'too_many_requests',
};
