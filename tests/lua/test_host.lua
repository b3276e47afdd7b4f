-- The host: modules load without setting globals, arg and ... reach the script.
local t = require "test"

local before = {}
for k in pairs(_G) do before[k] = true end
for _, name in ipairs { "json", "base64", "http", "proc", "log", "k8s", "yaml" } do
  local ok, mod = pcall(require, name)
  t.ok(ok and type(mod) == "table", "require '" .. name .. "' returns a table")
end
local added = {}
for k in pairs(_G) do
  if not before[k] then added[#added + 1] = tostring(k) end
end
t.eq(added, {}, "requiring the modules adds no globals")
t.eq(debug, nil, "the debug library is not opened")
t.eq(type(arg), "table", "arg is set")
t.ok(arg[0]:find("test_host.lua", 1, true) ~= nil, "arg[0] is the script")
t.eq(select("#", ...), 0, "no script arguments given")

return t.done()
