// What the chat page and the server say to each other: gateway events (docs/events.md), typed
// once here for both ends. The page sends and handles them with tonijs/client, from plain
// JavaScript; a TypeScript front end would write `connect<ChatEvents>('/chat')`.

/** Room occupancy, as join acknowledgements and presence events carry it. */
export interface Counts {
  /** Clients in the room, cluster-wide. */
  inRoom: number;
  /** Clients of the chat gateway, cluster-wide. */
  online: number;
}

/** The acknowledgement of `join`. */
export interface Joined extends Counts {
  room: string;
  name: string;
}

/** The events of `/chat`. */
export interface ChatEvents {
  client: {
    /** Joins a room (leaving the one the client was in). */
    join(room: string): Joined;
    /** Says something in a room the client has joined; the others of the room get `message`. */
    send(data: { room: string; text: string }): { delivered: true };
    /** Tells the room's others that the client is typing. */
    typing(data: { room: string }): void;
  };
  server: {
    message(data: { room: string; from: string; text: string }): void;
    presence(data: { room: string; change: 'join' | 'leave'; name: string } & Counts): void;
    typing(data: { room: string; name: string }): void;
    /** From `POST /events/announce`, or an operator on `/secure` (`from`). */
    announcement(data: { text: string; from?: string }): void;
    heartbeat(data: { time: string; online: number }): void;
  };
}
