-- Answers of valid JSON but another shape than the API's (#12 items 12
-- and 15): `null` where a list is, an object where a list is, no
-- metadata, no resourceVersion, LIST items without a namespace, a PATCH
-- answered 200 whose object does not hold the change. Each is read as the
-- API means it (null = empty) or fails its own namespace with a message
-- naming the object and field; the other namespaces are still handled and
-- the run exits 1.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "setuplib"

local env = { PW = "example-static-pw-3b8c" }
local function setup(namespaces, ...)
  local args = { "--concurrency", "1", "--secret-name", "reg", "--docker-server", "reg.example.org",
                 "--docker-username", "u", "--docker-password-env", "PW", ... }
  for _, ns in ipairs(namespaces) do
    args[#args + 1] = "-n"
    args[#args + 1] = ns
  end
  return lib.setup(args, { env = env })
end

lib.reset()
local all = { "s1", "s2", "s3", "s4", "s5", "s6", "s7" }
for _, ns in ipairs(all) do lib.namespace(ns) end
t.eq(setup({ "s5" }), 0, "s5 prepared: its Secret exists")

local function sa_path(ns) return "^/api/v1/namespaces/" .. ns .. "/serviceaccounts/default" end
local function answer(method, path_regex, obj)
  assert(lib.fault { method = method, path_regex = path_regex, count = 1, status = 200,
                     body = type(obj) == "string" and obj or json.encode(obj), content_type = "application/json" })
end
local function sa(ns, fields)
  local stored = lib.get("ServiceAccount", ns, "default")
  local obj = { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = ns,
                resourceVersion = stored.metadata.resourceVersion, uid = stored.metadata.uid } }
  for k, v in pairs(fields) do obj[k] = v end
  return obj
end
-- the LIST across the cluster answers items without a namespace: not
-- used; every namespace is then read on its own
answer("GET", "^/api/v1/serviceaccounts", { kind = "ServiceAccountList", apiVersion = "v1",
  metadata = { resourceVersion = "1" }, items = { { metadata = { name = "default" } } } })
answer("GET", sa_path("s1"), sa("s1", { imagePullSecrets = json.null }))
answer("GET", sa_path("s2"), sa("s2", { imagePullSecrets = { name = "x" } }))
answer("GET", sa_path("s3"), '{"apiVersion":"v1","kind":"ServiceAccount"}')
local s4 = sa("s4", {})
s4.metadata.resourceVersion = nil
answer("GET", sa_path("s4"), s4)
local secret = lib.get("Secret", "s5", "reg")
secret.data = json.null
-- the LIST of Secrets is of the API's shape, s5's with `data: null`
answer("GET", "^/api/v1/secrets", { kind = "SecretList", apiVersion = "v1", metadata = { resourceVersion = "1" },
  items = { secret } })
answer("PATCH", sa_path("s6"), sa("s6", { imagePullSecrets = json.array {} }))

local status, out, err = setup(all)
t.eq(status, 1, "odd answers: exit 1")
t.eq(out, "s1: secret/reg created\ns1: serviceaccount/default configured\n"
  .. "s2: secret/reg created\ns3: secret/reg created\ns4: secret/reg created\n"
  .. "s5: secret/reg configured\ns5: serviceaccount/default unchanged\n"
  .. "s6: secret/reg created\n"
  .. "s7: secret/reg created\ns7: serviceaccount/default configured\n",
  "null imagePullSecrets read as none; null data rewritten; the namespaces after the odd ones handled")
local function has(s, name) t.ok(err:find(s, 1, true) ~= nil, name, err) end
has("LIST /api/v1/serviceaccounts, item 1 has no metadata.namespace: not used: reading them per namespace",
  "a LIST item without a namespace: the LIST not used, with a warning")
has("namespace s2: serviceaccount/default: the API server's answer for serviceaccount/default has "
  .. "imagePullSecrets as an object", "an object where a list is: that namespace fails, naming the field")
has("namespace s3: serviceaccount/default: the API server's answer for serviceaccount/default has no metadata",
  "no metadata: that namespace fails")
has("namespace s4: serviceaccount/default: the API server's answer for serviceaccount/default has no "
  .. "metadata.resourceVersion: not patched", "no resourceVersion: not patched unconditionally")
has("namespace s6: serviceaccount/default: the API server accepted the patch of serviceaccount/default, but "
  .. "the ServiceAccount it answered does not list secret/reg: not applied", "a PATCH answered but not applied")
t.eq(err:find("traceback", 1, true), nil, "no traceback")
t.eq(lib.pull_secrets("s1", "default"), { "reg" }, "s1: the ServiceAccount lists the Secret")
t.eq({ lib.pull_secrets("s3", "default"), lib.pull_secrets("s4", "default") }, { {}, {} },
  "s3, s4: not patched")

-- status.lua: a pod list of another shape fails that namespace only
local proc = require "proc"
answer("GET", "^/api/v1/namespaces/s1/pods", { kind = "PodList", apiVersion = "v1", metadata = {},
  items = { { metadata = { name = "p" }, spec = json.null, status = { containerStatuses = { name = "c" } } } } })
status, out, err = proc.run { argv = { lib.xcsreg, "run", "status.lua", "-n", "s1", "-n", "s7" },
  env = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp }, timeout = 60 }
t.eq(status, 1, "status.lua, an odd pod list: exit 1")
t.ok(out:find("\ns7 ", 1, true) ~= nil and err:find("s1: ", 1, true) ~= nil and not err:find("traceback", 1, true),
  "status.lua: the other namespace still reported, no traceback", out .. err)
return t.done()
