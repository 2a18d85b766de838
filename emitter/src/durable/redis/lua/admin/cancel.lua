-- `ARGV`: prefix, id (as `show.lua` takes it).
--
-- Deletes the delivery if it waits or is scheduled. Returns `{'ok', outcome}`: `cancelled`,
-- `running` (left alone), `dead` (a dead letter: discard it) or `not found`.
local id = ARGV[2]
local now = now_ms()
local entry, listener = string.match(id, '^(%d+%-%d+)/(.+)$')
if entry then
  local key = listener_key(listener)
  if redis.call('TYPE', key)['ok'] ~= 'stream'
    or #redis.call('XRANGE', key, entry, entry) == 0 then
    return { 'ok', 'not found' }
  end
  local line = pending_line(key, listener, entry)
  if line then
    if pending_state(listener, line, now) == 'running' then
      return { 'ok', 'running' }
    end
    redis.call('XACK', key, listener, entry)
    redis.call('ZREM', held_key(listener), entry)
  end
  redis.call('XDEL', key, entry)
  return { 'ok', 'cancelled' }
end
local score, seq = string.match(id, '^delayed:(%d+):(%d+)$')
if score then
  if redis.call('TYPE', delayed_key)['ok'] == 'zset' then
    for _, member in ipairs(redis.call('ZRANGE', delayed_key, score, score, 'BYSCORE')) do
      local d = decode_delayed(member)
      if d and d[2] == seq then
        redis.call('ZREM', delayed_key, member)
        return { 'ok', 'cancelled' }
      end
    end
  end
  return { 'ok', 'not found' }
end
if string.match(id, '^%d+%-%d+$') and redis.call('TYPE', dead_key)['ok'] == 'stream'
  and #redis.call('XRANGE', dead_key, id, id) > 0 then
  return { 'ok', 'dead' }
end
return { 'ok', 'not found' }
