-- needs: apisim
-- setup.lua under injected faults: every request of a clean run, in turn,
-- fails as 500, 503 and 429 (with Retry-After), a dropped connection, a
-- timeout or a lost answer (both done, but unanswered). After each: no version of
-- any ServiceAccount lost an entry or listed a missing Secret, no Secret was
-- deleted, emptied or given data from no source, the exit code and message
-- tell the failure; a clean re-run converges and the run after writes nothing.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local faultlib = require "faultlib"
local lib = require "setuplib"

local NAMESPACES = { "f1", "f2", "f3" }
local PW = { a1 = "fake-fault-pw-a1", a2 = "fake-fault-pw-a2", b1 = "fake-fault-pw-b1" }
local REG_A = { server = "a.example.org", username = "bot-a" }
local REG_B = { server = "b.example.org", username = "bot-b" }

local function site(namespaces)
  return lib.write("faults-site-" .. #namespaces .. ".lua", string.format([[
return { namespaces = { "%s" }, service_accounts = { "default" },
  registries = {
    { secret = "reg-a", server = %q, username = %q, password_env = "FAULT_PW_A" },
    { secret = "reg-b", server = %q, username = %q, password_env = "FAULT_PW_B" } } }
]], table.concat(namespaces, '", "'), REG_A.server, REG_A.username, REG_B.server, REG_B.username))
end
local SITE = site(NAMESPACES)

local function data(reg, password)
  return faultlib.data { { server = reg.server, username = reg.username, password = password } }
end
local A1, A2, B1 = data(REG_A, PW.a1), data(REG_A, PW.a2), data(REG_B, PW.b1)

-- ---- the starting states ----
-- (a) first rollout: each default ServiceAccount already lists an unrelated
-- pull secret (which exists) that must survive.
lib.reset()
for _, ns in ipairs(NAMESPACES) do
  lib.namespace(ns)
  lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "keep", namespace = ns },
    type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = data(REG_B, "fake-unrelated-pw") } }
  lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = ns },
    imagePullSecrets = { { name = "keep" } } }
end
lib.save("rollout")
local ROLLOUT_ENV = { FAULT_PW_A = PW.a1, FAULT_PW_B = PW.b1 }
-- (b) rotation: that rollout done, then registry a's password changed.
local status, _, err = faultlib.run(SITE, ROLLOUT_ENV)
t.eq({ status, err }, { 0, "" }, "the rollout that the rotation starts from")
lib.save("rotation")
local ROTATION_ENV = { FAULT_PW_A = PW.a2, FAULT_PW_B = PW.b1 }

local allowed, want_rollout, want_rotation = {}, { secrets = {}, refs = {} }, { secrets = {}, refs = {} }
for _, ns in ipairs(NAMESPACES) do
  allowed[ns .. "/reg-a"] = { [A1] = true, [A2] = true }
  allowed[ns .. "/reg-b"] = { [B1] = true }
  want_rollout.secrets[ns .. "/reg-a"], want_rollout.secrets[ns .. "/reg-b"] = A1, B1
  want_rotation.secrets[ns .. "/reg-a"], want_rotation.secrets[ns .. "/reg-b"] = A2, B1
  want_rollout.refs[ns .. "/default"] = { "keep", "reg-a", "reg-b" }
  want_rotation.refs[ns .. "/default"] = { "keep", "reg-a", "reg-b" }
end

-- The step setup.lua names in its message for a failed request.
local function step(e)
  local ns = e.path:match("^/api/v1/namespaces/([^/]+)/")
  local name = e.path:match("/secrets/([^/]+)$") or (e.method == "POST" and e.body:match('"name":"([^"]+)"'))
  if e.path:find("/serviceaccounts/", 1, true) then name = "serviceaccount/" .. e.path:match("[^/]+$")
  elseif name then name = "secret/" .. name end
  return ns and name and string.format("namespace %s: %s: ", ns, name)
end

