-- scripts/k8s/*.yaml: each parses and has what it needs; the CronJob, ConfigMap, Secret, RBAC and IRSA files fit together; the site file passes xcsreg's checks.
-- needs: none
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/deployfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "deploylib"
local proc = require "proc"

local NS = "xnat-jobs"
local files = { "clusterrole-optional.yaml", "configmap-site.yaml", "cronjob.yaml", "deployment.yaml",
  "irsa-serviceaccount.yaml", "rbac-restart.yaml", "rbac-status-workloads.yaml", "rbac-status.yaml", "rbac-watch.yaml",
  "rbac.yaml", "secret-passwords.yaml" }
local CLUSTER_SCOPED = { ClusterRole = true, ClusterRoleBinding = true }
local by_kind = {}
for _, f in ipairs(files) do
  local docs = lib.documents("scripts/k8s/" .. f)
  t.ok(#docs > 0, f .. ": parses")
  for i, d in ipairs(docs) do
    local where = string.format("%s[%d]", f, i)
    t.ok(type(d.apiVersion) == "string" and type(d.kind) == "string" and type(d.metadata) == "table"
      and type(d.metadata.name) == "string", where .. ": apiVersion, kind, metadata.name")
    if CLUSTER_SCOPED[d.kind] then
      t.eq({ f, d.metadata.namespace }, { "clusterrole-optional.yaml", nil },
        where .. ": cluster-wide grants only in the optional file")
    else
      t.eq(d.metadata.namespace, NS, where .. ": namespace " .. NS)
    end
    by_kind[d.kind] = by_kind[d.kind] or {}
    table.insert(by_kind[d.kind], { file = f, obj = d })
  end
end
local listed = {}
for name in select(2, proc.run { argv = { "ls", lib.root .. "/scripts/k8s" } }):gmatch("[^\n]+") do
  if name:find("%.yaml$") then listed[#listed + 1] = name end
end
table.sort(listed)
t.eq(listed, files, "every manifest of scripts/k8s is checked")
local function one(kind, file)
  for _, e in ipairs(by_kind[kind] or {}) do
    if e.file == file then return e.obj end
  end
  error("no " .. kind .. " in " .. file)
end

-- ---- the CronJob ----
local cj = one("CronJob", "cronjob.yaml")
local job = cj.spec.jobTemplate.spec
local pod = job.template.spec
t.eq({ cj.apiVersion, cj.spec.concurrencyPolicy, cj.spec.schedule }, { "batch/v1", "Forbid", "17 */4 * * *" },
  "CronJob: batch/v1, concurrencyPolicy Forbid, every 4 hours")
t.eq({ pod.serviceAccountName, pod.automountServiceAccountToken, pod.restartPolicy, job.backoffLimit },
  { "xcsreg", true, "Never", 0 }, "CronJob: its own ServiceAccount xcsreg (never default), with its token; no retries")
t.ok(pod.securityContext.runAsNonRoot == true and pod.securityContext.runAsUser > 0
  and pod.securityContext.seccompProfile.type == "RuntimeDefault", "CronJob: non-root, RuntimeDefault seccomp")
