-- A new personal access token, unless its user holds the most allowed.
-- KEYS[1]: the user's tokens (a hash: id -> record JSON); KEYS[2]: the token's
-- record by the hash of its secret; KEYS[3]: its id -> its user.
-- ARGV: 1 id, 2 record (JSON), 3 expiry (Unix ms), 4 most live tokens per user.
-- Expired entries are dropped from the user's hash first (their own keys have
-- expired by themselves), so they do not count.
local now_ms = math.floor(now_us() / 1000)
local live = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local ok, record = pcall(cjson.decode, entries[i + 1])
  if ok and tonumber(record.expires) * 1000 > now_ms then
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
if live >= tonumber(ARGV[4]) then
  return 0
end
local expires = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', expires)
local record = cjson.decode(ARGV[2])
redis.call('SET', KEYS[3], record.user, 'PXAT', expires)
-- The user's hash lives as long as their longest-lived token.
if redis.call('PTTL', KEYS[1]) < expires - now_ms then
  redis.call('PEXPIREAT', KEYS[1], expires)
end
return 1
