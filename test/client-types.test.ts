/**
 * Type-level tests of tonijs/client: `npm run typecheck` (tsc) is what runs them. Each
 * `Expect<Equal<…>>` must hold and each `@ts-expect-error` must meet an error, or the typecheck
 * fails. One event map types both ends: the client emits and requests its `client` events and
 * handles its `server` events, whose handlers' return values answer the server's requests.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type CloseInfo, type ReconnectInfo, type SocketState, type ToniClientError, ToniSocket, connect } from 'tonijs/client';
import WebSocket from 'ws';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

interface ChatEvents {
  client: {
    join(room: string): { joined: string };
    send(data: { room: string; text: string }): { delivered: boolean };
    typing(data: { room: string }): void;
    leave(): void;
    history(limit?: number): string[];
  };
  server: {
    message(data: { from: string; text: string }): void;
    confirm(question: string): boolean;
    pick(options: string[]): Promise<number>;
    bye(): void;
  };
}

// The checks below only need to compile; this function is never called.
async function typeChecks(): Promise<void> {
  const socket = connect<ChatEvents>('wss://chat.example.com/chat', { query: async () => ({ token: 'x' }), reconnect: { minDelay: 100 } });
  type _socket = Expect<Equal<typeof socket, ToniSocket<ChatEvents>>>;

  // emit: client events with their data; optional when the event takes none.
  socket.emit('typing', { room: 'lobby' });
  socket.emit('leave');
  socket.emit('history');
  socket.emit('history', 20);
  // @ts-expect-error not a client event
  socket.emit('message', { from: 'a', text: 'b' });
  // @ts-expect-error wrong data
  socket.emit('typing', { room: 1 });
  // @ts-expect-error data missing
  socket.emit('typing');
  // @ts-expect-error leave takes no data
  socket.emit('leave', 'now');

  // request: resolves with the acknowledgement; options after the data.
  const joined = await socket.request('join', 'lobby');
  const delivered = await socket.request('send', { room: 'lobby', text: 'hi' }, { timeout: 5_000 });
  const history = await socket.request('history', undefined, { timeout: 1_000 });
  const left = await socket.request('leave');
  type _request = [
    Expect<Equal<typeof joined, { joined: string }>>,
    Expect<Equal<typeof delivered, { delivered: boolean }>>,
    Expect<Equal<typeof history, string[]>>,
    Expect<Equal<typeof left, void>>,
  ];
  // @ts-expect-error not a client event
  void socket.request('confirm', 'sure?');
  // @ts-expect-error wrong data
  void socket.request('join', 42);
  // @ts-expect-error not request options
  void socket.request('join', 'lobby', { timeout: '5s' });

  // on: server events; the data is typed, and a request's handler must answer with its type.
  socket.on('message', (data) => {
    type _data = Expect<Equal<typeof data, { from: string; text: string }>>;
  });
  socket.on('message', (data) => [data].length);              // a plain event's handler may return anything
  socket.on('confirm', (question) => question.endsWith('?'));
  socket.on('confirm', async () => true);
  socket.on('pick', (options) => options.length - 1);
  socket.on('pick', async () => 0);
  socket.on('bye', () => {});
  // @ts-expect-error confirm is answered with a boolean
  socket.on('confirm', () => 'yes');
  // @ts-expect-error confirm is answered with a boolean, also asynchronously
  socket.on('confirm', async () => 'yes');
  // @ts-expect-error not a server event
  socket.on('join', () => {});
  // @ts-expect-error the data is a string
  socket.on('confirm', (question: number) => question > 0);
  const remove = socket.on('bye', () => {});
  type _remove = Expect<Equal<typeof remove, () => void>>;
  const handler = (data: { from: string; text: string }) => void data;
  socket.off('message', handler);
  // @ts-expect-error not a server event
  socket.off('join', handler);

  // The listeners and the state.
  socket.onOpen(() => {});
  socket.onClose((info) => {
    type _info = Expect<Equal<typeof info, CloseInfo>>;
    type _error = Expect<Equal<typeof info.error, ToniClientError | undefined>>;
  });
  socket.onReconnect(({ recovered, attempt }) => {
    type _info = [Expect<Equal<typeof recovered, boolean>>, Expect<Equal<typeof attempt, number>>];
  });
  socket.onError((error) => {
    type _error = Expect<Equal<typeof error, ToniClientError>>;
  });
  socket.onRaw((frame) => {
    type _frame = Expect<Equal<typeof frame, string | ArrayBuffer>>;
  });
  type _state = Expect<Equal<typeof socket.state, SocketState>>;
  type _states = Expect<Equal<SocketState, 'connecting' | 'open' | 'reconnecting' | 'closed'>>;
  type _ready = [Expect<Equal<ReturnType<typeof socket.ready>, Promise<void>>>, Expect<Equal<ReturnType<typeof socket.close>, Promise<void>>>];
  const info: ReconnectInfo = { recovered: false, attempt: 1, downtime: 0 };
  void info;

  // Untyped: any event name, any data, unknown answers.
  const untyped = connect('ws://127.0.0.1:3000/chat');
  untyped.emit('anything', { at: 'all' });
  const answer = await untyped.request('whatever', 1, { timeout: 10 });
  type _untyped = Expect<Equal<typeof answer, unknown>>;
  untyped.on('anything', (data) => {
    type _data = Expect<Equal<typeof data, unknown>>;
    return data;
  });

  // The WebSocket option takes ws's class (and the browser's, of the same shape).
  connect('ws://127.0.0.1:3000/chat', { WebSocket });
  // @ts-expect-error not a WebSocket class
  connect('ws://127.0.0.1:3000/chat', { WebSocket: Map });
  // @ts-expect-error reconnect is options or false
  connect('ws://127.0.0.1:3000/chat', { reconnect: true });
}

it('client type checks compile (they run in tsc)', () => {
  assert.equal(typeof typeChecks, 'function');
  assert.equal(typeof ToniSocket, 'function');
});
