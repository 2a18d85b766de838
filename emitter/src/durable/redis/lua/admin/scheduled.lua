-- `ARGV`: prefix, listener (empty for every listener), the cursor (a due time in ms and how many
-- deliveries due then were listed; both empty for the start), how many to look at, the most to
-- answer, then the filter (see `filter_at`).
--
-- Returns `{'ok', rows, cursor time, cursor count, '1' when none is left}`: the deliveries due
-- later by due time: the delayed ones (due delayed ones are moved to their streams first), and
-- the retries held in place for listeners with a concurrency limit; at one due time, the
-- delayed ones first (in the sorted set's order), then the held ones by listener and entry.
local listener, budget, limit = ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[6])
local filter = filter_at(7)
local now = now_ms()
move_due(now, 1000)
local at, skip = tonumber(ARGV[3]), tonumber(ARGV[4]) or 0
if at == nil or at <= now then
  at, skip = now, 0
end

-- The held retries due later, sorted.
local held = {}
local names = { listener }
if listener == '' then
  names = redis.call('SMEMBERS', listeners_key)
end
for _, name in ipairs(names) do
  local found = redis.call('ZRANGE', held_key(name), '(' .. int(now), '+inf', 'BYSCORE',
    'WITHSCORES')
  for i = 1, #found, 2 do
    held[#held + 1] = { score = tonumber(found[i + 1]), listener = name, id = found[i] }
  end
end
table.sort(held, function(a, b)
  if a.score ~= b.score then
    return a.score < b.score
  end
  if a.listener ~= b.listener then
    return a.listener < b.listener
  end
  return id_less(a.id, b.id)
end)

-- Where to start: after `skip` deliveries due at `at`, delayed ones first.
local offset, held_skip = 0, 0
if skip > 0 then
  local delayed_then = redis.call('ZCOUNT', delayed_key, int(at), int(at))
  offset = math.min(skip, delayed_then)
  held_skip = skip - offset
end
local h = 1
while held[h] and (held[h].score < at or (held[h].score == at and held_skip > 0)) do
  if held[h].score == at then
    held_skip = held_skip - 1
  end
  h = h + 1
end

local rows, looked = {}, 0
local page, p, exhausted, from = {}, 1, false, at
local function next_delayed()
  if p > #page and not exhausted then
    page = redis.call('ZRANGE', delayed_key, int(from), '+inf', 'BYSCORE', 'LIMIT', offset,
      math.min(budget, 1000), 'WITHSCORES')
    p = 1
    if #page == 0 then
      exhausted = true
    end
  end
  if p > #page then
    return nil
  end
  return page[p], tonumber(page[p + 1])
end

while #rows < limit and looked < budget do
  local member, score = next_delayed()
  local take_held = held[h] and (score == nil or held[h].score < score)
  if member == nil and not take_held then
    break
  end
  local due
  if take_held then
    local item = held[h]
    h = h + 1
    due = item.score
    local key = listener_key(item.listener)
    local line = pending_line(key, item.listener, item.id)
    local entries = redis.call('XRANGE', key, item.id, item.id)
    if line and #entries > 0 then
      local m = field_map(entries[1][2])
      if matches(filter, m.event, m.emit, due) then
        rows[#rows + 1] = entry_row(item.listener, item.id, m, 'scheduled', due,
          tonumber(line[4]), nil)
      end
    end
  else
    p = p + 2
    offset = offset + 1
    due = score
    local d = decode_delayed(member)
    if d and (listener == '' or d[1] == listener) and matches(filter, d[3], d[4], due) then
      rows[#rows + 1] = delayed_row(d, due, 'scheduled')
    end
  end
  looked = looked + 1
  if due == at then
    skip = skip + 1
  else
    at, skip = due, 1
  end
end
local done = '0'
if exhausted and held[h] == nil then
  done = '1'
elseif #rows < limit and looked < budget then
  done = '1'
end
return { 'ok', rows, int(at), int(skip), done }
