-- xcsreg.workloads: the images the workloads of a namespace run or will
-- run, for status.lua's pull readiness (#17): every container and init
-- container of its Pods and of the pod templates of its Jobs (XNAT makes
-- its jobs as suspended Jobs, whose pods exist only once they start),
-- CronJobs, Deployments, StatefulSets and DaemonSets.
local k8s = require "k8s"
local pager = require "xcsreg.pager"

local workloads = {}

-- what is listed, and where its pod spec is
workloads.KINDS = {
  { name = "pods", path = "/api/v1/namespaces/%s/pods", spec = function(o) return o.spec end },
  { name = "jobs", path = "/apis/batch/v1/namespaces/%s/jobs",
    spec = function(o) return o.spec and o.spec.template and o.spec.template.spec end },
  { name = "cronjobs", path = "/apis/batch/v1/namespaces/%s/cronjobs",
    spec = function(o)
      local jt = o.spec and o.spec.jobTemplate
      return jt and jt.spec and jt.spec.template and jt.spec.template.spec
    end },
}
for _, name in ipairs { "deployments", "statefulsets", "daemonsets" } do
  workloads.KINDS[#workloads.KINDS + 1] = { name = name, path = "/apis/apps/v1/namespaces/%s/" .. name,
    spec = function(o) return o.spec and o.spec.template and o.spec.template.spec end }
end

-- The images of namespace ns, each once, in the order first seen (kind by
-- kind, then object by object), and a message per LIST that failed.
function workloads.images(client, ns)
  local images, seen, errors = {}, {}, {}
  for _, kind in ipairs(workloads.KINDS) do
    local list, err = pager.list(client, k8s.path(kind.path, ns))
    if not list then
      local hint = type(err) == "table" and err.code == 403
        and " (scripts/k8s/rbac-status-workloads.yaml has the Role it needs)" or ""
      errors[#errors + 1] = string.format("%s: cannot list %s for their images: %s%s", ns, kind.name, tostring(err),
        hint)
    else
      for _, obj in ipairs(type(list.items) == "table" and list.items or {}) do
        local ok, spec = pcall(kind.spec, obj)
        for _, field in ipairs { "initContainers", "containers" } do
          local containers = ok and type(spec) == "table" and spec[field]
          for _, c in ipairs(type(containers) == "table" and containers or {}) do
            local image = type(c) == "table" and c.image
            if type(image) == "string" and image ~= "" and not seen[image] then
              seen[image] = true
              images[#images + 1] = image
            end
          end
        end
      end
    end
  end
  return images, errors
end

return workloads
