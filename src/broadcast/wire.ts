/**
 * What instances of a cluster say to each other, whatever carries it: one envelope per publish,
 * `{"v":3,"from":"<instance>","p":[packet, …]}`, JSON with short keys. Decoding is strict and
 * all or nothing: one packet that is not exactly what tonijs sends drops the whole envelope, so
 * a malformed filter can never widen a message's audience; and it never throws.
 */
import { WsMessage, type WsMessageKind } from '../websocket/message.js';
import type { ClientFilter, KeptBatch } from './transport.js';

/**
 * The version of the envelope. An envelope of another version is dropped with a warning naming
 * both, so a cluster running mixed tonijs versions fails loudly instead of subtly.
 */
export const PROTOCOL_VERSION = 3;

/** A message and who it is for. */
export interface MessagePacket extends ClientFilter {
  readonly message: WsMessage;
  /** Only these clients (a `sendTo`); every matching client when absent. */
  readonly clientIds?: readonly string[] | undefined;
}

/** A connected client as the cluster knows it. */
export interface ClientEntry {
  readonly id: string;
  readonly gateway: string;
  readonly rooms: readonly string[];
}

/** A tracked presence: `client` is present in `room` as `key`, with `meta`. */
export interface PresenceEntry {
  readonly client: string;
  readonly room: string;
  readonly key: string;
  readonly meta: unknown;
}

/** What a cluster operation does to the clients it matches. */
export type Operation =
  | { readonly kind: 'join'; readonly room: string }
  | { readonly kind: 'leave'; readonly room: string }
  | { readonly kind: 'disconnect'; readonly code: number; readonly reason: string };

/** An emit kept in a stream's history: where it is, what it says (`{"event":…,"data":…}`), who it is for. */
export interface KeptPacket {
  readonly stream: string;
  readonly offset: number;
  readonly epoch: string;
  /** The event envelope without its position: a JSON object. */
  readonly body: string;
  readonly except?: readonly string[] | undefined;
  readonly gateway?: string | undefined;
}

/** One packet of an envelope. Deltas (`added` … `untracked`) carry the sender's sequence number. */
export type Packet =
  | { readonly type: 'broadcast'; readonly packet: MessagePacket }
  | { readonly type: 'kept'; readonly packet: KeptPacket }
  | { readonly type: 'direct'; readonly packet: MessagePacket & { readonly clientIds: readonly string[] } }
  | { readonly type: 'added'; readonly seq: number; readonly client: ClientEntry }
  | { readonly type: 'removed'; readonly seq: number; readonly id: string }
  | { readonly type: 'room'; readonly seq: number; readonly id: string; readonly room: string; readonly joined: boolean }
  | { readonly type: 'tracked'; readonly seq: number; readonly entry: PresenceEntry }
  | { readonly type: 'untracked'; readonly seq: number; readonly client: string; readonly room: string }
  /** "I am alive; my deltas go up to `seq`." */
  | { readonly type: 'heartbeat'; readonly seq: number }
  /** A part of the sender's whole state, as of `seq`. */
  | { readonly type: 'state'; readonly seq: number; readonly part: number; readonly parts: number; readonly clients: readonly ClientEntry[]; readonly presence: readonly PresenceEntry[] }
  /** "Send me your whole state." */
  | { readonly type: 'sync' }
  /** "I have applied your deltas up to `seq`." */
  | { readonly type: 'applied'; readonly seq: number }
  | { readonly type: 'operation'; readonly request: number; readonly filter: MessageFilter; readonly operation: Operation }
  /** "Operation `request` matched `count` of my clients." */
  | { readonly type: 'done'; readonly request: number; readonly count: number }
  /** The sender leaves the cluster (a clean shutdown). */
  | { readonly type: 'bye' };

/** The filter of an operation: which clients, as a send would reach them. */
export type MessageFilter = ClientFilter & { readonly clientIds?: readonly string[] | undefined };

