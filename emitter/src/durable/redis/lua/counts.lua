-- `ARGV`: prefix. Returns `{'ok', waiting, leased, dead}`.
local lease = tonumber(redis.call('GET', prefix .. ':lease') or '30000') or 30000
local waiting = redis.call('ZCARD', delayed_key)
local leased = 0
for _, listener in ipairs(redis.call('SMEMBERS', listeners_key)) do
  local key = listener_key(listener)
  local length = redis.call('XLEN', key)
  local live = 0
  local summary = redis.pcall('XPENDING', key, listener)
  if type(summary) == 'table' and not summary.err then
    local pending = tonumber(summary[1]) or 0
    if pending > 0 then
      local expired = redis.call('XPENDING', key, listener, 'IDLE', lease, '-', '+', pending)
      live = pending - #expired
    end
  end
  leased = leased + live
  waiting = waiting + length - live
end
return { 'ok', waiting, leased, redis.call('XLEN', dead_key) }
