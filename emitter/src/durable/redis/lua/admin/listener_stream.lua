-- `ARGV`: prefix, what to do (`discard` or `rehome`), the listener, the entry id to look after
-- (empty for the start), how many entries to look at, and for `rehome` the listener to give them
-- to.
--
-- Deletes the listener's entries that are not running (acknowledging the pending ones), or gives
-- them to the other listener (appended to its stream, keeping their attempts and last error).
-- Returns `{'ok', how many, last entry id looked at, '1' when none is left}`.
local op, listener, after, budget, to = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local key = listener_key(listener)
if redis.call('TYPE', key)['ok'] ~= 'stream' then
  return { 'ok', 0, after, '1' }
end
if op == 'rehome' then
  local found = check_types({ to })
  if found then
    return { 'refused', found }
  end
end
local now = now_ms()
local done, last = 0, after
local entries = entries_after(key, after, budget)
for _, entry in ipairs(entries) do
  local id = entry[1]
  last = id
  local line = pending_line(key, listener, id)
  local state, count = 'waiting', 0
  if line then
    local pending, _, delivered = pending_state(listener, line, now)
    state, count = pending, delivered
  end
  if state ~= 'running' then
    if op == 'rehome' then
      local m = field_map(entry[2])
      append(to, text(m.event), text(m.emit), text(m.at), text(m.payload),
        int(attempts_of(m) + count), m.error, m.trace, m.version)
    end
    if line then
      redis.call('XACK', key, listener, id)
      redis.call('ZREM', held_key(listener), id)
    end
    redis.call('XDEL', key, id)
    done = done + 1
  end
end
return { 'ok', done, last, finished(#entries, budget) }
