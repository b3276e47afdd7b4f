-- libcurl is loaded when a script first requires http or k8s, not at start-up;
-- without it, those requires fail with a message naming libcurl.so.4.
-- needs: none
local t = require "test"
local proc = require "proc"

local xcsreg = assert(os.getenv("XCSREG"), "XCSREG names the binary under test")
local _, tmp = proc.run { argv = { "mktemp", "-d", (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/curl.XXXXXX" } }
tmp = tmp:gsub("\n$", "")

local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

-- Prints whether libcurl is mapped before and after requiring the module arg[1].
local probe = write("probe.lua", [[
local function mapped()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("/libcurl[^/\n]*%.so") ~= nil
end
for _, name in ipairs { "base64", "json", "log", "proc", "yaml" } do require(name) end
io.write(tostring(mapped()), " ")
require(arg[1])
io.write(tostring(mapped()), "\n")
]])

for _, module in ipairs { "http", "k8s" } do
  local st, out, err = proc.run { argv = { xcsreg, "run", probe, module } }
  t.eq({ st, out, err }, { 0, "false true\n", "" }, "libcurl is mapped once '" .. module .. "' is required, not before")
end

-- A libcurl.so.4 that is not a library: found first through LD_LIBRARY_PATH.
local fake = tmp .. "/lib"
proc.run { argv = { "mkdir", fake } }
write("lib/libcurl.so.4", "not an ELF file\n")
local env = { LD_LIBRARY_PATH = fake }

local st, out, err = proc.run { argv = { xcsreg, "run", probe, "json" }, env = env }
t.eq({ st, out, err }, { 0, "false false\n", "" }, "a script that needs no libcurl runs without one")

for _, module in ipairs { "http", "k8s" } do
  st, out, err = proc.run { argv = { xcsreg, "run", probe, module }, env = env }
  t.eq(st, 1, "require '" .. module .. "' without libcurl: exit status 1")
  local want = "module '" .. module .. "' needs libcurl: cannot load libcurl.so.4: " .. fake
    .. "/libcurl.so.4: file too short (Debian: apt-get install libcurl4)"
  t.ok(err:find("xcsreg: " .. want .. "\nstack traceback:\n", 1, true) == 1,
    "require '" .. module .. "' without libcurl: the error says why", err)
  t.eq(out, "false ", "require '" .. module .. "' without libcurl: nothing after it ran")
end

st, out, err = proc.run { argv = { xcsreg, "version" }, env = env }
t.ok(st == 0 and out:find("\nlibcurl: cannot load libcurl.so.4: ", 1, true) ~= nil and err == "",
  "xcsreg version without libcurl says why instead of a version", out .. err)
st, out = proc.run { argv = { xcsreg, "version" } }
t.ok(st == 0 and out:find("\nlibcurl %d+%.%d+%.%d+ %(") ~= nil, "xcsreg version names libcurl's version", out)

proc.run { argv = { "rm", "-rf", tmp } }
return t.done()
