-- needs: none
-- The site module: site.run (pcall under an instruction limit) and
-- site.read_secret (a whole file, with a size cap). The warnings about
-- files other users can read are tested through setup.lua in
-- tests/integration/test_hostile_files.lua (they go to stderr).
local t = require "test"
local site = require "site"

local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/site-" .. os.time() .. "-" .. math.random(1 << 30)
assert(os.execute("mkdir -p '" .. TMP .. "' && chmod 700 '" .. TMP .. "'"))

-- ---- site.run ----
t.eq({ site.run(function(a, b) return a + b, "x" end, { instructions = 100 }, 40, 2) }, { true, 42, "x" },
  "run: the results, as pcall")
t.eq({ site.run(function() error("plain", 0) end, { instructions = 100 }) }, { false, "plain" },
  "run: an error, as pcall")
local err = {}
t.eq({ site.run(function() error(err) end, { instructions = 100 }) }, { false, err }, "run: an error value kept as it is")
local endless = load("local n = 0\nwhile true do\n  n = n + 1\nend\n", "=", "t", {})
t.eq({ site.run(endless, { instructions = 100000 }) },
  { false, ":3: stopped after 100000 instructions (an endless loop?)" }, "run: an endless loop stopped, with its line")
local named = load("while true do end", "@/etc/xcsreg/site.lua", "t", {})
t.eq({ site.run(named, { instructions = 1000 }) },
  { false, "/etc/xcsreg/site.lua:1: stopped after 1000 instructions (an endless loop?)" }, "run: the chunk named")
t.eq({ site.run(function() local n = 0 for i = 1, 1000 do n = n + i end return n end, { instructions = 20000 }) },
  { true, 500500 }, "run: a finite loop within the limit")
local escaping = load("while true do\n  pcall(function() while true do end end)\nend", "=", "t", { pcall = pcall })
t.eq({ site.run(escaping, { instructions = 1000 }) },
  { false, ":2: stopped after 1000 instructions (an endless loop?)" }, "run: a pcall inside cannot catch the stop")
local in_callback = load('return string.gsub("abc", "%w", function()\n  while true do end\nend)', "=", "t",
  { string = string })
t.eq({ site.run(in_callback, { instructions = 1000 }) },
  { false, ":2: stopped after 1000 instructions (an endless loop?)" }, "run: a loop inside a callback from C stopped too")
local many = {}
for i = 1, 3000 do many[i] = i end
local r = table.pack(site.run(table.unpack, { instructions = 10 }, many))
t.eq({ r.n, r[1], r[2], r[r.n] }, { 3001, true, 1, 3000 }, "run: thousands of results")
-- nested: the inner limit stops the inner loop; the outer one holds again afterwards
local nested = load([[
local site = ...
local ok, msg = site.run(function() while true do end end, { instructions = 1000 })
assert(not ok and msg == ":2: stopped after 1000 instructions (an endless loop?)", msg)
while true do end
]], "=", "t", { assert = assert })
t.eq({ site.run(nested, { instructions = 100000 }, site) },
  { false, ":4: stopped after 100000 instructions (an endless loop?)" }, "run: nested, each limit holds")
-- after a run, no hook is left behind
local n = 0
for i = 1, 200000 do n = n + i end
t.eq(n, 20000100000, "run: no limit outside a run")
t.raises("bad argument #2 to 'site.run' (option 'instructions' is required)", "run: the limit is required",
  site.run, print, {})
t.raises("bad argument #2 to 'site.run' (unknown option 'timeout')", "run: unknown options",
  site.run, print, { instructions = 1, timeout = 1 })
t.raises("bad argument #2 to 'site.run' (option 'instructions' must be an integer from 1 to 2147483647)",
  "run: a limit past an int", site.run, print, { instructions = 1 << 40 })
t.raises("bad argument #1 to 'site.run' (function expected, got nil)", "run: a function", site.run, nil, {})

-- ---- site.read_secret ----
local function write(name, text)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute("chmod 600 '" .. path .. "'"))
  return path
end
local path = write("pw", "fake-secret-1\n")
t.eq({ site.read_secret(path, { max_bytes = 100 }) }, { "fake-secret-1\n" }, "read_secret: the whole file")
t.eq({ site.read_secret(path, { max_bytes = 14 }) }, { "fake-secret-1\n" }, "read_secret: exactly max_bytes")
t.eq({ site.read_secret(path, { max_bytes = 13 }) }, { nil, path .. " is larger than 13 bytes" },
  "read_secret: one byte more is refused")
