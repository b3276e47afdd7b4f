-- Fuzz target: the docker config.json reader (xcsreg.sources.docker_config),
-- that is the .dockerconfigjson format: {"auths": {SERVER: {auth, username,
-- password, ...}}, "credHelpers": ..., "credsStore": ...} (see fuzz_lua.c).
-- Input: byte 1 picks the server asked for, the rest is the file.
-- Promised: never raises; returns {username = string, password = non-empty
-- string, source = "docker_config"}, or nil and a message that starts with
-- "docker_config: ". No credential helper can run: PATH is unset in ctx.
local dockerconfig = require "xcsreg.sources.docker_config"

local servers = { "ghcr.io", "https://index.docker.io/v1/", "docker.io", "registry.example.com:5000",
  "http://localhost:5000/v2/", "https://Registry.Example.COM/path" }
local home = FUZZ_DIR
local path = home .. "/config.json"
local ctx = { env = function(name) if name == "HOME" then return home end end }

return function(input)
  local server = servers[(input:byte(1) or 0) % #servers + 1]
  local f = assert(io.open(path, "wb"))
  f:write(input:sub(2))
  f:close()
  local got, err = dockerconfig.get({ docker_config = path, server = server }, ctx)
  if got then
    assert(type(got) == "table" and got.source == "docker_config", "a result without its source")
    assert(type(got.username) == "string", "username is not a string")
    assert(type(got.password) == "string" and got.password ~= "", "no password")
    assert(err == nil, "a result and an error")
  else
    assert(type(err) == "string" and err:find("^docker_config: "), "a failure without a docker_config message")
  end
end
