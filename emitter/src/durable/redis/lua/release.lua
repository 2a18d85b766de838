-- `ARGV`: prefix, then per receipt: listener, entry id, consumer, delivery count.
--
-- A released entry stays pending, idle as if its lease ran out long ago, with the delivery
-- count it had before the claim, under a consumer no worker is named (so that the receipt holds
-- it no more): the next claim, any worker's, takes it at once, as the same attempt.
local released = 0
for i = 2, #ARGV - 3, 4 do
  local listener, id, consumer, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local key = listener_key(listener)
  if holds(key, listener, id, consumer, count) then
    redis.call('XCLAIM', key, listener, ':released', 0, id, 'IDLE', '1099511627776',
      'RETRYCOUNT', int(math.max(count - 1, 0)), 'JUSTID')
    released = released + 1
  end
end
return { 'ok', released }
