import { type ClientOptions, WebSocket } from 'ws';
import type { WsClient, WsMessage } from '../../websocket/index.js';
import { AsyncQueue, nextEvent, withTimeout } from './async.js';

/** A frame as a `ws` client received it. */
export interface ReceivedMessage {
  data: Buffer;
  isBinary: boolean;
}

/** How a connection ended, as the client saw it. */
export interface CloseEvent {
  code: number;
  reason: string;
}

/**
 * A real `ws` client whose messages and close are recorded from the moment it is created,
 * so nothing that arrives before a test starts waiting is lost.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly messages = new AsyncQueue<ReceivedMessage>();
  /** Resolves when the connection closes, with the code and reason the peer sent. */
  readonly closed: Promise<CloseEvent>;

  constructor(url: string, options?: ClientOptions & { protocols?: string | string[] }) {
    const { protocols, ...rest } = options ?? {};
    this.ws = protocols === undefined ? new WebSocket(url, rest) : new WebSocket(url, protocols, rest);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.messages.push({ data, isBinary }));
    this.closed = new Promise((resolve) => this.ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  /** The text of the next message; fails if it is binary. */
  async nextText(ms = 5_000): Promise<string> {
    const message = await this.messages.next(ms, 'the next WebSocket message');
    if (message.isBinary) throw new Error(`Expected a text message, got ${message.data.byteLength} binary bytes`);
    return message.data.toString();
  }

  /** The texts of the next `count` messages. */
  async texts(count: number, ms = 5_000): Promise<string[]> {
    const messages = await this.messages.take(count, ms, `${count} WebSocket messages`);
    return messages.map((message) => message.data.toString());
  }

  /** Waits for the close and returns its code and reason. */
  waitForClose(ms = 5_000): Promise<CloseEvent> {
    return withTimeout(this.closed, ms, 'the WebSocket to close');
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }
}

/** Opens a client and waits until the upgrade succeeded. */
export async function connect(url: string, options?: ClientOptions & { protocols?: string | string[] }, ms = 5_000): Promise<TestClient> {
  const client = new TestClient(url, options);
  await nextEvent(client.ws, 'open', ms, `the WebSocket to ${url} to open`);
  return client;
}

/**
 * Tries to open a client that the server must refuse before upgrading: resolves with the
 * HTTP status and body of the refusal, rejects if the connection opens.
 */
export function expectRefusal(url: string, options?: ClientOptions, ms = 5_000): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(url, options);
  ws.on('error', () => {});
  const refused = new Promise<{ status: number; body: string }>((resolve, reject) => {
    ws.on('open', () => {
      ws.terminate();
      reject(new Error(`${url} was upgraded, expected a refusal`));
    });
    ws.on('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        ws.terminate();
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
      });
    });
  });
  return withTimeout(refused, ms, `the refusal of ${url}`);
}

/**
 * For test gateways: a client's `join:<room>` or `leave:<room>` message makes it join or leave
 * that room, answered with `joined:<room>` or `left:<room>` once done.
 */
export async function obeyRoomCommand(client: WsClient, message: WsMessage): Promise<void> {
  const [command, room] = (message.asText() ?? '').split(':');
  if (room === undefined) return;
  if (command === 'join') {
    await client.join(room);
    await client.send(`joined:${room}`);
  } else if (command === 'leave') {
    await client.leave(room);
    await client.send(`left:${room}`);
  }
}
