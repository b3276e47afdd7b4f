-- needs: apisim
-- Two setup.lua runs at once, without the run lock, with different
-- registries for the same namespaces: both succeed (a write that loses a
-- race gets 409 and is done again from a fresh read) and the end state is
-- the union of both, with no entry of a ServiceAccount lost on the way.
-- Latency injected in different places makes their requests interleave.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local faultlib = require "faultlib"
local lib = require "setuplib"

local NAMESPACES = { "c1", "c2", "c3" }
local REGS = {
  { secret = "reg-a", server = "a.example.org", username = "bot-a", env = "FAULT_PW_A", password = "fake-conc-pw-a" },
  { secret = "reg-b", server = "b.example.org", username = "bot-b", env = "FAULT_PW_B", password = "fake-conc-pw-b" },
  { secret = "reg-c", server = "c.example.org", username = "bot-c", env = "FAULT_PW_C", password = "fake-conc-pw-c" },
}
local env = {}
for _, r in ipairs(REGS) do env[r.env] = r.password end

local function site(name, regs)
  local entries = {}
  for _, r in ipairs(regs) do
    entries[#entries + 1] = string.format("{ secret = %q, server = %q, username = %q, password_env = %q }",
      r.secret, r.server, r.username, r.env)
  end
  return lib.write(name, string.format('return { namespaces = { "%s" }, registries = { %s } }',
    table.concat(NAMESPACES, '", "'), table.concat(entries, ", ")))
end
local SITES = { site("conc-1.lua", { REGS[1], REGS[2] }), site("conc-2.lua", { REGS[3] }) }

lib.reset()
for _, ns in ipairs(NAMESPACES) do
  lib.namespace(ns)
  lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "keep", namespace = ns },
    type = "Opaque", data = { k = "dg==" } }
  lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = ns },
    imagePullSecrets = { { name = "keep" } } }
end
lib.save("start")

local allowed, want = {}, { secrets = {}, refs = {} }
for _, ns in ipairs(NAMESPACES) do
  for _, r in ipairs(REGS) do
    local data = faultlib.data { { server = r.server, username = r.username, password = r.password } }
    allowed[ns .. "/" .. r.secret] = { [data] = true }
    want.secrets[ns .. "/" .. r.secret] = data
  end
  want.refs[ns .. "/default"] = { "keep", "reg-a", "reg-b", "reg-c" }
end

-- Where the latency goes: nowhere; every request; the writes to
-- ServiceAccounts (both runs read before either writes); the first read.
local LATENCY = {
  { name = "no latency" },
  { name = "20 ms on every request", fault = { action = "delay", latency_ms = 20, count = 1000 } },
  { name = "150 ms on ServiceAccount patches",
    fault = { method = "PATCH", path_regex = "/serviceaccounts/", action = "delay", latency_ms = 150, count = 1000 } },
  { name = "100 ms on the cluster-wide Secret list",
    fault = { method = "GET", path_regex = "^/api/v1/secrets$", action = "delay", latency_ms = 100, count = 1000 } },
}
local ROUNDS = 3

local conflicts, runs = 0, 0
for _, latency in ipairs(LATENCY) do
  for round = 1, ROUNDS do
    local name = string.format("%s, round %d", latency.name, round)
    lib.restore("start")
    lib.clear_log()
    lib.clear_faults()
    if latency.fault then lib.fault(latency.fault) end
    local before = faultlib.state()
    local results = faultlib.together(SITES, env)
    runs = runs + 1
    t.eq({ results[1][1], results[1][3], results[2][1], results[2][3] }, { 0, "", 0, "" },
      name .. ": both runs succeed")
    for _, e in ipairs(lib.log()) do
      if e.status == 409 then conflicts = conflicts + 1 end
    end
    lib.clear_faults()
    t.eq(faultlib.differences(faultlib.state(), want), {}, name .. ": the end state is the union of both")
    t.eq(faultlib.violations(lib.history(), before, allowed), {},
      name .. ": no ServiceAccount version lost an entry or listed a missing Secret; no Secret lost")
    lib.clear_log()
    local again = faultlib.together(SITES, env)
    t.eq({ again[1][1], again[2][1], faultlib.writes(lib.log()) }, { 0, 0, {} }, name .. ": the runs after write nothing")
  end
end
print(string.format("## concurrent runs: %d pairs, %d writes lost a race (409) and were done again", runs, conflicts))
t.ok(conflicts > 0, "the runs did race: some writes got 409 Conflict")

return t.done()
