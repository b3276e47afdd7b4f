-- --run-timeout (#12 item 14): under a cluster that answers 429 for ever,
-- the run stops once its time is up, says which namespaces were not
-- handled, writes its metrics and exits 1, instead of retrying each
-- request for as long as it may.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"

lib.reset()
local NAMES = { "t1", "t2", "t3", "t4", "t5" }
for _, ns in ipairs(NAMES) do lib.namespace(ns) end
local prom = lib.tmp .. "/run-timeout.prom"
local args = { "--concurrency", "1", "--secret-name", "reg", "--docker-server", "reg.example.org",
  "--docker-username", "u", "--docker-password-env", "PW", "--metrics-file", prom, "--request-timeout", "10",
  "--run-timeout", "3" }
for _, ns in ipairs(NAMES) do
  args[#args + 1] = "-n"
  args[#args + 1] = ns
end
assert(lib.fault { count = 100000, status = 429, retry_after = 1, latency_ms = 1200 })
local started = os.time()
local status, out, err = lib.setup(args, { env = { PW = "example-static-pw-3b8c", XCSREG_NOW = "1700000000" } })
local took = os.time() - started
lib.clear_faults()
t.eq(status, 1, "429 for ever, --run-timeout 3: exit 1")
t.ok(took <= 6, "... stopped within the run timeout (and a second)", took .. " s")
t.ok(err:find("the run's time (--run-timeout) is up\nstopped: 5 namespace(s) not handled (t1, t2, t3, t4, t5)", 1, true)
  ~= nil, "... says the time is up and which namespaces were not handled", err)
t.eq(out, "", "nothing reported as done")
local f = io.open(prom)
local text = f and f:read("a")
if f then f:close() end
t.ok(text and text:find("xcsreg_last_run_success 0\n", 1, true) ~= nil, "the metrics say the run failed", text)
-- one namespace (no snapshot): its Secret's read is cut short
assert(lib.fault { count = 100000, status = 429, retry_after = 1, latency_ms = 1200 })
started = os.time()
status, out, err = lib.setup({ "-n", "t1", "--secret-name", "reg", "--docker-server", "reg.example.org",
  "--docker-username", "u", "--docker-password-env", "PW", "--run-timeout", "3" }, { env = { PW = "example-static-pw-3b8c" } })
took = os.time() - started
lib.clear_faults()
t.eq({ status, err }, { 1, "error: namespace t1: secret/reg: not done: the run's time (--run-timeout) is up\n" },
  "one namespace: exit 1, the object not done named")
t.ok(took <= 5, "... within the run timeout", took .. " s")
local _, _, uerr = lib.setup({ "--run-timeout", "soon", "-n", "t1", "--secret-name", "reg", "--docker-username", "u",
  "--docker-password-env", "PW" }, { env = { PW = "x-unused-pw-123" } })
t.ok(uerr:find('--run-timeout: must be a number of seconds', 1, true) ~= nil, "--run-timeout soon: a usage error", uerr)
return t.done()
