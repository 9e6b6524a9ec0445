import type { Logger } from '../logger.js';

/** What a line says about `count` occurrences of one kind of problem. */
export type Describe = (count: number) => { level: 'warn' | 'error'; details: object; message: string };

interface Entry {
  /** When the last line of this kind was written. */
  lastAt: number;
  /** Occurrences since. */
  pending: number;
  describe: Describe;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Logs a recurring problem at most once per interval per kind, and then how many times it
 * happened since the previous line. Kinds come from a fixed set, so whatever arrives, this keeps
 * one small entry per kind: a flood of bad input costs a counter, not memory or log lines.
 */
export class ThrottledLog<Kind extends string> {
  readonly #interval: number;
  readonly #logger: () => Logger | undefined;
  readonly #entries = new Map<Kind, Entry>();

  constructor(interval: number, logger: () => Logger | undefined) {
    this.#interval = interval;
    this.#logger = logger;
  }

  /** One more occurrence of `kind`; `describe` words the line, only when one is written. */
  report(kind: Kind, describe: Describe): void {
    let entry = this.#entries.get(kind);
    if (entry === undefined) {
      entry = { lastAt: -Infinity, pending: 0, describe, timer: undefined };
      this.#entries.set(kind, entry);
    }
    entry.pending++;
    entry.describe = describe;
    const wait = entry.lastAt + this.#interval - Date.now();
    if (wait <= 0) this.#write(entry);
    else if (entry.timer === undefined) {
      const due = entry;
      entry.timer = setTimeout(() => this.#write(due), wait);
      entry.timer.unref();
    }
  }

  /** Writes what is still counted (e.g. as the transport closes) and stops every timer. */
  flush(): void {
    for (const entry of this.#entries.values()) this.#write(entry);
  }

  #write(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.pending === 0) return;
    const { level, details, message } = entry.describe(entry.pending);
    entry.pending = 0;
    entry.lastAt = Date.now();
    this.#logger()?.[level](details, message);
  }
}

/** `1 message` / `3 messages`, with thousands separated. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? noun : nouns}`;
}