/**
 * Why an envelope was dropped. A fixed set: whatever arrives, what is kept about dropped
 * envelopes is one entry per reason.
 */
export type DropReason =
  | 'not JSON'
  | 'not an envelope'
  | 'no sender'
  | 'no packets'
  | 'malformed packet'
  | 'unknown packet'
  | 'unknown kind'
  | 'bad base64'
  | 'control payload over 125 bytes'
  | 'invalid rooms'
  | 'invalid except'
  | 'invalid gateway'
  | 'invalid clientIds'
  | 'invalid delta'
  | 'invalid operation'
  | 'direct packet broadcast';

export type Decoded =
  /** `kept`: an envelope the history store published, which its sender delivers too. */
  | { readonly kind: 'ok'; readonly from: string; readonly packets: Packet[]; readonly kept: boolean }
  | { readonly kind: 'version'; readonly version: string; readonly from: string }
  | { readonly kind: 'invalid'; readonly reason: DropReason; readonly from: string };

const KIND_CODES: Record<WsMessageKind, string> = { text: 't', binary: 'b', ping: 'p', pong: 'o' };
/** Longest version or sender name a warning repeats: a log line stays short whatever arrives. */
const MAX_ECHO = 64;

/** One envelope of `packets` from `from`. Throws a TypeError for presence metadata JSON cannot carry. */
export function encodeEnvelope(from: string, packets: readonly Packet[]): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, from, p: packets.map(toWire) });
}

/**
 * A run of kept emits to one stream as a store keeps and publishes it (`KeptBatch`): `data` holds
 * the messages, each `[body]`, `[body, except]` or `[body, except | null, gateway]` (the body, an
 * event envelope, as a JSON string: a receiver takes it as it is); `head + firstOffset + middle +
 * epoch + tail + data + '}'` is the packet `{"t":"k","o":first,"e":epoch,"s":stream,"m":data}`.
 */
export function keptBatch(stream: string, messages: readonly Omit<KeptPacket, 'stream' | 'offset' | 'epoch'>[]): KeptBatch {
  const records: string[] = [];
  for (const message of messages) {
    const body = JSON.stringify(message.body);
    if (message.gateway !== undefined) records.push(`[${body},${message.except === undefined ? 'null' : JSON.stringify(message.except)},${JSON.stringify(message.gateway)}]`);
    else if (message.except !== undefined) records.push(`[${body},${JSON.stringify(message.except)}]`);
    else records.push(`[${body}]`);
  }
  const data = `[${records.join(',')}]`;
  return { stream, count: messages.length, data, head: '{"t":"k","o":', middle: ',"e":"', tail: `","s":${JSON.stringify(stream)},"m":` };
}

/** The messages of a batch's `data`, from offset `first` on; undefined when it is not what `keptBatch` makes. */
export function keptMessages(stream: string, first: number, epoch: string, data: unknown): KeptPacket[] | undefined {
  if (!Array.isArray(data) || data.length === 0 || !Number.isSafeInteger(first + data.length - 1)) return undefined;
  const packets: KeptPacket[] = [];
  for (const [index, record] of (data as unknown[]).entries()) {
    if (!Array.isArray(record) || record.length < 1 || record.length > 3) return undefined;
    const [body, except, gateway] = record as unknown[];
    if (typeof body !== 'string' || !body.startsWith('{"event":') || !body.endsWith('}')) return undefined;
    const list = except === null ? undefined : optionalStrings(except);
    if (list === INVALID || (gateway !== undefined && !isGateway(gateway))) return undefined;
    packets.push({ stream, offset: first + index, epoch, body, except: list, gateway: gateway as string | undefined });
  }
  return packets;
}

/** How an envelope of kept packets from `from` starts and ends, around its packets joined by commas. */
export function keptEnvelopeParts(from: string): { head: string; tail: string } {
  return { head: `{"v":${PROTOCOL_VERSION},"kept":1,"from":${JSON.stringify(from)},"p":[`, tail: ']}' };
}

