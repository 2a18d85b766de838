-- `ARGV`: prefix, listeners with a concurrency limit... Returns `{'ok', ms until the next
-- delayed delivery or held retry (of a listener not paused) is due, or -1}`.
local soonest = nil
local function consider(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local due = tonumber(first[2])
    if soonest == nil or due < soonest then
      soonest = due
    end
  end
end
consider(delayed_key)
for i = 2, #ARGV do
  if redis.call('HEXISTS', paused_key, ARGV[i]) == 0 then
    consider(held_key(ARGV[i]))
  end
end
if soonest == nil then
  return { 'ok', -1 }
end
local wait = soonest - now_ms()
if wait < 0 then
  wait = 0
end
return { 'ok', wait }
