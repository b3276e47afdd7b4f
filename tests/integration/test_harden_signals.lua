-- needs: apisim
-- SIGTERM, SIGINT, SIGHUP (issue 12, item 16): the run ends cleanly: what
-- is in hand finishes, nothing new is sent, what was not done is logged,
-- the metrics are written, and the exit status is 128 + the signal.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local proc = require "proc"

local TMP = lib.tmp .. "/harden-signals"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "/bin'"))
local function write(name, text, mode)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute(("chmod %s '%s'"):format(mode or "600", path)))
  return path
end
local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

lib.reset()
for _, ns in ipairs { "sig1", "sig2", "sig3" } do lib.namespace(ns) end

-- a credential helper that signals the run (its parent) as it is asked:
-- the signal arrives in the middle of the first namespace's work
t.secret("fake-signal-helper-secret", "harden-signal-helper")
write("bin/docker-credential-term-parent", "#!/bin/sh\nkill -TERM $PPID\n"
  .. [[echo '{"Username": "u", "Secret": "fake-signal-helper-secret"}']] .. "\n", "755")
local site = write("site.lua", [[
return { namespaces = { "sig1", "sig2", "sig3" },
  registries = { { secret = "reg", server = "reg.example.org", credential_helper = "term-parent" } } }
]])
local prom = TMP .. "/xcsreg.prom"
local status, out, err = lib.setup({ "--config", site, "--metrics-file", prom, "--concurrency", "1" },
  { env = { PATH = TMP .. "/bin:" .. os.getenv("PATH") } })
t.eq(status, 143, "SIGTERM: exit status 128 + 15")
t.ok(err:find("namespace sig1: secret/reg: [^\n]*: not sent: the run was interrupted by SIGTERM"),
  "SIGTERM: the object in hand is named, not sent", err)
t.ok(err:find("stopped: 2 namespace(s) not handled (sig2, sig3)", 1, true), "SIGTERM: the namespaces not handled are named", err)
t.ok(err:find("error: interrupted by SIGTERM: exiting with status 143\n", 1, true), "SIGTERM: the last line says why", err)
t.ok((read(prom) or ""):find("\nxcsreg_last_run_success 0\n", 1, true), "SIGTERM: the metrics are written (success 0)",
  read(prom) or "no metrics file")
t.eq({ lib.get("Secret", "sig1", "reg"), lib.get("Secret", "sig2", "reg") }, {},
  "SIGTERM: nothing was written after the signal")

-- SIGHUP while waiting for the lock (the site file is read only once it is
-- held): the wait ends at once, nothing is sent
local lock_path = TMP .. "/held.lock"
local held = assert(proc.lock(lock_path))
site = write("site-hup.lua", [[
return { namespaces = { "sig1" },
  registries = { { secret = "reg", server = "reg.example.org", username = "u", password_env = "PW" } } }
]])
os.remove(prom)
lib.clear_log()
local started = os.time()
status, out, err = proc.run { argv = { "sh", "-c", '"$@" & pid=$!; sleep 1; kill -HUP $pid; wait $pid', "sh",
    lib.xcsreg, "run", "setup.lua", "--config", site, "--lock", lock_path, "--lock-timeout", "20",
    "--metrics-file", prom, "--no-verify" },
  env = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp, PW = "fake-password-0" }, timeout = 60 }
held:unlock()
t.eq(status, 129, "SIGHUP: exit status 128 + 1")
t.ok(os.time() - started < 10, "SIGHUP: the wait for the lock ends at once (not after --lock-timeout 20)")
t.ok(err:find("interrupted by SIGHUP while waiting for lock " .. lock_path, 1, true)
  and err:find("error: interrupted by SIGHUP: exiting with status 129\n", 1, true), "SIGHUP: said so", err)
t.eq(#lib.log(), 0, "SIGHUP: no request was sent")
return t.done()
