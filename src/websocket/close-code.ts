const encoder = new TextEncoder();

/**
 * Throws a RangeError unless `code` and `reason` can go in a close frame a server sends
 * (RFC 6455 §7.4): 1000, 1001–1003, 1007–1014 or 3000–4999, and at most 123 bytes of reason.
 */
export function assertCloseFrame(code: number, reason: string): void {
  const sendable = Number.isInteger(code) && (code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999));
  if (!sendable) throw new RangeError(`Invalid WebSocket close code ${code}: use 1000, 1001-1003, 1007-1014 or 3000-4999`);
  if (encoder.encode(reason).byteLength > 123) throw new RangeError('A close reason is limited to 123 bytes');
}
