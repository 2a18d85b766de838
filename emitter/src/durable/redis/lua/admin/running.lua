-- `ARGV`: prefix, listener, then the filter (see `filter_at`).
--
-- Returns `{'ok', rows}`: every running delivery of the listener (pending, leased, the lease not
-- run out), in no particular order.
local listener = ARGV[2]
local filter = filter_at(3)
local now = now_ms()
local key = listener_key(listener)
local rows = {}
local summary = redis.pcall('XPENDING', key, listener)
if type(summary) ~= 'table' or summary.err or (tonumber(summary[1]) or 0) == 0 then
  return { 'ok', rows }
end
for _, line in ipairs(redis.call('XPENDING', key, listener, '-', '+', tonumber(summary[1]))) do
  local state, due, count, worker = pending_state(listener, line, now)
  if state == 'running' then
    local entries = redis.call('XRANGE', key, line[1], line[1])
    if #entries > 0 then
      local m = field_map(entries[1][2])
      if matches(filter, m.event, m.emit, due) then
        rows[#rows + 1] = entry_row(listener, line[1], m, state, due, count, worker)
      end
    end
  end
end
return { 'ok', rows }
