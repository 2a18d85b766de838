-- `ARGV`: prefix, listener, entry id, consumer, delivery count, delay in ms, error.
local listener, id, count = ARGV[2], ARGV[3], ARGV[5]
local key, reply = held_receipt(listener, id, ARGV[4], count)
if reply then
  return reply
end
local now = now_ms()
local entries = redis.call('XRANGE', key, id, id)
if #entries > 0 then
  local m = field_map(entries[1][2])
  local attempts = attempts_of(m) + tonumber(count)
  local wrong = problem(m)
  local wait = tonumber(ARGV[6])
  if wrong then
    bury(listener, m, attempts, 'corrupt delivery (entry ' .. id .. ' of `' .. key .. '`): ' ..
      wrong .. '; its last attempt failed: ' .. ARGV[7], now)
  elseif wait > 0 then
    delay(listener, now + wait, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7])
  else
    append(listener, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7])
  end
end
redis.call('XACK', key, listener, id)
redis.call('XDEL', key, id)
return { 'ok', 1 }
