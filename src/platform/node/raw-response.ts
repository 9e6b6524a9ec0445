import type { Duplex } from 'node:stream';
import { statusText } from '../../http/status.js';

/**
 * Answers on a socket that no `ServerResponse` owns (a refused upgrade, a request node could
 * not parse) with toni's JSON error body, then closes it.
 */
export function writeRawError(socket: Duplex, status: number, message: string, extraHeaders = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ statusCode: status, message, error: statusText(status) });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${statusText(status)}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `${extraHeaders}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
