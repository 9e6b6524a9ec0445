import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './async.js';

/** The timings the child instances use (test/fixtures/redis-instance.ts); a test's own instance uses the same. */
export const HEARTBEAT = 100;
export const INSTANCE_TIMEOUT = 600;

/** A toni instance in a child process, driven over IPC. */
export class ChildInstance {
  readonly #child: ChildProcess;
  readonly wsUrl: string;
  #nextId = 0;

  private constructor(child: ChildProcess, wsUrl: string) {
    this.#child = child;
    this.wsUrl = wsUrl;
  }

  static async spawn(redisUrl: string, options: { history?: boolean } = {}): Promise<ChildInstance> {
    const fixture = fileURLToPath(new URL('../fixtures/redis-instance.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=tonijs-source', '--import', 'tsx', fixture, redisUrl, String(HEARTBEAT), String(INSTANCE_TIMEOUT), ...(options.history === true ? ['history'] : [])], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let output = '';
    const ready = new Promise<string>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const match = /ready (\S+)/.exec(output);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the instance exited early with ${code}`)));
    });
    return new ChildInstance(child, await withTimeout(ready, 20_000, 'the child instance to start'));
  }

  command<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    const answer = new Promise<T>((resolve) => {
      const onMessage = (message: { id: number; result: T }) => {
        if (message.id !== id) return;
        this.#child.off('message', onMessage);
        resolve(message.result);
      };
      this.#child.on('message', onMessage);
    });
    this.#child.send({ id, op, ...args });
    return withTimeout(answer, 5_000, `the child instance to answer ${op}`);
  }

  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.kill('SIGKILL');
    await exited;
  }
}

