-- `ARGV`: prefix, key retention in ms, emit count, then per emit: has key (`0`/`1`), key, event
-- id, emit id, emitted at, payload, trace context (empty for none), event version, delay in ms,
-- listener count, listeners...
local retention = ARGV[2]
local emits, names, seen = {}, {}, {}
local i = 4
for e = 1, tonumber(ARGV[3]) do
  local emit = { has_key = ARGV[i] == '1', key = ARGV[i + 1], event = ARGV[i + 2],
    emit = ARGV[i + 3], at = ARGV[i + 4], payload = ARGV[i + 5], trace = ARGV[i + 6],
    version = ARGV[i + 7], delay = tonumber(ARGV[i + 8]), listeners = {} }
  local count = tonumber(ARGV[i + 9])
  i = i + 10
  for l = 1, count do
    local listener = ARGV[i]
    emit.listeners[l] = listener
    if not seen[listener] then
      seen[listener] = true
      names[#names + 1] = listener
    end
    i = i + 1
  end
  emits[e] = emit
end
local found = check_types(names)
if found then
  return { 'refused', found }
end
local now = now_ms()
local stored, duplicates = 0, 0
for _, emit in ipairs(emits) do
  local fresh = true
  if emit.has_key then
    fresh = redis.call('SET', prefix .. ':key:' .. emit.key, '1', 'NX', 'PX', retention)
  end
  if fresh then
    stored = stored + 1
    for _, listener in ipairs(emit.listeners) do
      if emit.delay > 0 then
        delay(listener, now + emit.delay, emit.event, emit.emit, emit.at, emit.payload, '0', '',
          emit.trace, emit.version)
      else
        append(listener, emit.event, emit.emit, emit.at, emit.payload, '0', '', emit.trace,
          emit.version)
      end
    end
  else
    duplicates = duplicates + 1
  end
end
return { 'ok', stored, duplicates }
