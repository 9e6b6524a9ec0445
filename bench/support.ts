/** What the benchmark orchestrators share: statistics, formatting, reading their knobs, stopping children. */
import type { ChildProcess } from 'node:child_process';

/** SIGTERM (the child exits cleanly, writing a --cpu-prof profile if asked), SIGKILL after 10 s. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Deliveries per second as `1.23M` or `456k`. */
export function formatRate(value: number): string {
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : `${Math.round(value / 1e3)}k`;
}

/** A positive integer from the environment, or `fallback`; anything else ends the run with `fail`. */
export function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, fail: (message: string) => never): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) fail(`${name} must be a positive integer, got "${raw}".`);
  return value;
}

/** `0-2,5` → `[0, 1, 2, 5]`, as `taskset -cp` prints CPU lists. */
export function expandCpuList(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [from, to] = part.trim().split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) return [];
    return Array.from({ length: (to ?? from) - from + 1 }, (_, index) => from + index);
  });
}
