-- Ends every session of a user. KEYS[1]: the set of their sessions. ARGV[1]:
-- the key prefix.
local keys = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(keys) do
  redis.call('DEL', key)
  changed(ARGV[1], key)
end
redis.call('DEL', KEYS[1])
return #keys
