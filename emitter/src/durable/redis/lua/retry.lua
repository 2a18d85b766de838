-- `ARGV`: prefix, listener, entry id, consumer, delivery count, delay in ms, error, whether the
-- listener has a concurrency limit (`1`/`0`), whether the claim counts as an attempt (`1`; `0`
-- to postpone a delivery of an event version newer than the worker's).
local listener, id, count = ARGV[2], ARGV[3], ARGV[5]
local key, reply = held_receipt(listener, id, ARGV[4], count)
if reply then
  return reply
end
-- The delivery count the entry keeps: without this claim when it does not count.
local counted = tonumber(count)
if ARGV[9] == '0' then
  counted = math.max(counted - 1, 0)
end
forget_crashes(listener, id)
local now = now_ms()
local wait = tonumber(ARGV[6])
if ARGV[8] == '1' then
  -- In order: the entry stays pending where it is, holding back the listener's later entries,
  -- until the claim that finds it due takes it again (see `claim_in_order`). It passes to a
  -- consumer no worker is named, so that the failed claim's receipt holds it no more.
  redis.call('XCLAIM', key, listener, ':held', 0, id, 'RETRYCOUNT', int(counted), 'JUSTID')
  redis.call('ZADD', held_key(listener), int(now + wait), id)
  return { 'ok', 1 }
end
local entries = redis.call('XRANGE', key, id, id)
if #entries > 0 then
  local m = field_map(entries[1][2])
  local attempts = attempts_of(m) + counted
  local wrong = problem(m)
  if wrong then
    bury(listener, m, attempts, 'corrupt delivery (entry ' .. id .. ' of `' .. key .. '`): ' ..
      wrong .. '; its last attempt failed: ' .. ARGV[7], now)
  elseif wait > 0 then
    delay(listener, now + wait, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7], m.trace,
      m.version)
  else
    append(listener, m.event, m.emit, m.at, m.payload, int(attempts), ARGV[7], m.trace, m.version)
  end
end
redis.call('XACK', key, listener, id)
redis.call('XDEL', key, id)
return { 'ok', 1 }
