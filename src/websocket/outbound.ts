/**
 * Outbound batching: every frame a connection is sent within one event-loop turn is written to
 * its socket in one go when the turn ends (one syscall per client per turn, however many
 * messages). Consecutive broadcasts to the same recipients share one `Segment`: appending a
 * frame to it costs O(1) instead of O(clients), and its bytes are joined once for all of them.
 */

/** Where a connection's bytes go: the adapter's raw socket. */
export interface FrameSink {
  write(chunk: Uint8Array): unknown;
  cork(): void;
  uncork(): void;
  /** Bytes accepted by `write` and not yet handed to the operating system. */
  readonly writableLength: number;
}

/** What an outbound queue reports to its connection. */
export interface OutboundOwner {
  /** Whether frames can still be written. */
  readonly isOpen: boolean;
  /** Buffered bytes passed the limit: the queue was dropped; close the connection. */
  onSlowConsumer(bufferedBytes: number): void;
}

/** Frames broadcast to the same recipients in a row, shared by all their queues. */
class Segment {
  readonly frames: Uint8Array[];
  bytes: number;
  #joined: Uint8Array | undefined;

  constructor(frame: Uint8Array) {
    this.frames = [frame];
    this.bytes = frame.byteLength;
  }

  append(frame: Uint8Array): void {
    this.frames.push(frame);
    this.bytes += frame.byteLength;
  }

  joined(): Uint8Array {
    if (this.frames.length === 1) return this.frames[0]!;
    if (this.#joined === undefined || this.#joined.byteLength !== this.bytes) {
      const joined = new Uint8Array(this.bytes);
      let offset = 0;
      for (const frame of this.frames) {
        joined.set(frame, offset);
        offset += frame.byteLength;
      }
      this.#joined = joined;
    }
    return this.#joined;
  }
}

type Entry = Uint8Array | Segment;

/** One connection's frames waiting for the end of the turn. */
export class Outbound {
  readonly #sink: FrameSink;
  readonly #owner: OutboundOwner;
  readonly #limit: number;
  /** Made on the first frame: an idle client holds no array. */
  #entries: Entry[] | undefined;
  #scheduled = false;

  constructor(sink: FrameSink, owner: OutboundOwner, limit: number) {
    this.#sink = sink;
    this.#owner = owner;
    this.#limit = limit;
  }

  /** Queues one frame for this connection alone. False if the connection is closed. */
  push(frame: Uint8Array): boolean {
    if (!this.#owner.isOpen) return false;
    closeSegment();
    this.#add(frame);
    return true;
  }

  /** Bytes written to the socket but not yet sent, plus what waits for the end of the turn. */
  get bufferedBytes(): number {
    let bytes = this.#sink.writableLength;
    for (const entry of this.#entries ?? []) bytes += entry instanceof Segment ? entry.bytes : entry.byteLength;
    return bytes;
  }

  /** Writes what is queued now, e.g. before a close frame that must follow it. */
  flushNow(): void {
    closeSegment();
    this.flush();
  }

  /** Forgets what is queued (the connection is going away). */
  discard(): void {
    this.#entries = undefined;
  }

  /** @internal */
  add(entry: Entry): void {
    this.#add(entry);
  }

  /** @internal called once per turn by the scheduler */
  flush(): void {
    this.#scheduled = false;
    const entries = this.#entries;
    if (entries === undefined || entries.length === 0) return;
    if (!this.#owner.isOpen) {
      entries.length = 0;
      return;
    }
    // Only bytes left unsent from earlier turns show a slow reader. This turn's frames are shared
    // with the other recipients, and a burst bigger than the limit must not drop a client that
    // reads: a client holds at most the limit plus one turn's frames.
    if (this.#sink.writableLength > this.#limit) {
      const buffered = this.bufferedBytes;
      entries.length = 0;
      this.#owner.onSlowConsumer(buffered);
      return;
    }
    const sink = this.#sink;
    // A socket that is behind keeps what it is given until the peer reads it. Small frames are
    // views into shared 64 KB slabs: kept as they are, each would pin its whole slab, so a client
    // that stops reading could hold hundreds of times its limit. Such a socket gets copies.
    const own = this.#sink.writableLength > 0;
    if (entries.length === 1) {
      sink.write(bytesOf(entries[0]!, own));
    } else {
      sink.cork();
      for (const entry of entries) sink.write(bytesOf(entry, own));
      sink.uncork();
    }
    entries.length = 0;
  }

  #add(entry: Entry): void {
    (this.#entries ??= []).push(entry);
    if (!this.#scheduled) {
      this.#scheduled = true;
      schedule(this);
    }
  }
}

let dirty: Outbound[] = [];
let spare: Outbound[] = [];
let flushScheduled = false;
let open: { key: object; segment: Segment } | undefined;

/**
 * Queues `frame` for the outbound of every recipient. When the previous call had the same
 * `key` and nothing else was queued since, the frame joins that call's segment in O(1).
 * `key` must identify the recipient set: pass a new object whenever the set may differ.
 */
export function broadcastFrame(key: object | undefined, recipients: Iterable<{ readonly outbound: Outbound }>, frame: Uint8Array): void {
  if (key !== undefined && open?.key === key) {
    open.segment.append(frame);
    return;
  }
  const segment = new Segment(frame);
  for (const recipient of recipients) recipient.outbound.add(segment);
  open = key === undefined ? undefined : { key, segment };
}

/** Ends the current segment: the recipients of the next broadcast may differ. */
export function closeSegment(): void {
  open = undefined;
}

function schedule(outbound: Outbound): void {
  dirty.push(outbound);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  flushScheduled = false;
  open = undefined;
  const batch = dirty;
  dirty = spare;
  for (const outbound of batch) outbound.flush();
  batch.length = 0;
  spare = batch;
}

function bytesOf(entry: Entry, own: boolean): Uint8Array {
  const bytes = entry instanceof Segment ? entry.joined() : entry;
  return own && bytes.byteLength < bytes.buffer.byteLength ? bytes.slice() : bytes;
}