/** How every envelope `from` sends starts, so that an instance can skip its own echo without parsing. */
export function envelopePrefix(from: string): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, from }).slice(0, -1);
}

/** Decodes an envelope; `channel` is how it arrived (a direct packet on the broadcast channel is refused). */
export function decodeEnvelope(payload: string, channel: 'broadcast' | 'direct'): Decoded {
  let envelope: unknown;
  try {
    envelope = JSON.parse(payload);
  } catch {
    return { kind: 'invalid', reason: 'not JSON', from: 'unknown' };
  }
  if (!isRecord(envelope)) return { kind: 'invalid', reason: 'not an envelope', from: 'unknown' };
  const from = typeof envelope['from'] === 'string' && envelope['from'] !== '' ? envelope['from'] : undefined;
  const sender = from === undefined ? 'unknown' : echo(from);
  if (envelope['v'] !== PROTOCOL_VERSION) return { kind: 'version', version: echo(describe(envelope['v'])), from: sender };
  if (from === undefined) return { kind: 'invalid', reason: 'no sender', from: sender };
  const list = envelope['p'];
  if (!Array.isArray(list)) return { kind: 'invalid', reason: 'no packets', from: sender };
  const kept = envelope['kept'] === 1;
  const packets: Packet[] = [];
  for (const wire of list as unknown[]) {
    if (isRecord(wire) && wire['t'] === 'k') {
      // A batch of kept messages: one packet each.
      const batch = keptFromWire(wire);
      if (typeof batch === 'string') return { kind: 'invalid', reason: batch, from: sender };
      packets.push(...batch);
      continue;
    }
    const packet = fromWire(wire);
    if (typeof packet === 'string') return { kind: 'invalid', reason: packet, from: sender };
    if (packet.type === 'direct' && channel === 'broadcast') return { kind: 'invalid', reason: 'direct packet broadcast', from: sender };
    // What a store published holds kept packets and nothing else.
    if (kept && packet.type !== 'kept') return { kind: 'invalid', reason: 'malformed packet', from: sender };
    packets.push(packet);
  }
  return { kind: 'ok', from, packets, kept };
}

function toWire(packet: Packet): Record<string, unknown> {
  switch (packet.type) {
    case 'broadcast':
      return messageWire('b', packet.packet);
    case 'direct':
      return messageWire('d', packet.packet);
    case 'kept': {
      const { head, middle, tail, data } = keptBatch(packet.packet.stream, [packet.packet]);
      return JSON.parse(`${head}${packet.packet.offset}${middle}${packet.packet.epoch}${tail}${data}}`) as Record<string, unknown>;
    }
    case 'added':
      return { t: '+', s: packet.seq, i: packet.client.id, g: packet.client.gateway, r: packet.client.rooms };
    case 'removed':
      return { t: '-', s: packet.seq, i: packet.id };
    case 'room':
      return { t: 'r', s: packet.seq, i: packet.id, m: packet.room, j: packet.joined ? 1 : 0 };
    case 'tracked':
      return { t: 'pt', s: packet.seq, ...presenceWire(packet.entry) };
    case 'untracked':
      return { t: 'pu', s: packet.seq, i: packet.client, m: packet.room };
    case 'heartbeat':
      return { t: 'hb', s: packet.seq };
    case 'state':
      return {
        t: 'st', s: packet.seq, n: packet.part, of: packet.parts,
        c: packet.clients.map((client) => [client.id, client.gateway, client.rooms]),
        pr: packet.presence.map((entry) => [entry.client, entry.room, entry.key, entry.meta ?? null]),
      };
    case 'sync':
      return { t: 'sq' };
    case 'applied':
      return { t: 'ap', s: packet.seq };
    case 'operation':
      return { t: 'op', q: packet.request, ...filterWire(packet.filter), o: packet.operation };
    case 'done':
      return { t: 'ok', q: packet.request, n: packet.count };
    case 'bye':
      return { t: 'bye' };
  }
}

