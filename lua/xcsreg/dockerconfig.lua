-- xcsreg.dockerconfig: the bytes of a Secret's .dockerconfigjson, identical to
-- what `kubectl create secret docker-registry` writes for the same input.
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

local dockerconfig = {}

-- base64 (padded) of "user:password", the entry's `auth`.
function dockerconfig.auth(username, password)
  return log.secret(base64.encode(username .. ":" .. password))
end

-- registries: list of { server, username, password, email ("" or nil: none) }.
function dockerconfig.encode(registries)
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
      .. ',"auth":' .. json.encode(dockerconfig.auth(r.username, r.password)) .. "}"
  end
  return log.secret('{"auths":{' .. table.concat(parts, ",") .. "}}")
end

return dockerconfig
