-- `ARGV`: prefix, first emit id, last emit id, then what to look at: `stream`, a listener and
-- the entry id to start after (`-` for the start), or `delayed` and the index to start at; and
-- how many to look at.
--
-- Returns `{'ok', how many unfinished deliveries of an emit in the range it found, where to go
-- on from (empty when done)}`. A page at a time, so that no call blocks the server for long.
local first, last, kind, cursor, page = ARGV[2], ARGV[3], ARGV[4], ARGV[6], tonumber(ARGV[7])
local found = 0
local function within(emit)
  return type(emit) == 'string' and string.lower(emit) >= first and string.lower(emit) <= last
end
if kind == 'stream' then
  local start = '-'
  if cursor ~= '-' then
    start = '(' .. cursor
  end
  local key = listener_key(ARGV[5])
  if redis.call('TYPE', key)['ok'] ~= 'stream' then
    return { 'ok', 0, '' }
  end
  local entries = redis.call('XRANGE', key, start, '+', 'COUNT', page)
  for _, entry in ipairs(entries) do
    if within(field_map(entry[2]).emit) then
      found = found + 1
    end
  end
  local next = ''
  if #entries == page then
    next = entries[#entries][1]
  end
  return { 'ok', found, next }
end
local index = tonumber(cursor)
local members = redis.call('ZRANGE', delayed_key, index, index + page - 1)
for _, member in ipairs(members) do
  local ok, d = pcall(cmsgpack.unpack, member)
  if ok and type(d) == 'table' and within(d[4]) then
    found = found + 1
  end
end
local next = ''
if #members == page then
  next = int(index + page)
end
return { 'ok', found, next }
