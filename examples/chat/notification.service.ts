import { Injectable, inject } from 'tonijs';
import { BroadcastService, WsMessage } from 'tonijs/websocket';

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
