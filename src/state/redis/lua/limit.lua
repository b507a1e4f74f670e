-- One rate-limit check. KEYS[1]: the limit's key. ARGV: interval (µs), burst.
-- Returns 0 (go on) or the µs to wait.
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_us())
