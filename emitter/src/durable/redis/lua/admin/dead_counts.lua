-- `ARGV`: prefix, the entry id to look after (empty for the start), how many to look at. Returns
-- `{'ok', {listener, count}..., last entry id looked at (empty when done)}`.
local after, page = ARGV[2], tonumber(ARGV[3])
if redis.call('TYPE', dead_key)['ok'] ~= 'stream' then
  return { 'ok', {}, '' }
end
local entries = entries_after(dead_key, after, page)
local by, order = {}, {}
for _, entry in ipairs(entries) do
  local listener = text(field_map(entry[2]).listener)
  if by[listener] == nil then
    by[listener] = 0
    order[#order + 1] = listener
  end
  by[listener] = by[listener] + 1
end
local out = {}
for _, listener in ipairs(order) do
  out[#out + 1] = { listener, by[listener] }
end
local last = ''
if #entries >= page then
  last = entries[#entries][1]
end
return { 'ok', out, last }