local containers = {}
for _, c in ipairs(pod.initContainers or {}) do containers[#containers + 1] = c end
for _, c in ipairs(pod.containers) do containers[#containers + 1] = c end
t.eq({ #containers, containers[1].name, containers[1].args[2], containers[2].name, containers[2].args[2] },
  { 2, "setup", "setup.lua", "status", "status.lua" }, "CronJob: setup.lua (init container), then status.lua")
local volumes = {}
for _, v in ipairs(pod.volumes) do volumes[v.name] = v end
for _, c in ipairs(containers) do
  local sc = c.securityContext
  t.ok(sc.readOnlyRootFilesystem == true and sc.allowPrivilegeEscalation == false
    and t.deep_equal(sc.capabilities.drop, { "ALL" }), c.name .. ": read-only root, no privilege escalation, no capabilities")
  t.ok(c.resources.requests.memory and c.resources.limits.memory and c.resources.requests.cpu ~= nil,
    c.name .. ": resource requests and a memory limit")
  t.eq({ c.image, c.args[1], c.args[3] }, { containers[1].image, "run", "-q" }, c.name .. ": same image, `run SCRIPT -q`")
  local check = assert(lib.check_args(c.args))
  t.eq(check.unknown, {}, c.name .. ": every flag is one " .. check.script .. " takes")
  -- every path it is given is under a mount of the right volume
  local mounts = {}
  for _, m in ipairs(c.volumeMounts) do mounts[m.name] = m end
  t.eq(lib.arg_value(c.args, "--config"), mounts.site.mountPath .. "/registries.lua",
    c.name .. ": --config is the ConfigMap's file")
  for name, m in pairs(mounts) do
    t.eq(m.readOnly, name ~= "run" or nil, c.name .. ": " .. name .. (name == "run" and " writable" or " read-only"))
  end
  local lock = lib.arg_value(c.args, "--lock")
  if lock then
    t.ok(lock:sub(1, #mounts.run.mountPath + 1) == mounts.run.mountPath .. "/" and volumes.run.emptyDir,
      c.name .. ": --lock under an emptyDir")
  end
end
t.ok(lib.arg_value(containers[1].args, "--lock") ~= nil, "setup: given a lock it can write (the root is read-only)")
local status_mounts = {}
for _, m in ipairs(containers[2].volumeMounts) do status_mounts[#status_mounts + 1] = m.name end
t.eq({ status_mounts, containers[2].env }, { { "site" }, nil }, "status: the site file only, no password")

-- ---- the ConfigMap and the Secret it is mounted with ----
local cm = one("ConfigMap", "configmap-site.yaml")
local pw = one("Secret", "secret-passwords.yaml")
t.eq({ volumes.site.configMap.name, volumes.passwords.secret.secretName }, { cm.metadata.name, pw.metadata.name },
  "CronJob: mounts the ConfigMap and the password Secret by their names")
t.eq({ volumes.passwords.secret.defaultMode, pod.securityContext.fsGroup }, { 288, pod.securityContext.runAsGroup },
  "password files: mode 0440, group of the pod's user")
t.eq({ pw.type, pw.metadata.labels["app.kubernetes.io/managed-by"] }, { "Opaque", nil },
  "password Secret: Opaque, and not labelled as a pull Secret xcsreg manages")
for key, value in pairs(pw.stringData) do
  t.ok(value:find("^REPLACE%-"), "password Secret: " .. key .. " is a placeholder")
end
for _, c in ipairs(containers) do
  for _, e in ipairs(c.env or {}) do
    local ref = e.valueFrom.secretKeyRef
    t.ok(ref.name == pw.metadata.name and pw.stringData[ref.key] ~= nil,
      c.name .. ": env " .. e.name .. " comes from a key of the password Secret")
  end
end

-- The site file passes xcsreg's checks (config.load_file, through setup.lua's
-- client dry run), with the password files and variables the CronJob provides.
local site = cm.data["registries.lua"]
local mount
for _, m in ipairs(containers[1].volumeMounts) do
  if m.name == "passwords" then mount = m.mountPath .. "/" end
end
local files_dir = lib.tmp .. "/deploy-passwords/"
proc.run { argv = { "mkdir", "-p", files_dir } }
for key, value in pairs(pw.stringData) do
  local f = assert(io.open(files_dir .. key, "w"))
  f:write(value)
  f:close()
  proc.run { argv = { "chmod", "600", files_dir .. key } } -- ours here: a group or world bit draws a warning
end
local referenced = 0
site = site:gsub('password_file = "' .. mount:gsub("%p", "%%%0") .. '([^"]+)"', function(key)
  referenced = referenced + 1
  t.ok(pw.stringData[key] ~= nil, "site file: password_file " .. mount .. key .. " is a key of the password Secret")
  return 'password_file = "' .. files_dir .. key .. '"'
end)
t.eq(referenced, 1, "site file: the ghcr entry reads its password file from the Secret's mount")
local env = {}
for _, e in ipairs(containers[1].env) do env[e.name] = pw.stringData[e.valueFrom.secretKeyRef.key] end
local path = lib.tmp .. "/deploy-site.lua"
local f = assert(io.open(path, "w"))
f:write(site)
f:close()
local code, out, err = proc.run { argv = { lib.xcsreg, "run", "setup.lua", "--config", path, "--dry-run=client" },
  env = env }
t.eq({ code, out, err }, { 0, "secret/ghcr created (dry run)\nsecret/harbor created (dry run)\n"
  .. "serviceaccount/default configured (dry run)\n", "" }, "site file: accepted by xcsreg.config; no namespace (the pod's)")
code, out, err = proc.run { argv = { lib.xcsreg, "run", "setup.lua", "--config", path, "--dry-run=client" } }
t.eq({ code, err:match("^[^\n]*") }, { 2, "error: " .. path .. ': registries[2] (secret "harbor"): password_env: '
  .. "environment variable HARBOR_TOKEN is not set" }, "site file: the check can fail (no HARBOR_TOKEN)")

-- ---- RBAC: the CronJob's ServiceAccount, bound to the Roles of the files ----
local sa = one("ServiceAccount", "rbac.yaml")
t.eq({ sa.metadata.name, sa.automountServiceAccountToken }, { pod.serviceAccountName, false },
  "rbac.yaml: the CronJob's ServiceAccount; its token mounted only where asked for")
local roles = {}
for _, e in ipairs(by_kind.Role) do roles[e.obj.metadata.name] = e.obj end
local bound = {}
for _, e in ipairs(by_kind.RoleBinding) do
  local rb = e.obj
  t.eq(rb.subjects, { { kind = "ServiceAccount", name = pod.serviceAccountName, namespace = cj.metadata.namespace } },
    "RoleBinding " .. rb.metadata.name .. ": binds the CronJob's ServiceAccount, nothing else")
  t.ok(rb.roleRef.kind == "Role" and roles[rb.roleRef.name] ~= nil,
    "RoleBinding " .. rb.metadata.name .. ": a Role of these files (namespaced, not a ClusterRole)")
  bound[rb.roleRef.name] = true
end
t.eq(bound, { xcsreg = true, ["xcsreg-status"] = true, ["xcsreg-restart"] = true, ["xcsreg-status-workloads"] = true,
  ["xcsreg-watch"] = true },
  "every Role is bound")
for name, role in pairs(roles) do
  for _, rule in ipairs(role.rules) do
    -- only the workloads Role reads another group than the core one (their pod
    -- templates), and the watch Role (its Lease)
    local groups = name == "xcsreg-status-workloads" and { { "batch" }, { "apps" } }
      or name == "xcsreg-watch" and { { "" }, { "coordination.k8s.io" } } or { { "" } }
    local group_ok = false
    for _, g in ipairs(groups) do group_ok = group_ok or t.deep_equal(rule.apiGroups, g) end
    t.ok(group_ok and rule.resourceNames == nil and not json.encode(rule):find("*", 1, true),
      "Role " .. name .. ": its group, no wildcard: " .. table.concat(rule.resources, ","))
  end
end
for _, e in ipairs(by_kind.ClusterRoleBinding or {}) do
  t.eq(e.obj.subjects, { { kind = "ServiceAccount", name = pod.serviceAccountName, namespace = cj.metadata.namespace } },
    "ClusterRoleBinding " .. e.obj.metadata.name .. ": only xcsreg's own ServiceAccount, never default")
end

-- ---- the Deployment (controller mode) ----
local dep = one("Deployment", "deployment.yaml")
local dpod = dep.spec.template.spec
t.eq({ dep.apiVersion, dep.spec.replicas, dep.spec.selector.matchLabels, dep.spec.template.metadata.labels },
  { "apps/v1", 2, { ["app.kubernetes.io/name"] = "xcsreg" }, { ["app.kubernetes.io/name"] = "xcsreg" } },
  "Deployment: apps/v1, 2 replicas, its selector matches its pods")
t.eq({ dpod.serviceAccountName, dpod.automountServiceAccountToken }, { "xcsreg", true },
  "Deployment: the CronJob's ServiceAccount, with its token")
t.eq(dpod.securityContext, pod.securityContext, "Deployment: the CronJob's pod security context")
local dc = dpod.containers[1]
t.eq({ #dpod.containers, dc.image, dc.args[1], dc.args[2], dc.securityContext, dc.resources },
  { 1, containers[1].image, "run", "setup.lua", containers[1].securityContext, containers[1].resources },
  "Deployment: one container, setup.lua from the CronJob's image, its security context and resources")
local dcheck = assert(lib.check_args(dc.args))
t.eq(dcheck.unknown, {}, "Deployment: every flag is one setup.lua takes")
local has_watch = false
for _, a in ipairs(dc.args) do has_watch = has_watch or a == "--watch" end
t.ok(has_watch, "Deployment: --watch")
t.eq(lib.arg_value(dc.args, "--config"), lib.arg_value(containers[1].args, "--config"), "Deployment: the CronJob's site file")
local listen = lib.arg_value(dc.args, "--listen")
local lport = tonumber(listen and listen:match(":(%d+)$"))
local ports = {}
for _, p in ipairs(dc.ports) do ports[p.name] = p.containerPort end
t.ok(lport and ports[dc.livenessProbe.httpGet.port] == lport and ports[dc.readinessProbe.httpGet.port] == lport,
  "Deployment: the probes ask the port of --listen", tostring(listen))
t.eq({ dc.livenessProbe.httpGet.path, dc.readinessProbe.httpGet.path }, { "/healthz", "/healthz" },
  "Deployment: the probes ask /healthz")
local denv = {}
for _, e in ipairs(dc.env) do denv[e.name] = e end
t.eq({ denv.POD_NAME.valueFrom.fieldRef.fieldPath, denv.POD_IP.valueFrom.fieldRef.fieldPath },
  { "metadata.name", "status.podIP" }, "Deployment: POD_NAME (the Lease's holderIdentity) and POD_IP (--listen)")
t.ok(listen:find("$(POD_IP)", 1, true) == 1, "Deployment: --listen on the pod's IP", listen)
t.eq(denv.HARBOR_TOKEN, containers[1].env[1], "Deployment: the CronJob's password variable")
local dvol = {}
for _, v in ipairs(dpod.volumes) do dvol[v.name] = v end
t.eq({ dvol.site, dvol.passwords }, { volumes.site, volumes.passwords }, "Deployment: the CronJob's site and password volumes")
t.ok(dpod.terminationGracePeriodSeconds >= 15, "Deployment: time to finish and release the Lease on SIGTERM")

-- ---- IRSA ----
local irsa = one("ServiceAccount", "irsa-serviceaccount.yaml")
t.eq({ irsa.metadata.name, irsa.metadata.namespace, irsa.automountServiceAccountToken },
  { pod.serviceAccountName, cj.metadata.namespace, false }, "IRSA: the same ServiceAccount, annotated")
t.ok(irsa.metadata.annotations["eks.amazonaws.com/role-arn"]:find("^arn:aws:iam::%d%d%d%d%d%d%d%d%d%d%d%d:role/[%w+=,.@_-]+$"),
  "IRSA: eks.amazonaws.com/role-arn is a role ARN")

return t.done()
