/**
 * The orchestrator's side of a child process (a server or the load client): commands out,
 * typed reports back in order, and no child outliving the orchestrator.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { stopProcess } from '../support.js';

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Starts a TypeScript file under node with tsx and an IPC channel, pinned to `cpu` if given. */
export function startNode(file: string, nodeArgs: readonly string[], cpu: number | undefined, env: Readonly<Record<string, string>> = {}): ChildProcess {
  const args = ['--conditions=tonijs-source', '--import', 'tsx', ...nodeArgs, file];
  const [command, commandArgs] = cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', String(cpu), process.execPath, ...args]];
  const child = spawn(command, commandArgs, { env: { ...process.env, NODE_ENV: 'production', ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  return child;
}

/** A child process and its IPC channel: commands out, typed reports back, in order. */
export class Child<Command extends { type: string }, Report extends { type: string }> {
  readonly #name: string;
  readonly #process: ChildProcess;
  readonly #inbox: Report[] = [];
  #waiter: { resolve: (report: Report) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;

  constructor(name: string, child: ChildProcess) {
    this.#name = name;
    this.#process = child;
    child.on('message', (report: Report | { type: 'failed'; message: string }) => {
      if (report.type === 'failed') this.#fail(new Error(`${name}: ${(report as { message: string }).message}`));
      else this.#inbox.push(report as Report);
      this.#deliver();
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      this.#fail(new Error(`${name} exited (${signal ?? `code ${code}`})`));
    });
  }

  send(command: Command): void {
    this.#process.send(command);
  }

  /** The next report, which must be of type `type`. */
  next<T extends Report['type']>(type: T, timeoutMs = 30_000): Promise<Extract<Report, { type: T }>> {
    if (this.#waiter !== undefined) throw new Error(`Two waits on ${this.#name} at once.`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`${this.#name} sent no "${type}" within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.#waiter = {
        resolve: (report) => {
          clearTimeout(timer);
          if (report.type === type) resolve(report as Extract<Report, { type: T }>);
          else reject(new Error(`${this.#name} sent "${report.type}" where "${type}" was expected.`));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#deliver();
    });
  }

  request<T extends Report['type']>(command: Command, type: T, timeoutMs?: number): Promise<Extract<Report, { type: T }>> {
    this.send(command);
    return this.next(type, timeoutMs);
  }

  /** SIGTERM (the child exits cleanly, writing a --cpu-prof profile if asked), SIGKILL after 10 s. */
  stop(): Promise<void> {
    return stopProcess(this.#process);
  }

  #deliver(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    if (this.#failure !== undefined) {
      this.#waiter = undefined;
      waiter.reject(this.#failure);
    } else if (this.#inbox.length > 0) {
      this.#waiter = undefined;
      waiter.resolve(this.#inbox.shift()!);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#deliver();
  }
}
