-- xcsreg.objects: what the API server answered, checked before the
-- workflow relies on it. A server (or a proxy, an aggregated API, a
-- webhook) may answer valid JSON of another shape than the API's types:
-- `null` where a list is, an object where a list is, no metadata. Read as
-- the API means it where it means something (Go's JSON decoder reads a
-- `null` list or map as empty: k8s.io/apimachinery decodes into nil
-- slices and maps), and otherwise an error naming the object and the
-- field, which fails that object's namespace only.
local json = require "json"

local objects = {}

local function is_list(v) return v == nil or v == json.null or (type(v) == "table" and json.kind(v) ~= "object") end
local function is_map(v) return v == nil or v == json.null or (type(v) == "table" and json.kind(v) ~= "array") end

local function describe(v)
  if v == json.null then return "null" end
  if type(v) == "table" then return json.kind(v) == "array" and "a list" or "an object" end
  return "a " .. type(v)
end

local function shape(what, field, v)
  if v == nil then return string.format("the API server's answer for %s has no %s: not used", what, field) end
  return string.format("the API server's answer for %s has %s as %s, not as the API types it: not used", what,
    field, describe(v))
end

-- Checks obj (one object as GET or a LIST item gives it) for what every
-- use needs: a table with metadata.name, and metadata.namespace when
-- namespaced. Returns obj (its null maps and lists as nil) | nil, message.
function objects.check(obj, what, namespaced)
  if type(obj) ~= "table" or json.kind(obj) == "array" then return nil, shape(what, "the object", obj) end
  if type(obj.metadata) ~= "table" or json.kind(obj.metadata) == "array" then
    return nil, shape(what, "metadata", obj.metadata)
  end
  if type(obj.metadata.name) ~= "string" then return nil, shape(what, "metadata.name", obj.metadata.name) end
  if namespaced and type(obj.metadata.namespace) ~= "string" then
    return nil, shape(what, "metadata.namespace", obj.metadata.namespace)
  end
  for _, field in ipairs { "labels", "annotations" } do
    local v = obj.metadata[field]
    if not is_map(v) then return nil, shape(what, "metadata." .. field, v) end
    if v == json.null then obj.metadata[field] = nil end
  end
  return obj
end

-- The items of a LIST answer, each checked (objects.check) | nil, message.
function objects.items(list, what, namespaced)
  if type(list) ~= "table" or not is_list(list.items) then
    return nil, shape(what, "items", type(list) == "table" and list.items or list)
  end
  local items = list.items == json.null and {} or list.items or {}
  for i, obj in ipairs(items) do
    local ok, err = objects.check(obj, string.format("%s, item %d", what, i), namespaced)
    if not ok then return nil, err end
  end
  return items
end

-- A field of obj that the API types as a list (`imagePullSecrets`) or a
-- map (`data`): its value, null and absent as an empty one | nil, message.
function objects.list(obj, field, what)
  local v = obj[field]
  if not is_list(v) then return nil, shape(what, field, v) end
  return (v == nil or v == json.null) and {} or v
end

function objects.map(obj, field, what)
  local v = obj[field]
  if not is_map(v) then return nil, shape(what, field, v) end
  return (v == nil or v == json.null) and {} or v
end

return objects
