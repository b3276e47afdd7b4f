-- setup.lua over 10 namespaces x 3 registries: one cluster-wide read where allowed, per-namespace GETs where not, foreign Secrets still found, output in order.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local lib = require "setuplib"

local N, SECRETS = 10, { "ghcr", "harbor", "internal" }
local env = { GHCR_TOKEN = "fake-ghcr-token-Ro1", HARBOR_TOKEN = "fake-harbor-token-Ro2", INTERNAL_TOKEN = "fake-int-Ro3" }
local registries = {
  ghcr = { server = "ghcr.io", username = "xnat-bot", password = env.GHCR_TOKEN },
  harbor = { server = "harbor.example.org", username = "robot$xnat", password = env.HARBOR_TOKEN },
  internal = { server = "registry.example.org", username = "u", password = env.INTERNAL_TOKEN },
}
local entries = [[
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_env = "HARBOR_TOKEN" },
    { secret = "internal", server = "registry.example.org", username = "u", password_env = "INTERNAL_TOKEN" },
]]
local namespaces = {}
for i = 1, N do namespaces[i] = string.format("ns-%02d", i) end
local listed = lib.write("listed.lua", string.format("return { namespaces = { %q%s }, registries = {\n%s} }",
  namespaces[1], (", %q"):rep(N - 1):format(table.unpack(namespaces, 2)), entries))
local selected = lib.write("selected.lua", "return { namespace_selector = 'scale=yes', registries = {\n" .. entries .. "} }")

