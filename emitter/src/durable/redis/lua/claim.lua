-- `ARGV`: prefix, worker, limit, lease in ms, max deliveries, max moves, then per listener its
-- name and its concurrency limit (`0` for none).
--
-- Returns `{'ok', {{listener, delivery count, crashes, {{id, fields}...}}...}, {listener, last
-- delivered id...}}`: the claimed entries in batches, oldest first per listener, not checked (the
-- client dead-letters corrupt ones), and where each listener's group is now (`$` for a paused
-- listener: a waiter watches only what is added to its stream). A due suspect is claimed alone:
-- the reply then holds it and nothing else. A paused listener is not claimed, suspects included.
local worker = ARGV[2]
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local max_deliveries = tonumber(ARGV[5])
local names, windows, paused = {}, {}, {}
for i = 7, #ARGV - 1, 2 do
  if redis.call('HEXISTS', paused_key, ARGV[i]) == 1 then
    paused[#paused + 1] = ARGV[i]
  else
    names[#names + 1] = ARGV[i]
    windows[ARGV[i]] = tonumber(ARGV[i + 1])
  end
end
local found = check_types(names)
if found then
  return { 'refused', found }
end
local now = now_ms()
move_due(now, tonumber(ARGV[6]))
redis.call('SET', prefix .. ':lease', ARGV[4])

-- Whether a pending entry's consumer is a worker: not one of the store's own (`:released`,
-- `:held`). A worker's entry whose lease ran out ended its claim without an outcome.
local function by_worker(consumer)
  return string.sub(consumer, 1, 1) ~= ':'
end

-- The due suspects (entries whose lease ran out in a worker's hands, or released ones with such
-- a claim since their last failed attempt), oldest first: `{source, id, count, consumer,
-- crashes}`; they are claimed alone.
local suspects = {}
local function consider(source, id, consumer, count)
  local crashes = crashes_of(source.listener, id)
  if by_worker(consumer) or crashes > 0 then
    suspects[#suspects + 1] = { source = source, id = id, count = count, consumer = consumer,
      crashes = crashes }
    return true
  end
  return false
end

-- One source per listener: its expired pending entries that are not suspects, and where its
-- group is.
local sources = {}
local any_expired = false
for _, listener in ipairs(names) do
  local key = listener_key(listener)
  local window = windows[listener] or 0
  local last = nil
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) == 'table' and not groups.err then
    for _, group in ipairs(groups) do
      local info = field_map(group)
      if info['name'] == listener then
        last = info['last-delivered-id']
      end
    end
  end
  local expired = {}
  local source = { listener = listener, key = key, after = last, last = last, buf = {},
    pos = 1, done = false, expired = expired, epos = 1, new = 0, window = window }
  if last == nil then
    ensure_group(key, listener)
    source.after, source.last = '0-0', '0-0'
  elseif window == 0 then
    local pending = redis.call('XPENDING', key, listener, 'IDLE', lease, '-', '+', limit)
    for _, entry in ipairs(pending) do
      local id, count = entry[1], tonumber(entry[4])
      if not consider(source, id, entry[2], count) then
        expired[#expired + 1] = { id = id, count = count }
        any_expired = true
      end
    end
  else
    -- A listener with a concurrency limit is taken in order below (`claim_in_order`); its
    -- suspects are among its first `window` pending entries.
    for _, info in ipairs(redis.call('XPENDING', key, listener, '-', '+', window)) do
      local id = info[1]
      if tonumber(info[3]) >= lease and not redis.call('ZSCORE', held_key(listener), id) then
        consider(source, id, info[2], tonumber(info[4]))
      end
    end
  end
  sources[#sources + 1] = source
end

-- The claimed entries, in batches of one listener, delivery count and count of crashes:
-- `{listener, count, crashes, {{id, fields}...}}`. The client checks their fields (and
-- dead-letters corrupt ones).
local out = {}
local function hand_out(source, count, crashes, entry)
  local batch = out[#out]
  if batch == nil or batch[1] ~= source.listener or batch[2] ~= count or batch[3] ~= crashes then
    batch = { source.listener, count, crashes, {} }
    out[#out + 1] = batch
  end
  batch[4][#batch[4] + 1] = entry
end

-- Gives the consumer the next `count` new entries of a source's stream: `{{id, fields}...}`.
local function read_new(source, count)
  local reply = redis.call('XREADGROUP', 'GROUP', source.listener, worker, 'COUNT', count,
    'STREAMS', source.key, '>')
  if type(reply) ~= 'table' then
    return {}
  end
  local entries = reply[1][2]
  if #entries > 0 then
    source.last = entries[#entries][1]
  end
  return entries
end

-- A dead-letter for an entry delivered `count` times without an outcome, past the bound.
local function bury_crash_loop(source, id, entry, count)
  local m = field_map(entry[2])
  bury(source.listener, m, attempts_of(m) + count,
    'delivered ' .. int(count) .. ' times without an outcome: every worker that ' ..
    'claimed it died or lost its lease (a crash loop?); the Redis store dead-letters an ' ..
    'entry after ' .. int(max_deliveries) .. ' deliveries', now)
  redis.call('XACK', source.key, source.listener, id)
  redis.call('XDEL', source.key, id)
  forget_crashes(source.listener, id)
end

-- Takes a pending entry over for this worker: the entry, or nil when it is no longer there to
-- hand out (deleted while pending, or dead-lettered now as a crash loop).
local function take_over(source, id, count, min_idle)
  local claimed = redis.call('XCLAIM', source.key, source.listener, worker, min_idle, id)
  local entry = claimed[1]
  if type(entry) ~= 'table' or type(entry[2]) ~= 'table' then
    redis.call('XACK', source.key, source.listener, id)
    forget_crashes(source.listener, id)
    return nil
  end
  if count + 1 > max_deliveries then
    bury_crash_loop(source, id, entry, count + 1)
    return nil
  end
  return entry
end

-- Where each listener's group is now, for the waiter.
local function lasts()
  local list = {}
  for _, source in ipairs(sources) do
    list[#list + 1] = source.listener
    list[#list + 1] = source.last
  end
  for _, listener in ipairs(paused) do
    list[#list + 1] = listener
    list[#list + 1] = '$'
  end
  return list
end

-- A suspect, when one is due, is claimed alone: the oldest, with one more crash if a worker held
-- it last.
table.sort(suspects, function(a, b)
  return id_less(a.id, b.id)
end)
for _, suspect in ipairs(suspects) do
  local source = suspect.source
  local entry = take_over(source, suspect.id, suspect.count, 0)
  if entry then
    local crashes = suspect.crashes
    if by_worker(suspect.consumer) then
      crashes = redis.call('HINCRBY', crashes_key, crash_field(source.listener, suspect.id), 1)
    end
    hand_out(source, suspect.count + 1, crashes, entry)
    return { 'ok', out, lasts() }
  end
end

-- A listener with a concurrency limit `window`: its first `window` unfinished entries in stream
-- order are its pending entries (leased, held for a retry, or released) and then as many new
-- ones as leaves room for. Of those it takes, up to `room`, the pending ones whose lease expired
-- or whose retry is due, then new ones while fewer than `window` are pending: a delivery held
-- for its retry holds back every later one of its listener.
local function claim_in_order(source, room)
  local key, listener, window = source.key, source.listener, source.window
  local held = held_key(listener)
  local summary = redis.pcall('XPENDING', key, listener)
  local pending = 0
  if type(summary) == 'table' and not summary.err then
    pending = tonumber(summary[1]) or 0
  end
  local taken = 0
  if pending > 0 then
    for _, info in ipairs(redis.call('XPENDING', key, listener, '-', '+', window)) do
      if taken >= room then
        break
      end
      local id, idle, count = info[1], tonumber(info[3]), tonumber(info[4])
      local due = redis.call('ZSCORE', held, id)
      local claimable
      if due then
        claimable = tonumber(due) <= now
      else
        -- Expired, and not a suspect (those are claimed alone, above).
        claimable = idle >= lease and not by_worker(info[2]) and crashes_of(listener, id) == 0
      end
      if claimable then
        redis.call('ZREM', held, id)
        local entry = take_over(source, id, count, 0)
        if entry then
          hand_out(source, count + 1, 0, entry)
          taken = taken + 1
        else
          -- Nothing to deliver, and no room taken.
          pending = pending - 1
        end
      end
    end
  end
  local free = math.min(window - pending, room - taken)
  if free > 0 then
    for _, entry in ipairs(read_new(source, free)) do
      hand_out(source, 1, 0, entry)
    end
  end
  return taken
end

-- Listeners with a concurrency limit first, each in its order; the others share what is left.
local unordered = {}
for _, source in ipairs(sources) do
  if source.window > 0 then
    local room = limit
    for _, batch in ipairs(out) do
      room = room - #batch[4]
    end
    if room > 0 then
      claim_in_order(source, room)
    end
  else
    unordered[#unordered + 1] = source
  end
end
for _, batch in ipairs(out) do
  limit = limit - #batch[4]
end
if limit <= 0 or #unordered == 0 then
  return { 'ok', out, lasts() }
end
local ordered_sources = sources
sources = unordered

-- The usual case: no lease expired, and at most one listener has new entries. Its oldest
-- `limit` new entries are then the answer, read once.
if not any_expired then
  local with_new = sources
  if #sources > 1 then
    with_new = {}
    for _, source in ipairs(sources) do
      if #redis.call('XRANGE', source.key, '(' .. source.last, '+', 'COUNT', 1) > 0 then
        with_new[#with_new + 1] = source
      end
    end
  end
  if #with_new <= 1 then
    local source = with_new[1]
    if source then
      local entries = read_new(source, limit)
      if #entries > 0 then
        out[#out + 1] = { source.listener, 1, 0, entries }
      end
    end
    sources = ordered_sources
    return { 'ok', out, lasts() }
  end
end

-- Otherwise, oldest entry id first across the listeners' expired entries and new entries, the
-- new ones looked at a page at a time.
local page = math.min(limit, 32)
local function fetch(source)
  source.buf = {}
  source.pos = 1
  if source.done then
    return
  end
  local entries = redis.call('XRANGE', source.key, '(' .. source.after, '+', 'COUNT', page)
  for i, entry in ipairs(entries) do
    source.buf[i] = entry[1]
  end
  if #entries < page then
    source.done = true
  else
    source.after = entries[#entries][1]
  end
end
for _, source in ipairs(sources) do
  fetch(source)
end

local picked = {}
while #picked < limit do
  local best, best_id, best_expired = nil, nil, false
  for _, source in ipairs(sources) do
    if source.pos > #source.buf and not source.done then
      fetch(source)
    end
    local expired = source.expired[source.epos]
    if expired and (best_id == nil or id_less(expired.id, best_id)) then
      best, best_id, best_expired = source, expired.id, true
    end
    local new = source.buf[source.pos]
    if new and (best_id == nil or id_less(new, best_id)) then
      best, best_id, best_expired = source, new, false
    end
  end
  if best == nil then
    break
  end
  if best_expired then
    local expired = best.expired[best.epos]
    best.epos = best.epos + 1
    local entry = take_over(best, expired.id, expired.count, lease)
    if entry then
      picked[#picked + 1] = { source = best, id = expired.id, count = expired.count + 1,
        entry = entry }
    end
  else
    best.pos = best.pos + 1
    best.new = best.new + 1
    picked[#picked + 1] = { source = best, id = best_id, count = 1 }
  end
end

for _, source in ipairs(sources) do
  source.read = {}
  if source.new > 0 then
    for _, entry in ipairs(read_new(source, source.new)) do
      source.read[entry[1]] = entry
    end
  end
end

for _, pick in ipairs(picked) do
  local entry = pick.entry or pick.source.read[pick.id]
  if entry then
    hand_out(pick.source, pick.count, 0, entry)
  end
end
sources = ordered_sources
return { 'ok', out, lasts() }
