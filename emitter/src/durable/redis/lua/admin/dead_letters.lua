-- `ARGV`: prefix, what to do (`replay`, `discard` or `rehome`), the entry id to look after (empty
-- for the start), how many dead letters to look at, the listener (empty for any), the filter
-- (see `filter_at`; its times are failure times), and for `rehome` the listener to give them to.
--
-- Replays (as `replay.lua` does, with the reason as the last error), discards, or gives to
-- another listener (a new entry at the end of the dead letters) the dead letters that match.
-- Returns `{'ok', how many, last entry id looked at, '1' when none is left}`.
local op, after, budget, listener = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local filter = filter_at(6)
local to = ARGV[10]
local found = type_problem(dead_key, 'stream')
if found then
  return { 'refused', found }
end
if op == 'rehome' then
  found = check_types({ to })
  if found then
    return { 'refused', found }
  end
end
local done, last = 0, after
local entries = entries_after(dead_key, after, budget)
for _, entry in ipairs(entries) do
  local id = entry[1]
  last = id
  local m = field_map(entry[2])
  local failed = tonumber(m.failed_at) or entry_ms(id)
  if (listener == '' or m.listener == listener) and matches(filter, m.event, m.emit, failed) then
    if op == 'replay' then
      -- A dead letter without a listener, or whose stream holds another type, stays.
      if type(m.listener) == 'string' and m.listener ~= '' and not check_types({ m.listener }) then
        append(m.listener, text(m.event), text(m.emit), text(m.at), text(m.payload), '0',
          text(m.reason), m.trace, m.version)
        redis.call('XDEL', dead_key, id)
        done = done + 1
      end
    elseif op == 'rehome' then
      local fields = {}
      for i = 1, #entry[2], 2 do
        fields[#fields + 1] = entry[2][i]
        if entry[2][i] == 'listener' then
          fields[#fields + 1] = to
        else
          fields[#fields + 1] = entry[2][i + 1]
        end
      end
      redis.call('XADD', dead_key, '*', unpack(fields))
      redis.call('XDEL', dead_key, id)
      done = done + 1
    else
      redis.call('XDEL', dead_key, id)
      done = done + 1
    end
  end
end
return { 'ok', done, last, finished(#entries, budget) }
