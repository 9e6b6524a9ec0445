import type { WsMessage } from './message.js';

const OPCODES = { text: 0x1, binary: 0x2, ping: 0x9, pong: 0xa } as const;
const frames = new WeakMap<WsMessage, Uint8Array>();
const encoder = new TextEncoder();
const MAX_HEADER = 10;
/** Where text is encoded first, after room for the longest header. */
let scratch = new Uint8Array(MAX_HEADER + 16 * 1024);
/** Small frames are cut from shared slabs, as Node pools small Buffers: no ArrayBuffer each. */
const SLAB_SIZE = 64 * 1024;
const SLAB_MAX_FRAME = 4 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabOffset = 0;

/**
 * The unmasked, final server-to-client frame of `message` (RFC 6455 §5.2), header and payload
 * in one buffer. Computed once per message and cached, so a broadcast frames once for every client.
 */
export function frameOf(message: WsMessage): Uint8Array {
  let frame = frames.get(message);
  if (frame === undefined) {
    const data = message.data;
    frame = typeof data === 'string' ? encodeText(OPCODES[message.kind], data) : encodeBytes(OPCODES[message.kind], data);
    frames.set(message, frame);
  }
  return frame;
}

/** Encodes straight after a header-sized gap, then copies header and payload out once. */
function encodeText(opcode: number, text: string): Uint8Array {
  const most = MAX_HEADER + text.length * 3;
  if (scratch.byteLength < most) {
    if (most > 4 * 1024 * 1024) return encodeBytes(opcode, encoder.encode(text));
    scratch = new Uint8Array(most);
  }
  const length = encoder.encodeInto(text, scratch.subarray(MAX_HEADER)).written;
  const header = headerLength(length);
  const start = MAX_HEADER - header;
  writeHeader(scratch, start, opcode, length);
  const frame = allocate(header + length);
  frame.set(scratch.subarray(start, MAX_HEADER + length));
  return frame;
}

function encodeBytes(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.byteLength;
  const header = headerLength(length);
  const frame = allocate(header + length);
  writeHeader(frame, 0, opcode, length);
  frame.set(payload, header);
  return frame;
}

function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

function writeHeader(target: Uint8Array, at: number, opcode: number, length: number): void {
  target[at] = 0x80 | opcode;
  if (length < 126) {
    target[at + 1] = length;
  } else if (length < 65536) {
    target[at + 1] = 126;
    target[at + 2] = length >>> 8;
    target[at + 3] = length & 0xff;
  } else {
    target[at + 1] = 127;
    new DataView(target.buffer, target.byteOffset + at, 10).setBigUint64(2, BigInt(length));
  }
}

function allocate(size: number): Uint8Array {
  if (size > SLAB_MAX_FRAME) return new Uint8Array(size);
  if (slabOffset + size > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabOffset = 0;
  }
  const frame = slab.subarray(slabOffset, slabOffset + size);
  // Keep views aligned to 8 bytes, as Node's Buffer pool does.
  slabOffset = (slabOffset + size + 7) & ~7;
  return frame;
}
