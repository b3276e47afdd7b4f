-- xcsreg.serviceaccounts: add pull secrets to a ServiceAccount without losing
-- any. imagePullSecrets is an atomic list: every patch replaces all of it, so
-- the new list is the one just read plus what is missing, written with the
-- resourceVersion of that read; if anyone changed the ServiceAccount since,
-- the server answers 409 and we read again.
local k8s = require "k8s"
local log = require "log"
local objects = require "xcsreg.objects"
local proc = require "proc"

local serviceaccounts = {}

local ATTEMPTS = 5            -- reads and writes, when writes keep losing races
local DEFAULT_WAITS = 5       -- reads of a missing `default`, WAIT_SECONDS apart
local WAIT_SECONDS = 0.5

-- The cluster creates `default` shortly after its namespace (and again after
-- it is deleted): a missing one is worth a few more looks.
local function get(client, ns, name, path)
  local sa, err
  for i = 1, DEFAULT_WAITS do
    sa, err = client:get(path)
    if sa or err.code ~= 404 or name ~= "default" then break end
    log.debug("%s: serviceaccount/default not found yet (%d of %d)", ns, i, DEFAULT_WAITS)
    if i < DEFAULT_WAITS then proc.run { argv = { "sleep", tostring(WAIT_SECONDS) } } end
  end
  if sa or err.code ~= 404 then return sa, err end
  if name == "default" then
    return nil, string.format('serviceaccount "default" not found in namespace %s: not yet created by the '
      .. "cluster (a new namespace?); run again in a minute", ns)
  end
  return nil, string.format('serviceaccount "%s" not found in namespace %s: xcsreg adds pull secrets to '
    .. "existing ServiceAccounts only; create it first", name, ns)
end

-- A write the server answered 2xx for may still not be in effect (a
-- mutating webhook, a proxy that answers for the server): the answer is the
-- object as stored, so it must list every entry sent. Returns "configured"
-- | nil, message.
function serviceaccounts.applied(answer, what, list)
  local refs = answer and objects.check(answer, what) and objects.list(answer, "imagePullSecrets", what)
  local listed = {}
  for _, ref in ipairs(refs or {}) do
    if type(ref) == "table" then listed[ref.name or false] = true end
  end
  for _, ref in ipairs(list) do
    if not listed[ref.name] then
      return nil, string.format("the API server accepted the patch of %s, but the ServiceAccount it answered "
        .. "does not list secret/%s: not applied (a mutating admission webhook?)", what, tostring(ref.name))
    end
  end
  return "configured"
end

-- Makes ServiceAccount `name` in namespace ns list every Secret name in
-- `wanted`, after the entries it has (order kept, none dropped, no
-- duplicates added). opts: dry_run. `stored` is the ServiceAccount as just
-- read (nil: read it here). Returns "configured" | "unchanged", or nil and
-- an error (a k8s error table or a message).
function serviceaccounts.add_pull_secrets(client, ns, name, wanted, opts, stored)
  local path = k8s.path("/api/v1/namespaces/%s/serviceaccounts/%s", ns, name)
  local err
  for _ = 1, ATTEMPTS do
    local sa = stored
    stored = nil -- after a lost race, read again
    if not sa then
      sa, err = get(client, ns, name, path)
      if not sa then return nil, err end
    end
    local what = "serviceaccount/" .. name
    local refs
    sa, err = objects.check(sa, what)
    if sa then refs, err = objects.list(sa, "imagePullSecrets", what) end
    if not refs then return nil, err end
    local list, present = {}, {}
    for i, ref in ipairs(refs) do
      list[i] = ref
      if type(ref) == "table" and ref.name then present[ref.name] = true end
    end
    local old_count = #list
    for _, secret in ipairs(wanted) do
      if not present[secret] then
        list[#list + 1] = { name = secret }
        present[secret] = true
      end
    end
    if #list == old_count then return "unchanged" end
    local version = sa.metadata.resourceVersion
    if type(version) ~= "string" or version == "" then
      -- without it the patch would replace the list whatever changed since the read
      return nil, string.format("the API server's answer for %s has no metadata.resourceVersion: not patched, "
        .. "since a patch without one could drop a pull secret added meanwhile", what)
    end
    local patch = { metadata = { resourceVersion = version }, imagePullSecrets = list }
    local patched, perr = client:patch(path, patch, "merge", { dry_run = opts.dry_run })
    if not perr then return serviceaccounts.applied(patched, what, list) end
    if perr.code ~= 409 then return nil, perr end
    err = perr
    log.debug("%s: serviceaccount/%s changed since it was read; reading it again", ns, name)
  end
  return nil, err
end

return serviceaccounts