function messageWire(type: 'b' | 'd', packet: MessagePacket): Record<string, unknown> {
  const { message } = packet;
  const data = message.data;
  return {
    t: type,
    k: KIND_CODES[message.kind],
    d: typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
    ...filterWire(packet),
  };
}

function filterWire(filter: MessageFilter): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  if (filter.rooms !== undefined) wire['r'] = filter.rooms;
  if (filter.except !== undefined) wire['x'] = filter.except;
  if (filter.gateway !== undefined) wire['g'] = filter.gateway;
  if (filter.clientIds !== undefined) wire['c'] = filter.clientIds;
  return wire;
}

function presenceWire(entry: PresenceEntry): Record<string, unknown> {
  return { i: entry.client, m: entry.room, y: entry.key, a: entry.meta ?? null };
}

function fromWire(wire: unknown): Packet | DropReason {
  if (!isRecord(wire)) return 'malformed packet';
  switch (wire['t']) {
    case 'b': {
      const packet = messageFromWire(wire);
      if (typeof packet === 'string') return packet;
      if (packet.clientIds !== undefined) return 'invalid clientIds';
      return { type: 'broadcast', packet };
    }
    case 'd': {
      const packet = messageFromWire(wire);
      if (typeof packet === 'string') return packet;
      if (packet.clientIds === undefined) return 'invalid clientIds';
      return { type: 'direct', packet: packet as MessagePacket & { clientIds: string[] } };
    }
    case '+': {
      const rooms = strings(wire['r']);
      if (!isSeq(wire['s']) || !isName(wire['i']) || !isGateway(wire['g']) || rooms === undefined) return 'invalid delta';
      return { type: 'added', seq: wire['s'], client: { id: wire['i'], gateway: wire['g'], rooms } };
    }
    case '-':
      if (!isSeq(wire['s']) || !isName(wire['i'])) return 'invalid delta';
      return { type: 'removed', seq: wire['s'], id: wire['i'] };
    case 'r':
      if (!isSeq(wire['s']) || !isName(wire['i']) || !isName(wire['m']) || (wire['j'] !== 0 && wire['j'] !== 1)) return 'invalid delta';
      return { type: 'room', seq: wire['s'], id: wire['i'], room: wire['m'], joined: wire['j'] === 1 };
    case 'pt': {
      if (!isSeq(wire['s'])) return 'invalid delta';
      const entry = presenceFromWire(wire['i'], wire['m'], wire['y'], wire['a']);
      return entry === undefined ? 'invalid delta' : { type: 'tracked', seq: wire['s'], entry };
    }
    case 'pu':
      if (!isSeq(wire['s']) || !isName(wire['i']) || !isName(wire['m'])) return 'invalid delta';
      return { type: 'untracked', seq: wire['s'], client: wire['i'], room: wire['m'] };
    case 'hb':
      return isCount(wire['s']) ? { type: 'heartbeat', seq: wire['s'] } : 'invalid delta';
    case 'st':
      return stateFromWire(wire);
    case 'sq':
      return { type: 'sync' };
    case 'ap':
      return isCount(wire['s']) ? { type: 'applied', seq: wire['s'] } : 'invalid delta';
    case 'op':
      return operationFromWire(wire);
    case 'ok':
      return isCount(wire['q']) && isCount(wire['n']) ? { type: 'done', request: wire['q'], count: wire['n'] } : 'invalid operation';
    case 'bye':
      return { type: 'bye' };
    default:
      return 'unknown packet';
  }
}

function messageFromWire(wire: Record<string, unknown>): MessagePacket | DropReason {
  if (typeof wire['d'] !== 'string') return 'malformed packet';
  const message = toMessage(wire['k'], wire['d']);
  if (typeof message === 'string') return message;
  const filter = filterFromWire(wire);
  return typeof filter === 'string' ? filter : { message, ...filter };
}

