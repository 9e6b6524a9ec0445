import { Injectable, UseGuards, inject } from 'tonijs';
import type { Gateway, WsClient, WsMessage } from 'tonijs/websocket';
import { User } from './auth.service.js';
import { NotificationService } from './notification.service.js';
import { SignedInGuard } from './signed-in.guard.js';

/**
 * For signed-in operators: `SignedInGuard` runs at the handshake and needs
 * `Authorization: Bearer <token>` (refused with HTTP 401 otherwise, before any WebSocket
 * exists). What an operator sends is announced to every connected client (an `announcement`
 * event from them).
 */
@UseGuards(SignedInGuard)                                // on a gateway class: the handshake
@Injectable()
export class SecureGateway implements Gateway {
  readonly path = '/secure';
  private readonly notifications = inject(NotificationService);

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
