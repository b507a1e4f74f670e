-- Shared by every script: Redis's own clock (so every instance counts time
-- alike) and GCRA on one key. Times are in microseconds.

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Gives `key` `ttl` ms to live, unless it has within a second (a tenth of `ttl`
-- when shorter) of that already: a session or record used many times a second is
-- written once a second, not at every use (each write goes to the append-only
-- file and to every replica). Returns the ms it now has to live.
local function renew(key, ttl)
  local left = redis.call('PTTL', key)
  if ttl - left > math.min(1000, ttl / 10) then
    redis.call('PEXPIRE', key, ttl)
    return ttl
  end
  return left
end

-- Tells every instance that `key` changed or is gone, on the channel
-- `<prefix>invalidate` (their near caches: src/state/redis/near.rs). A Redis
-- user not allowed the channel fails only the message, not the change: its
-- instances cannot subscribe either, so they keep no copies.
local function changed(prefix, key)
  redis.pcall('PUBLISH', prefix .. 'invalidate', key)
end

-- GCRA (the generic cell rate algorithm, as governor uses in-process): on
-- average one request per `interval` µs, up to `burst` at once. The key holds
-- the theoretical arrival time and expires when the allowance is full again.
-- Returns 0 when the request may go on (and counts it), else the µs to wait.
local function gcra(key, interval, burst, now)
  if interval <= 0 or burst <= 0 then
    return 0
  end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local allowed_at = tat - (burst - 1) * interval
  if now < allowed_at then
    return allowed_at - now
  end
  local next_tat = tat + interval
  redis.call('SET', key, string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
  return 0
end
