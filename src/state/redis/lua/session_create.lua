-- A new session. KEYS[1]: its key; KEYS[2]: the set of its user's sessions.
-- ARGV: 1 user, 2 identity (JSON), 3 idle timeout (ms), 4 absolute timeout (ms).
-- The session expires when idle; `a` holds its absolute end on Redis's clock.
local now = now_us()
local absolute = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'i', ARGV[2], 'a', string.format('%d', now + absolute * 1000))
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[3]), absolute))
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[2], absolute)
-- Keep the user's set to sessions that still exist.
if redis.call('SCARD', KEYS[2]) > 64 then
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', key) == 0 then
      redis.call('SREM', KEYS[2], key)
    end
  end
end
return 1
