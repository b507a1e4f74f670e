-- Ends one session. KEYS[1]: its key. ARGV[1]: the key prefix.
local user = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
changed(ARGV[1], KEYS[1])
if user then
  redis.call('SREM', ARGV[1] .. 'user-sessions:' .. user, KEYS[1])
end
return 1
