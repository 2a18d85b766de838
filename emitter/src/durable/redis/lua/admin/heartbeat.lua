-- `ARGV`: prefix, worker, time to live in ms, then per listener: name, delivered, failed,
-- retried (since the worker's last heartbeat).
--
-- Records that the worker runs those listeners until the time to live passes, adds what they
-- did to this minute's activity (kept two hours), and forgets the workers whose time passed.
local worker, ttl = ARGV[2], tonumber(ARGV[3])
local found = type_problem(workers_key, 'zset') or type_problem(worker_info_key, 'hash')
if found then
  return { 'refused', found }
end
local now = now_ms()
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', workers_key, '-inf', int(now))) do
  redis.call('ZREM', workers_key, gone)
  redis.call('HDEL', worker_info_key, gone)
end
local minute = now - now % 60000
local activity = activity_key(minute)
found = type_problem(activity, 'hash')
if found then
  return { 'refused', found }
end
local listeners, active = {}, false
for i = 4, #ARGV - 3, 4 do
  listeners[#listeners + 1] = ARGV[i]
  for j, kind in ipairs({ 'd:', 'f:', 'r:' }) do
    local n = tonumber(ARGV[i + j]) or 0
    if n > 0 then
      redis.call('HINCRBY', activity, kind .. ARGV[i], n)
      active = true
    end
  end
end
if active then
  redis.call('PEXPIREAT', activity, minute + 2 * 3600 * 1000)
end
redis.call('ZADD', workers_key, int(now + ttl), worker)
redis.call('HSET', worker_info_key, worker,
  cmsgpack.pack({ int(now), int(now + ttl), unpack(listeners) }))
return { 'ok' }
