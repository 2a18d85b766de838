-- `ARGV`: prefix. Returns `{'ok', ms until the next delayed delivery is due, or -1}`.
local first = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
if #first == 0 then
  return { 'ok', -1 }
end
local wait = tonumber(first[2]) - now_ms()
if wait < 0 then
  wait = 0
end
return { 'ok', wait }