-- What the client makes of a fault of `kind` on request `hit` (of `log`):
-- 0 when it is repeated, or can be done without (the cluster-wide LISTs of
-- the snapshot: the namespaces are then read one by one), else 1. Reads
-- are repeated by the client after a failure without an answer; writes are
-- not, but libcurl sends a request again by itself when a kept-alive
-- connection closes before any answer, which the log shows.
local function expected_exit(kind, hit, log)
  if hit.method == "GET" or kind.retried == "all" then return 0 end
  if kind.retried == "reads" then
    local after = false
    for _, e in ipairs(log) do
      if after and e.method == hit.method and e.path == hit.path and e.body == hit.body then return 0 end
      after = after or e == hit
    end
  end
  return 1
end

local totals = { sweeps = {}, runs = 0, violations = 0 }

-- Each request position of a clean run from state `saved` with `env`,
-- faulted with each of `kinds` in turn.
local function sweep(scenario, saved, env, want, concurrency, kinds)
  lib.restore(saved)
  lib.clear_log()
  local clean_status, _, clean_err = faultlib.run(SITE, env, { concurrency = concurrency })
  local clean = lib.log()
  t.eq({ clean_status, clean_err }, { 0, "" }, scenario .. ": the clean run succeeds")
  totals.sweeps[#totals.sweeps + 1] = string.format("%d positions x %d kinds", #clean, #kinds)
  for k, aimed in ipairs(clean) do
    for _, kind in ipairs(kinds) do
      local problems = {}
      local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end
      lib.restore(saved)
      lib.clear_log()
      lib.clear_faults()
      local fault = { skip = k - 1 }
      for key, v in pairs(kind.fault) do fault[key] = v end
      lib.fault(fault)
      local before = faultlib.state()
      local status, out, err = faultlib.run(SITE, env, { concurrency = concurrency,
        request_timeout = kind.name == "timeout" and faultlib.REQUEST_TIMEOUT or nil })
      local hit
      local log = lib.log()
      for _, e in ipairs(log) do
        if e.fault then hit = e end
      end
      if not hit then
        problem("no request was faulted")
        hit = aimed
      elseif concurrency == 1 and (hit.method ~= aimed.method or hit.path ~= aimed.path) then
        problem("the fault hit %s %s, not request %d", hit.method, hit.path, k)
      end
      local want_exit = expected_exit(kind, hit, log)
      if status ~= want_exit then problem("faulted run: exit %d, want %d; stderr: %s", status, want_exit, err) end
      if want_exit == 0 and err ~= "" then problem("faulted run: stderr %q", err) end
      if want_exit ~= 0 and not err:find("error: " .. (step(hit) or "?"), 1, true) then
        problem("faulted run: stderr does not name %q: %s", step(hit) or "?", err)
      end
      if status == 0 and out:find("error", 1, true) then problem("faulted run: stdout %q", out) end
      -- libcurl sends a write again when a reused connection closes unanswered, never after its own timeout
      if kind.name == "timeout" and hit.method ~= "GET" and not (status == 1 and err:find("timed out", 1, true)) then
        problem("faulted run: --request-timeout did not end the write: exit %d: %s", status, err)
      end

      lib.clear_log()
      local rerun_status, _, rerun_err = faultlib.run(SITE, env, { concurrency = concurrency })
      if rerun_status ~= 0 then problem("re-run: exit %d: %s", rerun_status, rerun_err) end
      for _, d in ipairs(faultlib.differences(faultlib.state(), want)) do problem("after the re-run: %s", d) end
      -- A re-run that wrote nothing is itself the quiet run that must follow.
      if #faultlib.writes(lib.log()) > 0 then
        lib.clear_log()
        local third_status = faultlib.run(SITE, env, { concurrency = concurrency })
        local writes = faultlib.writes(lib.log())
        if third_status ~= 0 or #writes > 0 then
          problem("the run after the re-run: exit %d, writes: %s", third_status, table.concat(writes, ", "))
        end
      end
      local violations = faultlib.violations(lib.history(), before, allowed)
      totals.violations = totals.violations + #violations
      for _, v in ipairs(violations) do problem("invariant: %s", v) end
      totals.runs = totals.runs + 1
      t.ok(#problems == 0, string.format("%s: request %d (%s %s) %s: exit %d, invariants hold, converges",
        scenario, k, aimed.method, aimed.path, kind.name, want_exit), table.concat(problems, "\n"))
    end
  end
end

