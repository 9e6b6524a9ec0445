import type { Redis } from 'ioredis';
import { type HistoryOptions, IDLE_TTLS, type Position } from '../broadcast/history.js';
import type { HistorySnapshot, HistoryStore, KeptBatch, StoredBatch } from '../broadcast/transport.js';

/**
 * Keeps a turn's batches of emits: for each, the next offsets of its stream, one entry in its
 * Redis Stream (id `0-<last offset of the batch>`, fields `f` first offset, `at`, `d` the data;
 * trimmed to about the entries holding the last `size` messages), and a packet, published at the
 * end — one script, so that every instance receives a stream's messages in offset order.
 * KEYS: per batch, its stream and its meta (epoch, offset). ARGV: channel, envelope head and
 * tail, size, ttl, count, then per batch: its message count, data, and packet head, middle, tail.
 * The stream's entries expire `ttl` after the last one; its epoch and offset live IDLE_TTLS times
 * longer, so that a client that missed nothing in a quiet stream still recovers.
 * Needs Redis 6.2 (XADD … MINID).
 */
const KEEP = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local size, ttl, count = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
-- Offsets as integers: concatenating a number writes 1e+14 past 14 digits.
local function int(n) return string.format('%d', n) end
local packets = {}
-- Per stream touched: its epoch and offset, read once and written back once at the end.
local streams, order = {}, {}
for i = 1, count do
  local key, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local at = 6 + (i - 1) * 5
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
  local first = stream.offset + 1
  stream.offset = stream.offset + tonumber(ARGV[at + 1])
  -- An entry goes once its last message is more than size back.
  redis.call('XADD', key, 'MINID', '~', '0-' .. int(math.max(0, stream.offset - size + 1)), '0-' .. int(stream.offset), 'f', int(first), 'at', int(now), 'd', ARGV[at + 2])
  packets[i] = ARGV[at + 3] .. int(first) .. ARGV[at + 4] .. stream.epoch .. ARGV[at + 5] .. ARGV[at + 2] .. '}'
end
for _, key in ipairs(order) do
  local stream = streams[key]
  redis.call('HSET', stream.meta, 'offset', int(stream.offset))
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', stream.meta, ttl * ${IDLE_TTLS})
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. table.concat(packets, ',') .. ARGV[3])
return count`;

/**
 * The stream's epoch and last offset, the store's clock, and the entries holding messages after
 * ARGV[1] (at most ARGV[2] entries), in one atomic read. KEYS: stream, meta.
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

  async keep(batches: readonly KeptBatch[], envelopeHead: string, envelopeTail: string, options: HistoryOptions): Promise<void> {
    const redis = this.#commands();
    const keys: string[] = [];
    const args: (string | number)[] = [this.#channel(), envelopeHead, envelopeTail, options.size, options.ttl, batches.length];
    for (const batch of batches) {
      keys.push(this.#streamKey(batch.stream), this.#metaKey(batch.stream));
      args.push(batch.count, batch.data, batch.head, batch.middle, batch.tail);
    }
    await redis.tonijsKeep(keys.length, ...keys, ...args);
  }

  async head(stream: string): Promise<Position> {
    const [epoch, offset] = await this.#commands().hmget(this.#metaKey(stream), 'epoch', 'offset');
    return epoch == null ? { epoch: '', offset: 0 } : { epoch, offset: Number(offset ?? 0) };
  }

  async read(stream: string, after: number, count: number): Promise<HistorySnapshot> {
    const [epoch, last, seconds, micros, raw] = await this.#commands().tonijsRead(this.#streamKey(stream), this.#metaKey(stream), after, count);
    const batches = raw.map(toBatch);
    return { epoch, last: epoch === '' ? 0 : Number(last), now: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), batches };
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

/** An entry as a batch; one with `data: ''` (a gap) when it is not one this store wrote. */
function toBatch([, fields]: [string, string[]]): StoredBatch {
  const values = new Map<string, string>();
  for (let index = 0; index + 1 < fields.length; index += 2) values.set(fields[index]!, fields[index + 1]!);
  const first = Number(values.get('f'));
  const at = Number(values.get('at'));
  const data = values.get('d');
  if (!Number.isSafeInteger(first) || first < 1 || !Number.isFinite(at) || data === undefined || data === '') return UNREADABLE;
  return { first, at, data };
}

const UNREADABLE: StoredBatch = Object.freeze({ first: 0, at: 0, data: '' });
