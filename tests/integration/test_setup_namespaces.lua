-- setup.lua against the simulator: 3 namespaces x 3 registries, a forbidden namespace, and no password leaks.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local json = require "json"
local lib = require "setuplib"
local yaml = require "yaml"

local PW_ENV, PW_FILE, PW_CMD = "fake-ghcr-token-Zq1", "fake-harbor-robot-Xy2", "fake-internal-Wv3<&>"
local pwfile = lib.write("harbor.token", PW_FILE .. "\n")
local snapshot = lib.tmp .. "/ps-snapshot.txt"
local env = { GHCR_TOKEN = PW_ENV, FAKE_COMMAND_PASSWORD = PW_CMD, PS_SNAPSHOT = snapshot }
local site = lib.write("registries.lua", string.format([[
return {
  namespaces = { "team-a", "team-b", "team-c" },
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_file = %q,
      email = "ops@example.org" },
    { secret = "internal", server = "registry.example.org", username = "u", password_command = { %q } },
  },
}]], pwfile, dir .. "/setupfixtures/password-command"))
local registries = {
  ghcr = { server = "ghcr.io", username = "xnat-bot", password = PW_ENV },
  harbor = { server = "harbor.example.org", username = "robot$xnat", password = PW_FILE, email = "ops@example.org" },
  internal = { server = "registry.example.org", username = "u", password = PW_CMD },
}