local started = os.time()
sweep("rollout", "rollout", ROLLOUT_ENV, want_rollout, 1, faultlib.KINDS)
sweep("rotation", "rotation", ROTATION_ENV, want_rotation, 1, faultlib.KINDS)
-- Namespaces at once: which request comes k-th varies, the invariants must
-- not. The kinds that break off a request midway, which costs no waiting.
local abrupt = {}
for _, kind in ipairs(faultlib.KINDS) do
  if kind.name == "500" or kind.name == "drop" or kind.name == "lost" then abrupt[#abrupt + 1] = kind end
end
sweep("rollout, concurrent namespaces", "rollout", ROLLOUT_ENV, want_rollout, nil, abrupt)
print(string.format("## faults: %s = %d faulted runs, %d invariant violations (%d s)",
  table.concat(totals.sweeps, " + "), totals.runs, totals.violations, os.time() - started))

-- ---- a namespace whose default ServiceAccount the cluster has not made yet ----
lib.restore("rollout")
lib.namespace("f4", nil, false)
local with_f4 = { "f1", "f2", "f3", "f4" }
local before = faultlib.state()
local out
status, out, err = faultlib.run(site(with_f4), ROLLOUT_ENV)
t.eq({ status, err }, { 1, 'error: namespace f4: serviceaccount/default: serviceaccount "default" not found in '
  .. "namespace f4: not yet created by the cluster (a new namespace?); run again in a minute\n" },
  "no default ServiceAccount yet: exit 1, the namespace and the reason named")
t.ok(out:find("f3: serviceaccount/default configured\nf4: secret/reg-a created\nf4: secret/reg-b created\n", 1, true),
  "the other namespaces are done, and f4's Secrets", out)
lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "f4" } }
status, _, err = faultlib.run(site(with_f4), ROLLOUT_ENV)
t.eq({ status, err }, { 0, "" }, "once the cluster has made it, the next run succeeds")
want_rollout.refs["f4/default"] = { "reg-a", "reg-b" }
want_rollout.secrets["f4/reg-a"], want_rollout.secrets["f4/reg-b"] = A1, B1
allowed["f4/reg-a"], allowed["f4/reg-b"] = allowed["f1/reg-a"], allowed["f1/reg-b"]
t.eq(faultlib.differences(faultlib.state(), want_rollout), {}, "... and converges")
lib.clear_log()
status = faultlib.run(site(with_f4), ROLLOUT_ENV)
t.eq({ status, faultlib.writes(lib.log()) }, { 0, {} }, "the run after writes nothing")
t.eq(faultlib.violations(lib.history(), before, allowed), {}, "no invariant broken on the way")

-- ---- a source that fails: its Secret stays as it was ----
lib.restore("rotation")
local HELD = data({ server = "missing.example.test", username = "helper-user" }, "fake-earlier-helper-secret")
lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "reg-h", namespace = "f1",
  labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" } },
  type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = HELD } }
lib.clear_history()
before = faultlib.state()
local helper_site = lib.write("faults-site-helper.lua", string.format([[
return { namespaces = { "f1" }, registries = {
  { secret = "reg-a", server = %q, username = %q, password_env = "FAULT_PW_A" },
  { secret = "reg-h", server = "missing.example.test", credential_helper = "xcsreg-test" } } }
]], REG_A.server, REG_A.username))
local helper_env = { FAULT_PW_A = PW.a2, PATH = dir .. "/../lib/fixtures-sources:" .. os.getenv("PATH") }
status, out, err = faultlib.run(helper_site, helper_env)
t.eq(status, 1, "a credential helper that fails: exit 1")
t.ok(err:find("error: namespace f1: secret/reg-h: ", 1, true) == 1, "... naming the Secret it could not renew", err)
t.eq(out, "secret/reg-a configured\nserviceaccount/default unchanged\n",
  "... the other Secret is rotated all the same, and reg-h not added to the ServiceAccount")
t.eq(faultlib.violations(lib.history(), before, { ["f1/reg-a"] = allowed["f1/reg-a"], ["f1/reg-h"] = { [HELD] = true } }),
  {}, "reg-h keeps what it held: never emptied or given the failed source's output")

return t.done()
