-- `ARGV`: prefix, listener, entry id, consumer, delivery count, reason.
local listener, id, count = ARGV[2], ARGV[3], ARGV[5]
local key, reply = held_receipt(listener, id, ARGV[4], count)
if reply then
  return reply
end
local entries = redis.call('XRANGE', key, id, id)
if #entries > 0 then
  local m = field_map(entries[1][2])
  bury(listener, m, attempts_of(m) + tonumber(count), ARGV[6], now_ms())
end
redis.call('XACK', key, listener, id)
redis.call('XDEL', key, id)
forget_crashes(listener, id)
return { 'ok', 1 }
