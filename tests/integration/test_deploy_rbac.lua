-- The Roles of scripts/k8s/rbac.yaml and rbac-status.yaml are exactly what setup.lua and status.lua need: with their rules, every run succeeds (rotation and 409 retries included) and uses each verb; without any one verb, some run fails with a 403 naming it.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/deployfixtures/?.lua;" .. dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local deploy = require "deploylib"
local lib = require "setuplib"
local proc = require "proc"

-- Every (resource, verb) a Role of the files grants, once, in file order.
local function rules_of(files, role_name)
  local grants, seen = {}, {}
  for _, file in ipairs(files) do
    for _, doc in ipairs(deploy.documents("scripts/k8s/" .. file)) do
      if doc.kind == "Role" and (not role_name or doc.metadata.name == role_name) then
        for _, rule in ipairs(doc.rules) do
          for _, res in ipairs(rule.resources) do
            for _, verb in ipairs(rule.verbs) do
              if not seen[res .. " " .. verb] then grants[#grants + 1] = { res, verb } end
              seen[res .. " " .. verb] = true
            end
          end
        end
      end
    end
  end
  return grants
end
local grants = rules_of { "rbac.yaml", "rbac-status.yaml" }

local site = lib.write("rbac-site.lua", [[
return { registries = {
  { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
  { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_env = "HARBOR_TOKEN" },
} }]])
local wants_more = lib.write("rbac-site-more.lua", [[
return { registries = {
  { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
  { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_env = "HARBOR_TOKEN" },
  { secret = "quay", server = "quay.io", username = "xnat+bot", password_env = "GHCR_TOKEN" },
} }]])
local alice = io.open(lib.dir .. "/alice.kubeconfig"):read("a")

-- A new user (grants cannot be taken back), given `rules` in a new namespace.
local function identity(n, rules)
  local user, ns = "rbac-" .. n, "rbac-" .. n
  lib.user(user, "fake-token-" .. n)
  lib.namespace(ns)
  for _, g in ipairs(rules) do
    lib.grant { user = user, verbs = { g[2] }, resources = { g[1] }, namespaces = { ns } }
  end
  local kubeconfig = lib.write(user .. ".kubeconfig", (alice:gsub("alice%-token", "fake-token-" .. n)))
  return ns, kubeconfig
end

-- setup.lua runs with a lock of the test's own, and without logging in to
-- the (fictional) registries.
local function xcsreg(script, args, kubeconfig, password)
  local argv = { lib.xcsreg, "run", script }
  table.move(args, 1, #args, 4, argv)
  if script == "setup.lua" then table.move({ "--no-verify", "--lock", lib.tmp .. "/rbac.lock" }, 1, 3, #argv + 1, argv) end
  local code, out, err = proc.run { argv = argv, timeout = 120, env = { KUBECONFIG = kubeconfig, HOME = lib.tmp,
    GHCR_TOKEN = "fake-ghcr-" .. password, HARBOR_TOKEN = "fake-harbor-" .. password } }
  assert(code, out)
  return { code = code, out = out, err = err }
end

-- What the CronJob does over time, as the identity: create the Secrets,
-- rotate them, check; check against a site file that wants one more; then
-- make that one and rotate the others while every kind of write loses a
-- race once (409), so that the reads and writes of the retries are made too.
local STEPS = { "create", "rotate", "status", "missing", "retry" }
local function scenario(ns, kubeconfig)
  local r = {
    create = xcsreg("setup.lua", { "--config", site, "-n", ns }, kubeconfig, "one"),
    rotate = xcsreg("setup.lua", { "--config", site, "-n", ns }, kubeconfig, "two"),
    status = xcsreg("status.lua", { "--config", site, "-n", ns }, kubeconfig, "two"),
    missing = xcsreg("status.lua", { "--config", wants_more, "-n", ns, "-q" }, kubeconfig, "two"),
  }
  local in_ns = "^/api/v1/namespaces/" .. ns .. "/"
  lib.fault { method = "POST", path_regex = in_ns .. "secrets$", count = 1, status = 409 }
  lib.fault { method = "PUT", path_regex = in_ns .. "secrets/", count = 1, action = "conflict" }
  lib.fault { method = "PATCH", path_regex = in_ns .. "serviceaccounts/", count = 1, action = "conflict" }
  r.retry = xcsreg("setup.lua", { "--config", wants_more, "-n", ns }, kubeconfig, "three")
  lib.clear_faults()
  return r
end

-- The (resource, verb) pairs of the requests in the log made by `user`, as
-- RBAC names them, each once, sorted; requests outside a namespace apart.
local VERB = { POST = "create", PUT = "update", PATCH = "patch", DELETE = "delete" }
local function used(user)
  local pairs_, seen = {}, {}
  for _, e in ipairs(lib.log()) do
    if e.user == user then
      local resource, name = e.path:match("^/api/v1/namespaces/[^/]+/([^/]+)/?([^/]*)$")
      local pair = resource and (resource .. " " .. (VERB[e.method] or name == "" and "list" or "get"))
        or ("outside a namespace: " .. e.method .. " " .. e.path)
      if not seen[pair] then pairs_[#pairs_ + 1] = pair end
      seen[pair] = true
    end
  end
  table.sort(pairs_)
  return pairs_
end

local ns, kubeconfig = identity(0, grants)
lib.clear_log()
local r = scenario(ns, kubeconfig)
t.eq({ r.create.code, r.create.out }, { 0, "secret/ghcr created\nsecret/harbor created\nserviceaccount/default configured\n" },
  "with the Roles' rules: setup.lua creates the Secrets and lists them in default")
t.eq({ r.rotate.code, r.rotate.out }, { 0, "secret/ghcr configured\nsecret/harbor configured\nserviceaccount/default unchanged\n" },
  "with the Roles' rules: setup.lua rotates them in place")
t.ok(r.status.code == 0 and r.status.err == "" and r.status.out:find("all well (2 Secrets in 1 namespace)", 1, true),
  "with the Roles' rules: status.lua, all well", r.status.out .. r.status.err)
t.ok(r.missing.code == 1 and r.missing.err == "" and r.missing.out:find("rbac%-0%s+quay%s+quay.io%s+<none>%s+<none>%s+missing\n"),
  "with the Roles' rules: status.lua tells a missing Secret from an unlabelled one", r.missing.out .. r.missing.err)
t.eq({ r.retry.code, r.retry.out }, { 0, "secret/ghcr configured\nsecret/harbor configured\nsecret/quay created\n"
  .. "serviceaccount/default configured\n" }, "with the Roles' rules: a create, an update and a patch that lose a race are retried")
local granted = {}
for i, g in ipairs(grants) do granted[i] = g[1] .. " " .. g[2] end
table.sort(granted)
t.eq(used("rbac-0"), granted, "the runs use every (resource, verb) granted, and nothing else")
local lost = {}
for _, e in ipairs(lib.log()) do
  if e.status == 409 and e.path:find("^/api/v1/namespaces/rbac%-0/") then lost[#lost + 1] = e.method end
end
table.sort(lost)
t.eq(lost, { "PATCH", "POST", "PUT" }, "...with a create, an update and a patch answered 409 once each on the way")

for i, g in ipairs(grants) do
  local name = g[1] .. " " .. g[2]
  local rules = {}
  for _, other in ipairs(grants) do
    if other ~= g then rules[#rules + 1] = other end
  end
  local forbidden = string.format('cannot %s resource "%s" in API group "" in the namespace "rbac-%d"', g[2], g[1], i)
  local failed = {}
  local runs = scenario(identity(i, rules))
  for _, step in ipairs(STEPS) do
    if runs[step].err:find(forbidden, 1, true) then failed[#failed + 1] = step .. ":" .. runs[step].code end
  end
  t.ok(#failed > 0 and not table.concat(failed, " "):find(":0", 1, true),
    "without " .. name .. ": a run fails with the 403 naming it (" .. table.concat(failed, " ") .. ")")
end
t.eq(granted, { "pods list", "secrets create", "secrets get", "secrets list", "secrets update", "serviceaccounts get",
  "serviceaccounts patch" }, "seven (resource, verb) pairs were taken away one at a time: no secrets patch, "
  .. "no serviceaccounts update")

-- The read-only Role alone is enough for status.lua, and all of it is needed.
local status_rules = rules_of({ "rbac-status.yaml" }, "xcsreg-status")
local function check_only(n, rules)
  local check_ns, check_kubeconfig = identity(n, rules)
  local made = xcsreg("setup.lua", { "--config", site, "-n", check_ns }, lib.dir .. "/token.kubeconfig", "one")
  assert(made.code == 0, made.err)
  return xcsreg("status.lua", { "--config", site, "-n", check_ns }, check_kubeconfig, "one"),
    xcsreg("status.lua", { "--config", wants_more, "-n", check_ns }, check_kubeconfig, "one")
end
local healthy, missing = check_only(100, status_rules)
t.ok(healthy.code == 0 and missing.code == 1 and (healthy.err .. missing.err) == ""
  and missing.out:find("missing\n", 1, true), "xcsreg-status alone: status.lua reads all it needs",
  healthy.out .. healthy.err .. missing.out .. missing.err)
for i, g in ipairs(status_rules) do
  local rules = {}
  for _, other in ipairs(status_rules) do
    if other ~= g then rules[#rules + 1] = other end
  end
  local without = select(2, check_only(100 + i, rules))
  local forbidden = string.format('cannot %s resource "%s"', g[2], g[1])
  t.ok(without.code == 1 and without.err:find(forbidden, 1, true) ~= nil,
    "xcsreg-status without " .. g[1] .. " " .. g[2] .. ": status.lua says so", without.err)
end

return t.done()
