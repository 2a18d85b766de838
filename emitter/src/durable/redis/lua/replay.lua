-- `ARGV`: prefix, dead letter id.
local id = ARGV[2]
local found = type_problem(dead_key, 'stream')
if found then
  return { 'refused', found }
end
local entries = redis.call('XRANGE', dead_key, id, id)
if #entries == 0 then
  return { 'ok', 0 }
end
local m = field_map(entries[1][2])
if type(m.listener) ~= 'string' or m.listener == '' then
  return { 'corrupt', 'dead letter ' .. id .. ' names no listener to send it back to: discard it' }
end
found = check_types({ m.listener })
if found then
  return { 'refused', found }
end
append(m.listener, m.event or '', m.emit or '', m.at or '', m.payload or '', '0', '', m.trace,
  m.version)
redis.call('XDEL', dead_key, id)
return { 'ok', 1 }
