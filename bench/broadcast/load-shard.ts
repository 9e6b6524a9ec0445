/**
 * The load client's work: many raw TCP connections that do the WebSocket (or Engine.IO)
 * handshake by hand, then read only frame headers and skip payloads by their length, so that
 * counting a delivered frame costs a few comparisons. Every socket reads into one shared
 * buffer (`onread`), so a read allocates nothing.
 */
import { connect, type Socket } from 'node:net';
import { type WireProtocol, now } from './protocol.js';

/** A valid Sec-WebSocket-Key and the Sec-WebSocket-Accept a server must answer it with. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const CONCURRENT_HANDSHAKES = 200;
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Client frames must be masked; a zero mask key leaves the payload as it is. */
const maskedFrame = (opcode: number, payload: string) => Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0, ...Buffer.from(payload)]);
const SIO_CONNECT = maskedFrame(0x1, '40');
const SIO_PONG = maskedFrame(0x1, '3');
const readBuffer = Buffer.allocUnsafe(256 * 1024);

const enum Stage {
  Handshake,
  /** Engine.IO: waiting for the "0{…}" open packet, to answer "40". */
  AwaitOpen,
  /** Socket.IO: waiting for the "40{…}" namespace connect. */
  AwaitConnect,
  Ready,
}

/** A set of connections and the frames they count. */
export class LoadShard {
  readonly #connections: Connection[] = [];
  #closing = false;
  /** Called when the server drops a connection or refuses a handshake. */
  onFailure: (message: string) => void = (message) => {
    throw new Error(message);
  };

  // Burst counting.
  #expected = 0;
  #received = 0;
  #whenCounted: ((at: number) => void) | undefined;
  /** Frames that arrived while nothing was expected: a sign the harness is wrong. */
  stray = 0;

  // Latency counting: how many connections received each single broadcast, and when the last did.
  #sampleCounts: Int32Array | undefined;
  #samplesLeft = 0;
  /** Called when the last connection received single broadcast number `index`. */
  onSample: (index: number, at: number) => void = () => {};

  get size(): number {
    return this.#connections.length;
  }

