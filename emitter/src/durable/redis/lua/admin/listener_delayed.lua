-- `ARGV`: prefix, what to do (`discard` or `rehome`), the listener, the index in the delayed set
-- to start at, how many to look at, and for `rehome` the listener to give them to.
--
-- Deletes the listener's delayed deliveries, or gives them to the other listener (same due
-- time). Returns `{'ok', how many, the index to go on from, '1' when none is left}`: an index
-- that passes only what was kept, so that nothing is skipped (a rehomed member may be looked at
-- again; it is then another listener's, and kept).
local op, listener, start, budget, to = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  ARGV[6]
if redis.call('TYPE', delayed_key)['ok'] ~= 'zset' then
  return { 'ok', 0, int(start), '1' }
end
local members = redis.call('ZRANGE', delayed_key, start, start + budget - 1, 'WITHSCORES')
local done, kept = 0, 0
for i = 1, #members, 2 do
  local d = decode_delayed(members[i])
  if d and d[1] == listener then
    redis.call('ZREM', delayed_key, members[i])
    if op == 'rehome' then
      d[1] = to
      redis.call('ZADD', delayed_key, members[i + 1], cmsgpack.pack(d))
    end
    done = done + 1
  else
    kept = kept + 1
  end
end
return { 'ok', done, int(start + kept), finished(#members / 2, budget) }
