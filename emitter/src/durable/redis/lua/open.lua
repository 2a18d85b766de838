-- `ARGV`: prefix, schema version, listeners...
--
-- Returns `{'version', found}` without a write when the keys have another schema version.
local schema_key = prefix .. ':schema'
local found = type_problem(schema_key, 'string')
if found then
  return { 'refused', found }
end
local version = redis.call('GET', schema_key)
-- Versions 1 to 4 change no key: each adds fields and keys that the one before does not know.
if (version == '1' or version == '2' or version == '3') and ARGV[2] == '4' then
  version = nil
end
if version and version ~= ARGV[2] then
  return { 'version', version }
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
