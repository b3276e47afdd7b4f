-- xcsreg.restart: setup.lua --restart-stuck. The ServiceAccount admission
-- plugin copies a ServiceAccount's imagePullSecrets into a pod only when
-- the pod is created, and only when the pod lists none (kubernetes
-- plugin/pkg/admission/serviceaccount/admission.go), so a pod made before
-- its ServiceAccount listed the right Secret keeps failing to pull; XNAT
-- shows its job as waiting forever. Once a run has made the credential
-- available, a pod stuck pulling (ErrImagePull, ImagePullBackOff) is
-- deleted when all of these hold:
--   * its ServiceAccount is one the plan manages;
--   * a Job is its controller (its ownerReferences), so that the Job
--     controller makes a new pod, which admission gives the current pull
--     secrets; the site file may allow more owner kinds (restart_owners =
--     { "Job", "ReplicaSet", ... }; "Pod" for a pod without a controller),
--     never by default;
--   * every image it is stuck on now pulls (xcsreg.pull) with the Secrets
--     its ServiceAccount lists, and the Secret that covers it is not among
--     the pod's own pull secrets (then a new pod would fail the same way).
-- The delete carries the pod's uid as a precondition, so that a pod of the
-- same name made meanwhile is never deleted.
local config = require "xcsreg.config"
local image_ref = require "xcsreg.image_ref"
local json = require "json"
local k8s = require "k8s"
local keyring = require "xcsreg.keyring"
local dockerconfigjson = require "xcsreg.dockerconfigjson"
local pager = require "xcsreg.pager"
local pull = require "xcsreg.pull"
local secrets = require "xcsreg.secrets"

local restart = {}

restart.STUCK = { ErrImagePull = true, ImagePullBackOff = true }
restart.DEFAULT_OWNERS = { "Job" }

local function controller_kind(pod)
  for _, ref in ipairs(pod.metadata.ownerReferences or {}) do
    if type(ref) == "table" and ref.controller == true then return ref.kind end
  end
  return "Pod"
end

-- The images a pod's containers wait for, stuck pulling them.
local function stuck_images(pod)
  local images, seen = {}, {}
  local spec_image = {}
  for _, list in ipairs { "initContainers", "containers" } do
    for _, c in ipairs(type(pod.spec) == "table" and pod.spec[list] or {}) do spec_image[c.name] = c.image end
  end
  for _, list in ipairs { "initContainerStatuses", "containerStatuses" } do
    for _, cs in ipairs(type(pod.status) == "table" and pod.status[list] or {}) do
      local waiting = type(cs.state) == "table" and cs.state.waiting
      local image = spec_image[cs.name] or cs.image
      if type(waiting) == "table" and restart.STUCK[waiting.reason] and type(image) == "string" and not seen[image] then
        seen[image] = true
        images[#images + 1] = { image = image, reason = waiting.reason }
      end
    end
  end
  return images
end

-- Namespace ns: deletes the pods the rules above allow. plan: service_accounts,
-- restart_owners; opts: dry_run. Returns { {pod =, result = "deleted", reason =,
-- text =} ... }, { error message ... }.
function restart.namespace(client, ns, plan, opts)
  local done, errors = {}, {}
  local owners = {}
  for _, kind in ipairs(plan.restart_owners or restart.DEFAULT_OWNERS) do owners[kind] = true end
  local managed = {}
  for _, sa in ipairs(plan.service_accounts) do managed[sa] = true end
  local pods, err = pager.list(client, k8s.path("/api/v1/namespaces/%s/pods", ns))
  if not pods then return done, { string.format("namespace %s: cannot list pods: %s", ns, tostring(err)) } end
  local options_for = config.pull_options(plan)
  local keyrings = {}
  local function keyring_of(sa)
    if keyrings[sa] == nil then
      local obj = client:get(k8s.path("/api/v1/namespaces/%s/serviceaccounts/%s", ns, sa))
      local kr = keyring.new()
      for _, ref in ipairs(obj and type(obj.imagePullSecrets) == "table" and obj.imagePullSecrets or {}) do
        local s = type(ref) == "table" and type(ref.name) == "string" and secrets.read(client, ns, ref.name)
        local data = s and s.type == secrets.TYPE and s.data and s.data[".dockerconfigjson"]
        local auths = data and dockerconfigjson.decode(data)
        if auths then kr:add(auths, ref.name) end
      end
      keyrings[sa] = kr
    end
    return keyrings[sa]
  end
  for _, pod in ipairs(type(pods.items) == "table" and pods.items or {}) do
    local stuck = type(pod) == "table" and type(pod.metadata) == "table" and stuck_images(pod) or {}
    local sa = type(pod.spec) == "table" and pod.spec.serviceAccountName or "default"
    local kind = #stuck > 0 and controller_kind(pod)
    if #stuck > 0 and managed[sa] and owners[kind] then
      local own = {}
      for _, ref in ipairs(type(pod.spec.imagePullSecrets) == "table" and pod.spec.imagePullSecrets or {}) do
        if type(ref) == "table" and ref.name then own[ref.name] = true end
      end
      local kr = keyring_of(sa)
      local fixable = true
      for _, s in ipairs(stuck) do
        local ref = image_ref.parse(s.image)
        local r = ref and pull.check({ s.image }, function(parsed) return kr:lookup(parsed.name) end,
          options_for(ref.registry))[1]
        if not r or r.state ~= "ok" or not r.secret or own[r.secret] then fixable = false end
      end
      if fixable then
        -- with a body, the apiserver reads the options from it alone, dryRun
        -- too (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/delete.go)
        local status, body = client:request { method = "DELETE",
          path = k8s.path("/api/v1/namespaces/%s/pods/%s", ns, pod.metadata.name), content_type = "application/json",
          body = json.encode { apiVersion = "v1", kind = "DeleteOptions", preconditions = { uid = pod.metadata.uid },
                               dryRun = opts.dry_run and json.array { "All" } or nil } }
        if status == 200 or status == 202 then
          done[#done + 1] = { pod = pod.metadata.name, text = string.format(
            "pod/%s deleted (stuck in %s on %s, which now pulls: its %s makes a new pod with the current pull secrets)",
            pod.metadata.name, stuck[1].reason, stuck[1].image, kind == "Pod" and "owner" or kind) }
        elseif status ~= 404 and status ~= 409 then -- 404, 409: gone or replaced meanwhile
          errors[#errors + 1] = string.format("namespace %s: pod/%s: cannot delete: %s", ns, pod.metadata.name,
            status and string.format("HTTP %d", status) or tostring(body))
        end
      end
    end
  end
  return done, errors
end

return restart
