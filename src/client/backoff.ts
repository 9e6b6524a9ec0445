/**
 * The wait before reconnect attempt `failures + 1`: drawn at random between `minDelay` and a
 * ceiling that doubles with each failure (`2 × minDelay` first), capped at `maxDelay`. Drawing
 * over the whole range spreads clients that lost the same server at the same moment.
 */
export function backoffDelay(failures: number, minDelay: number, maxDelay: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelay, minDelay * 2 ** (Math.min(failures, 30) + 1));
  return minDelay + random() * (ceiling - minDelay);
}
