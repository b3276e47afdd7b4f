-- needs: apisim
-- The deployment recipes in scripts/: the Kubernetes manifests say what
-- they must (own ServiceAccount, Forbid, the site file where the args look
-- for it), the Roles are exactly enough for setup.lua and status.lua (run
-- as a user holding only them), the image's runtime packages cover the
-- binary's libraries, and systemd accepts the units.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local config = require "xcsreg.config"
local proc = require "proc"
local lib = require "setuplib"
local simctl = require "simctl"
local yaml = require "yaml"

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- Every document of a multi-document YAML file, by "Kind/name".
local function docs(path)
  local out = {}
  for text in (read(path) .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do
    local v = yaml.decode(text)
    if type(v) == "table" and v.kind then out[v.kind .. "/" .. v.metadata.name] = v end
  end
  return out
end

local k8sdir = "scripts/k8s/"
local rbac, status_rbac = docs(k8sdir .. "rbac.yaml"), docs(k8sdir .. "rbac-status.yaml")
local cron = docs(k8sdir .. "cronjob.yaml")["CronJob/xcsreg"]
local site_cm = docs(k8sdir .. "configmap-site.yaml")["ConfigMap/xcsreg-site"]
local pw = docs(k8sdir .. "secret-passwords.yaml")["Secret/xcsreg-passwords"]
local irsa = docs(k8sdir .. "irsa-serviceaccount.yaml")["ServiceAccount/xcsreg"]
t.ok(cron and site_cm and pw and irsa and rbac["Role/xcsreg"] and status_rbac["Role/xcsreg-status"],
  "every manifest parses and holds the objects it should")

local pod = cron.spec.jobTemplate.spec.template.spec
t.eq(cron.spec.concurrencyPolicy, "Forbid", "the CronJob never runs twice at once")
t.eq(pod.serviceAccountName, "xcsreg", "the CronJob runs as xcsreg's own ServiceAccount, not default")
t.eq(rbac["RoleBinding/xcsreg"].subjects[1].name, pod.serviceAccountName, "the Role is bound to that ServiceAccount")
t.eq(status_rbac["RoleBinding/xcsreg-status"].subjects[1].name, pod.serviceAccountName, "so is the status Role")
t.eq(irsa.metadata.name, pod.serviceAccountName, "the IRSA example annotates the same ServiceAccount")
t.ok(irsa.metadata.annotations["eks.amazonaws.com/role-arn"] ~= nil, "with the EKS role annotation")
local args = table.concat(pod.containers[1].args, " ")
t.ok(args:find("-q run setup.lua --config /etc/xcsreg/registries.lua", 1, true) ~= nil, "the CronJob runs setup.lua quietly with the site file")
local mounts = {}
for _, m in ipairs(pod.containers[1].volumeMounts) do mounts[m.name] = m.mountPath end
t.eq(mounts.site, "/etc/xcsreg", "the site file's ConfigMap is mounted where --config looks")
t.ok(pod.containers[1].securityContext.readOnlyRootFilesystem and pod.securityContext.runAsNonRoot,
  "non-root, read-only root filesystem")

-- the site file in the ConfigMap passes the same checks setup.lua makes
local site = lib.write("configmap-registries.lua", site_cm.data["registries.lua"])
local plan, err = config.load_file(site, { credentials = false })
t.ok(plan ~= nil, "the ConfigMap's site file is valid", err)
local pwkeys = {}
for _, s in ipairs(plan and plan.secrets or {}) do pwkeys[#pwkeys + 1] = s.name end
for _, k in ipairs(pwkeys) do
  t.ok(pw.stringData[k] ~= nil, "secret-passwords.yaml has the password file for " .. k)
end

-- Each Role is exactly enough for its script: a user holding only its rules
-- succeeds, and fails without any one of them.
local function grant(role, skip)
  simctl.reset()
  simctl.namespace("xnat-jobs")
  for i, rule in ipairs(role.rules) do
    if i ~= skip then
      simctl.grant { user = "alice", verbs = rule.verbs, resources = rule.resources, namespaces = { "xnat-jobs" } }
    end
  end
end
local env = { PW = "fake-deploy-password" }
local test_site = lib.write("deploy-site.lua", [[
return { namespaces = { "xnat-jobs" },
  registries = { { secret = "ghcr", server = "ghcr.io", username = "u", password_env = "PW" } } }]])
local function run_setup()
  return lib.setup({ "--config", test_site }, { env = env, kubeconfig = "alice.kubeconfig" })
end
local function run_status()
  return proc.run { argv = { lib.xcsreg, "run", "status.lua", "--config", test_site },
                    env = { KUBECONFIG = simctl.dir .. "/alice.kubeconfig", HOME = lib.tmp } }
end
for _, case in ipairs { { rbac["Role/xcsreg"], run_setup, "setup.lua" },
                        { status_rbac["Role/xcsreg-status"], run_status, "status.lua" } } do
  local role, run, script = case[1], case[2], case[3]
  -- status.lua reports on what setup.lua (as admin) made; setup.lua starts afresh
  local function prepare(skip)
    grant(role, skip)
    if script == "status.lua" then lib.setup({ "--config", test_site }, { env = env }) end
  end
  prepare()
  local st, out, e = run()
  t.eq(st, 0, script .. " succeeds holding only the rules of Role " .. role.metadata.name .. " " .. out .. e)
  for i, rule in ipairs(role.rules) do
    prepare(i)
    st = run()
    t.ok(st ~= 0, script .. " fails without " .. table.concat(rule.verbs, ",") .. " " .. table.concat(rule.resources, ","))
  end
end

-- The image: its runtime packages provide every library the binary needs.
local cf = read(k8sdir .. "Containerfile")
local runtime = cf:match("FROM debian:bookworm%-slim\nRUN apt%-get update && apt%-get install %-y %-%-no%-install%-recommends%s*\\?%s*([^\n&]+)")
local pkgs = {}
for p in (runtime or ""):gmatch("%S+") do pkgs[p] = true end
t.ok(pkgs["ca-certificates"], "the image has CA certificates")
local plain = os.getenv("XCSREG_PLAIN") or "./xcsreg"
local _, ldd = proc.run { argv = { "ldd", plain } }
local _, needed = proc.run { argv = { "objdump", "-p", plain } }
for lib_name in needed:gmatch("NEEDED%s+(%S+)") do
  if not lib_name:find("^libc%.so") and not lib_name:find("^libm%.so") then
    local path = ldd:match(lib_name:gsub("%p", "%%%0") .. " => (%S+)")
    -- Debian's usrmerge: dpkg knows the files under /usr/lib
    local _, owner = proc.run { argv = { "dpkg", "-S", ((path or lib_name):gsub("^/lib/", "/usr/lib/")) } }
    local pkg = owner:match("^([^:]+)")
    t.ok(pkg and pkgs[pkg], "the image installs " .. tostring(pkg) .. " for " .. lib_name)
  end
end

-- systemd accepts the units (with ExecStart pointing at a binary that exists)
local sysd = lib.tmp .. "/systemd"
proc.run { argv = { "mkdir", "-p", sysd } }
local svc = read("scripts/systemd/xcsreg.service"):gsub("/usr/local/bin/xcsreg", (plain:gsub("%%", "%%%%")))
lib.write("systemd/xcsreg.service", svc)
lib.write("systemd/xcsreg.timer", read("scripts/systemd/xcsreg.timer"))
local vst, _, verr = proc.run { argv = { "systemd-analyze", "verify", sysd .. "/xcsreg.service", sysd .. "/xcsreg.timer" } }
if vst == nil then
  t.ok(svc:find("Type=oneshot", 1, true) and svc:find("NoNewPrivileges=yes", 1, true), "the service is a hardened oneshot (no systemd-analyze here)")
else
  t.eq(vst, 0, "systemd-analyze verify accepts xcsreg.service and xcsreg.timer " .. verr)
end

-- the crontab lines: five time fields, a user, xcsreg quiet with a lock
local n = 0
for line in read("scripts/cron/xcsreg.cron"):gmatch("[^\n]+") do
  if not line:find("^#") and not line:find("^%u+=") then
    n = n + 1
    t.ok(line:match("^%S+%s+%S+%s+%S+%s+%S+%s+%S+%s+root%s+/usr/local/bin/xcsreg .*%-q") ~= nil,
      "crontab line " .. n .. " is well formed and quiet")
  end
end
t.ok(read("scripts/cron/xcsreg.cron"):find("--lock /run/lock/xcsreg.lock", 1, true) ~= nil, "cron's setup run takes the lock")
return t.done()