-- The stdout of a run in which every namespace's Secrets and ServiceAccount have these results.
local function lines(secret, sa, except)
  local out = {}
  for _, ns in ipairs(namespaces) do
    for _, s in ipairs(SECRETS) do
      out[#out + 1] = ns .. ": secret/" .. s .. " " .. ((except or {})[ns .. "/" .. s] or secret)
    end
    out[#out + 1] = ns .. ": serviceaccount/default " .. ((except or {})[ns] or sa)
  end
  return table.concat(out, "\n") .. "\n"
end
-- Counts of "METHOD:status" in the request log, and the log.
local function tally()
  local log, counts = lib.log(), {}
  for _, e in ipairs(log) do
    local k = e.method .. ":" .. tostring(e.status)
    counts[k] = (counts[k] or 0) + 1
  end
  return counts, log
end
-- "METHOD:status path?query" of a request.
local function show(e)
  local q = {}
  for k, v in pairs(e.query) do q[#q + 1] = k .. "=" .. table.concat(v, ",") end
  table.sort(q)
  return e.method .. ":" .. tostring(e.status) .. " " .. e.path .. (#q > 0 and "?" .. table.concat(q, "&") or "")
end
-- The requests shown, sorted (those sent at once arrive in any order), from
-- the first to the last (default: all).
local function shown(log, first, last)
  local out = {}
  for i = first or 1, last or #log do out[#out + 1] = show(log[i]) end
  table.sort(out)
  return out
end

lib.reset()
for _, ns in ipairs(namespaces) do lib.namespace(ns, { scale = "yes" }) end
-- a pull secret someone else put there, and an unrelated Secret xcsreg manages elsewhere
lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "ns-03" },
  imagePullSecrets = { { name = "theirs" } } }

-- ---- full rollout, admin ----
lib.clear_log()
local status, out, err = lib.setup({ "--config", listed }, { env = env })
t.eq({ status, out, err }, { 0, lines("created", "configured"), "" }, "full rollout: every line, in namespace order")
local counts = tally()
t.eq(counts, { ["GET:200"] = 2, ["POST:201"] = N * 3, ["PATCH:200"] = N },
  "full rollout: 2 LISTs, then only writes: " .. N * 3 .. " creates, " .. N .. " patches")
local correct = true
for _, ns in ipairs(namespaces) do
  for _, s in ipairs(SECRETS) do
    local obj = lib.get("Secret", ns, s)
    correct = correct and obj ~= nil and base64.decode(obj.data[".dockerconfigjson"]) == dockerconfig.encode { registries[s] }
      and obj.metadata.labels["app.kubernetes.io/managed-by"] == "xcsreg"
  end
  local want = ns == "ns-03" and { "theirs", "ghcr", "harbor", "internal" } or { "ghcr", "harbor", "internal" }
  correct = correct and table.concat(lib.pull_secrets(ns, "default"), ",") == table.concat(want, ",")
end
t.ok(correct, "full rollout: every Secret's content and label, every ServiceAccount's list (ns-03 keeps theirs)")

-- ---- unchanged re-run, admin: constant, reads only ----
lib.clear_log()
status, out = lib.setup({ "--config", listed }, { env = env })
t.eq({ status, out }, { 0, lines("unchanged", "unchanged") }, "unchanged re-run: every line unchanged, in order")
local _, log = tally()
t.eq(shown(log), { "GET:200 /api/v1/secrets?labelSelector=app.kubernetes.io/managed-by=xcsreg&limit=500",
  "GET:200 /api/v1/serviceaccounts?fieldSelector=metadata.name=default&limit=500" },
  "unchanged re-run with cluster-wide rights: 2 requests, both LISTs, whatever the number of namespaces")
lib.clear_log()
status, out = lib.setup({ "--config", selected }, { env = env })
t.eq({ status, out }, { 0, lines("unchanged", "unchanged") }, "with namespace_selector: the same")
counts = tally()
t.eq(counts, { ["GET:200"] = 3 }, "with namespace_selector: 3 requests (+ the namespaces LIST)")

-- the same with --concurrency 1: the same output
status, out = lib.setup({ "--config", listed, "--concurrency", "1" }, { env = env })
t.eq({ status, out }, { 0, lines("unchanged", "unchanged") }, "--concurrency 1: the same output")

-- two ServiceAccounts: one LIST each
lib.clear_log()
status, out = lib.setup({ "--config", listed, "-q", "--service-account", "default", "--service-account", "builder" },
  { env = env })
counts, log = tally()
t.eq({ status, counts["GET:200"], shown(log, 1, 3) }, { 1, 3, {
  "GET:200 /api/v1/secrets?labelSelector=app.kubernetes.io/managed-by=xcsreg&limit=500",
  "GET:200 /api/v1/serviceaccounts?fieldSelector=metadata.name=builder&limit=500",
  "GET:200 /api/v1/serviceaccounts?fieldSelector=metadata.name=default&limit=500" } },
  "two wanted ServiceAccounts: a LIST for each (builder is missing everywhere: read per namespace, then exit 1)")

-- ---- alice: only namespaced rights (the Role of rbac.yaml in each namespace) ----
lib.grant({ user = "alice", verbs = { "get", "create", "update" }, resources = { "secrets" }, namespaces = namespaces })
lib.grant({ user = "alice", verbs = { "get", "patch" }, resources = { "serviceaccounts" }, namespaces = namespaces })
lib.clear_log()
-- ns-01's answers come last: its lines still come first
lib.fault({ method = "GET", path_regex = "^/api/v1/namespaces/ns-01/", count = 4, action = "delay", latency_ms = 300 })
status, out, err = lib.setup({ "--config", listed }, { env = env, kubeconfig = "alice.kubeconfig" })
t.eq({ status, out, err }, { 0, lines("unchanged", "unchanged"), "" },
  "alice: unchanged, silently per namespace, in namespace order although ns-01 answers last")
counts, log = tally()
t.eq(counts, { ["GET:403"] = 2, ["GET:200"] = N * 4 }, "alice: 2 forbidden LISTs, then " .. N * 4
  .. " GETs (3 Secrets + 1 ServiceAccount a namespace), no write")
t.eq(shown(log, 1, 2), { "GET:403 /api/v1/secrets?labelSelector=app.kubernetes.io/managed-by=xcsreg&limit=500",
  "GET:403 /api/v1/serviceaccounts?fieldSelector=metadata.name=default&limit=500" }, "alice: the forbidden ones are the two probes")

-- rights to list ServiceAccounts but not Secrets: each LIST stands or falls alone
lib.grant({ user = "alice", verbs = { "list" }, resources = { "serviceaccounts" }, namespaces = { "*" } })
lib.clear_log()
status, out = lib.setup({ "--config", listed }, { env = env, kubeconfig = "alice.kubeconfig" })
counts = tally()
t.eq({ status, out, counts }, { 0, lines("unchanged", "unchanged"), { ["GET:403"] = 1, ["GET:200"] = 1 + N * 3 } },
  "alice may list ServiceAccounts only: their LIST serves, the Secrets are read per namespace")

-- ---- a foreign Secret under the read-once path ----
-- not labelled, so not in the managed LIST: the create finds it (409) and reads it
lib.namespace("ns-11", { scale = "yes" })
namespaces[#namespaces + 1] = "ns-11"
local foreign = lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "harbor", namespace = "ns-11" },
  type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = base64.encode('{"auths":{}}') } }
