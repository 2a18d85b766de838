-- `ARGV`: prefix, id (an entry of a listener's stream `<entry>/<listener>`, a delayed delivery
-- `delayed:<due>:<seq>`, or a dead letter `<entry>`).
--
-- Returns `{'ok', row, payload, trace}`, or `{'ok'}` when there is no such delivery.
local id = ARGV[2]
local now = now_ms()
local entry, listener = string.match(id, '^(%d+%-%d+)/(.+)$')
if entry then
  local key = listener_key(listener)
  if redis.call('TYPE', key)['ok'] ~= 'stream' then
    return { 'ok' }
  end
  local entries = redis.call('XRANGE', key, entry, entry)
  if #entries == 0 then
    return { 'ok' }
  end
  local m = field_map(entries[1][2])
  local state, due, count, worker = 'waiting', entry_ms(entry), 0, nil
  local line = pending_line(key, listener, entry)
  if line then
    state, due, count, worker = pending_state(listener, line, now)
  end
  return { 'ok', entry_row(listener, entry, m, state, due, count, worker), text(m.payload),
    text(m.trace) }
end
local score, seq = string.match(id, '^delayed:(%d+):(%d+)$')
if score then
  if redis.call('TYPE', delayed_key)['ok'] ~= 'zset' then
    return { 'ok' }
  end
  for _, member in ipairs(redis.call('ZRANGE', delayed_key, score, score, 'BYSCORE')) do
    local d = decode_delayed(member)
    if d and d[2] == seq then
      local state = 'scheduled'
      if tonumber(score) <= now then
        state = 'waiting'
      end
      return { 'ok', delayed_row(d, tonumber(score), state), text(d[6]), text(d[9]) }
    end
  end
  return { 'ok' }
end
if string.match(id, '^%d+%-%d+$') and redis.call('TYPE', dead_key)['ok'] == 'stream' then
  local entries = redis.call('XRANGE', dead_key, id, id)
  if #entries > 0 then
    local m = field_map(entries[1][2])
    return { 'ok', dead_row(id, m), text(m.payload), text(m.trace) }
  end
end
return { 'ok' }
