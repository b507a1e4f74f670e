-- Gives a place back; with an id, the resource Livy made counts as live.
-- KEYS: 1 the user's places in flight, 2 every creation in flight, 3 the user's
-- live resources, 4 owners of live resources (hash id -> user), 5 users with any.
-- ARGV: 1 ticket, 2 the new resource's id ('' for none), 3 the user.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], math.floor(now_us() / 1000))
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  redis.call('SADD', KEYS[5], ARGV[3])
end
return 1
