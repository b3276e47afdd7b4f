-- needs: none
-- What a run leaves to other processes (issue 12): no core dump holding its
-- secrets (item 5).
local t = require "test"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
-- a directory other users can enter (the test directory is root's only)
local mktemp = io.popen("mktemp -d /tmp/xcsreg-harden-process.XXXXXX")
local TMP = mktemp:read("l")
mktemp:close()
assert(os.execute("chmod 755 '" .. TMP .. "'"))

local function write(name, text)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute("chmod 644 '" .. path .. "'"))
  return path
end

-- ---- item 5: no core dumps ----
-- A script that asks a child about its parent, the xcsreg run: the parent's
-- core size limit, and the owner of its /proc directory (root when the
-- process is not dumpable, whoever runs it otherwise).
local probe = write("core-probe.lua", [[
local proc = require "proc"
local status, out = proc.run { argv = { "sh", "-c",
  "grep '^Max core file size' /proc/$PPID/limits | tr -s ' ' | sed 's/ $//'; stat -c 'owner %u' /proc/$PPID/status" } }
io.write(out)
]])
local function core_probe(env)
  -- as user 65534, so that the owner of /proc/PID tells dumpable from not;
  -- from an unlimited core size (this test's own xcsreg has made it 0)
  return proc.run { argv = { "prlimit", "--core=unlimited:", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", XCSREG, "run", probe },
                    env = env }
end
local status, out, err = core_probe { XCSREG_ALLOW_CORE = "" }
t.eq({ status, out, err }, { 0, "Max core file size 0 unlimited bytes\nowner 0\n", "" },
  "core dumps: RLIMIT_CORE is 0 and the process is not dumpable (its /proc files are root's)")
status, out, err = core_probe { XCSREG_ALLOW_CORE = "1" }
t.ok(status == 0 and not out:find("Max core file size 0 0 ", 1, true) and out:find("owner 65534\n", 1, true),
  "core dumps: XCSREG_ALLOW_CORE=1 keeps the limit and the dumpable flag", out .. err)

os.execute("rm -rf '" .. TMP .. "'")
return t.done()
