-- needs: none
-- Files in places other local users can write to (issue 12): the metrics
-- file (item 1), the lock (item 2), password files, tokenFile and client
-- keys (items 3 and 4). The other user is uid 65534.
local t = require "test"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/harden-files"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "'"))
local OTHER = 65534

local function sh(cmd) return os.execute(cmd) == true end
local function write(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(sh(("chmod %s '%s'"):format(mode or "600", path)))
  return path
end
local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
-- "TYPE OWNER MODE" of path, not following a symlink
local function stat(path)
  local p = io.popen("stat -c '%F %u %a' '" .. path .. "' 2>/dev/null")
  local s = p:read("l")
  p:close()
  return s
end
local function ls(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local s = p:read("a")
  p:close()
  return s
end

-- ---- item 1: the metrics file ----
local metrics = require "xcsreg.metrics"
local run = { time = 1700000000, success = true, expiries = {} }
local textdir = TMP .. "/textfile"
-- a collector directory another user may write to (the worst case)
assert(sh("mkdir -m 1777 '" .. textdir .. "'"))
local prom = textdir .. "/xcsreg.prom"

local victim = write(TMP .. "/victim", "root's own file\n", "600")
assert(sh(("ln -s '%s' '%s.tmp'"):format(victim, prom)))
local ok, err = metrics.write(prom, run)
t.eq({ ok, err, read(victim) }, { true, nil, "root's own file\n" },
  "metrics: a symlink planted at PATH.tmp does not make the run write its target")
t.eq(stat(prom), "regular file 0 644", "metrics: the file is a regular file of ours, mode 0644")
t.ok((read(prom) or ""):find("\nxcsreg_last_run_success 1\n", 1, true), "metrics: with the run's result", read(prom))

assert(sh(("rm -f '%s' '%s.tmp'"):format(prom, prom)))
write(prom .. ".tmp", "xcsreg_last_run_success 1\n", "666")
assert(sh(("chown %d '%s.tmp'"):format(OTHER, prom)))
run.success = false
ok, err = metrics.write(prom, run)
t.ok(ok and stat(prom) == "regular file 0 644" and (read(prom) or ""):find("\nxcsreg_last_run_success 0\n", 1, true),
  "metrics: a PATH.tmp pre-created by another user is not what gets published", stat(prom) .. "\n" .. tostring(err))
t.eq(ls(textdir), "xcsreg.prom\nxcsreg.prom.tmp\n", "metrics: no temporary file is left behind")

-- the old file stays whole when the new one cannot be written
ok, err = metrics.write(TMP .. "/no-such-dir/x.prom", run)
t.eq({ ok, err }, { nil, "cannot create a temporary file for " .. TMP .. "/no-such-dir/x.prom: No such file or directory" },
  "metrics: a directory that does not exist: nil and a message naming the file")

return t.done()
