import type { BroadcastPacket } from '../broadcast/transport.js';
import { WsMessage, type WsMessageKind } from '../websocket/message.js';

/**
 * The version of the packets instances exchange. A packet of another version is dropped with a
 * warning naming both versions, so a cluster running mixed toni versions fails loudly.
 */
export const PROTOCOL_VERSION = 1;

/** A packet as it travels: short keys, binary payloads in base64. */
export interface WirePacket {
  k: 't' | 'b' | 'p' | 'o';
  d: string;
  r?: readonly string[];
  x?: readonly string[];
  g?: string;
  c?: readonly string[];
}

const KIND_CODES: Record<WsMessageKind, WirePacket['k']> = { text: 't', binary: 'b', ping: 'p', pong: 'o' };

export function toWire(packet: BroadcastPacket): WirePacket {
  const { message } = packet;
  const data = message.data;
  const wire: WirePacket = { k: KIND_CODES[message.kind], d: typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
  if (packet.rooms !== undefined) wire.r = packet.rooms;
  if (packet.except !== undefined) wire.x = packet.except;
  if (packet.gateway !== undefined) wire.g = packet.gateway;
  if (packet.clientIds !== undefined) wire.c = packet.clientIds;
  return wire;
}

export function encodePackets(from: string, packets: readonly WirePacket[]): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, from, p: packets });
}

/** How every envelope `from` sends starts, so an instance can skip its own without parsing. */
export function ownEnvelopePrefix(from: string): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, from }).slice(0, -1);
}

export type Decoded =
  | { kind: 'ok'; from: string; packets: BroadcastPacket[] }
  | { kind: 'version'; version: unknown; from: string }
  | { kind: 'invalid'; reason: string };

export function decodePackets(payload: Buffer): Decoded {
  let envelope: { v?: unknown; from?: unknown; p?: unknown };
  try {
    envelope = JSON.parse(payload.toString('utf8')) as typeof envelope;
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  if (typeof envelope !== 'object' || envelope === null) return { kind: 'invalid', reason: 'not an object' };
  const from = typeof envelope.from === 'string' ? envelope.from : 'unknown';
  if (envelope.v !== PROTOCOL_VERSION) return { kind: 'version', version: envelope.v, from };
  if (!Array.isArray(envelope.p)) return { kind: 'invalid', reason: 'no packets' };
  const packets: BroadcastPacket[] = [];
  for (const wire of envelope.p as WirePacket[]) {
    const message = toMessage(wire);
    if (message === undefined) return { kind: 'invalid', reason: 'malformed packet' };
    packets.push({ message, rooms: strings(wire.r), except: strings(wire.x), gateway: typeof wire.g === 'string' ? wire.g : undefined, clientIds: strings(wire.c) });
  }
  return { kind: 'ok', from, packets };
}

function toMessage(wire: WirePacket): WsMessage | undefined {
  if (typeof wire !== 'object' || wire === null || typeof wire.d !== 'string') return undefined;
  switch (wire.k) {
    case 't': return WsMessage.text(wire.d);
    case 'b': return WsMessage.binary(Buffer.from(wire.d, 'base64'));
    case 'p': return WsMessage.ping(Buffer.from(wire.d, 'base64'));
    case 'o': return WsMessage.pong(Buffer.from(wire.d, 'base64'));
    default: return undefined;
  }
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : undefined;
}
