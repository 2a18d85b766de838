-- `ARGV`: prefix, how many listener names follow, the names, then per subscription: event id,
-- listener, concurrency limit (`0` for none), the newest version of the event the worker reads.
--
-- Deletes every subscription of the named listeners, then records the subscriptions given, seen
-- now: in the hash `{prefix}:subscriptions`, field `{event id}\n{listener}`, value `{limit}
-- {seen at in ms} {version}`. Returns `{'ok', how many subscriptions it deleted}`.
local key = prefix .. ':subscriptions'
local found = type_problem(key, 'hash')
if found then
  return { 'refused', found }
end
local count = tonumber(ARGV[2])
local replace = {}
for i = 3, 2 + count do
  replace[ARGV[i]] = true
end
local deleted = 0
for _, field in ipairs(redis.call('HKEYS', key)) do
  local listener = string.match(field, '^[^\n]*\n(.*)$')
  if listener and replace[listener] then
    redis.call('HDEL', key, field)
    deleted = deleted + 1
  end
end
local seen = int(now_ms())
for i = 3 + count, #ARGV, 4 do
  redis.call('HSET', key, ARGV[i] .. '\n' .. ARGV[i + 1],
    ARGV[i + 2] .. ' ' .. seen .. ' ' .. ARGV[i + 3])
end
return { 'ok', deleted }
