-- xcsreg.snapshot: the first read of a run over many namespaces, in a
-- constant number of requests. When the identity may list cluster-wide,
-- one LIST of the Secrets xcsreg manages (by label) and one LIST per wanted
-- ServiceAccount name (by field selector) stand in for the GETs of every
-- namespace; whether it may is found out by trying, once. A LIST that is
-- refused leaves those objects to be read per namespace.
--
-- It is only a first read, never trusted for correctness: a Secret of the
-- wanted name that xcsreg does not manage is not in the LIST and reads as
-- absent, so the create that follows fails with 409 AlreadyExists and
-- xcsreg.secrets reads it; a write that loses a race reads again.
local log = require "log"
local objects = require "xcsreg.objects"
local pager = require "xcsreg.pager"
local secrets = require "xcsreg.secrets"

local snapshot = {}
snapshot.__index = snapshot

-- The items of a LIST by "namespace/name", shaped as a GET returns them
-- (a LIST leaves out kind and apiVersion), so that they can be written back.
-- A LIST of another shape than the API's is not used: nil, message.
local function index(list, kind, path)
  local items, err = objects.items(list, "LIST " .. path, true)
  if not items then return nil, err end
  local by = {}
  for _, obj in ipairs(items) do
    obj.apiVersion, obj.kind = "v1", kind
    if kind == "Secret" then
      obj, err = secrets.checked(obj)
      if not obj then return nil, err end
    end
    by[obj.metadata.namespace .. "/" .. obj.metadata.name] = obj
  end
  return by
end

-- Whether err concerns the whole cluster: no namespace would escape it
-- (a 2xx that is not the API's JSON: the server is some web front end;
-- the client's deadline, --run-timeout, has passed), or the run was
-- interrupted (a signal: no new request goes out).
function snapshot.cluster_wide(err)
  return type(err) == "table" and (err.reason == "Transport" or err.reason == "Deadline"
    or err.reason == "Interrupted" or err.code == 401
    or (err.reason == "InvalidResponse" and type(err.code) == "number" and err.code < 300))
end

-- Reads the managed Secrets and the ServiceAccounts named in
-- service_accounts across the cluster, all at once. Returns the snapshot,
-- or nil and an error that concerns the whole cluster.
function snapshot.take(client, service_accounts)
  local reads = { { kind = "Secret", path = "/api/v1/secrets",
                    query = { labelSelector = secrets.MANAGED_BY .. "=xcsreg" } } }
  for _, name in ipairs(service_accounts) do
    reads[#reads + 1] = { kind = "ServiceAccount", name = name, path = "/api/v1/serviceaccounts",
                          query = { fieldSelector = "metadata.name=" .. name } }
  end
  local answers = client:map(reads, function(r)
    local list, err = pager.list(client, r.path, r.query)
    return { list = list, err = err }
  end)
  local snap = setmetatable({ service_accounts = {} }, snapshot)
  for i, r in ipairs(reads) do
    local list, err = answers[i].list, answers[i].err
    local by
    if list then
      by, err = index(list, r.kind, r.path)
      if not by then log.warn("%s: reading them per namespace", err) end
    end
    if by then
      if r.name then snap.service_accounts[r.name] = by else snap.secrets = by end
    elseif not list and snapshot.cluster_wide(err) then
      return nil, err
    elseif not list then
      log.debug("cannot list %s across the cluster (%s): reading them per namespace", r.path, tostring(err))
    end
  end
  return snap
end

-- Secret `name` of namespace ns: as stored, false when it is not among
-- those xcsreg manages (none, or someone else's), nil when not read.
function snapshot:secret(ns, name)
  if self.secrets then return self.secrets[ns .. "/" .. name] or false end
end

-- ServiceAccount `name` of namespace ns as stored, or nil (not read, or
-- missing: a read of its own says why).
function snapshot:service_account(ns, name)
  local by = self.service_accounts[name]
  return by and by[ns .. "/" .. name]
end

return snapshot
