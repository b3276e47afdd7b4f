-- The Role of scripts/k8s/rbac-watch.yaml, with rbac.yaml's, is exactly what setup.lua --watch needs for a list of namespaces: with their rules the controller takes the Lease, repairs what breaks and uses each (resource, verb) of the watch Role; without any one of them, it says which 403 stops it.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/deployfixtures/?.lua;" .. dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local deploy = require "deploylib"
local w = require "watchlib"

-- Every (resource, verb) the Role called name in file grants, in file order.
local function rules_of(file, name)
  local grants = {}
  for _, doc in ipairs(deploy.documents("scripts/k8s/" .. file)) do
    if doc.kind == "Role" and doc.metadata.name == name then
      for _, rule in ipairs(doc.rules) do
        for _, res in ipairs(rule.resources) do
          for _, verb in ipairs(rule.verbs) do grants[#grants + 1] = { res, verb } end
        end
      end
    end
  end
  return grants
end
local base, watch = rules_of("rbac.yaml", "xcsreg"), rules_of("rbac-watch.yaml", "xcsreg-watch")

local env = { GHCR_TOKEN = "fake-ghcr-token-RbacWatch1" }
t.secret(env.GHCR_TOKEN, "rbac-watch-ghcr")
local site = w.write("rbac-watch-site.lua", [[
return { registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } } }
]])
local timing = { "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5" }
w.reset()

-- A new user given rules in a new namespace of its own; its kubeconfig.
local function identity(n, rules)
  local user, ns = "rbacw-" .. n, "rbacw-" .. n
  w.user(user, "fake-token-w" .. n)
  w.namespace(ns)
  for _, g in ipairs(rules) do w.grant { user = user, verbs = { g[2] }, resources = { g[1] }, namespaces = { ns } } end
  local text = w.read(w.dir .. "/alice.kubeconfig"):gsub("alice%-token", "fake-token-w" .. n)
  return ns, w.write(user .. ".kubeconfig", text), user
end
local function controller(ns, kubeconfig)
  local args = { "--config", site, "-n", ns, "--lease-namespace", ns }
  for _, a in ipairs(timing) do args[#args + 1] = a end
  local e = { KUBECONFIG = kubeconfig }
  for k, v in pairs(env) do e[k] = v end
  return w.start(args, e)
end
local function rewrite_sa(ns)
  local api = w.client()
  local sa = assert(api:get("/api/v1/namespaces/" .. ns .. "/serviceaccounts/default"))
  sa.imagePullSecrets = nil
  assert(api:replace("/api/v1/namespaces/" .. ns .. "/serviceaccounts/default", sa))
end

-- ---- with every rule: it works, and uses each (resource, verb) of the watch Role ----
local all = {}
table.move(base, 1, #base, 1, all)
table.move(watch, 1, #watch, #all + 1, all)
local ns, kubeconfig, user = identity(0, all)
w.clear_log()
local h = controller(ns, kubeconfig)
t.ok(w.wait_for(function() return w.has_pull(ns, "ghcr") end, 5), "with the Roles' rules: the namespace is reconciled")
rewrite_sa(ns)
t.ok(w.wait_for(function() return w.has_pull(ns, "ghcr") end, 5), "with the Roles' rules: a rewritten ServiceAccount "
  .. "is repaired from its watch")
w.sleep(1) -- the Lease renewed at least once (PUT)
t.eq(w.stop(h, "TERM"), 0, "with the Roles' rules: SIGTERM, exit 0")
local used, seen = {}, {}
for _, e in ipairs(w.log()) do
  if e.user == user and e.verb then
    local res = e.path:match("^/api.-/namespaces/[^/]+/([^/]+)")
    local pair = tostring(res) .. " " .. e.verb
    if not seen[pair] then used[#used + 1] = pair end
    seen[pair] = true
  end
end
for _, g in ipairs(watch) do
  t.ok(seen[g[1] .. " " .. g[2]], "with the Roles' rules: " .. g[1] .. " " .. g[2] .. " is used",
    table.concat(used, ", "))
end
t.ok(not w.read(h.err):find("forbidden", 1, true), "with the Roles' rules: nothing forbidden", w.read(h.err))

-- ---- without any one rule of the watch Role: a 403 naming it ----
for i, g in ipairs(watch) do
  local rules = {}
  table.move(base, 1, #base, 1, rules)
  for _, other in ipairs(watch) do
    if other ~= g then rules[#rules + 1] = other end
  end
  local n_ns, n_kubeconfig = identity(i, rules)
  local c = controller(n_ns, n_kubeconfig)
  local text = string.format('cannot %s resource "%s"', g[2], g[1])
  local found = w.wait_for(function() return w.read(c.err):find(text, 1, true) end, 6)
  w.stop(c, "TERM")
  t.ok(found, "without " .. g[1] .. " " .. g[2] .. ": the controller says which 403 stops it", w.read(c.err))
end
t.done()
