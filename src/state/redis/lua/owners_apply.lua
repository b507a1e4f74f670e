-- Changes to ownership records, all applied or none (a script runs whole).
-- ARGV: 1 retention (ms), 2 key prefix, then per change five values:
-- 'put', kind, id, owner, name ('' for none, else '=' .. name) or
-- 'del', kind, id, '', ''.
local retention = tonumber(ARGV[1])
local prefix = ARGV[2]
for k = 3, #ARGV, 5 do
  local op, kind, id = ARGV[k], ARGV[k + 1], ARGV[k + 2]
  local key = prefix .. 'owner:' .. kind .. ':' .. id
  local old = redis.call('HGET', key, 'n')
  local new = nil
  if op == 'put' and ARGV[k + 4] ~= '' then
    new = string.sub(ARGV[k + 4], 2)
  end
  if old and old ~= new then
    local index = prefix .. 'owner-name:' .. kind .. ':' .. old
    if redis.call('GET', index) == id then
      redis.call('DEL', index)
    end
  end
  if op == 'put' then
    redis.call('HSET', key, 'o', ARGV[k + 3])
    if new then
      redis.call('HSET', key, 'n', new)
      redis.call('SET', prefix .. 'owner-name:' .. kind .. ':' .. new, id, 'PX', retention)
    else
      redis.call('HDEL', key, 'n')
    end
    redis.call('PEXPIRE', key, retention)
  else
    redis.call('DEL', key)
  end
  changed(prefix, key)
end
return 1
