-- `ARGV`: prefix. Returns `{'ok', waiting, leased, dead}`.
--
-- Leased: pending entries idle for less than the last claim's lease, except those held for a
-- retry (they wait). Waiting: every other entry of a listener stream, and the delayed ones.
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
      local idle = {}
      for _, entry in ipairs(redis.call('XPENDING', key, listener, 'IDLE', lease, '-', '+',
          pending)) do
        idle[entry[1]] = true
      end
      local not_live = 0
      for _ in pairs(idle) do
        not_live = not_live + 1
      end
      for _, id in ipairs(redis.call('ZRANGE', held_key(listener), 0, -1)) do
        if not idle[id] then
          not_live = not_live + 1
        end
      end
      live = pending - not_live
    end
  end
  leased = leased + live
  waiting = waiting + length - live
end
return { 'ok', waiting, leased, redis.call('XLEN', dead_key) }
