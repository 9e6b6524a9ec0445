import type { Redis } from 'ioredis';
import { type HistoryOptions, IDLE_TTLS, type KeptEntry, type Position } from '../broadcast/history.js';
import type { HistorySnapshot, HistoryStore, KeptRecord } from '../broadcast/transport.js';

/**
 * Keeps a turn's emits: for each, the next offset of its stream, an entry in its Redis Stream
 * (id `0-<offset>`, trimmed to about `size`), and a packet of the kept envelope, published at the
 * end — one script, so that every instance receives a stream's messages in offset order.
 * KEYS: per record, its stream and its meta (epoch, offset). ARGV: channel, envelope head and
 * tail, size, ttl, count, then per record: head, middle, tail, body, except (JSON or ''), gateway ('').
 * The stream's entries expire `ttl` after the last one; its epoch and offset live IDLE_TTLS times
 * longer, so that a client that missed nothing in a quiet stream still recovers.
 */
const KEEP = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local size, ttl, count = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local packets = {}
-- Per stream touched: its epoch and offset, read once and written back once at the end.
local streams, order = {}, {}
for i = 1, count do
  local key, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local at = 6 + (i - 1) * 6
  local stream = streams[key]
  if not stream then
    local kept = redis.call('HMGET', meta, 'epoch', 'offset')
    stream = { meta = meta, epoch = kept[1], offset = tonumber(kept[2]) or 0 }
    if not stream.epoch then
      stream.epoch = clock[1] .. clock[2] .. i
      redis.call('HSET', meta, 'epoch', stream.epoch)
    end
    -- A new count starts a new stream: entries left from an expired one would have higher ids.
    if stream.offset == 0 then redis.call('DEL', key) end
    streams[key] = stream
    order[#order + 1] = key
  end
  stream.offset = stream.offset + 1
  local id = '0-' .. stream.offset
  -- Fields left out when empty (most emits exclude no one and go to every gateway): a smaller entry.
  local except, gateway = ARGV[at + 5], ARGV[at + 6]
  if except == '' and gateway == '' then
    redis.call('XADD', key, 'MAXLEN', '~', size, id, 'at', now, 'b', ARGV[at + 4])
  else
    redis.call('XADD', key, 'MAXLEN', '~', size, id, 'at', now, 'b', ARGV[at + 4], 'x', except, 'g', gateway)
  end
  packets[i] = ARGV[at + 1] .. stream.offset .. ARGV[at + 2] .. stream.epoch .. ARGV[at + 3]
end
for _, key in ipairs(order) do
  local stream = streams[key]
  redis.call('HSET', stream.meta, 'offset', stream.offset)
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', stream.meta, ttl * ${IDLE_TTLS})
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. table.concat(packets, ',') .. ARGV[3])
return count`;

/**
 * The stream's epoch and last offset, the store's clock, and the entries after ARGV[1] (at most
 * ARGV[2]), in one atomic read. KEYS: stream, meta.
 */
const READ = `
local clock = redis.call('TIME')
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'offset')
local entries = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
return { meta[1] or '', meta[2] or '0', clock[1], clock[2], entries }`;

/** A new epoch for the stream (ARGV[1]), its entries gone. KEYS: stream, meta. ARGV: epoch, ttl. */
const RESET = `
redis.call('HSET', KEYS[2], 'epoch', ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * ${IDLE_TTLS})
redis.call('DEL', KEYS[1])
return 1`;

// Scripts rather than MULTI: ioredis's auto-pipelining can throw out of its own callback when a
// transaction meets a closing connection, and a single command cannot.
type Commands = Redis & {
  tonijsKeep(...args: (string | number)[]): Promise<number>;
  tonijsRead(stream: string, meta: string, after: number, count: number): Promise<[string, string, string, string, [string, string[]][]]>;
  tonijsReset(stream: string, meta: string, epoch: string, ttl: number): Promise<number>;
};

/**
 * The history of `RedisTransport`: one Redis Stream per stream (a room, or everyone), shared by
 * every instance, so that a client reconnecting to another instance — also after the first was
 * killed — is replayed what it missed. Keys share one hash slot (`{prefix}`), so a Redis Cluster
 * keeps them on one node.
 */
export class RedisHistory implements HistoryStore {
  readonly #publisher: () => Redis | undefined;
  readonly #prefix: string;
  readonly #channel: () => string;
  #defined = false;

  constructor(publisher: () => Redis | undefined, prefix: string, channel: () => string) {
    this.#publisher = publisher;
    this.#prefix = prefix;
    this.#channel = channel;
  }

  async keep(records: readonly KeptRecord[], envelopeHead: string, envelopeTail: string, options: HistoryOptions): Promise<void> {
    const redis = this.#commands();
    const keys: string[] = [];
    const args: (string | number)[] = [this.#channel(), envelopeHead, envelopeTail, options.size, options.ttl, records.length];
    for (const record of records) {
      keys.push(this.#streamKey(record.stream), this.#metaKey(record.stream));
      args.push(record.head, record.middle, record.tail, record.body, record.except === undefined ? '' : JSON.stringify(record.except), record.gateway ?? '');
    }
    await redis.tonijsKeep(keys.length, ...keys, ...args);
  }

  async head(stream: string): Promise<Position> {
    const [epoch, offset] = await this.#commands().hmget(this.#metaKey(stream), 'epoch', 'offset');
    return epoch == null ? { epoch: '', offset: 0 } : { epoch, offset: Number(offset ?? 0) };
  }

  async read(stream: string, after: number, count: number): Promise<HistorySnapshot> {
    const [epoch, last, seconds, micros, raw] = await this.#commands().tonijsRead(this.#streamKey(stream), this.#metaKey(stream), after, count);
    const entries = raw.map(toEntry).filter((entry): entry is KeptEntry => entry !== undefined);
    return { epoch, last: epoch === '' ? 0 : Number(last), now: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), entries };
  }

  async reset(stream: string, options: HistoryOptions): Promise<void> {
    const redis = this.#commands();
    await redis.tonijsReset(this.#streamKey(stream), this.#metaKey(stream), globalThis.crypto.randomUUID().slice(0, 8), options.ttl);
  }

  #commands(): Commands {
    const redis = this.#publisher();
    if (redis === undefined || redis.status !== 'ready') throw new Error('Redis is not connected');
    if (!this.#defined) {
      redis.defineCommand('tonijsKeep', { lua: KEEP });
      redis.defineCommand('tonijsRead', { lua: READ, numberOfKeys: 2 });
      redis.defineCommand('tonijsReset', { lua: RESET, numberOfKeys: 2 });
      this.#defined = true;
    }
    return redis as Commands;
  }

  #streamKey(stream: string): string {
    return `{${this.#prefix}}:h:${stream}`;
  }

  #metaKey(stream: string): string {
    return `{${this.#prefix}}:hm:${stream}`;
  }
}

function toEntry([id, fields]: [string, string[]]): KeptEntry | undefined {
  const offset = Number(id.slice(2));
  const values = new Map<string, string>();
  for (let index = 0; index + 1 < fields.length; index += 2) values.set(fields[index]!, fields[index + 1]!);
  const body = values.get('b');
  if (!Number.isSafeInteger(offset) || body === undefined) return undefined;
  const except = values.get('x');
  const gateway = values.get('g');
  return {
    offset,
    at: Number(values.get('at') ?? 0),
    body,
    except: except === undefined || except === '' ? undefined : (JSON.parse(except) as string[]),
    gateway: gateway === undefined || gateway === '' ? undefined : gateway,
  };
}
