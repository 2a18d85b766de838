-- Shared by every script. `ARGV[1]` is always the key prefix, validated by the store.
local prefix = ARGV[1]
local delayed_key = prefix .. ':delayed'
local dead_key = prefix .. ':dead'
local listeners_key = prefix .. ':listeners'
local seq_key = prefix .. ':seq'
-- The crashes of deliveries (claims since their last failed attempt that ended without an
-- outcome), by `{entry id}/{listener}`, the receipt's id; only suspects have one.
local crashes_key = prefix .. ':crashes'
-- Paused listeners (a hash: listener, since when in ms): claims skip them.
local paused_key = prefix .. ':paused'

local function listener_key(listener)
  return prefix .. ':listener:' .. listener
end

-- The entries of a listener with a concurrency limit that wait for their retry, kept pending in
-- place (so that they hold back the listener's later entries), scored by their due time.
local function held_key(listener)
  return prefix .. ':held:' .. listener
end

local function crash_field(listener, id)
  return id .. '/' .. listener
end

-- Read and forgotten through `pcall`: a key of another type holds no crashes of ours (the
-- scripts that add crashes check its type first).
local function crashes_of(listener, id)
  local crashes = redis.pcall('HGET', crashes_key, crash_field(listener, id))
  return tonumber(crashes) or 0
end

-- The delivery had an outcome (or is gone): its count of crashes starts again.
local function forget_crashes(listener, id)
  redis.pcall('HDEL', crashes_key, crash_field(listener, id))
end

-- The milliseconds and sequence of an entry id.
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end

local function id_less(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if am ~= bm then
    return am < bm
  end
  return as < bs
end

local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function int(number)
  return string.format('%d', number)
end

local function field_map(flat)
  local map = {}
  for i = 1, #flat - 1, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- Creates a listener's stream and group unless they exist. A new group starts at 0: every entry
-- of a listener's stream is addressed to that listener. The usual error is that the group exists
-- (BUSYGROUP); any other makes the command that follows fail with the real reason.
local ensured = {}
local function ensure_group(key, listener)
  if not ensured[key] then
    redis.pcall('XGROUP', 'CREATE', key, listener, '0', 'MKSTREAM')
    ensured[key] = true
  end
end

-- Whether `consumer` still holds entry `id` under the claim that delivered it the `count`th time.
local function holds(key, listener, id, consumer, count)
  local reply = redis.pcall('XPENDING', key, listener, id, id, 1, consumer)
  if type(reply) ~= 'table' or reply.err or #reply == 0 then
    return false
  end
  return tonumber(reply[1][4]) == tonumber(count)
end

local function valid_emit(emit)
  return type(emit) == 'string' and #emit == 32 and not string.find(emit, '[^0-9a-fA-F]')
end

local function valid_number(text, digits)
  return type(text) == 'string' and #text <= digits and string.find(text, '^%d+$') ~= nil
end

-- What is wrong with a delivery's fields, or nil.
local function problem(m)
  if type(m.event) ~= 'string' then
    return 'it has no `event` field'
  end
  if not valid_emit(m.emit) then
    return 'its `emit` field is not 32 hexadecimal digits'
  end
  if not valid_number(m.at, 15) then
    return 'its `at` field is not a time in milliseconds'
  end
  if type(m.payload) ~= 'string' then
    return 'it has no `payload` field'
  end
  if not valid_number(m.attempts, 9) then
    return 'its `attempts` field is not a count'
  end
  return nil
end

local function attempts_of(m)
  if valid_number(m.attempts, 9) then
    return tonumber(m.attempts)
  end
  return 0
end

-- Adds a dead letter. Missing or corrupt fields get neutral values (the reason says what was
-- wrong), so that every dead letter can be listed.
local function bury(listener, m, attempts, reason, now)
  local event = m.event
  if type(event) ~= 'string' then
    event = ''
  end
  local emit = m.emit
  if not valid_emit(emit) then
    emit = string.rep('0', 32)
  end
  local at = m.at
  if not valid_number(at, 15) then
    at = '0'
  end
  local payload = m.payload
  if type(payload) ~= 'string' then
    payload = ''
  end
  local fields = { 'listener', listener, 'event', event, 'emit', emit, 'at', at,
    'payload', payload, 'attempts', int(attempts), 'reason', reason, 'failed_at', int(now) }
  if type(m.trace) == 'string' and m.trace ~= '' then
    fields[#fields + 1] = 'trace'
    fields[#fields + 1] = m.trace
  end
  if type(m.version) == 'string' and m.version ~= '' and m.version ~= '1' then
    fields[#fields + 1] = 'version'
    fields[#fields + 1] = m.version
  end
  redis.call('XADD', dead_key, '*', unpack(fields))
end

-- Appends a delivery to its listener's stream. An event's `version` is written when it is not 1:
-- an entry without one (as every entry before versions were) is of version 1.
local function append(listener, event, emit, at, payload, attempts, err, trace, version)
  local key = listener_key(listener)
  ensure_group(key, listener)
  redis.call('SADD', listeners_key, listener)
  local fields = { 'event', event, 'emit', emit, 'at', at, 'payload', payload,
    'attempts', attempts }
  if err ~= nil and err ~= '' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = err
  end
  if trace ~= nil and trace ~= '' then
    fields[#fields + 1] = 'trace'
    fields[#fields + 1] = trace
  end
  if type(version) == 'string' and version ~= '' and version ~= '1' then
    fields[#fields + 1] = 'version'
    fields[#fields + 1] = version
  end
  redis.call('XADD', key, '*', unpack(fields))
end

-- Keeps a delivery in the delayed set until `due`.
local function delay(listener, due, event, emit, at, payload, attempts, err, trace, version)
  local seq = redis.call('INCR', seq_key)
  if type(version) ~= 'string' or version == '' then
    version = '1'
  end
  redis.call('ZADD', delayed_key, int(due),
    cmsgpack.pack({ listener, int(seq), event, emit, at, payload, attempts, err or '',
      trace or '', version }))
end

local function type_problem(key, want)
  local found = redis.call('TYPE', key)['ok']
  if found ~= 'none' and found ~= want then
    return 'key `' .. key .. '` holds a ' .. found .. ', not a ' .. want ..
      ' (does another program use this prefix?)'
  end
  return nil
end

-- Moves due delayed deliveries to their listeners' streams.
local function move_due(now, max)
  local due = redis.call('ZRANGEBYSCORE', delayed_key, '-inf', int(now), 'LIMIT', 0, max)
  for _, member in ipairs(due) do
    local ok, d = pcall(cmsgpack.unpack, member)
    -- Eight fields (schema version 1), nine with the trace context, ten with the event's
    -- version (schema version 4).
    local valid = ok and type(d) == 'table' and #d >= 8 and #d <= 10
    if valid then
      for i = 1, #d do
        if type(d[i]) ~= 'string' then
          valid = false
        end
      end
    end
    local wrong = valid and type_problem(listener_key(d[1]), 'stream')
    if wrong then
      bury(d[1], { event = d[3], emit = d[4], at = d[5], payload = d[6], trace = d[9],
          version = d[10] },
        tonumber(d[7]) or 0, 'a delayed delivery cannot be moved to its stream: ' .. wrong, now)
    elseif valid then
      append(d[1], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10])
    else
      bury('', { payload = member }, 0,
        'a delayed delivery in `' .. delayed_key .. '` cannot be decoded', now)
    end
    redis.call('ZREM', delayed_key, member)
  end
end

-- Checked before a script's first write: Redis does not undo the writes of a failed script.
local function check_types(listeners)
  local found = type_problem(delayed_key, 'zset') or type_problem(dead_key, 'stream')
    or type_problem(listeners_key, 'set') or type_problem(seq_key, 'string')
    or type_problem(crashes_key, 'hash')
  if found then
    return found
  end
  for _, listener in ipairs(listeners) do
    found = type_problem(listener_key(listener), 'stream')
    if found then
      return found
    end
  end
  return nil
end

-- The stream of a receipt (listener, entry id, consumer, delivery count) that still holds its
-- entry, or the reply to return at once: `ok` with nothing done when the claim is no longer the
-- entry's last, `refused` when the stream's key holds another type.
local function held_receipt(listener, id, consumer, count)
  local key = listener_key(listener)
  if not holds(key, listener, id, consumer, count) then
    return nil, { 'ok', 0 }
  end
  local found = check_types({ listener })
  if found then
    return nil, { 'refused', found }
  end
  return key, nil
end
