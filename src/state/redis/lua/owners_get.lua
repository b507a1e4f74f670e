-- Ownership records, in order. KEYS: record keys. ARGV[1]: retention (ms).
-- Returns owner and name (false for none) of each; looking renews retention.
local out = {}
local retention = tonumber(ARGV[1])
for index, key in ipairs(KEYS) do
  local r = redis.call('HMGET', key, 'o', 'n')
  out[2 * index - 1] = r[1]
  out[2 * index] = r[2]
  if r[1] then
    renew(key, retention)
  end
end
return out
