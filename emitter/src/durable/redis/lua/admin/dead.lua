-- `ARGV`: prefix, listener (empty for every listener), the entry id to look after (empty for the
-- start), how many dead letters to look at, the most to answer, then the filter (see
-- `filter_at`; its times are failure times).
--
-- Returns `{'ok', rows, last entry id looked at, '1' when none is left}`: dead letters in the
-- order they died.
local listener, after, budget, limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local filter = filter_at(6)
if redis.call('TYPE', dead_key)['ok'] ~= 'stream' then
  return { 'ok', {}, after, '1' }
end
-- Dead letters are added when they fail: none before the filter's start is due to be looked at.
if after == '' and filter.after and filter.after > 0 then
  after = int(filter.after - 1) .. '-18446744073709551615'
end
local rows, last = {}, after
local entries = entries_after(dead_key, after, budget)
for _, entry in ipairs(entries) do
  last = entry[1]
  local m = field_map(entry[2])
  local failed = tonumber(m.failed_at) or entry_ms(entry[1])
  if (listener == '' or m.listener == listener) and matches(filter, m.event, m.emit, failed) then
    rows[#rows + 1] = dead_row(entry[1], m)
    if #rows >= limit then
      return { 'ok', rows, last, '0' }
    end
  end
end
return { 'ok', rows, last, finished(#entries, budget) }
