-- needs: apisim
-- setup.lua's run lock: a run that finds it held waits --lock-timeout, then
-- exits 3 having sent nothing; a run that waits for a holder to finish then
-- does its work (and, the work being done, writes nothing); and the
-- metrics file of successful, failed and locked-out runs.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local proc = require "proc"

local lock_path = lib.tmp .. "/rotation-held.lock"
local prom = lib.tmp .. "/rotation-lock.prom"
local env = { PW = "fake-lock-test-pw", XCSREG_NOW = "1700000000" }
local function setup(...)
  return lib.setup({ "-n", "l1", "--secret-name", "reg", "--docker-server", "reg.example.org", "--docker-username", "u",
    "--docker-password-env", "PW", "--metrics-file", prom, ... }, { env = env })
end
local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end
local function metrics(success)
  return "# HELP xcsreg_last_run_timestamp_seconds When the last xcsreg run ended, in seconds since the epoch.\n"
    .. "# TYPE xcsreg_last_run_timestamp_seconds gauge\n"
    .. "xcsreg_last_run_timestamp_seconds 1700000000\n"
    .. "# HELP xcsreg_last_run_success Whether the last xcsreg run succeeded (1) or failed (0).\n"
    .. "# TYPE xcsreg_last_run_success gauge\n"
    .. "xcsreg_last_run_success " .. success .. "\n"
    .. "# HELP xcsreg_secret_expiry_timestamp_seconds When the credential a Secret holds expires, in seconds since the epoch.\n"
    .. "# TYPE xcsreg_secret_expiry_timestamp_seconds gauge\n"
end

lib.reset()
lib.namespace("l1")

-- ---- the lock held by another run: wait, then exit 3 with no side effect ----
local held = assert(proc.lock(lock_path))
local pid = read(lock_path):gsub("\n", "")
lib.clear_log()
local started = os.time()
local status, out, err = setup("--lock", lock_path, "--lock-timeout", "1")
t.eq({ status, out, err }, { 3, "", "error: another run holds the lock " .. lock_path .. " (pid " .. pid .. "): "
  .. "waited 1s; nothing was done\n" }, "lock held: exit 3, the lock and its holder named")
t.ok(os.time() - started >= 1, "it waited for the lock")
t.eq(lib.log(), {}, "no request reached the cluster")
t.eq(read(prom), nil, "no metrics file: that is the holder's to write")

started = os.time()
status, out, err = setup("--lock", lock_path, "--lock-timeout", "5", "--secret-name", "Bad")
t.eq({ status, err }, { 2, 'error: --secret-name: "Bad" is not a valid Secret name: it must be a lowercase RFC 1123 '
  .. "subdomain (a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most 253 characters)\n" },
  "a configuration error is told before the lock is waited for")
t.ok(os.time() - started < 5, "... at once")
status, out, err = setup("--lock", lock_path, "--lock-timeout", "soon")
t.eq({ status, err }, { 2, 'error: --lock-timeout: must be a number of seconds, not "soon"\n'
  .. "See 'xcsreg run setup.lua --help' for usage.\n" }, "--lock-timeout that is no number")
status, out, err = setup("--lock", "/nonexistent/xcsreg.lock")
t.eq({ status, err }, { 2, "error: --lock: cannot open lock file /nonexistent/xcsreg.lock: No such file or directory\n" },
  "a lock file that cannot be made: exit 2")
t.eq(lib.log(), {}, "still no request")
t.eq(read(prom), nil, "an error before the lock is held writes no metrics: they are the holder's to write")


status, out = setup("--lock", "none")
t.eq({ status, out }, { 0, "secret/reg created\nserviceaccount/default configured\n" }, "--lock none: runs regardless")
t.eq(read(prom), metrics(1), "the metrics of a successful run: no expiry for a static password")
held:unlock()
status, out, err = lib.setup({ "-n", "l1", "--lock", lock_path, "--metrics-file", prom,
  "--config", lib.tmp .. "/no-such-site.lua" }, { env = env })
t.eq(status, 2, "a site file that cannot be read (read under the lock): exit 2")
t.eq(read(prom), metrics(0), "a failed run that held the lock writes the metrics: success 0")

-- ---- a run that waits for the holder to finish ----
proc.run { argv = { "sh", "-c", 'flock -n "$1" sleep 1 >/dev/null 2>&1 & sleep 0.2', "sh", lock_path } }
t.eq(proc.run { argv = { "flock", "-n", lock_path, "true" } }, 1, "a background run holds the lock for a second")
lib.clear_log()
status, out, err = setup("--lock", lock_path, "--lock-timeout", "10")
t.eq({ status, out, err }, { 0, "secret/reg unchanged\nserviceaccount/default unchanged\n", "" },
  "the waiting run goes on once the lock is free")
t.eq(lib.methods(lib.log()), "GET GET", "nothing written twice")
t.eq(proc.run { argv = { "flock", "-n", lock_path, "true" } }, 0, "the lock is released at the end")

return t.done()
