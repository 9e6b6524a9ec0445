import { Controller, Get, HttpResponse, Post, inject, type HttpContext } from 'tonijs';
import { BroadcastService, ConnectionManager } from 'tonijs/websocket';
import { z } from 'zod';
import { NotificationService } from './notification.service.js';

const Announcement = z.object({ message: z.string().trim().min(1).max(500) });

/** HTTP endpoints that reach WebSocket clients: announcements, and who is connected. */
@Controller('/events')
export class EventsController {
  private readonly broadcast = inject(BroadcastService);
  private readonly connections = inject(ConnectionManager);
  private readonly notifications = inject(NotificationService);

  /** `POST /events/announce {"message": "…"}`: every connected client receives the `announcement` event. */
  @Post('/announce', { body: Announcement })
  async announce(ctx: HttpContext<z.output<typeof Announcement>>) {
    await this.notifications.notifyAll(ctx.body.message);
    return HttpResponse.ok().build();
  }

  /**
   * `GET /events/stats`: connected clients (cluster-wide with Redis) per gateway, and the rooms
   * with members on this instance, each with its cluster-wide head count.
   */
  @Get('/stats')
  async stats() {
    const rooms = [...this.connections.localRooms()].sort();
    const [online, chat, echo, secure, members] = await Promise.all([
      this.broadcast.getClientCount(),
      this.broadcast.gateway('/chat').getClientCount(),
      this.broadcast.gateway('/echo').getClientCount(),
      this.broadcast.gateway('/secure').getClientCount(),
      Promise.all(rooms.map((room) => this.broadcast.to(room).getClientCount())),
    ]);
    return { online, gateways: { '/chat': chat, '/echo': echo, '/secure': secure }, rooms: rooms.map((name, i) => ({ name, clients: members[i] })) };
  }
}
