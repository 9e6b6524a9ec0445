/**
 * Lua scripts of the Redis transport: each is one round trip and atomic. They read the keys of
 * other instances by name, so they need a standalone (or Sentinel) Redis, not Redis Cluster.
 * Times come from the Redis server's clock, so instances need not agree on theirs.
 *
 * Client records and room names are opaque byte strings here (see `encodeClient` in codec.ts):
 * the scripts split records on newlines and compare names byte for byte, and never decode JSON,
 * so nothing a script stored can later make it fail.
 */

/** Ids per script call: Lua's `unpack` fails beyond a few thousand values. */
export const IDS_PER_CALL = 1_000;

const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/** Live instances other than ARGV[2] (self), given prefix ARGV[1] and timeout ARGV[3]. */
const LIVE = `${NOW}
local live = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[3]), '+inf')) do
  if id ~= ARGV[2] then table.insert(live, id) end
end
`;

/** A record's lines: the gateway, then one room per line (an empty line is the room ''). */
const LINES = `
local function linesOf(record)
  local lines = {}
  local start = 1
  while true do
    local at = string.find(record, '\\n', start, true)
    if not at then
      lines[#lines + 1] = string.sub(record, start)
      return lines
    end
    lines[#lines + 1] = string.sub(record, start, at - 1)
    start = at + 1
  end
end
local function roomsOf(record)
  local lines = linesOf(record)
  table.remove(lines, 1)
  return lines
end
`;

export const SCRIPTS = {
  /** KEYS: instances, own clients, own rooms. ARGV: id, ttl. Returns 1 if the clients key still exists. */
  toniHeartbeat: {
    numberOfKeys: 3,
    lua: `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3 * tonumber(ARGV[2]))
local present = redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return present`,
  },
  /** KEYS: instances. ARGV: prefix, self, timeout, 'all' or 'room', the escaped room. */
  toniCount: {
    numberOfKeys: 1,
    lua: `${LIVE}
local total = 0
for _, id in ipairs(live) do
  if ARGV[4] == 'all' then
    total = total + redis.call('HLEN', ARGV[1] .. ':i:' .. id .. ':clients')
  else
    total = total + tonumber(redis.call('HGET', ARGV[1] .. ':i:' .. id .. ':rooms', ARGV[5]) or '0')
  end
end
return total`,
  },
  /** KEYS: instances. ARGV: prefix, self, timeout. Returns [clientId, record, …] of the other live instances. */
  toniFetch: {
    numberOfKeys: 1,
    lua: `${LIVE}
local result = {}
for _, id in ipairs(live) do
  local entries = redis.call('HGETALL', ARGV[1] .. ':i:' .. id .. ':clients')
  for _, item in ipairs(entries) do table.insert(result, item) end
end
return result`,
  },
  /**
   * KEYS: instances. ARGV: prefix, self, timeout, clientId… (at most IDS_PER_CALL of them).
   * Returns, for each client, the instance holding it and its record — or false, false.
   */
  toniLocate: {
    numberOfKeys: 1,
    lua: `${LIVE}
local owners = {}
local wanted = #ARGV - 3
for index = 1, 2 * wanted do owners[index] = false end
for _, id in ipairs(live) do
  local found = redis.call('HMGET', ARGV[1] .. ':i:' .. id .. ':clients', unpack(ARGV, 4))
  for index = 1, wanted do
    if found[index] and not owners[2 * index - 1] then
      owners[2 * index - 1] = id
      owners[2 * index] = found[index]
    end
  end
end
return owners`,
  },
  /** KEYS: clients, rooms. ARGV: clientId, record, ttl. */
  toniAdd: {
    numberOfKeys: 2,
    lua: `${LINES}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  for _, room in ipairs(roomsOf(old)) do
    if redis.call('HINCRBY', KEYS[2], room, -1) <= 0 then redis.call('HDEL', KEYS[2], room) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for _, room in ipairs(roomsOf(ARGV[2])) do redis.call('HINCRBY', KEYS[2], room, 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`,
  },
  /** KEYS: clients, rooms. ARGV: clientId. */
  toniRemove: {
    numberOfKeys: 2,
    lua: `${LINES}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
for _, room in ipairs(roomsOf(old)) do
  if redis.call('HINCRBY', KEYS[2], room, -1) <= 0 then redis.call('HDEL', KEYS[2], room) end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`,
  },
  /** KEYS: clients, rooms. ARGV: clientId, escaped room, '1' to join or '0' to leave, ttl. */
  toniRoom: {
    numberOfKeys: 2,
    lua: `${LINES}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local lines = linesOf(old)
local at = nil
for index = 2, #lines do if lines[index] == ARGV[2] then at = index end end
if ARGV[3] == '1' then
  if at then return 0 end
  table.insert(lines, ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
else
  if not at then return 0 end
  table.remove(lines, at)
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(lines, '\\n'))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`,
  },
} as const;