  /** Opens `count` connections, a bounded number of handshakes at a time; resolves once all are ready. */
  async connect(port: number, path: string, protocol: WireProtocol, count: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const connection = new Connection(this, port, path, protocol);
        this.#connections.push(connection);
        await connection.ready;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_HANDSHAKES, count) }, worker));
  }

  /** Resolves with the time the `frames`-th data frame from now arrived. */
  expect(frames: number): Promise<number> {
    this.#expected = frames;
    this.#received = 0;
    return new Promise((resolve) => (this.#whenCounted = resolve));
  }

  /** Counts the next `samples` broadcasts one by one, calling `onSample` as each is complete. */
  expectSamples(samples: number): void {
    for (const connection of this.#connections) connection.seen = 0;
    this.#sampleCounts = new Int32Array(samples);
    this.#samplesLeft = samples;
  }

  /** From now on, connections the server closes are expected to close. */
  release(): void {
    this.#closing = true;
  }

  close(): void {
    this.#closing = true;
    for (const connection of this.#connections) {
      connection.released = true;
      connection.socket.destroy();
    }
    this.#connections.length = 0;
    this.#closing = false;
  }

  /** @internal */
  counted(connection: Connection, frames: number): void {
    const counts = this.#sampleCounts;
    if (counts !== undefined) {
      for (let i = 0; i < frames; i++) {
        const sample = connection.seen++;
        if (sample >= counts.length) this.stray++;
        else if (++counts[sample]! === this.#connections.length) this.#sampled(sample);
      }
      return;
    }
    if (this.#whenCounted === undefined) {
      this.stray += frames;
      return;
    }
    this.#received += frames;
    if (this.#received >= this.#expected) {
      const resolve = this.#whenCounted;
      this.#whenCounted = undefined;
      if (this.#received > this.#expected) this.stray += this.#received - this.#expected;
      resolve(now());
    }
  }

  /** @internal */
  lost(connection: Connection, why: string): void {
    if (this.#closing || connection.released) return;
    this.onFailure(`connection ${this.#connections.indexOf(connection)} ${why}`);
  }

  #sampled(sample: number): void {
    const at = now();
    if (--this.#samplesLeft === 0) this.#sampleCounts = undefined;
    this.onSample(sample, at);
  }
}

/** One client: the handshake, then a frame-header parser that carries its state across reads. */
class Connection {
  readonly socket: Socket;
  readonly ready: Promise<void>;
  /** Data frames received since the latency test began. */
  seen = 0;
  /** Closed by the load client: its end is no failure. */
  released = false;
  readonly #shard: LoadShard;
  readonly #socketIo: boolean;
  #stage = Stage.Handshake;
  #head = '';
  /** Payload bytes of the current frame still to skip. */
  #skip = 0;
  /** The start of a frame whose header (or control payload) the last read cut off. */
  #partial: Buffer | undefined;
  #resolveReady!: () => void;

  constructor(shard: LoadShard, port: number, path: string, protocol: WireProtocol) {
    this.#shard = shard;
    this.#socketIo = protocol === 'socket.io';
    let reject!: (error: Error) => void;
    this.ready = new Promise((resolve, fail) => {
      this.#resolveReady = resolve;
      reject = fail;
    });
    const timer = setTimeout(() => reject(new Error(`No handshake with ${path} after ${HANDSHAKE_TIMEOUT_MS} ms.`)), HANDSHAKE_TIMEOUT_MS);
    this.ready.then(() => clearTimeout(timer), () => {});
    this.socket = connect({
      host: '127.0.0.1',
      port,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (bytes, buffer) => this.#read(bytes, buffer as Buffer) },
    });
    this.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    this.socket.on('error', (error) => shard.lost(this, `failed: ${error.message}`));
    this.socket.on('close', () => shard.lost(this, 'was closed by the server'));
  }

  #read(bytes: number, buffer: Buffer): boolean {
    if (this.#stage === Stage.Handshake) {
      this.#head += buffer.toString('latin1', 0, bytes);
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) return true;
      if (!this.#head.startsWith('HTTP/1.1 101') || !this.#head.includes(ACCEPT)) {
        this.#shard.lost(this, `was refused: ${this.#head.slice(0, this.#head.indexOf('\r\n'))}`);
        return true;
      }
      const rest = this.#head.length - (end + 4);
      this.#head = '';
      this.#stage = this.#socketIo ? Stage.AwaitOpen : Stage.Ready;
      if (this.#stage === Stage.Ready) this.#resolveReady();
      if (rest > 0) this.#frames(buffer, bytes - rest, bytes);
      return true;
    }
    this.#frames(buffer, 0, bytes);
    return true;
  }

  #frames(buffer: Buffer, start: number, end: number): void {
    let at = start;
    if (this.#skip > 0) {
      const skipped = Math.min(this.#skip, end - at);
      this.#skip -= skipped;
      at += skipped;
      if (at === end) return;
    }
    if (this.#partial !== undefined) {
      const joined = Buffer.concat([this.#partial, buffer.subarray(at, end)]);
      this.#partial = undefined;
      this.#parse(joined, 0, joined.length);
    } else {
      this.#parse(buffer, at, end);
    }
  }

  #parse(buffer: Buffer, start: number, end: number): void {
    let at = start;
    let frames = 0;
    while (at < end) {
      const available = end - at;
      if (available < 2) break;
      const first = buffer[at]!;
      let length = buffer[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (available < 4) break;
        length = buffer.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = buffer.readUInt32BE(at + 2) * 2 ** 32 + buffer.readUInt32BE(at + 6);
        header = 10;
      }
      const opcode = first & 0x0f;
      if (opcode >= 0x8 || (this.#socketIo && (length === 1 || this.#stage !== Stage.Ready))) {
        // Control frames, and Engine.IO's own packets, are read whole.
        if (available < header + length) break;
        this.#special(opcode, buffer, at + header, length);
      } else if ((first & 0x80) !== 0) {
        frames++;
      }
      at += header + length;
    }
    if (at > end) this.#skip = at - end;
    else if (at < end) this.#partial = Buffer.from(buffer.subarray(at, end));
    if (frames > 0) this.#shard.counted(this, frames);
  }

  #special(opcode: number, buffer: Buffer, payload: number, length: number): void {
    if (opcode === 0x9) {
      const pong = Buffer.allocUnsafe(6 + length);
      pong[0] = 0x8a;
      pong[1] = 0x80 | length;
      pong.writeUInt32BE(0, 2);
      buffer.copy(pong, 6, payload, payload + length);
      this.socket.write(pong);
    } else if (opcode === 0x8) {
      this.#shard.lost(this, `got a close frame (code ${length >= 2 ? buffer.readUInt16BE(payload) : 'none'})`);
    } else if (opcode < 0x8) {
      if (this.#stage === Stage.AwaitOpen) {
        this.socket.write(SIO_CONNECT);
        this.#stage = Stage.AwaitConnect;
      } else if (this.#stage === Stage.AwaitConnect) {
        this.#stage = Stage.Ready;
        this.#resolveReady();
      } else if (length === 1 && buffer[payload] === 0x32) {
        this.socket.write(SIO_PONG); // an Engine.IO ping, "2", answered "3"
      }
    }
  }
}
