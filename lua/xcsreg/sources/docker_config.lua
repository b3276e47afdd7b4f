-- xcsreg.sources.docker_config: `docker_config = "PATH"`, the credential a
-- docker config.json holds for the entry's server, found as docker finds it:
-- credHelpers[host], else credsStore (both through the credential helper),
-- else auths (the exact key, else the key whose host is the same: scheme and
-- path dropped, Docker Hub's aliases one), with `auth` (base64 of
-- USER:PASSWORD) or `username` and `password`.
local base64 = require "base64"
local helper = require "xcsreg.sources.helper"
local json = require "json"
local log = require "log"

local M = {}

-- The value under the key naming server in map, or nil.
local function find(map, server)
  if type(map) ~= "table" then return nil end
  if map[server] ~= nil then return map[server] end
  local host = helper.hostname(server)
  for key, value in pairs(map) do
    if helper.hostname(key) == host then return value end
  end
end

local function through_helper(name, server, ctx, what)
  local username, secret = helper.lookup(name, server, ctx)
  if not username then return nil, "docker_config: " .. what .. ": " .. secret end
  return { username = username, password = secret, source = "docker_config" }
end

function M.get(entry, ctx)
  local path, server = entry.docker_config, entry.server
  local home = ctx.env("HOME")
  if home then path = path:gsub("^~/", home .. "/") end
  local f, err = io.open(path, "rb")
  if not f then return nil, "docker_config: cannot read " .. err end
  local text = f:read("a")
  f:close()
  local config = json.decode(text)
  if type(config) ~= "table" then return nil, "docker_config: " .. path .. " is not a JSON object" end
  local name = find(config.credHelpers, server)
  if type(name) == "string" then
    return through_helper(name, server, ctx, path .. " names credHelpers '" .. name .. "'")
  end
  if type(config.credsStore) == "string" and config.credsStore ~= "" then
    return through_helper(config.credsStore, server, ctx, path .. " uses credsStore '" .. config.credsStore .. "'")
  end
  local auth = find(config.auths, server)
  if type(auth) ~= "table" then
    return nil, "docker_config: " .. path .. " has no entry for " .. server .. " in auths"
  end
  local username, password = auth.username, auth.password
  if type(auth.auth) == "string" and auth.auth ~= "" then
    log.secret(auth.auth)
    local decoded = base64.decode(auth.auth)
    username, password = (decoded or ""):match("^([^:]*):(.*)$")
    if not username then
      return nil, "docker_config: the auth of " .. server .. " in " .. path .. " is not base64 of USER:PASSWORD"
    end
  end
  if type(password) ~= "string" or password == "" then
    return nil, "docker_config: the entry for " .. server .. " in " .. path .. " has no password"
      .. (auth.identitytoken and " (only an identity token, which Kubernetes cannot use)" or "")
  end
  log.secret(password)
  return { username = type(username) == "string" and username or "", password = password, source = "docker_config" }
end

return M
