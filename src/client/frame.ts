/** A server frame as the client reads it (docs/events.md, "The wire format"). */
export type Frame =
  | { readonly kind: 'event'; readonly event: string; readonly data: unknown; readonly id: number | string | undefined }
  | { readonly kind: 'ack'; readonly id: number | string; readonly data: unknown; readonly error: unknown }
  /**
   * A `tonijs.v1` control frame: the heartbeat's answer `{"pong":n}`, or the server's
   * `{"welcome":{"id":…,"recovered":…}}` once its gateway's onConnect has run.
   */
  | { readonly kind: 'control' }
  /** Not an envelope: for `onRaw`. */
  | { readonly kind: 'raw' };

const CONTROL: Frame = { kind: 'control' };
const RAW: Frame = { kind: 'raw' };

/** Reads a text frame from the server. Never throws. */
export function readFrame(text: string): Frame {
  if (text.startsWith('{"pong":') || text.startsWith('{"welcome":')) return CONTROL;
  // tonijs writes envelopes without leading whitespace.
  if (text.charCodeAt(0) !== 0x7b) return RAW;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return RAW;
  }
  const { event, id, data, error } = value as { event?: unknown; id?: unknown; data?: unknown; error?: unknown };
  const hasId = typeof id === 'number' || typeof id === 'string';
  if (typeof event === 'string' && event !== '') return { kind: 'event', event, data, id: hasId ? id : undefined };
  if (hasId && event === undefined && (data !== undefined || error !== undefined || Object.keys(value as object).length === 1)) return { kind: 'ack', id, data, error };
  return RAW;
}
