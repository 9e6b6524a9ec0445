/** A server frame as the client reads it (docs/events.md, "The wire format"). */
/** Where a kept event is in its stream (a room, or `''` for the broadcasts to everyone). */
export interface StreamPosition {
  readonly room: string;
  readonly offset: number;
  readonly epoch: string;
}

/** A kept event's place: its epoch only when it is not the one the socket was last told. */
export interface EventPosition {
  readonly room: string;
  readonly offset: number;
  readonly epoch: string | undefined;
}

export type Frame =
  | { readonly kind: 'event'; readonly event: string; readonly data: unknown; readonly id: number | string | undefined; readonly position: EventPosition | undefined }
  | { readonly kind: 'ack'; readonly id: number | string; readonly data: unknown; readonly error: unknown }
  /**
   * A `tonijs.v1` control frame: the heartbeat's answer `{"pong":n}`, or the server's
   * `{"welcome":{"id":…,"recovered":…}}` once its gateway's onConnect has run.
   */
  | { readonly kind: 'control' }
  /**
   * Where the socket starts in a stream it now follows (it joined a room), with `recovered` when
   * it had asked to resume there; or that it stopped following one.
   */
  | { readonly kind: 'position'; readonly position: StreamPosition; readonly recovered: boolean | undefined }
  | { readonly kind: 'left'; readonly room: string }
  /** The server's welcome: the connection's id, and whether what the socket missed was replayed. */
  | { readonly kind: 'welcome'; readonly id: string; readonly recovered: boolean }
  /** Not an envelope: for `onRaw`. */
  | { readonly kind: 'raw' };

const CONTROL: Frame = { kind: 'control' };
const RAW: Frame = { kind: 'raw' };

/** Reads a text frame from the server. Never throws. */
export function readFrame(text: string): Frame {
  if (text.startsWith('{"pong":')) return CONTROL;
  if (text.startsWith('{"welcome":')) return welcomeOf(text);
  if (text.startsWith('{"position":') || text.startsWith('{"left":')) return streamControlOf(text);
  // tonijs writes envelopes without leading whitespace.
  if (text.charCodeAt(0) !== 0x7b) return RAW;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return RAW;
  }
  const { event, id, data, error, room, offset, epoch } = value as { event?: unknown; id?: unknown; data?: unknown; error?: unknown; room?: unknown; offset?: unknown; epoch?: unknown };
  const hasId = typeof id === 'number' || typeof id === 'string';
  if (typeof event === 'string' && event !== '') {
    const position = typeof room === 'string' && typeof offset === 'number' && (epoch === undefined || typeof epoch === 'string') ? { room, offset, epoch } : undefined;
    return { kind: 'event', event, data, id: hasId ? id : undefined, position };
  }
  if (hasId && event === undefined && (data !== undefined || error !== undefined || Object.keys(value as object).length === 1)) return { kind: 'ack', id, data, error };
  return RAW;
}

function welcomeOf(text: string): Frame {
  try {
    const { welcome } = JSON.parse(text) as { welcome?: { id?: unknown; recovered?: unknown } };
    if (typeof welcome?.id === 'string') return { kind: 'welcome', id: welcome.id, recovered: welcome.recovered === true };
  } catch {
    // Not a welcome after all: nothing to learn from it.
  }
  return CONTROL;
}

function streamControlOf(text: string): Frame {
  try {
    const { position, left } = JSON.parse(text) as { position?: { room?: unknown; epoch?: unknown; offset?: unknown; recovered?: unknown }; left?: unknown };
    if (typeof left === 'string') return { kind: 'left', room: left };
    if (position !== undefined && typeof position.room === 'string' && typeof position.epoch === 'string' && typeof position.offset === 'number') {
      const recovered = typeof position.recovered === 'boolean' ? position.recovered : undefined;
      return { kind: 'position', position: { room: position.room, epoch: position.epoch, offset: position.offset }, recovered };
    }
  } catch {
    // Not tonijs's: nothing to learn from it.
  }
  return CONTROL;
}
