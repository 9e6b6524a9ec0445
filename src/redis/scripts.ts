/**
 * Lua scripts of the Redis transport: each is one round trip and atomic. They read the keys of
 * other instances by name, so they need a standalone (or Sentinel) Redis, not Redis Cluster.
 * Times come from the Redis server's clock, so instances need not agree on theirs.
 */
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

const ROOMS_OF = `
local function roomsOf(value)
  local decoded = cjson.decode(value)
  if type(decoded.r) ~= 'table' then return {} end
  return decoded.r
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
  /** KEYS: instances. ARGV: prefix, self, timeout, room ('' for every client). */
  toniCount: {
    numberOfKeys: 1,
    lua: `${LIVE}
local total = 0
for _, id in ipairs(live) do
  if ARGV[4] == '' then
    total = total + redis.call('HLEN', ARGV[1] .. ':i:' .. id .. ':clients')
  else
    total = total + tonumber(redis.call('HGET', ARGV[1] .. ':i:' .. id .. ':rooms', ARGV[4]) or '0')
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
   * KEYS: instances. ARGV: prefix, self, timeout, clientId…
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
    lua: `${ROOMS_OF}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  for _, room in ipairs(roomsOf(old)) do redis.call('HINCRBY', KEYS[2], room, -1) end
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
    lua: `${ROOMS_OF}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
for _, room in ipairs(roomsOf(old)) do
  if redis.call('HINCRBY', KEYS[2], room, -1) <= 0 then redis.call('HDEL', KEYS[2], room) end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`,
  },
  /** KEYS: clients, rooms. ARGV: clientId, room, '1' to join or '0' to leave, ttl. */
  toniRoom: {
    numberOfKeys: 2,
    lua: `${ROOMS_OF}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local record = cjson.decode(old)
local rooms = roomsOf(old)
local at = nil
for index, room in ipairs(rooms) do if room == ARGV[2] then at = index end end
if ARGV[3] == '1' then
  if at then return 0 end
  table.insert(rooms, ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
else
  if not at then return 0 end
  table.remove(rooms, at)
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
end
record.r = rooms
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`,
  },
} as const;
