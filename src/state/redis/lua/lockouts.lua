-- Failed-login counters, with the policy of the in-process store
-- (state/local/lockouts.rs): per (user, address) pair, per address, per user
-- (except from addresses the user logged in from lately).
-- KEYS: 1 pair, 2 address, 3 user counters; 4 pair, 5 address, 6 user recent
-- successes. ARGV: 1 operation, 2 failure window (ms), 3 first lockout (ms),
-- 4 longest lockout (ms), 5 trust after a success (ms), 6-8 thresholds (pair,
-- address, user; 0 = off), 9 reservation token, 10 outcome ('ok', 'fail',
-- 'abandon'), 11 counters the reservation holds ('111').
-- A counter is a hash (f failures, l last failure, n lockouts so far, u locked
-- until) and a sorted set `<key>:flight` of reserved checks by deadline: a check
-- whose instance died without settling it stops counting after FLIGHT.
local now = now_us()
local op = ARGV[1]
local window = tonumber(ARGV[2]) * 1000
local first_lockout = tonumber(ARGV[3]) * 1000
local max_lockout = tonumber(ARGV[4]) * 1000
local trusted_for = tonumber(ARGV[5])
local thresholds = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
local FLIGHT = 60000000
local IN_FLIGHT_WAIT = 1000000

local function load(key)
  local v = redis.call('HMGET', key, 'f', 'l', 'n', 'u')
  redis.call('ZREMRANGEBYSCORE', key .. ':flight', '-inf', now)
  return {
    f = tonumber(v[1]) or 0, l = tonumber(v[2]) or 0,
    n = tonumber(v[3]) or 0, u = tonumber(v[4]) or 0,
    i = redis.call('ZCARD', key .. ':flight'),
  }
end

-- No recent failure, no running lockout, no check in flight.
local function forgotten(c)
  return c.i == 0 and now - c.l > window and c.u <= now
end

local function save(key, c)
  redis.call('HSET', key, 'f', c.f, 'l', string.format('%d', c.l), 'n', c.n, 'u', string.format('%d', c.u))
  local keep = math.max(c.l + window, c.u, now + FLIGHT) - now
  redis.call('PEXPIRE', key, math.ceil(keep / 1000))
end

local function fresh(c)
  return {f = 0, l = now, n = 0, u = 0, i = c.i}
end

local trusted = redis.call('EXISTS', KEYS[4]) == 1
local function counts(index)
  return thresholds[index] > 0 and not (index == 3 and trusted)
end

-- The longest wait any counter imposes: a running lockout, and with
-- `in_flight`, every allowed check already reserved.
local function wait_for(in_flight)
  local wait = 0
  for index = 1, 3 do
    if counts(index) then
      local c = load(KEYS[index])
      if c.u > now then
        wait = math.max(wait, c.u - now)
      elseif in_flight then
        local failures = c.f
        if forgotten(c) then
          failures = 0
        end
        if failures + c.i >= thresholds[index] then
          wait = math.max(wait, IN_FLIGHT_WAIT)
        end
      end
    end
  end
  return wait
end

if op == 'locked' then
  return wait_for(false)
end

if op == 'reserve' then
  local wait = wait_for(true)
  if wait > 0 then
    return {wait, ''}
  end
  local held = ''
  for index = 1, 3 do
    if thresholds[index] > 0 then
      local c = load(KEYS[index])
      if forgotten(c) then
        c = fresh(c)
      end
      save(KEYS[index], c)
      redis.call('ZADD', KEYS[index] .. ':flight', now + FLIGHT, ARGV[9])
      redis.call('PEXPIRE', KEYS[index] .. ':flight', FLIGHT / 1000)
      held = held .. '1'
    else
      held = held .. '0'
    end
  end
  return {0, held}
end

if op == 'settle' then
  local outcome = ARGV[10]
  for index = 1, 3 do
    if string.sub(ARGV[11], index, index) == '1' then
      local key = KEYS[index]
      redis.call('ZREM', key .. ':flight', ARGV[9])
      if outcome == 'fail' then
        local c = load(key)
        if forgotten(c) then
          c = fresh(c)
        end
        c.f = c.f + 1
        c.l = now
        if c.f >= thresholds[index] then
          c.n = c.n + 1
          c.f = 0
          c.u = now + math.min(first_lockout * 2 ^ (c.n - 1), max_lockout)
        end
        save(key, c)
      end
    end
  end
  if outcome == 'ok' then
    -- A success forgets the pair's failures and lockouts.
    if redis.call('EXISTS', KEYS[1]) == 1 then
      redis.call('HSET', KEYS[1], 'f', 0, 'n', 0, 'u', 0)
    end
    if trusted_for > 0 then
      for index = 4, 6 do
        redis.call('SET', KEYS[index], '1', 'PX', trusted_for)
      end
    end
  end
  return 1
end

if op == 'familiar' then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return 1
  end
  local c = load(KEYS[2])
  local clean = forgotten(c) or (c.f == 0 and c.u <= now)
  if clean and redis.call('EXISTS', KEYS[6]) == 1 then
    return 1
  end
  return 0
end

return redis.error_reply('unknown operation ' .. op)
