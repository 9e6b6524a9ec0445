import type { WsMessage } from './message.js';

const OPCODES = { text: 0x1, binary: 0x2, ping: 0x9, pong: 0xa } as const;
const frames = new WeakMap<WsMessage, Uint8Array>();
const encoder = new TextEncoder();

/**
 * The unmasked, final server-to-client frame of `message` (RFC 6455 §5.2), header and payload
 * in one buffer. Computed once per message and cached, so a broadcast frames once for every client.
 */
export function frameOf(message: WsMessage): Uint8Array {
  let frame = frames.get(message);
  if (frame === undefined) {
    frame = encodeFrame(OPCODES[message.kind], message.data);
    frames.set(message, frame);
  }
  return frame;
}

function encodeFrame(opcode: number, data: string | Uint8Array): Uint8Array {
  const payload = typeof data === 'string' ? encoder.encode(data) : data;
  const length = payload.byteLength;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = new Uint8Array(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 127;
    const view = new DataView(frame.buffer, frame.byteOffset, 10);
    view.setBigUint64(2, BigInt(length));
  }
  frame.set(payload, headerLength);
  return frame;
}