function filterFromWire(wire: Record<string, unknown>): MessageFilter | DropReason {
  const rooms = optionalStrings(wire['r']);
  if (rooms === INVALID) return 'invalid rooms';
  const except = optionalStrings(wire['x']);
  if (except === INVALID) return 'invalid except';
  const gateway = wire['g'];
  if (gateway !== undefined && !isGateway(gateway)) return 'invalid gateway';
  const clientIds = optionalStrings(wire['c']);
  if (clientIds === INVALID) return 'invalid clientIds';
  return { rooms, except, gateway: gateway as string | undefined, clientIds };
}

const KEPT_KEYS = new Set(['t', 'o', 'e', 's', 'm']);

function keptFromWire(wire: Record<string, unknown>): Packet[] | DropReason {
  for (const key of Object.keys(wire)) if (!KEPT_KEYS.has(key)) return 'malformed packet';
  const { s: stream, o: first, e: epoch, m: data } = wire;
  if (typeof stream !== 'string' || !isSeq(first) || typeof epoch !== 'string' || epoch === '') return 'malformed packet';
  const messages = keptMessages(stream, first, epoch, data);
  if (messages === undefined) return 'malformed packet';
  return messages.map((packet) => ({ type: 'kept', packet }));
}

function stateFromWire(wire: Record<string, unknown>): Packet | DropReason {
  const { s: seq, n: part, of: parts, c: clients, pr: presence } = wire;
  if (!isCount(seq) || !isCount(part) || !isCount(parts) || part >= parts || !Array.isArray(clients) || !Array.isArray(presence)) return 'invalid delta';
  const entries: ClientEntry[] = [];
  for (const item of clients as unknown[]) {
    if (!Array.isArray(item) || item.length !== 3) return 'invalid delta';
    const [id, gateway, roomList] = item as unknown[];
    const rooms = strings(roomList);
    if (!isName(id) || !isGateway(gateway) || rooms === undefined) return 'invalid delta';
    entries.push({ id, gateway, rooms });
  }
  const tracked: PresenceEntry[] = [];
  for (const item of presence as unknown[]) {
    if (!Array.isArray(item) || item.length !== 4) return 'invalid delta';
    const entry = presenceFromWire(item[0], item[1], item[2], item[3]);
    if (entry === undefined) return 'invalid delta';
    tracked.push(entry);
  }
  return { type: 'state', seq, part, parts, clients: entries, presence: tracked };
}

function presenceFromWire(client: unknown, room: unknown, key: unknown, meta: unknown): PresenceEntry | undefined {
  if (!isName(client) || !isName(room) || !isName(key)) return undefined;
  return { client, room, key, meta: meta ?? undefined };
}

function operationFromWire(wire: Record<string, unknown>): Packet | DropReason {
  if (!isCount(wire['q'])) return 'invalid operation';
  const filter = filterFromWire(wire);
  if (typeof filter === 'string') return filter;
  const operation = wire['o'];
  if (!isRecord(operation)) return 'invalid operation';
  if ((operation['kind'] === 'join' || operation['kind'] === 'leave') && isName(operation['room'])) {
    return { type: 'operation', request: wire['q'], filter, operation: { kind: operation['kind'], room: operation['room'] } };
  }
  if (operation['kind'] === 'disconnect' && isCount(operation['code']) && typeof operation['reason'] === 'string') {
    return { type: 'operation', request: wire['q'], filter, operation: { kind: 'disconnect', code: operation['code'], reason: operation['reason'] } };
  }
  return 'invalid operation';
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
 * fewer bytes than the length promises, which costs nothing to check.
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
  return strings(value) ?? INVALID;
}

function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  for (const item of value) if (typeof item !== 'string') return undefined;
  return value as string[];
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isGateway(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('/');
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === undefined ? 'none' : JSON.stringify(value) ?? String(value);
}

function echo(text: string): string {
  return text.length <= MAX_ECHO ? text : `${text.slice(0, MAX_ECHO)}…`;
}
