import { HttpException, Injectable, LOGGER, inject } from 'tonijs';
import { BroadcastService, WsMessage, type DisconnectReason, type Gateway, type WsClient, type WsHandshake } from 'tonijs/websocket';
import { z } from 'zod';
import { chatLine, eventMessage } from './protocol.js';

/** A chat page's identity, set from the handshake's query: the class is its metadata key. */
export class ChatMember {
  constructor(readonly name: string, readonly room: string) {}
}

const NAME = /^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,23}$/u;
const ROOM = /^[\p{L}\p{N}][\p{L}\p{N}_.-]{0,31}$/u;
const ChatQuery = z.object({
  name: z.string().trim().regex(NAME, 'name: 1 to 24 letters, digits, spaces, _ . or -, starting with a letter or digit').optional(),
  room: z.string().trim().regex(ROOM, 'room: 1 to 32 letters, digits, _ . or -, starting with a letter or digit').optional(),
});

/**
 * `/chat`: greets every client and echoes what it says (the spec's behaviour, for any
 * WebSocket client). A client that connects with `?name=…&room=…`, as the page does, also
 * joins the room: its messages reach the room's other members as `name: text`, and the room
 * hears when people come and go, with its head count.
 */
@Injectable()
export class ChatGateway implements Gateway {
  readonly path = '/chat';
  private readonly broadcast = inject(BroadcastService);
  private readonly logger = inject(LOGGER);

  onHandshake(handshake: WsHandshake) {
    const query = ChatQuery.safeParse({ name: handshake.query.get('name') ?? undefined, room: handshake.query.get('room') ?? undefined });
    if (!query.success) throw new HttpException(400, query.error.issues.map((issue) => issue.message).join('; '));
    const { name, room } = query.data;
    if (name !== undefined || room !== undefined) {
      handshake.setMetadata(ChatMember, new ChatMember(name ?? `guest-${globalThis.crypto.randomUUID().slice(0, 4)}`, room ?? 'lobby'));
    }
    return true;
  }

  async onConnect(client: WsClient) {
    await client.send(WsMessage.text('Welcome to the chat!'));
    const member = client.getMetadata(ChatMember);
    if (member === undefined) return;
    await client.join(member.room);
    const counts = await this.#counts(member.room);
    await client.send(eventMessage({ type: 'joined', name: member.name, room: member.room, ...counts }));
    await this.broadcast.to(member.room).except(client.id)
      .broadcast(eventMessage({ type: 'presence', change: 'join', name: member.name, room: member.room, ...counts }));
  }

  async onDisconnect(client: WsClient, reason: DisconnectReason) {
    this.logger.info({ client: client.id, reason: reason.kind }, 'chat client disconnected');
    const member = client.getMetadata(ChatMember);
    // The client has already left its rooms, so the counts no longer include it.
    if (member === undefined) return;
    const counts = await this.#counts(member.room);
    await this.broadcast.to(member.room)
      .broadcast(eventMessage({ type: 'presence', change: 'leave', name: member.name, room: member.room, ...counts }));
  }

  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText();
    if (text === undefined) return;
    await client.send(WsMessage.text(`You said: ${text}`));
    const member = client.getMetadata(ChatMember);
    if (member !== undefined && text.trim() !== '') {
      await this.broadcast.to(member.room).except(client.id).broadcastText(chatLine(member.name, text));
    }
  }

  async #counts(room: string) {
    const [inRoom, online] = await Promise.all([this.broadcast.to(room).getClientCount(), this.broadcast.gateway(this.path).getClientCount()]);
    return { inRoom, online };
  }
}
