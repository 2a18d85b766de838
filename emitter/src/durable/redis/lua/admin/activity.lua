-- `ARGV`: prefix, since (ms). Returns `{'ok', {minute, kind, listener, count}...}` from the
-- minute of `since` on (at most the two hours kept), `kind` being `d`, `f` or `r` (delivered,
-- failed, retried).
local now = now_ms()
local last = now - now % 60000
local since = tonumber(ARGV[2]) or 0
local minute = math.max(since - since % 60000, last - 2 * 3600 * 1000)
local out = {}
while minute <= last do
  local key = activity_key(minute)
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
      local kind, listener = string.match(fields[i], '^([dfr]):(.*)$')
      if kind then
        out[#out + 1] = { int(minute), kind, listener, fields[i + 1] }
      end
    end
  end
  minute = minute + 60000
end
return { 'ok', out }