-- Every form in which a password could leak.
local secret_forms = {}
for name, r in pairs(registries) do
  secret_forms[#secret_forms + 1] = { name .. " password", r.password }
  secret_forms[#secret_forms + 1] = { name .. " auth", base64.encode(r.username .. ":" .. r.password) }
  secret_forms[#secret_forms + 1] = { name .. " .dockerconfigjson", base64.encode(dockerconfig.encode { r }) }
end
-- The names of the forms found in text; a Secret's body may hold its .dockerconfigjson.
local function leaks(text, secret_body)
  local found = {}
  for _, f in ipairs(secret_forms) do
    if text:find(f[2], 1, true) and not (secret_body and f[1]:find(".dockerconfigjson", 1, true)) then
      found[#found + 1] = f[1]
    end
  end
  table.sort(found)
  return table.concat(found, ", ")
end

lib.reset()
for _, ns in ipairs { "team-a", "team-b", "team-c" } do lib.namespace(ns) end
-- alice holds exactly the Role of scripts/k8s/rbac.yaml, in team-a and team-c only
local function grant(namespaces)
  lib.grant({ user = "alice", verbs = { "get", "create", "update" },
    resources = { "secrets" }, namespaces = namespaces })
  lib.grant({ user = "alice", verbs = { "get", "patch" },
    resources = { "serviceaccounts" }, namespaces = namespaces })
end
grant { "team-a", "team-c" }

-- ---- one namespace forbidden: the others succeed, exit 1 ----
local status, out, err = lib.setup({ "--config", site, "-v" }, { kubeconfig = "alice.kubeconfig", env = env })
local lines = {}
for _, ns in ipairs { "team-a", "team-c" } do
  for _, s in ipairs { "ghcr", "harbor", "internal" } do lines[#lines + 1] = ns .. ": secret/" .. s .. " created" end
  lines[#lines + 1] = ns .. ": serviceaccount/default configured"
end
t.eq({ status, out }, { 1, table.concat(lines, "\n") .. "\n" }, "team-a and team-c done, exit 1")
local want_err = [[
error: namespace team-b: secret/ghcr: Error from server (Forbidden): secrets "ghcr" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "team-b"
xcsreg needs, in namespace team-b: secrets get, create, update; serviceaccounts get, patch.
Have a cluster admin grant them (scripts/k8s/rbac.yaml has this Role for a CronJob's own ServiceAccount):
  kubectl apply -f - <<'EOF'
  apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: xcsreg, namespace: team-b}
  rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, create, update]}
  - {apiGroups: [""], resources: [serviceaccounts], verbs: [get, patch]}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: xcsreg, namespace: team-b}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: xcsreg}
  subjects: [{kind: User, name: "alice", apiGroup: rbac.authorization.k8s.io}]
  EOF
]]
local forbidden_err = err
local errors = {}
for line in err:gmatch("[^\n]*\n") do
  if not line:find("^debug: ") and not line:find("^trace: ") then errors[#errors + 1] = line end
end
t.eq(table.concat(errors), want_err, "the forbidden namespace is named, with the Role and RoleBinding it needs")
for _, ns in ipairs { "team-a", "team-c" } do
  t.eq(lib.pull_secrets(ns, "default"), { "ghcr", "harbor", "internal" }, ns .. ": default lists the three Secrets")
  for name, r in pairs(registries) do
    local s = lib.get("Secret", ns, name)
    t.ok(s and base64.decode(s.data[".dockerconfigjson"]) == dockerconfig.encode { r }, ns .. "/" .. name .. ": content")
  end
end
t.eq(#lib.objects("Secret", "team-b"), 0, "team-b: nothing written")

-- The subject is the identity the 403 names: here a ServiceAccount.
lib.user("system:serviceaccount:xnat:xcsreg", "fake-sa-token")
local kc = io.open(lib.dir .. "/alice.kubeconfig"):read("a"):gsub("alice%-token", "fake-sa-token")
lib.write("sa.kubeconfig", kc)
_, _, err = lib.setup({ "--config", site, "--kubeconfig", lib.tmp .. "/sa.kubeconfig", "-n", "team-b" }, { env = env })
t.ok(err:find("subjects: [{kind: ServiceAccount, name: xcsreg, namespace: xnat}]", 1, true) ~= nil,
  "a ServiceAccount named by the 403 is the RoleBinding's subject", err)

-- The Role printed is enough: grant its rules in team-b and run again.
local role = yaml.decode((forbidden_err:match("<<'EOF'\n(.-)\n  %-%-%-\n"):gsub("\n  ", "\n"):gsub("^  ", "")))
for _, rule in ipairs(role.rules) do
  lib.grant({ user = "alice", verbs = rule.verbs, resources = rule.resources, namespaces = { "team-b" } })
end
local shipped = {}
for doc in (io.open(dir .. "/../../scripts/k8s/rbac.yaml"):read("a") .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do
  local obj = yaml.decode(doc)
  shipped[obj.kind] = obj
end
t.eq(shipped.Role.rules, role.rules, "scripts/k8s/rbac.yaml has the same rules as the Role printed")
t.eq({ shipped.RoleBinding.roleRef, shipped.RoleBinding.subjects[1].kind }, { { apiGroup = "rbac.authorization.k8s.io",
  kind = "Role", name = "xcsreg" }, "ServiceAccount" }, "scripts/k8s/rbac.yaml binds the Role to xcsreg's own account")
status, out = lib.setup({ "--config", site }, { kubeconfig = "alice.kubeconfig", env = env })
t.eq({ status, out }, { 0, table.concat({
  "team-a: secret/ghcr unchanged", "team-a: secret/harbor unchanged", "team-a: secret/internal unchanged",
  "team-a: serviceaccount/default unchanged",
  "team-b: secret/ghcr created", "team-b: secret/harbor created", "team-b: secret/internal created",
  "team-b: serviceaccount/default configured",
  "team-c: secret/ghcr unchanged", "team-c: secret/harbor unchanged", "team-c: secret/internal unchanged",
  "team-c: serviceaccount/default unchanged", "" }, "\n") }, "with the printed Role granted: team-b done, exit 0")

-- ---- an unchanged re-run only reads ----
lib.clear_log()
status, out = lib.setup({ "--config", site, "-q" }, { kubeconfig = "alice.kubeconfig", env = env })
t.eq({ status, out }, { 0, "" }, "re-run with -q: exit 0, silent")
local log = lib.log()
t.eq(lib.methods(log), "GET:403 GET:403 " .. string.rep("GET", 12, " "), "re-run: the cluster-wide LISTs of Secrets "
  .. "and ServiceAccounts forbidden, then 12 GETs (3 namespaces x (3 Secrets + 1 ServiceAccount)), no write")

-- ---- the passwords never leak ----
t.eq(leaks(out .. err), "", "stdout and stderr (with -v) hold no password, auth or .dockerconfigjson")
for _, e in ipairs(log) do
  t.eq(leaks(e.path .. json.encode(e.query) .. e.body), "", "simulator log of a re-run: " .. e.method .. " " .. e.path)
end
lib.namespace("team-d")
lib.clear_log()
lib.setup({ "--config", site, "-n", "team-d" }, { env = env })
local writes = 0
for _, e in ipairs(lib.log()) do
  local secret_write = (e.method == "POST" or e.method == "PUT") and e.path:find("/secrets", 1, true)
  if secret_write then
    writes = writes + 1
    t.eq(leaks(e.body, true), "", "a Secret body holds its .dockerconfigjson only: " .. e.path)
  else
    t.eq(leaks(e.path .. json.encode(e.query) .. e.body), "", "outside Secret bodies, no secret: " .. e.method .. " " .. e.path)
  end
end
t.eq(writes, 3, "three Secret writes were checked")

local ps = io.open(snapshot):read("a")
t.ok(ps:find("setup.lua --config", 1, true) ~= nil, "the ps snapshot, taken by password_command, shows xcsreg")
t.eq(leaks(ps), "", "no password in the argv of any process while xcsreg ran (xcsreg's and its child's)")

-- an error body that echoes secret material comes out redacted
local echoed = base64.encode(dockerconfig.encode { registries.ghcr })
lib.fault({ method = "PUT", path_regex = "/secrets/ghcr$", status = 422,
  body = json.encode { kind = "Status", apiVersion = "v1", metadata = json.object {}, status = "Failure",
    message = 'Secret "ghcr" is invalid: data: Invalid value: "' .. echoed .. '" (' .. PW_ENV .. ")",
    reason = "Invalid", code = 422 } })
lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "ghcr", namespace = "team-a",
  labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" } }, type = "kubernetes.io/dockerconfigjson",
  data = { [".dockerconfigjson"] = base64.encode("{}") } }
status, out, err = lib.setup({ "--config", site, "-n", "team-a", "-v" }, { env = env, host_args = { "-v", "-v" } })
t.eq(status, 1, "a 422 that echoes the Secret: exit 1")
t.eq(leaks(out .. err), "", "the echoed Secret and password are not shown")
t.ok(err:find('Secret "ghcr" is invalid: data: Invalid value: "***" (***)', 1, true) ~= nil,
  "they are replaced by ***", err)

-- a server URL that leads to some web front end (200 text/html to every
-- request): one error, the run stopped, not the same error for each namespace
lib.fault({ status = 200, body = "<html><head><title>Sign in</title></head></html>", content_type = "text/html",
  count = 1000 })
status, out, err = lib.setup({ "--config", site }, { env = env })
lib.clear_faults()
t.eq(status, 1, "a web front end instead of the API: exit 1")
local _, error_lines = err:gsub("error: ", "")
t.eq(error_lines, 1, "one error", err)
t.ok(err:find("not JSON (text/html): Sign in", 1, true) ~= nil, "naming what answered", err)

-- --docker-password works, and warns
status, out, err = lib.setup({ "-n", "team-a", "--secret-name", "ghcr", "--docker-server", "ghcr.io",
  "--docker-username", "xnat-bot", "--docker-password", PW_ENV, "-v" })
t.eq(status, 0, "--docker-password: accepted")
t.ok(err:find("warning: --docker-password: the password is visible to other users in the process list; "
  .. "prefer --docker-password-stdin, --docker-password-file or --docker-password-env", 1, true) ~= nil,
  "--docker-password: warns", err)
t.eq(leaks(out .. err), "", "--docker-password: the value is not echoed")

return t.done()
