-- `ARGV`: prefix, the index to start at, how many to look at. Returns `{'ok', {listener, due,
-- later, earliest due (ms)}..., next index (empty when done)}`: the delayed deliveries of that
-- page by listener, those due now (not yet moved to their stream) and those due later.
local start, page = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
if redis.call('TYPE', delayed_key)['ok'] ~= 'zset' then
  return { 'ok', {}, '' }
end
local members = redis.call('ZRANGE', delayed_key, start, start + page - 1, 'WITHSCORES')
local by, order = {}, {}
for i = 1, #members, 2 do
  local d = decode_delayed(members[i])
  local score = tonumber(members[i + 1])
  if d then
    local count = by[d[1]]
    if count == nil then
      count = { due = 0, later = 0, earliest = nil }
      by[d[1]] = count
      order[#order + 1] = d[1]
    end
    if score <= now then
      count.due = count.due + 1
      if count.earliest == nil or score < count.earliest then
        count.earliest = score
      end
    else
      count.later = count.later + 1
    end
  end
end
local out = {}
for _, listener in ipairs(order) do
  local count = by[listener]
  local earliest = ''
  if count.earliest then
    earliest = int(count.earliest)
  end
  out[#out + 1] = { listener, count.due, count.later, earliest }
end
local next = ''
if #members / 2 >= page then
  next = int(start + page)
end
return { 'ok', out, next }