path = write("bin", "a\0b\255")
t.eq({ site.read_secret(path, { max_bytes = 4 }) }, { "a\0b\255" }, "read_secret: binary safe")
path = write("empty", "")
t.eq({ site.read_secret(path, { max_bytes = 1 }) }, { "" }, "read_secret: an empty file")
t.eq({ site.read_secret(TMP .. "/nope", { max_bytes = 1 }) },
  { nil, "cannot read " .. TMP .. "/nope: No such file or directory" }, "read_secret: missing")
t.eq({ site.read_secret(TMP, { max_bytes = 1 }) }, { nil, "cannot read " .. TMP .. ": Is a directory" },
  "read_secret: a directory")
t.raises("bad argument #2 to 'site.read_secret' (option 'max_bytes' must be from 1 to 16777216)",
  "read_secret: max_bytes is required", site.read_secret, path, {})
t.raises("bad argument #2 to 'site.read_secret' (option 'max_bytes' must be from 1 to 16777216)",
  "read_secret: max_bytes is bounded", site.read_secret, path, { max_bytes = 1 << 30 })
t.raises("bad argument #2 to 'site.read_secret' (option 'what' must be a string, not number)",
  "read_secret: what is a string", site.read_secret, path, { max_bytes = 1, what = 1 })
t.raises("bad argument #2 to 'site.read_secret' (unknown option 'max')", "read_secret: unknown options",
  site.read_secret, path, { max = 1 })

-- ---- site.where ----
local defined = load("local x = 1\n\nreturn function() end", "=", "t", {})()
t.eq(site.where(defined), 3, "where: the line a function is defined on")
t.eq(site.where(print), nil, "where: nil for a C function")
t.raises("bad argument #1 to 'site.where' (function expected, got number)", "where: a function only", site.where, 1)

-- ---- site.run's memory and wall-time limits (#12 item 19) ----
local LIMITS = { instructions = 1000000, memory = 8 * 1024 * 1024 }
t.eq({ site.run(function() return #string.rep("x", 16 * 1024 * 1024) end, LIMITS) },
  { false, "used more than 8 MiB of memory: stopped" }, "memory: a 16 MiB string past an 8 MiB limit is refused")
t.eq({ site.run(function()
  local parts = {}
  for i = 1, 100000 do parts[i] = string.rep("y", 100) .. i end
  return #parts
end, { instructions = 50000000, memory = 4 * 1024 * 1024 }) },
  { false, "used more than 4 MiB of memory: stopped" }, "memory: many small allocations past the limit")
t.eq({ site.run(function() return #string.rep("x", 1024 * 1024) end, LIMITS) }, { true, 1024 * 1024 },
  "memory: within the limit")
local big = string.rep("z", 4 * 1024 * 1024)
t.eq(#big, 4 * 1024 * 1024, "memory: after a stop, the state allocates as before")

-- A C call that no count hook interrupts: the process ends after `seconds`.
local proc = require "proc"
local script = TMP .. "/stuck.lua"
local f = assert(io.open(script, "w"))
f:write([[
local site = require "site"
site.run(function() return string.find(string.rep("a", 40), string.rep("a*", 40) .. "b") end,
  { instructions = 1000, seconds = 1, what = "/etc/xcsreg/registries.lua" })
print("not stopped")
]])
f:close()
local started = os.time()
local status, out, err = proc.run { argv = { os.getenv("XCSREG") or "./xcsreg", "run", script }, timeout = 30 }
t.eq({ status, out, err }, { 2, "", "error: /etc/xcsreg/registries.lua: still running after 1 s: stopped (nothing was written)\n" },
  "seconds: a pathological string.find is stopped, exit 2, the file named")
t.ok(os.time() - started <= 3, "seconds: within the limit and a second")
-- a run inside another never lengthens the outer limit
f = assert(io.open(script, "w"))
f:write([[
local site = require "site"
site.run(function()
  site.run(function() return string.find(string.rep("a", 40), string.rep("a*", 40) .. "b") end,
    { instructions = 1000, seconds = 60, what = "a hook" })
end, { instructions = 1000, seconds = 1, what = "the script" })
print("not stopped")
]])
f:close()
started = os.time()
status, out, err = proc.run { argv = { os.getenv("XCSREG") or "./xcsreg", "run", script }, timeout = 30 }
t.eq({ status, err }, { 2, "error: the script: still running after 1 s: stopped (nothing was written)\n" },
  "seconds: an inner run's longer limit does not lengthen the outer one")
t.ok(os.time() - started <= 3, "seconds: ... stopped at the outer limit")
t.eq({ site.run(function() return 1 end, { instructions = 10, seconds = 1 }) }, { true, 1 }, "seconds: a quick run")
t.eq(proc.run { argv = { "sleep", "1.2" } }, 0, "seconds: the timer is gone once the run is over")

assert(os.execute("rm -rf '" .. TMP .. "'"))
return t.done()
