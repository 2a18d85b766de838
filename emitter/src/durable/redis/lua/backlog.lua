-- `ARGV`: prefix, then what to look at: `stream`, a listener and the entry id to start after
-- (`-` for the start), or `delayed`, nothing and the index to start at; and how many to look at.
--
-- Returns `{'ok', where to go on from (empty when done), then per listener, event id and event
-- version found: the listener, the event id, the version, how many deliveries}`. A page at a time, so that no call blocks
-- the server for long.
local kind, listener, cursor, page = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local counts, order = {}, {}
local function add(name, event, version)
  if type(name) ~= 'string' or type(event) ~= 'string' then
    return
  end
  -- An entry without a version (as every entry before versions were) is of version 1.
  if type(version) ~= 'string' or version == '' then
    version = '1'
  end
  local field = name .. '\n' .. event .. '\n' .. version
  if not counts[field] then
    counts[field] = 0
    order[#order + 1] = { name, event, version, field }
  end
  counts[field] = counts[field] + 1
end
local next = ''
if kind == 'stream' then
  local start = '-'
  if cursor ~= '-' then
    start = '(' .. cursor
  end
  local key = listener_key(listener)
  if redis.call('TYPE', key)['ok'] ~= 'stream' then
    return { 'ok', '' }
  end
  local entries = redis.call('XRANGE', key, start, '+', 'COUNT', page)
  for _, entry in ipairs(entries) do
    local fields = field_map(entry[2])
    add(listener, fields.event, fields.version)
  end
  if #entries == page then
    next = entries[#entries][1]
  end
else
  local index = tonumber(cursor)
  local members = redis.call('ZRANGE', delayed_key, index, index + page - 1)
  for _, member in ipairs(members) do
    local ok, d = pcall(cmsgpack.unpack, member)
    if ok and type(d) == 'table' then
      add(d[1], d[3], d[10])
    end
  end
  if #members == page then
    next = int(index + page)
  end
end
local reply = { 'ok', next }
for _, found in ipairs(order) do
  reply[#reply + 1] = found[1]
  reply[#reply + 1] = found[2]
  reply[#reply + 1] = found[3]
  reply[#reply + 1] = counts[found[4]]
end
return reply
