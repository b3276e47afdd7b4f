-- xcsreg.dockerconfigjson: the codec of a kubernetes.io/dockerconfigjson
-- Secret's payload. encode writes the bytes `kubectl create secret
-- docker-registry` writes for the same input; decode reads any such payload
-- back, as the kubelet would (a docker config.json on disk is
-- xcsreg.sources.docker_config's).
--
-- kubectl marshals a Go struct, so an entry's keys come in struct order
-- (username, password, email, auth; email left out when empty) while the
-- registries of the "auths" map come sorted by byte order, as Go sorts map
-- keys. The json module sorts every object's keys, so the text is put
-- together here and json.encode only quotes each string (Go's escaping,
-- HTML-safe). Every credential-bearing string is registered with log.secret.
local base64 = require "base64"
local json = require "json"
local log = require "log"

local dockerconfigjson = {}

-- base64 (padded) of "user:password", the entry's `auth`.
function dockerconfigjson.auth(username, password)
  return log.secret(base64.encode(username .. ":" .. password))
end

-- registries: list of { server, username, password, email ("" or nil: none) }.
function dockerconfigjson.encode(registries)
  local sorted = table.move(registries, 1, #registries, 1, {})
  -- Lua compares strings with strcoll; the host never calls setlocale, so
  -- the "C" locale is in force and this is byte order, as Go's.
  table.sort(sorted, function(a, b) return a.server < b.server end)
  local parts = {}
  for _, r in ipairs(sorted) do
    local email = ""
    if r.email and r.email ~= "" then email = ',"email":' .. json.encode(r.email) end
    local password = json.encode(r.password)
    log.secret(password:sub(2, -2)) -- as escaped in JSON, which a server may echo
    parts[#parts + 1] = json.encode(r.server) .. ':{"username":' .. json.encode(r.username)
      .. ',"password":' .. password .. email
      .. ',"auth":' .. json.encode(dockerconfigjson.auth(r.username, r.password)) .. "}"
  end
  return log.secret('{"auths":{' .. table.concat(parts, ",") .. "}}")
end


-- The "auths" of a Secret's .dockerconfigjson value (base64, as the API
-- holds it), by registry key, every password registered with log.secret:
-- auths | nil, message. An entry may be of any shape: judging it is the
-- caller's business.
function dockerconfigjson.decode(data)
  if type(data) ~= "string" then return nil, "has no .dockerconfigjson" end
  local text = base64.decode(log.secret(data))
  if not text then return nil, ".dockerconfigjson is not base64" end
  local doc = json.decode(log.secret(text))
  if type(doc) ~= "table" or json.kind(doc.auths) ~= "object" then
    return nil, ".dockerconfigjson is not a docker config with \"auths\""
  end
  for _, a in pairs(doc.auths) do
    if type(a) == "table" then
      if type(a.password) == "string" then log.secret(a.password) end
      if type(a.auth) == "string" then log.secret(a.auth) end
    end
  end
  return doc.auths
end

return dockerconfigjson
