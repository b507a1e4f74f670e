-- Sets the live count right from Livy's listing.
-- KEYS: 1 owners of live resources (hash id -> user), 2 users with any.
-- ARGV: 1 the prefix of a user's live-resources key, 2 when the listing was asked
-- for (ms), 3 how many users are concerned (-1: all), those users, then the
-- listing as id, owner pairs.
local prefix, asked = ARGV[1], tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local i = 4
local concerned = nil
if n >= 0 then
  concerned = {}
  for _ = 1, n do
    concerned[ARGV[i]] = true
    i = i + 1
  end
end
local listed = {}
for k = i, #ARGV, 2 do
  listed[ARGV[k]] = ARGV[k + 1]
end
-- Counted before the listing was asked for, and not in it: ended.
for _, user in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not concerned or concerned[user] then
    local key = prefix .. user
    local entries = redis.call('HGETALL', key)
    for j = 1, #entries, 2 do
      local id, at = entries[j], tonumber(entries[j + 1])
      if at < asked and listed[id] == nil then
        redis.call('HDEL', key, id)
        redis.call('HDEL', KEYS[1], id)
      end
    end
    if redis.call('HLEN', key) == 0 then
      redis.call('SREM', KEYS[2], user)
    end
  end
end
-- Listed and not counted (made elsewhere, or counted under another owner).
for id, user in pairs(listed) do
  if not concerned or concerned[user] then
    local known = redis.call('HGET', KEYS[1], id)
    if known ~= user then
      if known then
        redis.call('HDEL', prefix .. known, id)
      end
      redis.call('HSET', prefix .. user, id, asked)
      redis.call('HSET', KEYS[1], id, user)
      redis.call('SADD', KEYS[2], user)
    end
  end
end
return 1
