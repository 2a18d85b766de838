-- `ARGV`: prefix. Returns `{'ok', {worker, seen at, expires at, listeners...}...}`: the workers
-- whose time to live has not passed.
local now = now_ms()
local out = {}
if redis.call('TYPE', workers_key)['ok'] ~= 'zset' then
  return { 'ok', out }
end
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', workers_key, '(' .. int(now), '+inf')) do
  local info = redis.call('HGET', worker_info_key, worker)
  if info then
    local ok, fields = pcall(cmsgpack.unpack, info)
    if ok and type(fields) == 'table' and #fields >= 2 then
      local row = { worker }
      for _, field in ipairs(fields) do
        row[#row + 1] = field
      end
      out[#out + 1] = row
    end
  end
end
return { 'ok', out }
