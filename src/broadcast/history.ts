import { ToniError } from '../errors.js';

/** Options of `BroadcastModule.forRoot({ history })`. */
export interface HistoryOptions {
  /** Messages kept per stream (a room, or the broadcasts to everyone). */
  size: number;
  /** Milliseconds a message is kept at most. */
  ttl: number;
}

/** Where a client is in a stream: its epoch (which changes when the stream's history is lost) and the last offset it has. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** A kept message: where it is in its stream and what was sent. */
export interface KeptEntry {
  readonly offset: number;
  /** When it was kept (milliseconds since the epoch, the store's clock). */
  readonly at: number;
  /** The envelope's fields besides the position, as JSON: `"event":…,"data":…`. */
  readonly body: string;
  /** Who it was not for, and which gateway it was for. */
  readonly except: readonly string[] | undefined;
  readonly gateway: string | undefined;
}

/** What reading a stream after a position found. */
export type ReadResult =
  | { readonly kind: 'entries'; readonly epoch: string; readonly entries: readonly KeptEntry[] }
  /** The history no longer reaches back to the position (or its epoch is another). */
  | { readonly kind: 'lost'; readonly epoch: string; readonly offset: number };

/** What one `emit` asks a store to keep. */
export interface KeepRequest {
  readonly stream: string;
  readonly body: string;
  readonly except: readonly string[] | undefined;
  readonly gateway: string | undefined;
}

/** The name of the stream of broadcasts to everyone: no room can be named so. */
export const EVERYONE = '';

/**
 * A history kept in this process: per stream, the last `size` messages, none older than `ttl`.
 * Appends are synchronous, so offsets follow the order of the calls. `InMemoryHub` shares one
 * among its applications, as Redis is shared by the instances of a cluster.
 */
export class MemoryHistory {
  readonly #streams = new Map<string, MemoryStream>();

  append(request: KeepRequest, size: number, now = Date.now()): Position {
    let stream = this.#streams.get(request.stream);
    if (stream === undefined) {
      stream = { epoch: newEpoch(), offset: 0, entries: [], first: 0, lastAt: now };
      this.#streams.set(request.stream, stream);
    }
    const offset = ++stream.offset;
    stream.lastAt = now;
    stream.entries.push({ offset, at: now, body: request.body, except: request.except, gateway: request.gateway });
    // The oldest entries leave by moving `first`; the array is compacted now and then, so that an
    // append costs O(1) however large `size` is.
    if (stream.entries.length - stream.first > size) stream.first = stream.entries.length - size;
    if (stream.first >= COMPACT_AT && stream.first >= size) compact(stream);
    return { epoch: stream.epoch, offset };
  }

  read(stream: string, after: Position, ttl: number, now = Date.now()): ReadResult {
    const kept = this.#streams.get(stream);
    if (kept === undefined) return after.epoch === '' && after.offset === 0 ? { kind: 'entries', epoch: '', entries: [] } : { kind: 'lost', epoch: '', offset: 0 };
    if (kept.first > 0) compact(kept);
    return readKept(kept.epoch, kept.offset, kept.entries, after, now - ttl);
  }

  head(stream: string): Position {
    const kept = this.#streams.get(stream);
    return kept === undefined ? { epoch: '', offset: 0 } : { epoch: kept.epoch, offset: kept.offset };
  }

  /** Gives `stream` a new epoch: what was kept is no longer a complete account of it. */
  reset(stream: string): void {
    const kept = this.#streams.get(stream);
    if (kept === undefined) return;
    kept.epoch = newEpoch();
    kept.entries = [];
    kept.first = 0;
  }

  /**
   * Forgets entries older than `ttl`, and streams nothing was kept in for `IDLE_TTLS` × `ttl`
   * (until then a client that missed nothing in a quiet stream still recovers).
   */
  expire(ttl: number, now = Date.now()): void {
    for (const [name, stream] of this.#streams) {
      let first = stream.first;
      while (first < stream.entries.length && stream.entries[first]!.at < now - ttl) first++;
      stream.first = first;
      compact(stream);
      if (stream.entries.length === 0 && stream.lastAt < now - IDLE_TTLS * ttl) this.#streams.delete(name);
    }
  }

  /** How many streams are kept (for tests and stats). */
  get streams(): number {
    return this.#streams.size;
  }
}

/** One stream of a `MemoryHistory`: its entries from index `first` on are the kept ones. */
interface MemoryStream {
  epoch: string;
  offset: number;
  entries: KeptEntry[];
  first: number;
  /** When the last entry was kept. */
  lastAt: number;
}

const COMPACT_AT = 1024;
/** A stream's epoch and offset outlive its entries this many ttls (in Redis too). */
export const IDLE_TTLS = 10;

function compact(stream: MemoryStream): void {
  if (stream.first === 0) return;
  stream.entries = stream.entries.slice(stream.first);
  stream.first = 0;
}

/**
 * The entries after `after`, if the history still reaches back to it: same epoch, and nothing
 * between lost to the size bound or to age.
 */
export function readKept(epoch: string, last: number, entries: readonly KeptEntry[], after: Position, oldest: number): ReadResult {
  // Joined before anything was kept in the stream: everything since its first entry is what it missed.
  const fromStart = after.epoch === '' && after.offset === 0;
  if ((after.epoch !== epoch && !fromStart) || after.offset > last) return { kind: 'lost', epoch, offset: last };
  if (after.offset === last) return { kind: 'entries', epoch, entries: [] };
  const from = firstAfter(entries, after.offset);
  if (from === entries.length || entries[from]!.offset !== after.offset + 1) return { kind: 'lost', epoch, offset: last };
  const wanted = entries.slice(from);
  if (wanted[0]!.at < oldest) return { kind: 'lost', epoch, offset: last };
  // A store that reads at most `size` entries: what it did not return is beyond the history's bound.
  if (wanted.at(-1)!.offset !== last) return { kind: 'lost', epoch, offset: last };
  return { kind: 'entries', epoch, entries: wanted };
}

/** The index of the first entry past `offset` (entries are in offset order), or `entries.length`. */
function firstAfter(entries: readonly KeptEntry[], offset: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle]!.offset > offset) high = middle;
    else low = middle + 1;
  }
  return low;
}

export function assertHistoryOptions(options: HistoryOptions): void {
  if (typeof options !== 'object' || options === null) throw new ToniError('TONI_ERR_INVALID_OPTION', 'BroadcastModule option history must be { size, ttl }.');
  if (!Number.isSafeInteger(options.size) || options.size < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `history.size must be a positive integer of messages, got ${String(options.size)}.`);
  if (!Number.isSafeInteger(options.ttl) || options.ttl < 1) throw new ToniError('TONI_ERR_INVALID_OPTION', `history.ttl must be a positive integer of milliseconds, got ${String(options.ttl)}.`);
}

/** A short random id: a stream's epoch, unique enough to tell one history from the next. */
function newEpoch(): string {
  return globalThis.crypto.randomUUID().slice(0, 8);
}
