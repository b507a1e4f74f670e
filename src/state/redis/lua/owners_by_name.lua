-- The record of the resource called a name. KEYS[1]: the name's index key.
-- ARGV: 1 the record keys' prefix (up to the id), 2 retention (ms).
-- Returns {id, owner, name} or nothing.
local id = redis.call('GET', KEYS[1])
if not id then
  return false
end
local key = ARGV[1] .. id
local r = redis.call('HMGET', key, 'o', 'n')
if not r[1] then
  redis.call('DEL', KEYS[1])
  return false
end
renew(key, tonumber(ARGV[2]))
renew(KEYS[1], tonumber(ARGV[2]))
return {id, r[1], r[2]}
