-- A site file's hooks (xcsreg.hooks) against the simulator: a hook that
-- raises, loops or returns garbage stops the run with exit 2, naming the
-- file, the line and the hook, before anything is written; whatever a hook
-- returns, no Secret gets an empty credential and no ServiceAccount loses
-- a pull secret.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"

local env = { PW = "example-static-pw-3b8c" }
local ENTRY = '{ secret = "reg", server = "reg.example.org", username = "u", password_env = "PW" }'

-- A site file of `namespaces = { "h1" }`, ENTRY, and the hooks text.
local function site(name, hooks_text, head)
  return lib.write("hooks-" .. name .. ".lua", (head or "") .. "return {\n"
    .. (hooks_text:find("namespaces =", 1, true) and "  -- the namespaces: the hook's\n" or '  namespaces = { "h1" },\n')
    .. "  registries = { " .. ENTRY .. " },\n"
    .. "  hooks = {\n" .. hooks_text .. "\n  },\n}\n")
end

local function writes()
  local list = {}
  for _, e in ipairs(lib.log()) do
    if e.method ~= "GET" then list[#list + 1] = e.method .. " " .. e.path end
  end
  return list
end

local function fresh()
  lib.reset()
  lib.namespace("h1")
  lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "h1" },
             imagePullSecrets = { { name = "kept" } } }
  lib.clear_log()
end

-- line 5 of each file is the first line of the hooks text
local cases = {
  { "namespaces raises", "    namespaces = function(cluster)\n      error('no namespaces today')\n    end,",
    6, "namespaces", "no namespaces today" },
  { "namespaces loops", "    namespaces = function(cluster)\n      while true do end\n    end,",
    6, "namespaces", "" },
  { "namespaces garbage", "    namespaces = function(cluster) return 42 end,",
    5, "namespaces", "returned a number, not a list of namespace names" },
  { "namespaces bad name", "    namespaces = function(cluster) return { 'Bad_NS' } end,",
    5, "namespaces", 'returned [1]: "Bad_NS" is not a valid namespace name' },
  { "registries raises", "    registries = function(ns, registries)\n      return registries[9].server\n    end,",
    6, "registries", "attempt to index a nil value" },
  { "registries loops", "    registries = function(ns, registries)\n      repeat until false\n    end,",
    6, "registries", "" },
  { "registries garbage", "    registries = function(ns) return 'all' end,",
    5, "registries", "returned a string for namespace h1, not a list of registry entries" },
  { "registries empty user",
    "    registries = function(ns, registries)\n      registries[1].username = ''\n      return registries\n    end,",
    5, "registries", "namespace h1: registries[1]: username" },
  { "registries no password",
    "    registries = function(ns, registries)\n      registries[1].password_env = nil\n      return registries\n    end,",
    5, "registries", "namespace h1: registries[1]: missing password" },
  { "password raises", "    password = function(entry) error({}) end,",
    5, "password", "raised a table, not an error message", '{ secret = "reg", server = "reg.example.org", username = "u" }' },
  { "password empty", "    password = function(entry) return '' end,",
    5, "password", "returned an empty string for", '{ secret = "reg", server = "reg.example.org", username = "u" }' },
  { "password number", "    password = function(entry) return 1234 end,",
    5, "password", "returned a number for", '{ secret = "reg", server = "reg.example.org", username = "u" }' },
}

for _, c in ipairs(cases) do
  local name, text, line, hook, msg, entry = table.unpack(c)
  fresh()
  local saved = ENTRY
  if entry then ENTRY = entry end
  local path = site(name:gsub(" ", "-"), text)
  ENTRY = saved
  local status, out, err = lib.setup({ "--config", path }, { env = env })
  local prefix = "error: " .. path .. ":" .. line .. ": hook " .. hook .. ": "
  t.eq(status, 2, name .. ": exit 2")
  t.ok(err:sub(1, #prefix) == prefix and err:find(msg, #prefix, true) ~= nil,
    name .. ": the file, line and hook named", err)
  t.eq(out, "", name .. ": nothing reported as done")
  t.eq(writes(), {}, name .. ": nothing written")
  t.eq(lib.objects("Secret", "h1"), {}, name .. ": no Secret")
end

-- A hook that changes what it is given changes only its copy; one that
-- drops every registry of a namespace removes nothing already there.
fresh()
local path = site("copy", [[
    registries = function(ns, registries)
      local mine = registries[1]
      mine.username = "changed-by-hook"
      return { mine }
    end,]])
local status = lib.setup({ "--config", path }, { env = env })
t.eq(status, 0, "a hook that changes its copy of an entry: exit 0")
t.eq(lib.pull_secrets("h1", "default"), { "kept", "reg" }, "... the ServiceAccount's list only added to")
path = site("drop", "    registries = function(ns, registries) return {} end,")
status = lib.setup({ "--config", path }, { env = env })
t.eq(status, 0, "a hook that returns no registries for a namespace: exit 0")
t.eq(lib.pull_secrets("h1", "default"), { "kept", "reg" }, "... and no pull secret is dropped")
t.ok(lib.get("Secret", "h1", "reg") ~= nil, "... nor the Secret deleted")

-- The result hook is told of every object, after the writes.
fresh()
path = site("result-raises", "    result = function(event) error('chat is down') end,")
local out, err
status, out, err = lib.setup({ "--config", path }, { env = env })
t.eq(status, 2, "a result hook that raises: exit 2")
t.eq(out, "secret/reg created\nserviceaccount/default configured\n", "... after the writes it observes")
t.ok(err:find(path .. ":5: hook result: chat is down", 1, true) ~= nil, "... naming the file, line and hook", err)

-- -vvv is -v -v -v
fresh()
status, out, err = lib.setup({ "-vvv", "-n", "h1", "--secret-name", "reg", "--docker-server", "reg.example.org",
  "--docker-username", "u", "--docker-password-env", "PW" }, { env = env })
t.eq(status, 0, "-vvv: exit 0")
t.ok(err:find("request(s) to", 1, true) ~= nil, "-vvv: the debug lines of -v -v", err)

return t.done()
