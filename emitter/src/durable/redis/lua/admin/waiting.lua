-- `ARGV`: prefix, listener, the entry id to look after (empty for the start), how many entries to
-- look at, the most to answer, then the filter (see `filter_at`).
--
-- Returns `{'ok', rows, last entry id looked at, '1' when none is left}`: the listener's waiting
-- deliveries in stream order (due delayed ones are moved to their streams first): its pending
-- entries whose lease ran out, were released or whose retry is due, then its new entries.
local listener, after, budget, limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local filter = filter_at(6)
local now = now_ms()
move_due(now, 1000)
local key = listener_key(listener)
if redis.call('TYPE', key)['ok'] ~= 'stream' then
  return { 'ok', {}, after, '1' }
end
local rows, last = {}, after
local group = last_delivered(key, listener)
if group and (after == '' or id_less(after, group)) then
  local start = '-'
  if after ~= '' then
    start = '(' .. after
  end
  local lines = redis.call('XPENDING', key, listener, start, group, budget)
  for _, line in ipairs(lines) do
    last = line[1]
    local state, due, count = pending_state(listener, line, now)
    if state == 'waiting' then
      local entries = redis.call('XRANGE', key, line[1], line[1])
      if #entries > 0 then
        local m = field_map(entries[1][2])
        if matches(filter, m.event, m.emit, due) then
          rows[#rows + 1] = entry_row(listener, line[1], m, state, due, count, nil)
          if #rows >= limit then
            return { 'ok', rows, last, '0' }
          end
        end
      end
    end
  end
  if #lines >= budget then
    return { 'ok', rows, last, '0' }
  end
  budget = budget - #lines
  last = group
end
local entries = entries_after(key, last, budget)
for _, entry in ipairs(entries) do
  last = entry[1]
  local m = field_map(entry[2])
  local due = entry_ms(entry[1])
  if matches(filter, m.event, m.emit, due) then
    rows[#rows + 1] = entry_row(listener, entry[1], m, 'waiting', due, 0, nil)
    if #rows >= limit then
      return { 'ok', rows, last, '0' }
    end
  end
end
return { 'ok', rows, last, finished(#entries, budget) }
