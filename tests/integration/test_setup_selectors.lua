-- setup.lua with namespace_selector and all_namespaces: new namespaces picked up, Terminating ones skipped, list namespaces forbidden.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local yaml = require "yaml"

local env = { GHCR_TOKEN = "fake-ghcr-token-Sel1" }
local function site(name, selection)
  return lib.write(name, string.format([[
return {
  %s,
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } },
}]], selection))
end
local selected = site("selected.lua", 'namespace_selector = "xnat=jobs"')
local everything = site("everything.lua", 'all_namespaces = true, exclude_namespaces = { "kube-system", "other" }')

-- The stdout of a run that handles these namespaces, each with `secret` and `sa` as results.
local function lines(list)
  local out = {}
  for _, l in ipairs(list) do
    out[#out + 1] = l[1] .. ": secret/ghcr " .. l[2]
    out[#out + 1] = l[1] .. ": serviceaccount/default " .. l[3]
  end
  return table.concat(out, "\n") .. "\n"
end
-- "METHOD path?query" of each logged request.
local function requests()
  local out = {}
  for _, e in ipairs(lib.log()) do
    local q = {}
    for k, v in pairs(e.query) do q[#q + 1] = k .. "=" .. table.concat(v, ",") end
    table.sort(q)
    out[#out + 1] = e.method .. ":" .. tostring(e.status) .. " " .. e.path .. (#q > 0 and "?" .. table.concat(q, "&") or "")
  end
  return out
end

lib.reset()
lib.namespace("xnat-b", { xnat = "jobs" })
lib.namespace("xnat-a", { xnat = "jobs" })
lib.namespace("other", { xnat = "web" })

-- ---- namespace_selector: the labelled namespaces only ----
lib.clear_log()
local status, out, err = lib.setup({ "--config", selected }, { env = env })
t.eq({ status, out, err }, { 0, lines { { "xnat-a", "created", "configured" }, { "xnat-b", "created", "configured" } }, "" },
  "namespace_selector: the two labelled namespaces, in name order")
t.eq(requests()[1], "GET:200 /api/v1/namespaces?labelSelector=xnat=jobs&limit=500", "the namespaces are listed with the selector")
t.eq({ #lib.objects("Secret", "other"), #lib.objects("Secret", "default") }, { 0, 0 }, "other namespaces untouched")

-- a namespace labelled later is picked up by the next run; one being deleted is skipped with a note
lib.namespace("xnat-c", { xnat = "jobs" })
lib.seed { apiVersion = "v1", kind = "Namespace", metadata = { name = "xnat-gone", labels = { xnat = "jobs" },
  deletionTimestamp = "2024-01-01T00:00:00Z" }, spec = { finalizers = { "kubernetes" } }, status = { phase = "Terminating" } }
status, out, err = lib.setup({ "--config", selected }, { env = env })
t.eq({ status, out }, { 0, lines { { "xnat-a", "unchanged", "unchanged" }, { "xnat-b", "unchanged", "unchanged" },
  { "xnat-c", "created", "configured" } } }, "the next run picks up xnat-c")
t.eq(err, "note: namespace xnat-gone is being deleted (phase Terminating): skipped\n", "the Terminating one: a note")
t.eq(#lib.objects("Secret", "xnat-gone"), 0, "nothing written in the Terminating namespace")
status, out, err = lib.setup({ "--config", selected, "-q" }, { env = env })
t.eq({ status, out, err }, { 0, "", "" }, "-q: not even the note")

-- ---- all_namespaces with exclude_namespaces ----
status, out, err = lib.setup({ "--config", everything }, { env = env })
t.eq({ status, out }, { 0, lines { { "default", "created", "configured" }, { "xnat-a", "unchanged", "unchanged" },
  { "xnat-b", "unchanged", "unchanged" }, { "xnat-c", "unchanged", "unchanged" } } },
  "all_namespaces: every namespace but the excluded and the Terminating")
t.eq({ #lib.objects("Secret", "other"), #lib.objects("Secret", "kube-system") }, { 0, 0 }, "the excluded are untouched")

-- ---- a selector that matches nothing ----
lib.clear_log()
status, out, err = lib.setup({ "--config", site("none.lua", 'namespace_selector = "xnat in (nothing)"') }, { env = env })
t.eq({ status, out, err }, { 0, "", 'warning: namespace_selector "xnat in (nothing)" matches no namespace: nothing to do\n' },
  "no namespace matches: a warning, exit 0")
t.eq(requests(), { "GET:200 /api/v1/namespaces?labelSelector=xnat in (nothing)&limit=500" }, "... after one request")

-- ---- -n overrides the selection ----
lib.clear_log()
status, out = lib.setup({ "--config", selected, "-n", "other" }, { env = env })
t.eq({ status, out }, { 0, "secret/ghcr created\nserviceaccount/default configured\n" }, "-n other: that one only")
t.eq(requests()[1], "GET:404 /api/v1/namespaces/other/secrets/ghcr", "... and no namespace listed")

-- ---- checked before any request ----
lib.clear_log()
status, out, err = lib.setup({ "--config", selected, "--dry-run=client" }, { env = env })
t.eq({ status, out, err }, { 2, "", "error: --dry-run=client contacts no cluster, so it cannot find the namespaces of "
  .. "namespace_selector: give them with -n, or use --dry-run=server\nSee 'xcsreg run setup.lua --help' for usage.\n" },
  "--dry-run=client with a selector: usage error")
status, out, err = lib.setup({ "--config", site("bad.lua", 'namespace_selector = "xnat = jobs, = x"') }, { env = env })
t.eq({ status, err }, { 2, "error: " .. lib.tmp .. '/bad.lua: namespace_selector: "xnat = jobs, = x" is not a valid '
  .. 'label selector: want key=value, key!=value, key in (v1,v2), key notin (v1,v2), key or !key, joined by "," '
  .. '(keys and values as in labels); "= x" is none of these\n' }, "a bad selector: exit 2, the field named")
status, out, err = lib.setup({ "--config", site("both.lua", 'namespaces = { "a" }, all_namespaces = true') }, { env = env })
t.eq({ status, err }, { 2, "error: " .. lib.tmp .. "/both.lua: namespaces and all_namespaces both given: give only one "
  .. "of namespaces, namespace_selector, all_namespaces\n" }, "two selections: exit 2")
status, out, err = lib.setup({ "--config", selected, "--concurrency", "0" }, { env = env })
t.eq({ status, err }, { 2, 'error: --concurrency: must be a whole number from 1 to 100, not "0"\n'
  .. "See 'xcsreg run setup.lua --help' for usage.\n" }, "--concurrency 0: usage error")
status, out, err = lib.setup({ "--config", selected, "--request-timeout", "0" }, { env = env })
t.eq({ status, err }, { 2, 'error: --request-timeout: must be a number of seconds, above 0 and at most a day, not "0"\n'
  .. "See 'xcsreg run setup.lua --help' for usage.\n" }, "--request-timeout 0: usage error")
t.eq(lib.log(), {}, "none of these sent a request")

-- ---- list namespaces forbidden ----
-- alice has the namespaced Role of scripts/k8s/rbac.yaml in the xnat namespaces, nothing cluster-wide
for _, g in ipairs { { { "get", "create", "update" }, { "secrets" } }, { { "get", "patch" }, { "serviceaccounts" } } } do
  lib.grant({ user = "alice", verbs = g[1], resources = g[2], namespaces = { "xnat-a", "xnat-b", "xnat-c" } })
end
lib.clear_log()
status, out, err = lib.setup({ "--config", selected }, { env = env, kubeconfig = "alice.kubeconfig" })
local want_err = [[
error: cannot list namespaces: Error from server (Forbidden): namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope
namespace_selector "xnat=jobs" needs to list namespaces, which are cluster-scoped: no Role can grant it.
Have a cluster admin grant it (scripts/k8s/clusterrole-optional.yaml has this ClusterRole for a CronJob's own
ServiceAccount), or name the namespaces instead (namespaces = {...} in the site file, or -n):
  kubectl apply -f - <<'EOF'
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: xcsreg-namespaces}
  rules:
  - {apiGroups: [""], resources: [namespaces], verbs: [list]}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: xcsreg-namespaces}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: xcsreg-namespaces}
  subjects: [{kind: User, name: "alice", apiGroup: rbac.authorization.k8s.io}]
  EOF
]]
t.eq({ status, out, err }, { 1, "", want_err }, "list namespaces forbidden: exit 1, the ClusterRole to grant")
t.eq(requests(), { "GET:403 /api/v1/namespaces?labelSelector=xnat=jobs&limit=500" }, "... after that one request")
status, out, err = lib.setup({ "--config", everything }, { env = env, kubeconfig = "alice.kubeconfig" })
t.ok(status == 1 and err:find("\nall_namespaces needs to list namespaces, which are cluster-scoped", 1, true) ~= nil,
  "all_namespaces: the same", err)

-- the ClusterRole printed is the one shipped, and it is enough
local printed = {}
for doc in (want_err:match("<<'EOF'\n(.-)\n  EOF\n"):gsub("\n  ", "\n"):gsub("^  ", "") .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do
  local obj = yaml.decode(doc)
  printed[obj.kind] = obj
end
local shipped = {}
for doc in (io.open(dir .. "/../../scripts/k8s/clusterrole-optional.yaml"):read("a") .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do
  local obj = yaml.decode(doc)
  shipped[obj.metadata.name .. " " .. obj.kind] = obj
end
t.eq(shipped["xcsreg-namespaces ClusterRole"].rules, printed.ClusterRole.rules,
  "clusterrole-optional.yaml: the same rules as the ClusterRole printed")
t.eq(shipped["xcsreg-namespaces ClusterRoleBinding"].roleRef, printed.ClusterRoleBinding.roleRef,
  "clusterrole-optional.yaml: the same binding")
for _, rule in ipairs(printed.ClusterRole.rules) do
  lib.grant({ user = "alice", verbs = rule.verbs, resources = rule.resources, namespaces = { "*" } })
end
status, out, err = lib.setup({ "--config", selected }, { env = env, kubeconfig = "alice.kubeconfig" })
t.eq({ status, out, err }, { 0, lines { { "xnat-a", "unchanged", "unchanged" }, { "xnat-b", "unchanged", "unchanged" },
  { "xnat-c", "unchanged", "unchanged" } }, "note: namespace xnat-gone is being deleted (phase Terminating): skipped\n" },
  "with the ClusterRole granted: alice's run works")

-- a selected namespace without the Role: that one fails with the Role hint, the others go on
lib.namespace("xnat-d", { xnat = "jobs" })
status, out, err = lib.setup({ "--config", selected, "-q" }, { env = env, kubeconfig = "alice.kubeconfig" })
t.eq({ status, out }, { 1, "" }, "a selected namespace without the Role: exit 1")
t.ok(err:find('^error: namespace xnat%-d: secret/ghcr: Error from server %(Forbidden%)') ~= nil
  and err:find("metadata: {name: xcsreg, namespace: xnat-d}", 1, true) ~= nil, "... with its Role to grant", err)
t.eq(lib.pull_secrets("xnat-c", "default"), { "ghcr" }, "the others are done")

return t.done()
