import { Injectable } from 'tonijs';
import { WsMessage, type DisconnectReason, type Gateway, type WsClient } from 'tonijs/websocket';

/** The spec's first gateway, as it is (on `/echo` here: `/chat` speaks events): a greeting and an echo for any WebSocket client. */
@Injectable()
export class EchoGateway implements Gateway {
  readonly path = '/echo';
  async onConnect(client: WsClient) { await client.send(WsMessage.text('Welcome to the chat!')); }
  onDisconnect(client: WsClient, reason: DisconnectReason) { console.log(client.id, reason.kind); }
  async onMessage(client: WsClient, message: WsMessage) {
    const text = message.asText();
    if (text !== undefined) await client.send(WsMessage.text(`You said: ${text}`));
  }
}
