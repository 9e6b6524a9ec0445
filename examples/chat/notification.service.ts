import { Injectable, inject } from 'tonijs';
import { BroadcastService, WsMessage } from 'tonijs/websocket';
import type { ChatEvents } from './protocol.js';

/** Reaches connected clients from any provider, without holding references to them. */
@Injectable()
export class NotificationService {
  private readonly broadcast = inject(BroadcastService<ChatEvents>);

  /** An `announcement` event for every client of every gateway. */
  async notifyAll(text: string, from?: string) {
    await this.broadcast.emit('announcement', from === undefined ? { text } : { text, from });
  }

  async notifyClient(clientId: string, message: string) {
    await this.broadcast.sendTo(clientId, WsMessage.text(message));
  }
}
