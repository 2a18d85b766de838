-- Shared by the operator's scripts, after the store's prelude.

-- A pending entry idle for less than the lease of the last claim is running.
local lease = tonumber(redis.call('GET', prefix .. ':lease') or '30000') or 30000
local workers_key = prefix .. ':workers'
local worker_info_key = prefix .. ':worker_info'

-- What the listeners did in the minute that starts at `minute` (ms): fields `d:`, `f:` and `r:`
-- (delivered, failed, retried) followed by the listener.
local function activity_key(minute)
  return prefix .. ':activity:' .. int(minute)
end

local function entry_ms(id)
  local ms = id_parts(id)
  return ms
end

-- The next `count` entries of stream `key` after entry `after` (empty: from the start).
local function entries_after(key, after, count)
  local start = '-'
  if after ~= '' then
    start = '(' .. after
  end
  return redis.call('XRANGE', key, start, '+', 'COUNT', count)
end

-- `'1'` when a step that looked at `looked` entries, and could look at `budget`, reached the end.
local function finished(looked, budget)
  if looked < budget then
    return '1'
  end
  return '0'
end

-- Where `listener`'s group has delivered to, or nil when it has no group.
local function last_delivered(key, listener)
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) ~= 'table' or groups.err then
    return nil
  end
  for _, group in ipairs(groups) do
    local info = field_map(group)
    if info['name'] == listener then
      return info['last-delivered-id']
    end
  end
  return nil
end

-- The state of a pending entry of `listener` from its `XPENDING` line (id, consumer, idle,
-- delivery count): `running`, `waiting` or `scheduled`, its due time (running: when its lease
-- runs out), its delivery count, and its worker while it runs.
local function pending_state(listener, line, now)
  local id, consumer, idle, count = line[1], line[2], tonumber(line[3]), tonumber(line[4])
  local held = redis.call('ZSCORE', held_key(listener), id)
  if held then
    held = tonumber(held)
    if held > now then
      return 'scheduled', held, count, nil
    end
    return 'waiting', held, count, nil
  end
  if consumer ~= ':held' and consumer ~= ':released' and idle < lease then
    return 'running', now + lease - idle, count, consumer
  end
  -- Due since its lease ran out (a released entry: since it was stored).
  return 'waiting', math.max(entry_ms(id), now - idle + lease), count, nil
end

-- The `XPENDING` line of entry `id`, or nil when it is not pending.
local function pending_line(key, listener, id)
  local lines = redis.pcall('XPENDING', key, listener, id, id, 1)
  if type(lines) == 'table' and not lines.err and #lines > 0 then
    return lines[1]
  end
  return nil
end

local function text(value)
  if type(value) == 'string' then
    return value
  end
  return ''
end

-- A delivery as the scripts answer it: id, state, listener, event id, emit id, emitted at, due,
-- attempts, worker, error (strings).
local function entry_row(listener, id, m, state, due, count, worker)
  return { id .. '/' .. listener, state, listener, text(m.event), text(m.emit), text(m.at),
    int(due), int(attempts_of(m) + count), worker or '', text(m.error) }
end

-- A delayed member, decoded (see the prelude's `delay`), as a row.
local function delayed_row(d, score, state)
  return { 'delayed:' .. int(score) .. ':' .. text(d[2]), state, text(d[1]), text(d[3]),
    text(d[4]), text(d[5]), int(score), text(d[7]), '', text(d[8]) }
end

-- A dead letter's fields as a row.
local function dead_row(id, m)
  return { id, 'dead', text(m.listener), text(m.event), text(m.emit), text(m.at),
    text(m.failed_at), text(m.attempts), '', text(m.reason) }
end

-- A delayed member decoded, or nil when it cannot be.
local function decode_delayed(member)
  local ok, d = pcall(cmsgpack.unpack, member)
  if ok and type(d) == 'table' and #d >= 8 then
    return d
  end
  return nil
end

-- The filter of a listing in `ARGV[first]` on: event id, emit id (lowercase hex), due from,
-- due before (ms); each empty for none.
local function filter_at(first)
  return { event = ARGV[first], emit = ARGV[first + 1], after = tonumber(ARGV[first + 2]),
    before = tonumber(ARGV[first + 3]) }
end

local function matches(filter, event, emit, due)
  return (filter.event == '' or event == filter.event)
    and (filter.emit == '' or string.lower(text(emit)) == filter.emit)
    and (filter.after == nil or due >= filter.after)
    and (filter.before == nil or due < filter.before)
end
