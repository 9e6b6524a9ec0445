import { HttpException, Injectable, LOGGER, inject } from 'tonijs';
import { BroadcastService, On, WsException, type DisconnectReason, type Gateway, type WsClient, type WsHandshake } from 'tonijs/websocket';
import { z } from 'zod';
import type { ChatEvents, Counts, Joined } from './protocol.js';

/** A chat page's identity, from the handshake's query; the class is its metadata key. */
export class ChatMember {
  /** The room the member is in, for the goodbye: rooms are already left when onDisconnect runs. */
  room: string | undefined;
  /**
   * @param name who the member is
   * @param wanted the room of the handshake's query, joined in `onConnect`
   */
  constructor(readonly name: string, readonly wanted: string | undefined) {}
}

const NAME = /^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,23}$/u;
const ROOM = /^[\p{L}\p{N}][\p{L}\p{N}_.-]{0,31}$/u;
const Name = z.string().trim().regex(NAME, 'name: 1 to 24 letters, digits, spaces, _ . or -, starting with a letter or digit');
const Room = z.string().trim().regex(ROOM, 'room: 1 to 32 letters, digits, _ . or -, starting with a letter or digit');
const Send = z.object({ room: Room, text: z.string().trim().min(1).max(500) });
const Typing = z.object({ room: Room });

/**
 * `/chat`, in gateway events: `join` a room (acknowledged with its head count), `send` to it
 * (acknowledged once delivered; the room's others get `message`), `typing`. The room hears who
 * comes and goes. The page connects with `?name=…&room=…` (validated in `onHandshake`, 400
 * otherwise) and is in the room once connected: joined while connecting, a reconnecting page gets
 * what it missed there replayed first (the history of `BroadcastModule.forRoot`, docs/history.md).
 */
@Injectable()
export class ChatGateway implements Gateway<ChatEvents> {
  readonly path = '/chat';
  private readonly broadcast = inject(BroadcastService<ChatEvents>);
  private readonly logger = inject(LOGGER);

  onHandshake(handshake: WsHandshake) {
    const name = Name.optional().safeParse(handshake.query.get('name') ?? undefined);
    const room = Room.optional().safeParse(handshake.query.get('room') ?? undefined);
    const issues = [...(name.error?.issues ?? []), ...(room.error?.issues ?? [])];
    if (!name.success || !room.success) throw new HttpException(400, issues.map((issue) => issue.message).join('; '));
    handshake.setMetadata(ChatMember, new ChatMember(name.data ?? `guest-${globalThis.crypto.randomUUID().slice(0, 4)}`, room.data));
    return true;
  }

  async onConnect(client: WsClient<ChatEvents>) {
    const member = memberOf(client);
    if (member.wanted !== undefined) await this.join(client, member.wanted);
  }

  @On('join', { payload: Room })
  async join(client: WsClient<ChatEvents>, room: string): Promise<Joined> {
    const member = memberOf(client);
    // Already there (joined while connecting, or a page asking again): the counts, no announcement.
    if (member.room === room) return { room, name: member.name, ...(await this.#counts(room)) };
    if (member.room !== undefined) await this.#leave(client, member, member.room);
    member.room = room;
    await client.join(room);
    const counts = await this.#counts(room);
    await this.broadcast.to(room).except(client.id).emit('presence', { room, change: 'join', name: member.name, ...counts });
    return { room, name: member.name, ...counts };
  }

  @On('send', { payload: Send })
  async send(client: WsClient<ChatEvents>, data: z.output<typeof Send>) {
    if (!client.rooms.has(data.room)) throw new WsException('not_in_room', `Join ${data.room} first`);
    await this.broadcast.to(data.room).except(client.id).emit('message', { room: data.room, from: memberOf(client).name, text: data.text });
    return { delivered: true } as const;
  }

  @On('typing', { payload: Typing })
  async typing(client: WsClient<ChatEvents>, data: z.output<typeof Typing>) {
    if (client.rooms.has(data.room)) await this.broadcast.to(data.room).except(client.id).emit('typing', { room: data.room, name: memberOf(client).name });
  }

  async onDisconnect(client: WsClient<ChatEvents>, reason: DisconnectReason) {
    this.logger.info({ client: client.id, reason: reason.kind }, 'chat client disconnected');
    const member = memberOf(client);
    // The client has already left its rooms, so the counts no longer include it.
    if (member.room !== undefined) await this.#announceLeave(member, member.room);
  }

  async #leave(client: WsClient<ChatEvents>, member: ChatMember, room: string) {
    await client.leave(room);
    await this.#announceLeave(member, room);
  }

  async #announceLeave(member: ChatMember, room: string) {
    await this.broadcast.to(room).emit('presence', { room, change: 'leave', name: member.name, ...(await this.#counts(room)) });
  }

  async #counts(room: string): Promise<Counts> {
    const [inRoom, online] = await Promise.all([this.broadcast.to(room).getClientCount(), this.broadcast.gateway(this.path).getClientCount()]);
    return { inRoom, online };
  }
}

function memberOf(client: WsClient<ChatEvents>): ChatMember {
  return client.getMetadata(ChatMember)!;
}
