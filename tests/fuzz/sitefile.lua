-- Fuzz target: the site-file loader, xcsreg.config.load_file (see
-- fuzz_lua.c). A site file is Lua run in a sandbox (no I/O, no load), so
-- the input is Lua source: an endless loop or a huge string ends in the
-- harness's instruction budget or memory cap, which the loader's pcall
-- turns into nil, message like any other error of the file.
-- Passwords are not read: credentials.read is replaced by a stub (a
-- password_command must never run what a fuzzer wrote); the value "fail"
-- makes it fail.
-- Promised: never raises; returns a plan (namespaces nil or a list of
-- strings, service_accounts a list of strings, secrets a non-empty list of
-- {name, registries = {{server, username, email, password or source}}})
-- or nil and a non-empty message. Sources (ecr, gcp, credential_helper,
-- docker_config) are only checked here; they mint nothing until a Secret
-- is written.
local credentials = require "xcsreg.credentials"
local config = require "xcsreg.config"

-- the loader's own limit replaces the harness's budget while the file runs: keep it as small
config.SITE_FILE_INSTRUCTIONS = 1000000

function credentials.read(key, value)
  assert(credentials.sources[key], "read called for an unknown source")
  if value == "fail" then return nil, "stub: cannot read it" end
  return "fake-password"
end

local path = FUZZ_DIR .. "/registries.lua"

local function strings(list, what)
  assert(type(list) == "table" and #list > 0, what .. " is not a non-empty list")
  for i = 1, #list do assert(type(list[i]) == "string", what .. " holds a non-string") end
end

return function(input)
  local f = assert(io.open(path, "wb"))
  f:write(input)
  f:close()
  local plan, err = config.load_file(path)
  if not plan then
    assert(type(err) == "string" and err ~= "", "a failure without a message")
    return
  end
  assert(type(plan) == "table", "the plan is not a table")
  if plan.namespaces ~= nil then strings(plan.namespaces, "namespaces") end
  strings(plan.service_accounts, "service_accounts")
  assert(type(plan.secrets) == "table" and #plan.secrets > 0, "no secrets")
  for _, s in ipairs(plan.secrets) do
    assert(type(s.name) == "string", "a secret without a name")
    assert(#s.registries > 0, "a secret without registries")
    for _, r in ipairs(s.registries) do
      for _, k in ipairs { "server", "username", "email" } do
        assert(type(r[k]) == "string", "registry field " .. k .. " is not a string")
      end
      -- a password now, or a source that mints one when the Secret is written
      assert(type(r.password) == "string" or type(r.source) == "table", "neither a password nor a source")
    end
  end
end
