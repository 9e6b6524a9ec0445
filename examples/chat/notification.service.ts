import { Injectable, inject } from 'toni';
import { BroadcastService, WsMessage } from 'toni/websocket';

/** Reaches connected clients from any provider, without holding references to them. */
@Injectable()
export class NotificationService {
  private readonly broadcast = inject(BroadcastService);

  async notifyAll(message: string) {
    await this.broadcast.broadcastText(message);
  }

  async notifyClient(clientId: string, message: string) {
    await this.broadcast.sendTo(clientId, WsMessage.text(message));
  }
}
