/**
 * The JSON envelope of gateway events (docs/events.md): text frames, one JSON object each.
 *
 *   client → server   {"event":"send","data":…,"id":1}     id only when an acknowledgement is wanted
 *   acknowledgement   {"id":1,"data":…}  or  {"id":1,"error":{"code":"…","message":"…",…}}
 *   server → client   {"event":"message","data":…}        and, for a request, "id" too
 *   failure, no id    {"event":"error","data":{"code":"…","message":"…","event":"send"}}
 */
import { hasPoisonedKey, nestsDeeperThan } from '../pipeline/json.js';

/** An id an acknowledgement refers to: a number or a string the asker chose. */
export type EnvelopeId = number | string;

/** Limits on what is parsed as an envelope. */
export interface EnvelopeLimits {
  /** Longest frame, in characters, parsed as an envelope. */
  readonly maxSize: number;
  /** Deepest nesting of arrays and objects. */
  readonly maxDepth: number;
}

/** What a text frame is, as the event layer reads it. */
export type ReadEnvelope =
  | { readonly kind: 'event'; readonly event: string; readonly data: unknown; readonly id: EnvelopeId | undefined }
  | { readonly kind: 'ack'; readonly id: EnvelopeId; readonly data: unknown; readonly error: unknown }
  /** Not an envelope at all: for `onMessage`. */
  | { readonly kind: 'other' }
  /** Meant as an envelope but unusable: answered with `invalid_message` (to `id` when one was readable). */
  | { readonly kind: 'invalid'; readonly reason: string; readonly id: EnvelopeId | undefined };

const OTHER: ReadEnvelope = Object.freeze({ kind: 'other' });
const MAX_ID_LENGTH = 128;

/** Reads a text frame. Never throws. */
export function readEnvelope(text: string, limits: EnvelopeLimits): ReadEnvelope {
  if (!startsLikeObject(text)) return OTHER;
  if (text.length > limits.maxSize) return invalid(`an event envelope is limited to ${limits.maxSize} characters (maxEventSize), this one has ${text.length}`);
  if (nestsDeeperThan(text, limits.maxDepth)) return invalid(`an event envelope may nest objects and arrays ${limits.maxDepth} levels deep (maxEventDepth)`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return OTHER;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return OTHER;
  const envelope = value as { event?: unknown; id?: unknown; data?: unknown; error?: unknown };
  const hasId = Object.hasOwn(envelope, 'id');
  const id = hasId ? readId(envelope.id) : undefined;
  if (hasId && id === undefined) return invalid(`"id" must be a finite number or a string of at most ${MAX_ID_LENGTH} characters`);
  if (hasPoisonedKey(text, value)) return invalid('"__proto__" and "constructor.prototype" keys are not accepted', id);
  if (Object.hasOwn(envelope, 'event')) {
    if (typeof envelope.event !== 'string' || envelope.event.length === 0) return invalid('"event" must be a non-empty string', id);
    return { kind: 'event', event: envelope.event, data: envelope.data, id };
  }
  if (id !== undefined && (Object.hasOwn(envelope, 'data') || Object.hasOwn(envelope, 'error'))) {
    return { kind: 'ack', id, data: envelope.data, error: envelope.error };
  }
  return OTHER;
}

/** `{"event":…,"data":…}` (and `"id"` for a request). Throws a TypeError for data JSON cannot carry. */
export function eventEnvelope(event: string, data: unknown, id?: EnvelopeId): string {
  const head = id === undefined ? `{"event":${JSON.stringify(event)}` : `{"event":${JSON.stringify(event)},"id":${JSON.stringify(id)}`;
  return data === undefined ? `${head}}` : `${head},"data":${serialize(data, `the data of event "${event}"`)}}`;
}

/** `{"id":…,"data":…}`. Throws a TypeError for data JSON cannot carry. */
export function ackEnvelope(id: EnvelopeId, data: unknown): string {
  return data === undefined ? `{"id":${JSON.stringify(id)}}` : `{"id":${JSON.stringify(id)},"data":${serialize(data, 'the acknowledgement')}}`;
}

/** `{"id":…,"error":…}`, or the `error` event when the failed event carried no id. */
export function errorEnvelope(id: EnvelopeId | undefined, error: { code: string; message: string }, event: string | undefined): string {
  if (id !== undefined) return `{"id":${JSON.stringify(id)},"error":${JSON.stringify(error)}}`;
  return `{"event":"error","data":${JSON.stringify(event === undefined ? error : { ...error, event })}}`;
}

/** True for a non-empty string `event` name, as emit needs. */
export function assertEventName(event: unknown): asserts event is string {
  if (typeof event !== 'string' || event.length === 0) throw new TypeError(`An event name must be a non-empty string, got ${JSON.stringify(event)}`);
}

function serialize(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${what} cannot be sent as JSON: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) throw new TypeError(`${what} cannot be sent as JSON: it is a ${typeof value}`);
  return text;
}

function readId(value: unknown): EnvelopeId | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string') return value.length <= MAX_ID_LENGTH ? value : undefined;
  return undefined;
}

function invalid(reason: string, id?: EnvelopeId): ReadEnvelope {
  return { kind: 'invalid', reason, id };
}

function startsLikeObject(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x7b) return true;
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return false;
  }
  return false;
}
