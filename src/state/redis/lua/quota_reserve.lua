-- Takes a place for one creation, or says why not, in one step.
-- KEYS: 1 the user's live resources of the kind (hash id -> counted at),
-- 2 the user's places in flight (zset ticket -> lapse, ms), 3 every creation in
-- flight (zset ticket -> lapse, ms).
-- ARGV: 1 ticket, 2 hold (ms), 3 the user's limit (0: none), 4 max_creating (0: none).
-- Returns {0, count} (granted), {1, count} (over the quota) or {2, in flight} (busy).
local now = math.floor(now_us() / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local count = redis.call('HLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
local limit = tonumber(ARGV[3])
if limit > 0 and count >= limit then
  return {1, count}
end
local cap = tonumber(ARGV[4])
local lapse = now + tonumber(ARGV[2])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local flying = redis.call('ZCARD', KEYS[3])
  if flying >= cap then
    return {2, flying}
  end
  redis.call('ZADD', KEYS[3], lapse, ARGV[1])
  redis.call('PEXPIREAT', KEYS[3], lapse, 'GT')
  redis.call('PEXPIREAT', KEYS[3], lapse, 'NX')
end
redis.call('ZADD', KEYS[2], lapse, ARGV[1])
redis.call('PEXPIREAT', KEYS[2], lapse)
return {0, count}
