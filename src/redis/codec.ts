import type { BroadcastPacket, ClientRecord } from '../broadcast/transport.js';
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

/**
 * Why a message from Redis was dropped. A fixed set: whatever arrives, what the transport keeps
 * about dropped messages is one entry per reason.
 */
export type DropReason =
  | 'not JSON'
  | 'not an envelope'
  | 'no sender'
  | 'no packets'
  | 'malformed packet'
  | 'unknown kind'
  | 'bad base64'
  | 'control payload over 125 bytes'
  | 'invalid rooms'
  | 'invalid except'
  | 'invalid gateway'
  | 'invalid clientIds'
  | 'clientIds on the broadcast channel'
  | 'no clientIds on a direct channel';

/** Which channel a message came on: broadcasts carry no `clientIds`; direct sends must. */
export type ChannelKind = 'broadcast' | 'direct';

export type Decoded =
  | { kind: 'ok'; from: string; packets: BroadcastPacket[] }
  | { kind: 'version'; version: string; from: string }
  | { kind: 'invalid'; reason: DropReason; from: string };

const KIND_CODES: Record<WsMessageKind, WirePacket['k']> = { text: 't', binary: 'b', ping: 'p', pong: 'o' };

/** Longest version or sender name a warning repeats: a log line stays short whatever arrives. */
const MAX_ECHO = 64;

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

/**
 * Decodes an envelope from Redis, all or nothing: one packet that is not exactly what toni
 * sends drops the whole envelope, so a malformed filter can never widen a packet's audience.
 * Never throws.
 */
export function decodePackets(payload: Buffer, channel: ChannelKind): Decoded {
  let envelope: unknown;
  try {
    envelope = JSON.parse(payload.toString('utf8'));
  } catch {
    return { kind: 'invalid', reason: 'not JSON', from: 'unknown' };
  }
  if (!isRecord(envelope)) return { kind: 'invalid', reason: 'not an envelope', from: 'unknown' };
  const from = typeof envelope.from === 'string' ? envelope.from : undefined;
  const sender = from === undefined ? 'unknown' : echo(from);
  if (envelope.v !== PROTOCOL_VERSION) return { kind: 'version', version: echo(describe(envelope.v)), from: sender };
  if (from === undefined) return { kind: 'invalid', reason: 'no sender', from: sender };
  if (!Array.isArray(envelope.p)) return { kind: 'invalid', reason: 'no packets', from: sender };
  const packets: BroadcastPacket[] = [];
  for (const wire of envelope.p as unknown[]) {
    const packet = toPacket(wire, channel);
    if (typeof packet === 'string') return { kind: 'invalid', reason: packet, from: sender };
    packets.push(packet);
  }
  return { kind: 'ok', from, packets };
}

/**
 * A client's record in Redis: its gateway, then each of its rooms, one per line, each escaped
 * as inside a JSON string. The Lua scripts split and compare these lines byte for byte and never
 * parse JSON, so a name that cjson cannot decode (a lone surrogate, invalid UTF-8) cannot make a
 * script fail; and the escaping is exact, so every JavaScript string survives the round trip.
 */
export function encodeClient(client: ClientRecord): string {
  let record = escapeName(client.gateway);
  for (const room of client.rooms) record += `\n${escapeName(room)}`;
  return record;
}

/** The record `encodeClient` wrote, or undefined for one it did not. */
export function decodeClient(id: string, record: string): ClientRecord | undefined {
  try {
    const [gateway, ...rooms] = record.split('\n').map(unescapeName);
    return { id, gateway: gateway!, rooms: new Set(rooms) };
  } catch {
    return undefined;
  }
}

/**
 * A room or gateway name as it is stored in Redis (a line of a record, a field of the room
 * counts): escaped as inside a JSON string, so it is valid UTF-8 and holds no newline. Names
 * without quotes, backslashes, control characters or lone surrogates are stored as they are.
 */
export function escapeName(name: string): string {
  return JSON.stringify(name).slice(1, -1);
}

function unescapeName(token: string): string {
  return token.includes('\\') ? (JSON.parse(`"${token}"`) as string) : token;
}

function toPacket(wire: unknown, channel: ChannelKind): BroadcastPacket | DropReason {
  if (!isRecord(wire) || typeof wire.d !== 'string') return 'malformed packet';
  const message = toMessage(wire.k, wire.d);
  if (typeof message === 'string') return message;
  const rooms = optionalStrings(wire.r);
  if (rooms === INVALID) return 'invalid rooms';
  const except = optionalStrings(wire.x);
  if (except === INVALID) return 'invalid except';
  const gateway = wire.g;
  if (gateway !== undefined && (typeof gateway !== 'string' || !gateway.startsWith('/'))) return 'invalid gateway';
  const clientIds = optionalStrings(wire.c);
  if (clientIds === INVALID) return 'invalid clientIds';
  if (channel === 'broadcast' && clientIds !== undefined) return 'clientIds on the broadcast channel';
  if (channel === 'direct' && clientIds === undefined) return 'no clientIds on a direct channel';
  return { message, rooms, except, gateway, clientIds };
}

function toMessage(kind: unknown, data: string): WsMessage | DropReason {
  if (kind === 't') return WsMessage.text(data);
  if (kind !== 'b' && kind !== 'p' && kind !== 'o') return 'unknown kind';
  const bytes = fromBase64(data);
  if (bytes === undefined) return 'bad base64';
  if (kind === 'b') return WsMessage.binary(bytes);
  if (bytes.byteLength > 125) return 'control payload over 125 bytes';
  return kind === 'p' ? WsMessage.ping(bytes) : WsMessage.pong(bytes);
}

/**
 * Node's decoder skips what is not base64 instead of failing; a skipped character shows as
 * fewer bytes than the length promises, which costs nothing to check. (The URL-safe alphabet,
 * which Node reads as well, decodes to the same bytes any reader would get.)
 */
function fromBase64(data: string): Buffer | undefined {
  if (data.length % 4 !== 0) return undefined;
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(data, 'base64');
  return bytes.byteLength === (data.length / 4) * 3 - padding ? bytes : undefined;
}

const INVALID = Symbol('invalid');

/** Absent is fine; present, it must be an array of strings and nothing else. */
function optionalStrings(value: unknown): string[] | undefined | typeof INVALID {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return INVALID;
  for (const item of value) if (typeof item !== 'string') return INVALID;
  return value as string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'none';
  return JSON.stringify(value);
}

function echo(text: string): string {
  return text.length <= MAX_ECHO ? text : `${text.slice(0, MAX_ECHO)}…`;
}
