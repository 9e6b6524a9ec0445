// What the chat page and the server say to each other. Messages from the spec stay plain text
// ("Welcome to the chat!", "You said: …", "[Announcement] …"), chat lines are "name: text",
// and the events below, which the page reads rather than shows, travel as JSON text frames.
import { WsMessage } from 'tonijs/websocket';

/** Room occupancy, as every event carries it. */
interface Counts {
  /** Clients in the room, cluster-wide. */
  inRoom: number;
  /** Clients of the chat gateway in any room, cluster-wide. */
  online: number;
}

/** A JSON event the page receives. */
export type ChatEvent =
  | ({ type: 'joined'; name: string; room: string } & Counts)
  | ({ type: 'presence'; change: 'join' | 'leave'; name: string; room: string } & Counts)
  | { type: 'heartbeat'; time: string; online: number };

/** The text frame that carries `event`. */
export function eventMessage(event: ChatEvent): WsMessage {
  return WsMessage.text(JSON.stringify(event));
}

/** A chat line as others in the room see it. Names never contain ':' so the page can split it. */
export function chatLine(name: string, text: string): string {
  return `${name}: ${text}`;
}
