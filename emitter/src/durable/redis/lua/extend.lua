-- `ARGV`: prefix, then per receipt: listener, entry id, consumer, delivery count.
for i = 2, #ARGV - 3, 4 do
  local listener, id, consumer = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = listener_key(listener)
  if holds(key, listener, id, consumer, ARGV[i + 3]) then
    redis.call('XCLAIM', key, listener, consumer, 0, id, 'JUSTID')
  end
end
return { 'ok' }
