import { Injectable, inject } from 'tonijs';
import type { Gateway, WsClient, WsHandshake, WsMessage } from 'tonijs/websocket';
import { AuthService, User } from './auth.service.js';
import { NotificationService } from './notification.service.js';

/**
 * For signed-in operators: the handshake needs `Authorization: Bearer <token>` (refused with
 * HTTP 401 otherwise, before any WebSocket exists). What an operator sends is announced to
 * every connected client (an `announcement` event from them).
 */
@Injectable()
export class SecureGateway implements Gateway {
  readonly path = '/secure';
  private readonly auth = inject(AuthService);
  private readonly notifications = inject(NotificationService);

  async onHandshake(handshake: WsHandshake) {
    const header = handshake.headers.get('authorization');
    if (!header || !this.auth.verify(header)) return false;        // refused: HTTP 401, never upgraded
    handshake.setMetadata(User, this.auth.userFor(header));           // typed, per client
    return true;
  }

  async onConnect(client: WsClient) {
    const user = client.getMetadata(User);
    await this.notifications.notifyClient(client.id, `Hello ${user?.name}, you are signed in`);
  }

  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText()?.trim();
    if (!text) return;
    await this.notifications.notifyAll(text, client.getMetadata(User)?.name);
  }
}
