-- `ARGV`: prefix, schema version, listeners...
local schema_key = prefix .. ':schema'
local found = type_problem(schema_key, 'string')
if found then
  return { 'refused', found }
end
local version = redis.call('GET', schema_key)
if version and version ~= ARGV[2] then
  return { 'refused', 'its keys have schema version ' .. version .. ' and this build reads version '
    .. ARGV[2] .. ': run a build of the same version, or use another prefix' }
end
local names = {}
for i = 3, #ARGV do
  names[#names + 1] = ARGV[i]
end
found = check_types(names)
if found then
  return { 'refused', found }
end
if not version then
  redis.call('SET', schema_key, ARGV[2])
end
for _, listener in ipairs(names) do
  ensure_group(listener_key(listener), listener)
  redis.call('SADD', listeners_key, listener)
end
return { 'ok' }
