import { Injectable, LOGGER, inject, type OnApplicationShutdown } from 'tonijs';

/**
 * Runs periodic jobs for as long as the application runs: a failing run is logged and the
 * next one still happens, and `app.close()` stops them all.
 */
@Injectable()
export class BackgroundJobs implements OnApplicationShutdown {
  private readonly logger = inject(LOGGER);
  readonly #timers = new Set<NodeJS.Timeout>();

  /** Runs `job` every `intervalMs` milliseconds, without keeping the process alive. */
  every(intervalMs: number, name: string, job: () => Promise<void>): void {
    const timer = setInterval(() => {
      job().catch((error: unknown) => this.logger.error({ err: error, job: name }, 'background job failed'));
    }, intervalMs);
    timer.unref();
    this.#timers.add(timer);
  }

  onApplicationShutdown() {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.clear();
  }
}
