-- libcurl is loaded when a script first makes a k8s client or an http request,
-- not at start-up nor by require (the shipped scripts require k8s at once, and
-- their --help, usage errors and client dry runs never load it); without it,
-- those calls fail with a message naming libcurl.so.4.
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

-- Prints whether libcurl is mapped before and after requiring the module arg[1],
-- and after its first use (a client, a request: each fails, no server needed).
local probe = write("probe.lua", [[
local function mapped()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("/libcurl[^/\n]*%.so") ~= nil
end
for _, name in ipairs { "base64", "json", "log", "proc", "yaml" } do require(name) end
io.write(tostring(mapped()), " ")
local m = require(arg[1])
io.write(tostring(mapped()), " ")
if arg[1] == "k8s" then
  assert(not m.client { kubeconfig = "/nonexistent/kubeconfig" })
elseif arg[1] == "http" then
  assert(not m.request { url = "http://127.0.0.1:1/", connect_timeout = 1 })
end
io.write(tostring(mapped()), "\n")
]])

for _, module in ipairs { "http", "k8s" } do
  local st, out, err = proc.run { argv = { xcsreg, "run", probe, module } }
  t.eq({ st, out, err }, { 0, "false false true\n", "" },
    "libcurl is mapped once '" .. module .. "' is first used, not when it is required")
end

-- A libcurl.so.4 that is not a library: found first through LD_LIBRARY_PATH.
local fake = tmp .. "/lib"
proc.run { argv = { "mkdir", fake } }
write("lib/libcurl.so.4", "not an ELF file\n")
local env = { LD_LIBRARY_PATH = fake }

local st, out, err = proc.run { argv = { xcsreg, "run", probe, "json" }, env = env }
t.eq({ st, out, err }, { 0, "false false false\n", "" }, "a script that needs no libcurl runs without one")

for _, module in ipairs { "http", "k8s" } do
  st, out, err = proc.run { argv = { xcsreg, "run", probe, module }, env = env }
  t.eq(st, 1, "using '" .. module .. "' without libcurl: exit status 1")
  local want = "module '" .. module .. "' needs libcurl: cannot load libcurl.so.4: " .. fake
    .. "/libcurl.so.4: file too short (Debian: apt-get install libcurl4)"
  local at = "xcsreg: " .. probe .. ":" .. (module == "k8s" and 12 or 14) .. ": "
  t.ok(err:find(at .. want .. "\nstack traceback:\n", 1, true) == 1,
    "using '" .. module .. "' without libcurl: the error says why, where", err)
  t.eq(out, "false false ", "using '" .. module .. "' without libcurl: required fine, nothing after the use ran")
end

-- The shipped scripts' commands that need no cluster run without libcurl.
st, out, err = proc.run { argv = { xcsreg, "run", "setup.lua", "--help" }, env = env }
t.ok(st == 0 and out:find("--dry-run", 1, true) ~= nil and err == "", "setup.lua --help does not load libcurl",
  out .. err)
st, out, err = proc.run { argv = { xcsreg, "run", "status.lua", "--help" }, env = env }
t.ok(st == 0 and err == "", "status.lua --help does not load libcurl", out .. err)
st, out, err = proc.run { argv = { xcsreg, "run", "setup.lua", "--bogus" }, env = env }
t.ok(st == 2 and err:find("--bogus", 1, true) ~= nil and not err:find("libcurl", 1, true),
  "a usage error of setup.lua does not load libcurl", err)
for _, o in ipairs { "json", "yaml" } do
  st, out, err = proc.run { argv = { xcsreg, "run", "setup.lua", "--dry-run=client", "-o", o, "-n", "ns",
    "--secret-name", "reg", "--docker-server", "reg.example.org", "--docker-username", "u",
    "--docker-password-stdin" }, env = env, stdin = "fake-password" }
  t.ok(st == 0 and out:find("kubernetes.io/dockerconfigjson", 1, true) ~= nil and err == "",
    "setup.lua --dry-run=client -o " .. o .. " does not load libcurl", out .. err)
end

st, out, err = proc.run { argv = { xcsreg, "version" }, env = env }
t.ok(st == 0 and out:find("\nlibcurl: cannot load libcurl.so.4: ", 1, true) ~= nil and err == "",
  "xcsreg version without libcurl says why instead of a version", out .. err)
st, out = proc.run { argv = { xcsreg, "version" } }
t.ok(st == 0 and out:find("\nlibcurl %d+%.%d+%.%d+ %(") ~= nil, "xcsreg version names libcurl's version", out)

proc.run { argv = { "rm", "-rf", tmp } }
return t.done()
