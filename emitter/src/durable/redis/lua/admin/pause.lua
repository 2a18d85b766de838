-- `ARGV`: prefix, listener. Pauses the listener since now; returns `{'ok', 1}`, or `{'ok', 0}`
-- when it was paused already.
local found = type_problem(paused_key, 'hash')
if found then
  return { 'refused', found }
end
return { 'ok', redis.call('HSETNX', paused_key, ARGV[2], int(now_ms())) }
