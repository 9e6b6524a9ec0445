/** How the example app is configured: the environment, parsed and checked once at startup. */
export interface ChatConfig {
  /** `PORT`, default 3000 (0 picks a free port). */
  port: number;
  /** `HOST`, default 127.0.0.1 (use 0.0.0.0 to accept connections from other machines). */
  host: string;
  /** `REDIS_URL`: when set, broadcasts, counts and rooms span every instance using this Redis. */
  redisUrl: string | undefined;
  /** `HEARTBEAT_INTERVAL` in milliseconds between heartbeat broadcasts, default 30 000; 0 turns them off. */
  heartbeatInterval: number;
  /** `DEMO_TOKEN`: the bearer token `/secure` accepts, default `demo-token`. */
  demoToken: string;
}

export const DEFAULT_DEMO_TOKEN = 'demo-token';

/** Reads the configuration from `env`; throws naming the variable when a value is unusable. */
export function loadConfig(env: NodeJS.ProcessEnv): ChatConfig {
  return {
    port: integer(env, 'PORT', 3000, 65535),
    host: nonEmpty(env['HOST']) ?? '127.0.0.1',
    redisUrl: nonEmpty(env['REDIS_URL']),
    heartbeatInterval: integer(env, 'HEARTBEAT_INTERVAL', 30_000, 2 ** 31 - 1),
    demoToken: nonEmpty(env['DEMO_TOKEN']) ?? DEFAULT_DEMO_TOKEN,
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
