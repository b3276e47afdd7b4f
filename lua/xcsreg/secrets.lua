-- xcsreg.secrets: the docker-registry Secret a namespace should hold, and
-- bringing the cluster to it. A Secret is updated in place with its
-- resourceVersion, never deleted and recreated: pods and kubelets that
-- reference it must never see it missing.
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local k8s = require "k8s"
local log = require "log"
local objects = require "xcsreg.objects"

local secrets = {}

secrets.TYPE = "kubernetes.io/dockerconfigjson"
secrets.MANAGED_BY = "app.kubernetes.io/managed-by"

-- How many times a write that lost a race (409) is tried again from a fresh read.
local ATTEMPTS = 5

-- The Secret for `registries` (see xcsreg.dockerconfigjson), with the label that
-- marks it as xcsreg's. namespace may be nil (the printed form leaves it out).
function secrets.desired(name, namespace, registries)
  local data = log.secret(base64.encode(dockerconfig.encode(registries)))
  return {
    apiVersion = "v1",
    kind = "Secret",
    metadata = { name = name, namespace = namespace, labels = { [secrets.MANAGED_BY] = "xcsreg" } },
    type = secrets.TYPE,
    data = { [".dockerconfigjson"] = data },
  }
end

-- Whether a stored Secret carries the label that marks it as xcsreg's.
function secrets.managed(obj)
  local labels = obj.metadata.labels
  return labels ~= nil and labels[secrets.MANAGED_BY] == "xcsreg"
end

-- Whether a stored Secret already holds what `want` holds (type and data).
function secrets.same_content(obj, want)
  if obj.type ~= want.type or obj.data == nil then return false end
  for k, v in pairs(obj.data) do
    if want.data[k] ~= v then return false end
  end
  for k in pairs(want.data) do
    if obj.data[k] == nil then return false end
  end
  return true
end

-- A Secret as the API answered it, checked (xcsreg.objects), its null
-- data as none | nil, message.
function secrets.checked(obj)
  local what = "secret/" .. tostring(type(obj) == "table" and type(obj.metadata) == "table" and obj.metadata.name)
  local ok, err = objects.check(obj, what)
  if not ok then return nil, err end
  local data
  data, err = objects.map(obj, "data", what)
  if not data then return nil, err end
  obj.data = next(data) ~= nil and data or nil
  return obj
end

-- Secret `name` of namespace ns as stored, false when there is none, or nil
-- and an error.
function secrets.read(client, ns, name)
  local obj, err = client:get(k8s.path("/api/v1/namespaces/%s/secrets/%s", ns, name))
  if obj then return secrets.checked(obj) end
  if err.code == 404 then return false end
  return nil, err
end

-- The stored object with the wanted data, label and annotations; the
-- annotations under xcsreg.io/ are xcsreg's (one that want leaves out is
-- removed); everything else (other annotations and labels, owner
-- references) is kept, and its resourceVersion makes the write fail with
-- 409 if it changed meanwhile.
local function updated(obj, want)
  local new = {}
  for k, v in pairs(obj) do new[k] = v end
  new.metadata = {}
  for k, v in pairs(obj.metadata) do new.metadata[k] = v end
  new.metadata.labels = { [secrets.MANAGED_BY] = "xcsreg" }
  for k, v in pairs(obj.metadata.labels or {}) do
    if k ~= secrets.MANAGED_BY then new.metadata.labels[k] = v end
  end
  if want.metadata.annotations then
    new.metadata.annotations = {}
    for k, v in pairs(obj.metadata.annotations or {}) do
      if not k:find("^xcsreg%.io/") then new.metadata.annotations[k] = v end
    end
    for k, v in pairs(want.metadata.annotations) do new.metadata.annotations[k] = v end
  end
  new.data = want.data
  return new
end

-- Creates or updates the Secret `want` (from secrets.desired for ns, with
-- the xcsreg.io/ annotations to set, if any) in namespace ns. opts: adopt
-- (take over a Secret xcsreg did not make), dry_run. `stored` is
-- the Secret as just read by secrets.read (nil: read it here). Returns
-- "created" | "configured" | "unchanged", or nil and an error (a k8s error
-- table or a message). Unchanged content is never written.
function secrets.apply(client, ns, want, opts, stored)
  local name = want.metadata.name
  local path = k8s.path("/api/v1/namespaces/%s/secrets/%s", ns, name)
  local write = { dry_run = opts.dry_run }
  local err
  for _ = 1, ATTEMPTS do
    local obj = stored
    stored = nil -- after a lost race, read again
    if obj == nil then
      obj, err = secrets.read(client, ns, name)
      if obj == nil then return nil, err end
    end
    if not obj then
      local _, cerr = client:create(k8s.path("/api/v1/namespaces/%s/secrets", ns), want, write)
      if not cerr then return "created" end
      if cerr.code == 404 then return nil, "namespace " .. ns .. " does not exist" end
      -- 409 AlreadyExists: made by someone else since our read; look again
      if cerr.code ~= 409 then return nil, cerr end
      err = cerr
    else
      local is_managed = secrets.managed(obj)
      if secrets.same_content(obj, want) and (is_managed or not opts.adopt) then return "unchanged" end
      if not is_managed and not opts.adopt then
        return nil, string.format("secret/%s exists and was not made by xcsreg (it has no label %s=xcsreg): "
          .. "left untouched; to let xcsreg take it over and rewrite it, run again with --adopt", name, secrets.MANAGED_BY)
      end
      if obj.type ~= secrets.TYPE then
        return nil, string.format("secret/%s has type %s, not %s, and a Secret's type cannot be changed: "
          .. "delete it and run again", name, tostring(obj.type), secrets.TYPE)
      end
      if obj.immutable then
        return nil, string.format("secret/%s is immutable: delete it and run again", name)
      end
      local _, uerr = client:replace(path, updated(obj, want), write)
      if not uerr then return "configured" end
      if uerr.code ~= 409 then return nil, uerr end
      err = uerr
    end
    log.debug("%s: secret/%s changed while being written (%s); reading it again", ns, name, err.reason)
  end
  return nil, err
end

return secrets
