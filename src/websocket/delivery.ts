import type { ClientSession } from './gateway-host.js';
import { frameOf } from './frame.js';
import type { WsMessage } from './message.js';
import { broadcastFrame } from './outbound.js';

/**
 * The WebSocket delivery of the broadcast registry: a message is framed once (cached on the
 * message) and queued on each session's outbound, which writes once per event-loop turn.
 */
export const WEBSOCKET_DELIVERY = {
  fanOut(key: object | undefined, recipients: Iterable<ClientSession>, message: WsMessage): void {
    broadcastFrame(key, recipients, frameOf(message));
  },
  send(recipient: ClientSession, message: WsMessage): boolean {
    return recipient.outbound.push(frameOf(message));
  },
};
