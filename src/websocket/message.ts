/** The four kinds of WebSocket message. */
export type WsMessageKind = 'text' | 'binary' | 'ping' | 'pong';

/** Bytes as `WsMessage.binary` accepts them. */
export type BinaryInput = Uint8Array | ArrayBuffer | readonly number[];

/**
 * A WebSocket message: text, binary, ping or pong. Immutable; a message can be sent to many
 * clients and is encoded once for all of them.
 *
 * @example
 * await client.send(WsMessage.text('hello'));
 * await broadcast.broadcast(WsMessage.binary(new Uint8Array([1, 2, 3])));
 * const text = message.asText(); // undefined unless message.kind === 'text'
 */
export class WsMessage {
  readonly kind: WsMessageKind;
  readonly #data: string | Uint8Array;

  private constructor(kind: WsMessageKind, data: string | Uint8Array) {
    this.kind = kind;
    this.#data = data;
  }

  static text(text: string): WsMessage {
    if (typeof text !== 'string') throw new TypeError(`WsMessage.text() needs a string, got ${typeof text}`);
    return new WsMessage('text', text);
  }

  static binary(bytes: BinaryInput): WsMessage {
    return new WsMessage('binary', toBytes(bytes, 'binary'));
  }

  /** A ping control frame; at most 125 bytes of data. */
  static ping(data: BinaryInput = EMPTY): WsMessage {
    return new WsMessage('ping', toControlBytes(data, 'ping'));
  }

  /** A pong control frame; at most 125 bytes of data. */
  static pong(data: BinaryInput = EMPTY): WsMessage {
    return new WsMessage('pong', toControlBytes(data, 'pong'));
  }

  /** The text of a text message, `undefined` for the other kinds. */
  asText(): string | undefined {
    return this.kind === 'text' ? (this.#data as string) : undefined;
  }

  /** The bytes of a binary message, `undefined` for the other kinds. */
  asBinary(): Uint8Array | undefined {
    return this.kind === 'binary' ? (this.#data as Uint8Array) : undefined;
  }

  /** The payload of any kind: a string for text, bytes otherwise. */
  get data(): string | Uint8Array {
    return this.#data;
  }

  toString(): string {
    return `WsMessage(${this.kind}, ${typeof this.#data === 'string' ? this.#data.length : this.#data.byteLength})`;
  }
}

const EMPTY = new Uint8Array(0);

function toBytes(input: BinaryInput, kind: string): Uint8Array {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (Array.isArray(input)) {
    for (const value of input) {
      if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`WsMessage.${kind}() bytes must be integers from 0 to 255, got ${String(value)}`);
    }
    return Uint8Array.from(input);
  }
  throw new TypeError(`WsMessage.${kind}() needs a Uint8Array, an ArrayBuffer or an array of bytes`);
}

function toControlBytes(input: BinaryInput, kind: string): Uint8Array {
  const bytes = toBytes(input, kind);
  if (bytes.byteLength > 125) throw new RangeError(`WsMessage.${kind}() data is limited to 125 bytes, got ${bytes.byteLength}`);
  return bytes;
}
