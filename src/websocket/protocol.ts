/**
 * `tonijs.v1`: the WebSocket subprotocol tonijs/client offers. Plain WebSocket clients do not
 * offer it and see nothing of it. On a connection that agreed on it, the event envelope
 * (docs/events.md) gains control frames that never reach application code:
 *
 *   client → server   {"ping":7}     a heartbeat; browsers cannot see WebSocket pings
 *   server → client   {"pong":7}     the answer, sent at once, ahead of queued messages
 *   server → client   {"welcome":{"id":"…","recovered":false}}
 *                                    once the gateway's onConnect has run: the connection's id,
 *                                    and whether what a reconnecting client missed was replayed
 *
 * With a history (BroadcastModule), `{"position":…}` and `{"left":…}` frames too (docs/history.md).
 */
export const TONIJS_PROTOCOL = 'tonijs.v1';

const PING_PREFIX = '{"ping":';

/** The heartbeat number `text` carries when it is a `tonijs.v1` ping, else undefined. */
export function pingOf(text: string): number | undefined {
  if (!text.startsWith(PING_PREFIX) || text.length > 40) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const ping = (value as { ping?: unknown }).ping;
  return typeof ping === 'number' && Number.isFinite(ping) && Object.keys(value as object).length === 1 ? ping : undefined;
}

/** The answer to ping `n`. */
export function pongFrame(n: number): string {
  return `{"pong":${n}}`;
}

/** The welcome of connection `id`: `recovered` when everything it missed was replayed. */
export function welcomeFrame(id: string, recovered: boolean): string {
  return `{"welcome":{"id":${JSON.stringify(id)},"recovered":${recovered}}}`;
}
