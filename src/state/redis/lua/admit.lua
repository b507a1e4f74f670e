-- What a request needs of the state before its phases, in one round trip: the
-- client address's limit, the first live session among the cookie's ids, that
-- session user's limit, and the ownership record the request's path names.
-- KEYS[1]: the address's limit key (the bare key prefix, ARGV[7], when off);
-- KEYS[2]: the record's key (the bare prefix for none); KEYS[3..]: session keys.
-- ARGV: 1 address interval, 2 address burst, 3 check the user's limit ('1'/'0'),
-- 4 user interval, 5 user burst, 6 idle timeout (ms), 7 key prefix, 8 record
-- retention (ms), 9.. (user, interval, burst) of each per-user override.
-- Returns {1, wait} when the address is over its limit; else {0, n, identity,
-- user_wait, owner, name, ttl}: n the live session's place among the ids (0:
-- none, identity false), user_wait -1 when not checked, owner and name false
-- when there is no record, ttl the ms the live session has left to live (0: none).
local now = now_us()
if KEYS[1] ~= ARGV[7] then
  local wait = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
  if wait > 0 then
    return {1, wait}
  end
end
local owner, name = false, false
if KEYS[2] ~= ARGV[7] then
  local r = redis.call('HMGET', KEYS[2], 'o', 'n')
  if r[1] then
    owner, name = r[1], r[2]
    -- Looking at a record renews it.
    renew(KEYS[2], tonumber(ARGV[8]))
  end
end
local idle = tonumber(ARGV[6]) * 1000
for n = 3, #KEYS do
  local s = redis.call('HMGET', KEYS[n], 'u', 'i', 'a')
  if s[1] then
    local left = tonumber(s[3]) - now
    if left <= 0 then
      -- Past its absolute timeout, however busy.
      redis.call('DEL', KEYS[n])
    else
      local ttl = renew(KEYS[n], math.ceil(math.min(idle, left) / 1000))
      local user_wait = -1
      if ARGV[3] == '1' then
        local interval, burst = tonumber(ARGV[4]), tonumber(ARGV[5])
        for k = 9, #ARGV, 3 do
          if ARGV[k] == s[1] then
            interval, burst = tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])
            break
          end
        end
        user_wait = gcra(ARGV[7] .. 'rate:user:' .. s[1], interval, burst, now)
      end
      return {0, n - 2, s[2], user_wait, owner, name, ttl}
    end
  end
end
return {0, 0, false, -1, owner, name, 0}
