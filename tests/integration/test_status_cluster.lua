-- status.lua against the simulator: healthy, expiring, expired, unreferenced, missing and unmanaged Secrets, stuck pods, -q, -o json, exit codes, 403s, no secret in any output.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local json = require "json"
local k8s = require "k8s"
local lib = require "setuplib"
local proc = require "proc"

local T = 1789992000 -- 2026-09-21T12:00:00Z, the fake clock (XCSREG_NOW)
local H, D = 3600, 86400
local registries = {
  ghcr = { server = "ghcr.io", username = "xnat-bot", password = "fake-ghcr-token-St1", env = "GHCR_TOKEN" },
  harbor = { server = "harbor.example.org", username = "robot$xnat", password = "fake-harbor-robot-St2",
    env = "HARBOR_TOKEN" },
  quay = { server = "quay.io", username = "xnat+bot", password = "fake-quay-token-St3", env = "QUAY_TOKEN" },
}
local env = {}
for _, r in pairs(registries) do env[r.env] = r.password end
local site = lib.write("status-site.lua", [[
return {
  namespaces = { "team-a", "team-b" },
  registries = {
    { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$xnat", password_env = "HARBOR_TOKEN" },
    { secret = "quay", server = "quay.io", username = "xnat+bot", password_env = "QUAY_TOKEN" },
  },
}]])

-- Every form in which a credential could leak.
local secret_forms = {}
for _, r in pairs(registries) do
  secret_forms[#secret_forms + 1] = r.password
  secret_forms[#secret_forms + 1] = base64.encode(r.username .. ":" .. r.password)
  secret_forms[#secret_forms + 1] = base64.encode(dockerconfig.encode { r })
end
local all_output = {}
local function leaks(text)
  for _, form in ipairs(secret_forms) do
    if text:find(form, 1, true) then return true end
  end
  return false
end

-- Runs `xcsreg run status.lua args...` -> exit status, stdout, stderr.
local function status(args, opts)
  opts = opts or {}
  local argv = { lib.xcsreg, "run", "status.lua" }
  table.move(args, 1, #args, 4, argv)
  local run_env = { KUBECONFIG = lib.dir .. "/" .. (opts.kubeconfig or "token.kubeconfig"), HOME = lib.tmp,
    XCSREG_NOW = tostring(opts.now or T) }
  for k, v in pairs(env) do run_env[k] = v end
  for k, v in pairs(opts.env or {}) do run_env[k] = v or nil end
  local code, out, err = proc.run { argv = argv, env = run_env, timeout = 120 }
  assert(code, out)
  all_output[#all_output + 1] = out .. err
  return code, out, err
end

local admin <close> = assert(k8s.client { kubeconfig = lib.dir .. "/token.kubeconfig" })
local function annotate(ns, name, rotated, expires)
  local annotations = { ["xcsreg.io/rotated-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ", rotated) }
  if expires then annotations["xcsreg.io/expires-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ", expires) end
  assert(admin:patch(k8s.path("/api/v1/namespaces/%s/secrets/%s", ns, name),
    { metadata = { annotations = annotations } }, "merge"))
end
local function pod(ns, name, spec_extra, statuses)
  local spec = { containers = {}, imagePullSecrets = spec_extra.pull }
  for _, c in ipairs(spec_extra.containers) do spec.containers[#spec.containers + 1] = { name = c[1], image = c[2] } end
  if spec_extra.init then spec.initContainers = { { name = spec_extra.init[1], image = spec_extra.init[2] } } end
  lib.seed { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = ns,
    labels = { ["job-name"] = name } }, spec = spec,
    status = { phase = statuses.phase or "Pending", containerStatuses = statuses.containers,
      initContainerStatuses = statuses.init } }
end
local function waiting(name, image, reason, message)
  return { name = name, image = image, ready = false, restartCount = 0, state = { waiting = { reason = reason,
    message = message } } }
end

lib.reset()
for _, ns in ipairs { "team-a", "team-b", "team-c" } do lib.namespace(ns) end
local code = lib.setup({ "--config", site, "-q" }, { env = env })
t.eq(code, 0, "setup.lua made the Secrets in team-a and team-b")

-- ---- a healthy namespace: exit 0 ----
annotate("team-a", "ghcr", T - 2 * H, T + 3 * D)
annotate("team-a", "harbor", T - D)
annotate("team-a", "quay", T - H / 2, T + 30 * H)
local healthy_table = [[
NAMESPACE  SECRET  REGISTRIES          ROTATED               EXPIRY           STATUS
team-a     ghcr    ghcr.io             2026-09-21T10:00:00Z  expires in 3d0h  ok
team-a     harbor  harbor.example.org  2026-09-20T12:00:00Z  no expiry known  ok
team-a     quay    quay.io             2026-09-21T11:30:00Z  expires in 1d6h  ok
]]
lib.clear_log()
local out, err
code, out, err = status { "--config", site, "-n", "team-a" }
t.eq({ code, out, err }, { 0, healthy_table .. "\nall well (3 Secrets in 1 namespace)\n", "" },
  "healthy: every Secret ok, exit 0")
local methods = {}
for _, e in ipairs(lib.log()) do methods[#methods + 1] = e.method .. " " .. e.path end
t.eq(methods, { "GET /api/v1/namespaces/team-a/serviceaccounts/default", "GET /api/v1/namespaces/team-a/secrets",
  "GET /api/v1/namespaces/team-a/pods" }, "only reads: one GET and two LISTs")
code, out, err = status { "--config", site, "-n", "team-a", "-q" }
t.eq({ code, out, err }, { 0, "", "" }, "healthy with -q: silent, exit 0")

-- ---- expiry against the clock and --warn-within ----
-- Without --warn-within each Secret is judged by its own lifetime: quay's
-- is 30h30m, so it is expiring under an eighth of that, 3h48m45s.
code, out = status({ "--config", site, "-n", "team-a", "-q" }, { now = T + 7 * H })
t.eq({ code, out }, { 0, "" }, "7 hours later: quay has 23h of 30h30m left, fine by its own lifetime, exit 0")
code, out = status({ "--config", site, "-n", "team-a", "-q" }, { now = T + 27 * H })
t.eq({ code, out }, { 1, [[
NAMESPACE  SECRET  REGISTRIES  ROTATED               EXPIRY           STATUS
team-a     quay    quay.io     2026-09-21T11:30:00Z  expires in 3h0m  expires within 3h48m

1 problem (3 Secrets in 1 namespace, 0 pods stuck)
]] }, "27 hours later: quay has 3h left, under an eighth of its lifetime, exit 1")
code, out = status({ "--config", site, "-n", "team-a", "-q" }, { now = T + 26 * H })
t.eq({ code, out }, { 0, "" }, "26 hours later: 4h0m left, still above the eighth")
code, out = status({ "--config", site, "-n", "team-a", "-q", "--warn-within", "24h" }, { now = T + 7 * H })
t.eq({ code, out }, { 1, [[
NAMESPACE  SECRET  REGISTRIES  ROTATED               EXPIRY            STATUS
team-a     quay    quay.io     2026-09-21T11:30:00Z  expires in 23h0m  expires within 24h

1 problem (3 Secrets in 1 namespace, 0 pods stuck)
]] }, "--warn-within 24h, 7 hours later: quay expires within it, exit 1")
code, out = status({ "--config", site, "-n", "team-a", "-q", "--warn-within", "22h" }, { now = T + 7 * H })
t.eq({ code, out }, { 0, "" }, "--warn-within 22h: no longer a problem")
code, out = status({ "--config", site, "-n", "team-a", "--warn-within=1d1h" }, { now = T + 6 * H })
t.ok(code == 1 and out:find("expires in 1d0h   expires within 1d1h\n", 1, true) ~= nil, "--warn-within=1d1h: within", out)
code, out = status({ "--config", site, "-n", "team-a", "--warn-within", "90m" }, { now = T + 30 * H + 20 * 60 })
t.eq({ code, out }, { 1, [[
NAMESPACE  SECRET  REGISTRIES          ROTATED               EXPIRY            STATUS
team-a     ghcr    ghcr.io             2026-09-21T10:00:00Z  expires in 1d17h  ok
team-a     harbor  harbor.example.org  2026-09-20T12:00:00Z  no expiry known   ok
team-a     quay    quay.io             2026-09-21T11:30:00Z  expired 20m ago   expired

1 problem (3 Secrets in 1 namespace, 0 pods stuck)
]] }, "30h20m later: quay expired 20m ago, exit 1")

-- ---- a namespace with every kind of problem ----
annotate("team-b", "ghcr", T - 11 * H, T + H) -- a 12-hour token: expiring under 1h30m
annotate("team-b", "harbor", T - 2 * D, T + 5 * D)
assert(admin:delete("/api/v1/namespaces/team-b/secrets/quay"))
local old = { server = "old.example.org", username = "old", password = "fake-old-token-St4" }
secret_forms[#secret_forms + 1] = base64.encode(dockerconfig.encode { old })
assert(admin:create("/api/v1/namespaces/team-b/secrets",
  require("xcsreg.secrets").desired("old", "team-b", { old })))
annotate("team-b", "old", T - 3 * D)
assert(admin:patch("/api/v1/namespaces/team-b/serviceaccounts/default",
  { imagePullSecrets = { { name = "ghcr" }, { name = "quay" }, { name = "old" } } }, "merge"))
pod("team-b", "job-1", { containers = { { "main", "ghcr.io/xnat/dcm2niix:1.0" } } },
  { containers = { waiting("main", "ghcr.io/xnat/dcm2niix:1.0", "ImagePullBackOff",
    'Back-off pulling image "ghcr.io/xnat/dcm2niix:1.0"') } })
pod("team-b", "job-2", { containers = { { "main", "ubuntu:22.04" } }, pull = { { name = "ghcr" } } },
  { containers = { waiting("main", "ubuntu:22.04", "ErrImagePull",
    "rpc error: code = Unknown desc = failed to pull and unpack image\n\"docker.io/library/ubuntu:22.04\": 429") } })
pod("team-b", "job-3", { containers = { { "main", "ghcr.io/xnat/ok:1" } } },
  { phase = "Running", containers = { { name = "main", image = "ghcr.io/xnat/ok:1", ready = true, restartCount = 0,
    state = { running = { startedAt = "2026-09-21T11:00:00Z" } } } } })
pod("team-b", "job-4", { containers = { { "main", "ghcr.io/xnat/new:1" } } },
  { containers = { waiting("main", "ghcr.io/xnat/new:1", "ContainerCreating") } })
pod("team-b", "job-5", { init = { "fetch", "harbor.example.org/xnat/fetch:2" },
  containers = { { "main", "harbor.example.org/xnat/run:2" } }, pull = { { name = "harbor" } } },
  { init = { waiting("fetch", "harbor.example.org/xnat/fetch:2", "ImagePullBackOff",
    'Back-off pulling image "harbor.example.org/xnat/fetch:2"') },
    containers = { waiting("main", "harbor.example.org/xnat/run:2", "PodInitializing") } })

local troubled = [[
NAMESPACE  SECRET  REGISTRIES          ROTATED               EXPIRY           STATUS
team-b     ghcr    ghcr.io             2026-09-21T01:00:00Z  expires in 1h0m  expires within 1h30m
team-b     harbor  harbor.example.org  2026-09-19T12:00:00Z  expires in 5d0h  not referenced by serviceaccount/default
team-b     old     old.example.org     2026-09-18T12:00:00Z  no expiry known  ok (not in the site file)
team-b     quay    quay.io             <none>                <none>           missing

NAMESPACE  POD    CONTAINER  REASON            IMAGE                            PULL SECRET  MESSAGE
team-b     job-1  main       ImagePullBackOff  ghcr.io/xnat/dcm2niix:1.0        <none>       Back-off pulling image "ghcr.io/xnat/dcm2niix:1.0"
team-b     job-2  main       ErrImagePull      ubuntu:22.04                     <none>       rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/ubuntu:22.04": 429
team-b     job-5  fetch      ImagePullBackOff  harbor.example.org/xnat/fetch:2  harbor       Back-off pulling image "harbor.example.org/xnat/fetch:2"

hint: team-b: pod/job-1 does not list secret/ghcr for ghcr.io: it was made before its ServiceAccount listed it; delete the pod so that its Job makes a new one
hint: team-b: pod/job-2: no managed Secret holds a credential for docker.io

6 problems (4 Secrets in 1 namespace, 3 pods stuck)
]]
code, out, err = status { "--config", site, "-n", "team-b" }
t.eq({ code, out, err }, { 1, troubled, "" },
  "expiring, unreferenced, missing, not in the site file, three stuck pods: reported, exit 1")
code, out = status { "--config", site, "-n", "team-b", "-q" }
local quiet = troubled:gsub("team%-b     old[^\n]*\n", "")
t.eq({ code, out }, { 1, quiet }, "-q: the same without the healthy Secret")

-- both namespaces from the site file, in order
code, out = status({ "--config", site, "-q" }, { now = T + 27 * H })
local lines = {}
for line in out:gmatch("[^\n]+") do
  if line:find("^team%-") then lines[#lines + 1] = line:match("^(%S+%s+%S+)"):gsub("%s+", " ") end
end
t.eq({ code, lines, out:match("[^\n]+\n$") }, { 1, { "team-a quay", "team-b ghcr", "team-b harbor", "team-b quay",
  "team-b job-1", "team-b job-2", "team-b job-5" }, "7 problems (7 Secrets in 2 namespaces, 3 pods stuck)\n" },
  "the site file's namespaces: every problem of both, in namespace order")

-- ---- -o json ----
code, out = status { "--config", site, "-n", "team-b", "-o", "json" }
local doc = json.decode(out)
t.eq(code, 1, "-o json: exit 1 as well")
t.eq({ doc.apiVersion, doc.kind, doc.time, doc.warnWithinSeconds, doc.ok, #doc.problems },
  { "xcsreg.io/v1", "Status", "2026-09-21T12:00:00Z", json.null, false, 6 },
  "-o json: the document's head (no --warn-within: null)")
local ns = doc.namespaces[1]
local states = {}
for _, s in ipairs(ns.secrets) do states[#states + 1] = s.name .. "=" .. s.state end
t.eq({ ns.name, states }, { "team-b", { "ghcr=expiring", "harbor=unreferenced", "old=ok", "quay=missing" } },
  "-o json: each Secret's state")
t.eq(ns.secrets[1], { name = "ghcr", state = "expiring", registries = { "ghcr.io" }, inSiteFile = true,
  rotatedAt = "2026-09-21T01:00:00Z", expiresAt = "2026-09-21T13:00:00Z", expiresInSeconds = 3600,
  warnWithinSeconds = 5400, referencedBy = { "default" }, notReferencedBy = {}, problems = { "expires within 1h30m" } },
  "-o json: a Secret in full, with the threshold it was judged by")
t.eq({ ns.secrets[3].inSiteFile, ns.secrets[3].expiresAt, ns.secrets[3].warnWithinSeconds, ns.secrets[4].rotatedAt },
  { false, json.null, json.null, json.null }, "-o json: unknown values are null")
code, out = status { "--config", site, "-n", "team-b", "-o", "json", "--warn-within", "90m" }
doc = json.decode(out)
t.eq({ doc.warnWithinSeconds, doc.namespaces[1].secrets[1].warnWithinSeconds, doc.namespaces[1].secrets[1].problems },
  { 5400, 5400, { "expires within 90m" } }, "-o json --warn-within 90m: the flag's threshold, in its words")
t.eq(ns.serviceAccounts, { { name = "default", found = true, imagePullSecrets = { "ghcr", "quay", "old" } } },
  "-o json: the ServiceAccount and its pull secrets")
t.eq(ns.stuckPods[1], { name = "job-1", container = "main", reason = "ImagePullBackOff",
  image = "ghcr.io/xnat/dcm2niix:1.0", message = 'Back-off pulling image "ghcr.io/xnat/dcm2niix:1.0"',
  registry = "ghcr.io", serviceAccountName = json.null, imagePullSecrets = {}, pullSecretsForRegistry = {},
  managedSecretsForRegistry = { "ghcr" } }, "-o json: a stuck pod in full")
t.eq({ #ns.stuckPods, ns.stuckPods[2].message, ns.errors }, { 3,
  "rpc error: code = Unknown desc = failed to pull and unpack image\n\"docker.io/library/ubuntu:22.04\": 429", {} },
  "-o json: messages as the kubelet wrote them, no errors")

-- ---- a Secret the site file wants that xcsreg did not make; a ServiceAccount that does not exist ----
lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "ghcr", namespace = "team-c" },
  type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = base64.encode(dockerconfig.encode {
    registries.ghcr }) } }
code, out = status { "--config", site, "-n", "team-c", "--service-account", "default",
  "--service-account", "builder", "-q" }
t.eq({ code, out }, { 1, [[
NAMESPACE  SECRET  REGISTRIES          ROTATED  EXPIRY  STATUS
team-c     ghcr    ghcr.io             <none>   <none>  exists without the label app.kubernetes.io/managed-by=xcsreg: setup.lua leaves it untouched (--adopt takes it over)
team-c     harbor  harbor.example.org  <none>   <none>  missing
team-c     quay    quay.io             <none>   <none>  missing

team-c: serviceaccount/builder not found

4 problems (3 Secrets in 1 namespace, 0 pods stuck)
]] }, "an unlabelled Secret and a missing ServiceAccount are problems")

-- ---- without a site file: the managed Secrets of the context's namespace ----
code, out = status { "-n", "team-a" }
t.eq({ code, out }, { 0, healthy_table .. "\nall well (3 Secrets in 1 namespace)\n" },
  "no site file: the Secrets found by label, checked against default")
code, out = status({}, { kubeconfig = "token.kubeconfig" })
t.eq({ code, out }, { 0, "No managed Secrets found in namespace default.\n" }, "nothing managed: said so, exit 0")

-- ---- permissions: exactly the reads it makes ----
local function grant(user, rules, namespace)
  for _, r in ipairs(rules) do
    lib.grant { user = user, verbs = r[2], resources = { r[1] }, namespaces = { namespace } }
  end
end
grant("alice", { { "secrets", { "get", "list" } }, { "serviceaccounts", { "get" } } }, "team-a")
code, out, err = status({ "--config", site, "-n", "team-a" }, { kubeconfig = "alice.kubeconfig" })
t.eq({ code, out, err }, { 1, healthy_table .. "\nteam-a: cannot list pods\n\n1 problem (3 Secrets in 1 namespace, 0 pods stuck)\n",
  'error: namespace team-a: cannot list pods: Error from server (Forbidden): pods is forbidden: User "alice" '
  .. 'cannot list resource "pods" in API group "" in the namespace "team-a"\n'
  .. "status.lua needs, in namespace team-a: secrets get, list; serviceaccounts get; pods list (missing: list pods); "
  .. "scripts/k8s/rbac-status.yaml has this Role (xcsreg-status)\n" }, "no pods list: the rest is reported, the missing permission named, exit 1")
grant("alice", { { "pods", { "list" } } }, "team-a")
code, out = status({ "--config", site, "-n", "team-a" }, { kubeconfig = "alice.kubeconfig" })
t.eq({ code, out }, { 0, healthy_table .. "\nall well (3 Secrets in 1 namespace)\n" },
  "secrets get, list; serviceaccounts get; pods list: enough")
code, out, err = status({ "--config", site, "-n", "team-b", "-q" }, { kubeconfig = "alice.kubeconfig" })
t.eq({ code, out }, { 1, "team-b: cannot get serviceaccounts\nteam-b: cannot list secrets\nteam-b: cannot list pods\n"
  .. "\n3 problems (0 Secrets in 1 namespace, 0 pods stuck)\n" }, "nothing granted: each read named")
t.ok(err:find('cannot get resource "serviceaccounts"', 1, true) ~= nil, "...with the server's words", err)

-- ---- a cluster that cannot be reached stops the run ----
code, out, err = status({ "--config", site }, { kubeconfig = "wrong-ca.kubeconfig" })
t.eq({ code, select(2, err:gsub("\n", "")) }, { 1, 2 }, "an untrusted server: exit 1 after one error and the stop")
t.ok(err:find("stopped: 1 namespace(s) not checked (team-b)", 1, true) ~= nil, "...naming what was not checked", err)

-- ---- namespaces the site file selects by label ----
lib.namespace("sel-1", { xnat = "jobs" })
lib.namespace("sel-2", { xnat = "jobs" })
local selecting = lib.write("status-select.lua", [[
return { namespace_selector = "xnat=jobs",
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } } }]])
code, out = status { "--config", selecting, "-q" }
t.eq({ code, out }, { 1, [[
NAMESPACE  SECRET  REGISTRIES  ROTATED  EXPIRY  STATUS
sel-1      ghcr    ghcr.io     <none>   <none>  missing
sel-2      ghcr    ghcr.io     <none>   <none>  missing

2 problems (2 Secrets in 2 namespaces, 0 pods stuck)
]] }, "namespace_selector: the namespaces it selects are checked")
local selecting_none = lib.write("status-select-none.lua", [[
return { namespace_selector = "xnat=none",
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } } }]])
code, out, err = status { "--config", selecting_none }
t.eq({ code, out, err }, { 0, "", 'warning: namespace_selector "xnat=none" matches no namespace: nothing to do\n' },
  "namespace_selector that selects nothing: warned, as setup.lua does")
code, out, err = status({ "--config", selecting, "-q" }, { kubeconfig = "alice.kubeconfig" })
t.ok(code == 1 and out == "" and err:find('cannot list namespaces: Error from server (Forbidden): namespaces is forbidden: '
  .. 'User "alice" cannot list resource "namespaces"', 1, true) ~= nil,
  "namespace_selector without list namespaces: said so, exit 1", err)

-- ---- the site file's passwords are never read ----
code, out = status({ "--config", site, "-n", "team-a", "-q" },
  { env = { GHCR_TOKEN = false, HARBOR_TOKEN = false, QUAY_TOKEN = false } })
t.eq({ code, out }, { 0, "" }, "without the password variables the site file names: checked all the same")

-- ---- usage and configuration errors: exit 2, nothing read ----
local bad_site = lib.write("status-bad-site.lua", [[
return { registries = { { secret = "ghcr", username = "u", password_env = "GHCR_TOKEN" } } }]])
lib.clear_log()
local usage_cases = {
  { { "--warn-within", "2 hours" }, 'error: --warn-within: must be a whole number of seconds, or a duration like '
    .. '"2h", "90m", "1h30m" or "3d"\nSee \'xcsreg run status.lua --help\' for usage.\n' },
  { { "--warn-within", "3w" }, 'error: --warn-within: must be a whole number of seconds, or a duration like '
    .. '"2h", "90m", "1h30m" or "3d"\nSee \'xcsreg run status.lua --help\' for usage.\n' },
  { { "-o", "yaml" }, 'error: --output: must be "text" or "json", not "yaml"\n'
    .. "See 'xcsreg run status.lua --help' for usage.\n" },
  { { "--dry-run=client" }, "error: unknown flag: --dry-run\nSee 'xcsreg run status.lua --help' for usage.\n" },
  { { "extra" }, 'error: unexpected argument "extra"\nSee \'xcsreg run status.lua --help\' for usage.\n' },
  { { "-n", "Team_A" }, 'error: --namespace[1]: "Team_A" is not a valid namespace name: it must be a lowercase '
    .. "RFC 1123 label (a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)\n" },
  { { "--config", lib.tmp .. "/status-no-such-site.lua" }, "error: cannot read site file " .. lib.tmp
    .. "/status-no-such-site.lua: No such file or directory\n" },
  { { "--config", bad_site }, "error: " .. bad_site .. ': registries[1] (secret "ghcr"): server: missing\n' },
  { {}, 'error: XCSREG_NOW: must be a whole number of seconds since the epoch, not "tomorrow"\n'
    .. "See 'xcsreg run status.lua --help' for usage.\n", { XCSREG_NOW = "tomorrow" } },
  { { "--kubeconfig", lib.tmp .. "/status-no-such.kubeconfig" }, nil },
}
for _, c in ipairs(usage_cases) do
  code, out, err = status(c[1], { env = c[3] })
  local name = "usage: " .. (#c[1] > 0 and table.concat(c[1], " ") or next(c[3]))
  if c[2] then
    t.eq({ code, out, err }, { 2, "", c[2] }, name .. ": exit 2, said why")
  else
    t.ok(code == 2 and out == "" and err:find("status-no-such.kubeconfig", 1, true) ~= nil, name .. ": exit 2, names the file", err)
  end
end
t.eq(#lib.log(), 0, "usage errors: no request sent")
code, out = status { "--help" }
t.ok(code == 0 and out:find("^usage: xcsreg run status.lua") ~= nil and out:find("--warn-within DURATION", 1, true),
  "--help: usage, exit 0")

-- ---- no credential anywhere ----
local leaked = 0
for _, text in ipairs(all_output) do
  if leaks(text) then leaked = leaked + 1 end
end
t.eq({ leaked, #all_output > 25 }, { 0, true }, "no password, auth or .dockerconfigjson in any output of any run")

return t.done()
