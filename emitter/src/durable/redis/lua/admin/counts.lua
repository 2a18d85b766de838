-- `ARGV`: prefix. Returns `{'ok', {listener, waiting, scheduled, running, oldest waiting due (ms,
-- empty for none)}...}` for every listener's stream and held retries; the delayed deliveries and
-- the dead letters are counted by `delayed_counts.lua` and `dead_counts.lua`.
local now = now_ms()
local out = {}
for _, listener in ipairs(redis.call('SMEMBERS', listeners_key)) do
  local key = listener_key(listener)
  if redis.call('TYPE', key)['ok'] == 'stream' then
    local waiting, scheduled, running, oldest = 0, 0, 0, nil
    local length = redis.call('XLEN', key)
    local pending = 0
    local summary = redis.pcall('XPENDING', key, listener)
    if type(summary) == 'table' and not summary.err then
      pending = tonumber(summary[1]) or 0
    end
    if pending > 0 then
      for _, line in ipairs(redis.call('XPENDING', key, listener, '-', '+', pending)) do
        local state, due = pending_state(listener, line, now)
        if state == 'running' then
          running = running + 1
        elseif state == 'scheduled' then
          scheduled = scheduled + 1
        else
          waiting = waiting + 1
          if oldest == nil or due < oldest then
            oldest = due
          end
        end
      end
    end
    local fresh = length - pending
    if fresh > 0 then
      waiting = waiting + fresh
      local start = '-'
      local group = last_delivered(key, listener)
      if group then
        start = '(' .. group
      end
      local first = redis.call('XRANGE', key, start, '+', 'COUNT', 1)
      if #first > 0 then
        local due = entry_ms(first[1][1])
        if oldest == nil or due < oldest then
          oldest = due
        end
      end
    end
    if waiting + scheduled + running > 0 then
      local at = ''
      if oldest then
        at = int(oldest)
      end
      out[#out + 1] = { listener, waiting, scheduled, running, at }
    end
  end
end
return { 'ok', out }
