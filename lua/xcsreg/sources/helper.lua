-- xcsreg.sources.helper: `credential_helper = "NAME"`, the docker
-- credential-helper protocol: `docker-credential-NAME get` (looked up in
-- PATH) reads the server (its host, as docker sends it) on stdin and prints
-- {"ServerURL": ..., "Username": ..., "Secret": ...}. So the helpers sites
-- already use (ecr-login, gcr, acr-env, pass, secretservice) work unchanged.
local json = require "json"
local log = require "log"
local proc = require "proc"
local registry_host = require "xcsreg.registry_host"

local M = {}

-- The host of a server as docker compares them: no scheme, no path, Docker
-- Hub's aliases one host (docker's name for it, index.docker.io).
function M.hostname(server)
  local host = registry_host.host_of(server)
  return registry_host.is_docker_hub(host) and "index.docker.io" or host
end

-- The key docker asks helpers for (docker login stores under the same):
-- the host, or Docker Hub's URL.
function M.key(server)
  return registry_host.docker_config_key(registry_host.host_of(server))
end

local function find(program, path)
  for dir in (path or ""):gmatch("[^:]+") do
    local f = io.open(dir .. "/" .. program, "rb")
    if f then
      f:close()
      return dir .. "/" .. program
    end
  end
end

-- Asks helper NAME for server's credential: returns username, secret, or
-- nil and a message (prefixed "credential_helper: ").
function M.lookup(name, server, ctx)
  if not name:match("^[%w][%w._-]*$") then
    return nil, string.format("credential_helper: %q is not a helper name (docker-credential-NAME)", name)
  end
  local program = "docker-credential-" .. name
  local path = find(program, ctx.env("PATH"))
  if not path then
    return nil, "credential_helper: " .. program .. " not found in PATH: install it, or fix the helper name"
  end
  local key = M.key(server)
  local status, out, err = proc.run { argv = { path, "get" }, stdin = key, timeout = 60 }
  if not status then return nil, "credential_helper: cannot run " .. program .. ": " .. out end
  local doc = status == 0 and json.decode(out)
  if type(doc) == "table" and type(doc.Secret) == "string" and doc.Secret ~= "" then
    log.secret(doc.Secret)
    if doc.Username == "<token>" then
      return nil, "credential_helper: " .. program .. " has an identity token for " .. key
        .. ", which Kubernetes cannot use: log in with a username and password"
    end
    return type(doc.Username) == "string" and doc.Username or "", doc.Secret
  end
  local said = out:match("^%s*(.-)%s*$")
  if said == "credentials not found in native keychain" then
    return nil, "credential_helper: " .. program .. " has no credentials for " .. key
      .. ": log in with `docker login " .. key .. "` (or store them in the helper)"
  end
  if status == 0 then
    return nil, "credential_helper: " .. program .. " printed no credentials for " .. key
  end
  said = said ~= "" and said or err:match("^%s*(.-)%s*$")
  return nil, string.format("credential_helper: %s get failed (exit status %d): %s",
    program, status, log.redact(said:match("[^\r\n]*"), 200)) -- redacted, then cut
end

function M.get(entry, ctx)
  local username, secret = M.lookup(entry.credential_helper, entry.server, ctx)
  if not username then return nil, secret end
  return { username = username, password = secret, source = "credential_helper" }
end

return M
