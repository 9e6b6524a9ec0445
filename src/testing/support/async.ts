import { type EventEmitter, once } from 'node:events';
import type { Logger } from '../../logger.js';

/** Resolves or rejects with `promise`, or rejects naming `what` once `ms` milliseconds pass. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A logger that records what is logged, and lets a test wait for an entry. */
export interface CapturingLogger extends Logger {
  /** Every entry so far, in order. */
  readonly entries: LogEntry[];
  /** The first entry (already logged or still to come) that `matches`; rejects after `ms`. */
  waitFor(matches: (entry: LogEntry) => boolean, ms?: number, what?: string): Promise<LogEntry>;
}

/**
 * A logger that records every entry, for asserting what tonijs logged: pass it as the
 * application's `logger`.
 *
 * @example
 * const logger = captureLogger();
 * const app = await ToniFactory.create(AppModule, undefined, { logger });
 * await logger.waitFor((entry) => entry.level === 'error' && /onMessage threw/.test(entry.message ?? ''));
 */
export function captureLogger(): CapturingLogger {
  const entries: LogEntry[] = [];
  const watchers = new Set<{ matches: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }>();
  const record = (level: string) => (details: object, message?: string) => {
    const entry: LogEntry = { level, details: details as Record<string, unknown>, message };
    entries.push(entry);
    for (const watcher of watchers) if (watcher.matches(entry)) watcher.resolve(entry);
  };
  /** The first entry (already logged or still to come) that `matches`. */
  const waitFor = (matches: (entry: LogEntry) => boolean, ms = 5_000, what = 'a matching log entry'): Promise<LogEntry> => {
    const logged = entries.find(matches);
    if (logged !== undefined) return Promise.resolve(logged);
    const watcher = { matches, resolve: (_entry: LogEntry) => {} };
    const found = new Promise<LogEntry>((resolve) => (watcher.resolve = resolve));
    watchers.add(watcher);
    return withTimeout(found, ms, what).finally(() => watchers.delete(watcher));
  };
  return { entries, waitFor, error: record('error'), warn: record('warn'), info: record('info'), debug: record('debug') };
}

/** One call recorded by `captureLogger`. */
export interface LogEntry {
  level: string;
  details: Record<string, unknown>;
  message: string | undefined;
}

/** A promise with its resolve and reject functions: a gate a test opens when it chooses. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Values in arrival order; `next()` takes the oldest one, waiting (with a timeout) when there is none yet. */
export class AsyncQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) this.#items.push(item);
    else waiter(item);
  }

  /** How many values wait to be taken. */
  get length(): number {
    return this.#items.length;
  }

  next(ms = 5_000, what = 'the next value'): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise<T>((resolve, reject) => {
      const waiter = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`Timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.#waiters.push(waiter);
    });
  }

  /** The next `count` values, in order. */
  async take(count: number, ms = 5_000, what = `${count} values`): Promise<T[]> {
    return withTimeout(
      (async () => {
        const taken: T[] = [];
        while (taken.length < count) taken.push(await this.next(ms, what));
        return taken;
      })(),
      ms,
      what,
    );
  }
}

/** Every emission of `event` on `emitter`, from now on, as a queue of its arguments. */
export function collectEvents<A extends unknown[]>(emitter: EventEmitter, event: string): AsyncQueue<A> {
  const queue = new AsyncQueue<A>();
  emitter.on(event, (...args: unknown[]) => queue.push(args as A));
  return queue;
}

/** The arguments of the next `event` on `emitter`; rejects on an `error` event or after `ms`. */
export function nextEvent<A extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, ms: number, what = `the '${event}' event`): Promise<A> {
  return withTimeout(once(emitter, event) as Promise<A>, ms, what);
}

/**
 * Resolves once `condition` holds, checking it again every `intervalMs`; rejects naming `what`
 * after `ms`. For states that change without an event to wait for (e.g. a cluster's view of a
 * killed instance), never as a substitute for an event that exists.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, ms: number, what: string, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() >= deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
