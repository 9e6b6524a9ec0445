/**
 * What every server in the HTTP benchmark serves, so that they all do the same work:
 * a JSON GET and a JSON POST whose small body is parsed, transformed and sent back.
 */

export const GET_PATH = '/hello';
export const POST_PATH = '/echo';

export interface EchoRequest {
  name: string;
  count: number;
  tags: string[];
}

export interface EchoResponse {
  name: string;
  count: number;
  tags: string[];
  echoed: true;
}

/** The body wrk posts (about 50 bytes, like a typical small API call). */
export const POST_BODY = JSON.stringify({ name: 'toni', count: 41, tags: ['fast', 'typed', 'real-time'] } satisfies EchoRequest);

/** The GET route's answer. */
export function greet(): { message: string } {
  return { message: 'Hello, World!' };
}

/** The POST route's answer: the request, transformed. */
export function echo(body: EchoRequest): EchoResponse {
  return { name: body.name, count: body.count + 1, tags: body.tags, echoed: true };
}

/**
 * Tells the orchestrator where the server listens (its only line on stdout), and exits
 * cleanly on SIGTERM so that `--cpu-prof` can write its profile.
 */
export function announce(port: number): void {
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write(`${port}\n`);
}

/**
 * The pipeline scenario: the same routes behind authentication (a bearer token checked on every
 * request, the user kept for the handler), a per-request hook around the handler (a call
 * counter) and CORS for one allowed origin. wrk sends both headers on every request.
 */
export const PIPELINE_TOKEN = 'Bearer bench-token';
export const PIPELINE_ORIGIN = 'https://app.example.com';

/** The benchmark's "user store": the user a token belongs to, or undefined. */
export function userFor(authorization: string | null | undefined): { id: string } | undefined {
  return authorization === PIPELINE_TOKEN ? { id: 'bench' } : undefined;
}
