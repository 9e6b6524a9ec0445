import { InjectionToken } from './di/token.js';

/**
 * What toni logs through. The shape is pino's, so `pino()` (or any logger with these four
 * methods taking an object and then a message) can be passed as `options.logger`.
 */
export interface Logger {
  error(details: object, message?: string): void;
  warn(details: object, message?: string): void;
  info(details: object, message?: string): void;
  debug(details: object, message?: string): void;
}

/** Log levels from the most to the least severe. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** The default logger: one line per entry on the console, errors with their stack. */
export class ConsoleLogger implements Logger {
  readonly #threshold: number;

  constructor(options: { level?: LogLevel } = {}) {
    this.#threshold = LEVELS.indexOf(options.level ?? 'info');
  }

  error(details: object, message?: string): void { this.#write('error', details, message); }
  warn(details: object, message?: string): void { this.#write('warn', details, message); }
  info(details: object, message?: string): void { this.#write('info', details, message); }
  debug(details: object, message?: string): void { this.#write('debug', details, message); }

  #write(level: LogLevel, details: object, message: string | undefined): void {
    if (LEVELS.indexOf(level) > this.#threshold) return;
    const { err, ...fields } = details as { err?: unknown };
    const extra = Object.keys(fields).length > 0 ? ` ${safeStringify(fields)}` : '';
    const line = `[toni] ${level.toUpperCase()} ${message ?? ''}${extra}`;
    const stream = level === 'error' || level === 'warn' ? console.error : console.log;
    if (err === undefined) stream(line);
    else stream(line, '\n', err instanceof Error ? err.stack ?? err.message : err);
  }
}

/** A logger that drops everything, for `logger: false`. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return '[unserialisable]';
  }
}

/**
 * The application's logger, injectable anywhere.
 *
 * @example
 * private readonly logger = inject(LOGGER);
 */
export const LOGGER = new InjectionToken<Logger>('LOGGER');
