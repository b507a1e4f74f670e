-- Releases live resources by id.
-- KEYS: 1 owners of live resources (hash id -> user), 2 users with any.
-- ARGV: 1 the prefix of a user's live-resources key, then ids.
for k = 2, #ARGV do
  local user = redis.call('HGET', KEYS[1], ARGV[k])
  if user then
    local key = ARGV[1] .. user
    redis.call('HDEL', key, ARGV[k])
    redis.call('HDEL', KEYS[1], ARGV[k])
    if redis.call('HLEN', key) == 0 then
      redis.call('SREM', KEYS[2], user)
    end
  end
end
return 1
