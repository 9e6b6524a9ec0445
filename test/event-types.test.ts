/**
 * Type-level tests of gateway events: `npm run typecheck` (tsc) is what runs them. Each
 * `Expect<Equal<…>>` must hold and each `@ts-expect-error` must meet an error, or the typecheck fails.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Injectable, inject } from 'tonijs';
import { BroadcastService, type EventAck, type EventData, type EventName, type Gateway, On, type WsClient } from 'tonijs/websocket';
import { z } from 'zod';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

interface ChatEvents {
  client: {
    join(room: string): { joined: string };
    send(data: { room: string; text: string }): { delivered: boolean };
    typing(data: { room: string }): void;
    ping(): void;
  };
  server: {
    message(data: { from: string; text: string }): void;
    confirm(question: string): boolean;
    tick(): void;
  };
}

type _map = [
  Expect<Equal<EventName<ChatEvents, 'client'>, 'join' | 'send' | 'typing' | 'ping'>>,
  Expect<Equal<EventName<ChatEvents, 'server'>, 'message' | 'confirm' | 'tick'>>,
  Expect<Equal<EventData<ChatEvents, 'client', 'send'>, { room: string; text: string }>>,
  Expect<Equal<EventData<ChatEvents, 'client', 'ping'>, undefined>>,
  Expect<Equal<EventAck<ChatEvents, 'client', 'join'>, { joined: string }>>,
  Expect<Equal<EventAck<ChatEvents, 'server', 'confirm'>, boolean>>,
];

const Send = z.object({ room: z.string().min(1), text: z.string().min(1) });
const Loose = z.object({ room: z.string() });

// The checks below only need to compile; nothing here is called.
function typeChecks(client: WsClient<ChatEvents>, untyped: WsClient): void {
  // The server's side of the map: emit and request take server events with their data.
  void client.emit('message', { from: 'a', text: 'b' });
  void client.emit('tick');
  // @ts-expect-error not a server event
  void client.emit('mesage', { from: 'a', text: 'b' });
  // @ts-expect-error the data of message is { from, text }
  void client.emit('message', { from: 'a' });
  // @ts-expect-error join is a client event: the server does not emit it
  void client.emit('join', 'lobby');
  const answer = client.request('confirm', 'sure?', { timeout: 1000 });
  type _answer = Expect<Equal<typeof answer, Promise<boolean>>>;
  // @ts-expect-error the question is a string
  void client.request('confirm', 42);

  // An untyped client takes any event and any data.
  void untyped.emit('anything', { at: 'all' });
  const whatever = untyped.request('anything', 1);
  type _whatever = Expect<Equal<typeof whatever, Promise<unknown>>>;

  // BroadcastService, typed by an instantiation expression.
  const broadcast = inject(BroadcastService<ChatEvents>);
  void broadcast.to('lobby').except('id').emit('message', { from: 'a', text: 'b' });
  // @ts-expect-error not a server event
  void broadcast.to('lobby').emit('typing', { room: 'lobby' });
  const plain = inject(BroadcastService);
  void plain.emit('anything', 1);

  void answer;
  void whatever;
}

@Injectable()
export class TypedGateway implements Gateway<ChatEvents> {
  readonly path = '/typed';

  @On('join')
  join(_client: WsClient<ChatEvents>, room: string) {
    return { joined: room };
  }

  @On('send', { payload: Send })
  async send(_client: WsClient<ChatEvents>, _data: z.output<typeof Send>) {
    return { delivered: true };
  }

  @On('typing')
  typing(_client: WsClient<ChatEvents>, _data: { room: string }) {}

  @On('ping')
  ping(_client: WsClient<ChatEvents>) {}
}

@Injectable()
export class WrongGateway implements Gateway<ChatEvents> {
  readonly path = '/wrong';

  // @ts-expect-error "joinn" is not a client event of the map
  @On('joinn')
  joinn(_client: WsClient<ChatEvents>, room: string) {
    return { joined: room };
  }

  // @ts-expect-error the map says join carries a string, not a number
  @On('join')
  join(_client: WsClient<ChatEvents>, room: number) {
    return { joined: String(room) };
  }

  // @ts-expect-error the acknowledgement of send is { delivered: boolean }
  @On('send')
  send(_client: WsClient<ChatEvents>, _data: { room: string; text: string }) {
    return { ok: true };
  }

  // @ts-expect-error the schema's output is not what the data parameter takes
  @On('typing', { payload: Send })
  typing(_client: WsClient<ChatEvents>, _data: { room: number }) {}
}

@Injectable()
export class UntypedGateway implements Gateway {
  readonly path = '/untyped';

  // Untyped clients are not checked against any map: any event, any data.
  @On('anything')
  anything(_client: WsClient, data: unknown) {
    return data;
  }

  // With a schema the data parameter must still take its output.
  @On('room', { payload: Loose })
  room(_client: WsClient, data: { room: string }) {
    return data.room;
  }

  // @ts-expect-error the schema gives { room: string }, the parameter wants { room: number }
  @On('bad-room', { payload: Loose })
  badRoom(_client: WsClient, data: { room: number }) {
    return data.room;
  }
}

it('compiles (the checks run in tsc)', () => {
  assert.equal(typeof typeChecks, 'function');
});
