-- needs: apisim registry
-- setup.lua --restart-stuck (#17): a pod made before its ServiceAccount
-- listed the right Secret never gets it (admission copies pull secrets only
-- at creation). Once the run has made the credential available, the pods
-- stuck pulling an image that now pulls, and that a Job owns, are deleted
-- (their Job makes new ones); a bare pod, another controller's, one whose
-- image still does not pull, one that already lists the covering Secret and
-- one of a ServiceAccount the site file does not manage are kept.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/deployfixtures/?.lua;" .. dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local push = require "registry_push"

local function env(name) return assert(os.getenv("XCSREG_REG_" .. name), "run under with-registry") end
local B, T, CA = env("BASIC"), env("TOKEN"), env("CA")
push.image(B, "team/app", "1.0", "amd64")
push.image(T, "restricted/app", "1.0", "amd64")
local GOOD, DENIED = B .. "/team/app:1.0", T .. "/restricted/app:1.0"

local function site(extra)
  return lib.write("restart-site.lua", string.format([[
return {
  namespaces = { "jobs" },
  registries = {
    { secret = "basic", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
    { secret = "token", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
  },
  %s
}]], B, env("USER"), CA, T, env("USER"), CA, extra or ""))
end

local function stuck_pod(name, image, opts)
  opts = opts or {}
  local meta = { name = name, namespace = "jobs" }
  if opts.owner then
    meta.ownerReferences = { { apiVersion = opts.owner == "Job" and "batch/v1" or "apps/v1", kind = opts.owner,
      name = name .. "-owner", uid = "00000000-0000-0000-0000-00000000000" .. #name, controller = true } }
  end
  lib.seed { apiVersion = "v1", kind = "Pod", metadata = meta,
    spec = { serviceAccountName = opts.sa or "default", imagePullSecrets = opts.secrets,
             containers = { { name = "job", image = image } } },
    status = { phase = "Pending", containerStatuses = { { name = "job", image = image, ready = false,
      restartCount = 0, state = { waiting = { reason = "ImagePullBackOff", message = "Back-off pulling image" } } } } } }
end

local function pods()
  local names = {}
  for _, p in ipairs(lib.objects("Pod", "jobs")) do names[#names + 1] = p.metadata.name end
  table.sort(names)
  return names
end

lib.reset()
lib.namespace("jobs")
lib.namespace("x")
stuck_pod("job-pod", GOOD, { owner = "Job" })
stuck_pod("bare-pod", GOOD)
stuck_pod("rs-pod", GOOD, { owner = "ReplicaSet" })
stuck_pod("denied-pod", DENIED, { owner = "Job" })
stuck_pod("listed-pod", GOOD, { owner = "Job", secrets = { { name = "basic" } } })
stuck_pod("other-sa-pod", GOOD, { owner = "Job", sa = "builder" })
local ALL = { "bare-pod", "denied-pod", "job-pod", "listed-pod", "other-sa-pod", "rs-pod" }
local pw = { REG_PW = env("PASSWORD") }

local status, out = lib.setup({ "--config", site() }, { env = pw })
t.eq({ status, pods() }, { 0, ALL }, "without --restart-stuck: no pod is touched")

status, out = lib.setup({ "--config", site(), "--restart-stuck", "--dry-run=server" }, { env = pw })
t.eq(status, 0, "--restart-stuck --dry-run=server: exit 0")
t.ok(out:find("pod/job-pod deleted (stuck in ImagePullBackOff on " .. GOOD, 1, true) ~= nil
  and out:find("(server dry run)", 1, true) ~= nil, "... says what it would delete", out)
t.eq(pods(), ALL, "... and deletes nothing")

status, out = lib.setup({ "--config", site(), "--restart-stuck" }, { env = pw })
t.eq(status, 0, "--restart-stuck: exit 0")
t.eq(out, "secret/basic unchanged\nsecret/token unchanged\nserviceaccount/default unchanged\n"
  .. "pod/job-pod deleted (stuck in ImagePullBackOff on " .. GOOD .. ", which now pulls: its Job makes a new pod "
  .. "with the current pull secrets)\n", "--restart-stuck: the Job's pod deleted and reported")
t.eq(pods(), { "bare-pod", "denied-pod", "listed-pod", "other-sa-pod", "rs-pod" },
  "a bare pod, another controller's, a still-denied image, one listing the Secret, another ServiceAccount's: kept")

status, out = lib.setup({ "--config", site('restart_owners = { "Job", "ReplicaSet" },'), "--restart-stuck" },
  { env = pw })
t.eq({ status, pods() }, { 0, { "bare-pod", "denied-pod", "listed-pod", "other-sa-pod" } },
  "restart_owners naming ReplicaSet: its pod deleted too")
local _, _, err = lib.setup({ "--config", site('restart_owners = { "jobs" },') }, { env = pw })
t.ok(err:find('restart_owners[1]: "jobs" is not a kind', 1, true) ~= nil, "restart_owners: a bad kind named", err)

-- RBAC: rbac.yaml's Role and rbac-restart.yaml's are enough; without the
-- latter the restart is refused (exit 1) and the rest of the run is done
local deploy = require "deploylib"
local function grants(files)
  local list = {}
  for _, file in ipairs(files) do
    for _, doc in ipairs(deploy.documents("scripts/k8s/" .. file)) do
      if doc.kind == "Role" and doc.metadata.name ~= "xcsreg-status" then
        for _, rule in ipairs(doc.rules) do
          list[#list + 1] = { user = "restarter", verbs = rule.verbs, resources = rule.resources, namespaces = { "jobs" } }
        end
      end
    end
  end
  return list
end
local alice = io.open(lib.dir .. "/alice.kubeconfig"):read("a")
local kf = assert(io.open(lib.dir .. "/restarter.kubeconfig", "w"))
kf:write((alice:gsub("alice%-token", "fake-token-restarter")))
kf:close()
local function as_restarter(files)
  lib.reset()
  lib.namespace("jobs")
  lib.user("restarter", "fake-token-restarter")
  for _, g in ipairs(grants(files)) do lib.grant(g) end
  stuck_pod("job-pod", GOOD, { owner = "Job" })
  return lib.setup({ "--config", site(), "--restart-stuck" }, { env = pw, kubeconfig = "restarter.kubeconfig" })
end
local st, sout, serr = as_restarter({ "rbac.yaml", "rbac-restart.yaml" })
t.eq({ st, pods() }, { 0, {} }, "RBAC: rbac.yaml + rbac-restart.yaml: the pod deleted " .. tostring(serr))
st, sout, serr = as_restarter({ "rbac.yaml" })
t.eq({ st, pods() }, { 1, { "job-pod" } }, "RBAC: without rbac-restart.yaml: exit 1, the pod kept")
t.ok(serr:find("cannot list pods", 1, true) ~= nil and sout:find("secret/basic created", 1, true) ~= nil,
  "RBAC: ... the refusal said, the Secrets written", serr)
return t.done()