lib.clear_log()
status, out, err = lib.setup({ "--config", selected }, { env = env })
local ns11 = "ns-11: secret/ghcr created\nns-11: secret/internal created\nns-11: serviceaccount/default configured\n"
t.eq({ status, out }, { 1, lines("unchanged", "unchanged"):gsub("ns%-11.*", "") .. ns11 },
  "a foreign Secret: the others done, exit 1")
t.eq(err, "error: namespace ns-11: secret/harbor: secret/harbor exists and was not made by xcsreg (it has no label "
  .. "app.kubernetes.io/managed-by=xcsreg): left untouched; to let xcsreg take it over and rewrite it, run again "
  .. "with --adopt\n", "... detected and reported as without the snapshot")
local now = lib.get("Secret", "ns-11", "harbor")
t.eq({ now.metadata.resourceVersion, now.data, now.metadata.labels }, { foreign.metadata.resourceVersion, foreign.data, nil },
  "... and not modified")
local harbor = {}
for _, e in ipairs(lib.log()) do
  if e.path:find("/namespaces/ns%-11/secrets") and (e.method ~= "POST" or e.body:find('"name":"harbor"', 1, true)) then
    harbor[#harbor + 1] = show(e)
  end
end
t.eq(harbor, { "POST:409 /api/v1/namespaces/ns-11/secrets?fieldManager=xcsreg", "GET:200 /api/v1/namespaces/ns-11/secrets/harbor" },
  "... by the create's 409 AlreadyExists and a GET")
status, out = lib.setup({ "--config", selected, "--adopt", "-n", "ns-11", "-n", "ns-01" }, { env = env })
t.eq({ status, out }, { 0, "ns-11: secret/ghcr unchanged\nns-11: secret/harbor configured\nns-11: secret/internal unchanged\n"
  .. "ns-11: serviceaccount/default configured\nns-01: secret/ghcr unchanged\nns-01: secret/harbor unchanged\n"
  .. "ns-01: secret/internal unchanged\nns-01: serviceaccount/default unchanged\n" },
  "--adopt takes it over (the namespaces in the order given)")
t.eq(lib.get("Secret", "ns-11", "harbor").metadata.labels, { ["app.kubernetes.io/managed-by"] = "xcsreg" },
  "... and labels it")

-- ---- a rotation: every Secret written once, a race on one answered by a fresh read ----
env.HARBOR_TOKEN = "fake-harbor-token-Ro2-rotated"
lib.fault({ method = "PUT", path_regex = "^/api/v1/namespaces/ns-05/secrets/harbor$", action = "none",
  mutate = { metadata = { annotations = { ["someone/else"] = "was here" } } } })
lib.clear_log()
status, out = lib.setup({ "--config", selected }, { env = env })
t.eq({ status, out }, { 0, lines("unchanged", "unchanged", (function()
  local changed = {}
  for _, ns in ipairs(namespaces) do changed[ns .. "/harbor"] = "configured" end
  return changed
end)()) }, "harbor rotated: configured in every namespace")
counts = tally()
t.eq(counts, { ["GET:200"] = 4, ["PUT:200"] = N + 1, ["PUT:409"] = 1 },
  "3 LISTs, a PUT a namespace; the one that lost its race: 409, a GET, a PUT")
local s5 = lib.get("Secret", "ns-05", "harbor")
t.eq({ base64.decode(s5.data[".dockerconfigjson"]) == dockerconfig.encode { { server = "harbor.example.org",
  username = "robot$xnat", password = env.HARBOR_TOKEN } }, s5.metadata.annotations["someone/else"] },
  { true, "was here" }, "... and neither write is lost")

-- ---- an API server that throttles: slower, still complete ----
env.GHCR_TOKEN = "fake-ghcr-token-Ro1-rotated"
lib.throttle(2, 1)
-- the first two writes are slow: those sent meanwhile meet the throttle
lib.fault({ method = "PUT", path_regex = "/secrets/ghcr$", count = 2, action = "delay", latency_ms = 500 })
lib.clear_log()
status, out = lib.setup({ "--config", selected, "--concurrency", "8" }, { env = env })
lib.throttle(100, 1)
local changed = {}
for _, ns in ipairs(namespaces) do changed[ns .. "/ghcr"] = "configured" end
counts = tally()
t.eq({ status, out, counts["PUT:200"] }, { 0, lines("unchanged", "unchanged", changed), N + 1 },
  "throttled to 2 requests in flight: every Secret still written once, the output in order")
t.ok((counts["PUT:429"] or 0) + (counts["GET:429"] or 0) > 0, "... and the throttle did answer 429")

return t.done()
