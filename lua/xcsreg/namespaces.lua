-- xcsreg.namespaces: the namespaces a run handles when the site file
-- selects them (namespace_selector, all_namespaces) instead of naming them,
-- so that a namespace created tomorrow is handled by the next cron run.
local log = require "log"
local objects = require "xcsreg.objects"
local pager = require "xcsreg.pager"
local rbac = require "xcsreg.rbac"

local namespaces = {}

-- The names of the namespaces the plan selects, in name order, leaving out
-- those excluded and those being deleted (nothing can be created in a
-- Terminating namespace). Returns the list (maybe empty), or nil and a
-- message (after a 403, with the ClusterRole to grant).
local function selected(client, plan)
  local selector = plan.namespace_selector
  local list, err = pager.list(client, "/api/v1/namespaces", selector and { labelSelector = selector } or nil)
  if not list then
    local msg = "cannot list namespaces: " .. tostring(err)
    if type(err) == "table" and err.code == 403 then
      local what = selector and string.format("namespace_selector %q", selector) or "all_namespaces"
      msg = msg .. "\n" .. rbac.namespaces_hint(what, err)
    end
    return nil, msg
  end
  local excluded = {}
  for _, name in ipairs(plan.exclude_namespaces or {}) do excluded[name] = true end
  local names = {}
  local items, ierr = objects.items(list, "LIST /api/v1/namespaces")
  if not items then return nil, ierr end
  for _, ns in ipairs(items) do
    local name = ns.metadata.name
    if ns.status and ns.status.phase == "Terminating" then
      log.info("note: namespace %s is being deleted (phase Terminating): skipped", name)
    elseif not excluded[name] then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

-- The namespaces of a plan (xcsreg.config): those it names, or selects,
-- else the client's. Returns the list, or nil and a message; warns when a
-- selection finds none.
function namespaces.resolve(client, plan)
  if not (plan.namespace_selector or plan.all_namespaces) then return plan.namespaces or { client.namespace } end
  local list, err = selected(client, plan)
  if list and #list == 0 then
    log.warn("%s matches no namespace: nothing to do", plan.namespace_selector
      and string.format("namespace_selector %q", plan.namespace_selector) or "all_namespaces")
  end
  return list, err
end

return namespaces
