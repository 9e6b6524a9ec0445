import { randomBytes } from 'node:crypto';
import { type Socket, connect as connectTcp } from 'node:net';
import { AsyncQueue, nextEvent } from './async.js';

/**
 * A WebSocket client on a bare TCP socket: it performs the upgrade handshake by hand and then
 * does whatever the test needs with the socket — e.g. `socket.pause()` to never read again,
 * which a `ws` client cannot do (it always reads).
 */
export interface RawWebSocket {
  readonly socket: Socket;
  /** The HTTP response head the server answered the upgrade with. */
  readonly response: string;
}

/**
 * Opens a TCP connection to `url` (`ws://host:port/path?query`), sends the upgrade request and
 * resolves once the server answered `101 Switching Protocols`. With `pauseAfterUpgrade` the
 * socket stops reading right after the response head, so nothing the server sends is read.
 */
export async function openRawWebSocket(url: string, options: { pauseAfterUpgrade?: boolean; ms?: number } = {}): Promise<RawWebSocket> {
  const { pauseAfterUpgrade = false, ms = 5_000 } = options;
  const target = new URL(url);
  const socket = connectTcp(Number(target.port), target.hostname);
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  const heads = new AsyncQueue<string>();
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    if (pauseAfterUpgrade) socket.pause();
    heads.push(received.subarray(0, end).toString());
  };
  socket.on('data', onData);
  try {
    await nextEvent(socket, 'connect', ms, `the TCP connection to ${url}`);
    socket.write(
      `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const response = await heads.next(ms, `the upgrade response from ${url}`);
    if (!/^HTTP\/1\.1 101 /.test(response)) throw new Error(`Expected 101 Switching Protocols from ${url}, got: ${response.split('\r\n')[0]}`);
    return { socket, response };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/**
 * A client-to-server frame (RFC 6455 §5.2): final, masked with a zero key (so the payload goes
 * out as it is), with the opcode given (1 text, 2 binary).
 */
export function clientFrame(payload: string | Uint8Array, opcode = 0x1): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const length = data.byteLength;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  data.copy(frame, header + 4);
  return frame;
}

/**
 * Writes `chunks` to `socket` in order as fast as the socket takes them (waiting for 'drain', as
 * a well-behaved but relentless sender does). Resolves with how many were written once done or
 * once the socket closes.
 */
export async function writeAll(socket: Socket, chunks: Iterable<Uint8Array>): Promise<number> {
  let written = 0;
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    written++;
    if (!socket.write(chunk)) {
      const drained = await new Promise<boolean>((resolve) => {
        const onDrain = () => { socket.off('close', onClose); resolve(true); };
        const onClose = () => { socket.off('drain', onDrain); resolve(false); };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
      if (!drained) break;
    }
  }
  return written;
}
