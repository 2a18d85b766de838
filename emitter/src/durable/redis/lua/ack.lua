-- `ARGV`: prefix, then per stream and consumer: listener, consumer, first entry id, last entry
-- id, receipt count, then per receipt (in entry order, each once): entry id, delivery count.
local done = 0
local i = 2
while i <= #ARGV do
  local listener, consumer, first, last = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local n = tonumber(ARGV[i + 4])
  local from = i + 5
  i = from + 2 * n
  local key = listener_key(listener)
  -- The delivery counts of the consumer's pending entries in the range, in one read. Its own
  -- entries that are not in this batch (still running) may fill the page: receipts not on it
  -- are then looked up one by one.
  local page = 2 * n + 16
  local pending = redis.pcall('XPENDING', key, listener, first, last, page, consumer)
  if type(pending) == 'table' and not pending.err then
    local counts = {}
    for _, entry in ipairs(pending) do
      counts[entry[1]] = tonumber(entry[4])
    end
    local full = #pending >= page
    local ids = {}
    for r = from, i - 1, 2 do
      local id, count = ARGV[r], tonumber(ARGV[r + 1])
      local held = counts[id]
      if held == nil and full then
        if holds(key, listener, id, consumer, count) then
          held = count
        end
      end
      if held == count then
        ids[#ids + 1] = id
        if count > 1 then
          -- Claimed before: it may have crashes to forget.
          forget_crashes(listener, id)
        end
      end
    end
    -- In slices: Lua's `unpack` takes a few thousand values at most.
    for s = 1, #ids, 1000 do
      local e = math.min(s + 999, #ids)
      done = done + redis.call('XACK', key, listener, unpack(ids, s, e))
      redis.call('XDEL', key, unpack(ids, s, e))
    end
  end
end
return { 'ok', done }
