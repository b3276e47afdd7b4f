-- needs: apisim
-- Every way of authenticating against the simulator over HTTPS: token,
-- tokenFile, client certificates, exec plugins, in-cluster service account.
local t = require "test"
local k8s = require "k8s"
local json = require "json"
local simctl = require "simctl"
local kt = require "k8sfixtures.k8stest"

local dir = kt.tmpdir()
local ca = kt.copy(simctl.certs .. "/ca.crt", dir .. "/ca.crt")
local NS_PATH = "/api/v1/namespaces/default"

-- A kubeconfig in dir for the simulator with this user.
local function kubeconfig(name, user, cluster)
  cluster = cluster or { server = simctl.api, ["certificate-authority"] = "ca.crt" }
  return kt.kubeconfig(dir .. "/" .. name, {
    clusters = { sim = cluster },
    users = { me = user },
    contexts = { sim = { cluster = "sim", user = "me" } },
    current_context = "sim",
  })
end

-- The users the simulator saw, in order.
local function users_seen()
  local users = {}
  for _, e in ipairs(simctl.log()) do users[#users + 1] = e.user or json.null end
  return users
end

-- Gets the default namespace with a fresh client for kubeconfig f; checks
-- it worked and the simulator saw user "admin".
local function works(f, name, opts)
  simctl.clear_log()
  local o = { kubeconfig = f }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c, err = k8s.client(o)
  if not t.ok(c, name .. ": client", tostring(err)) then return end
  local obj, gerr = c:get(NS_PATH)
  t.ok(obj and obj.metadata.name == "default", name .. ": GET works", tostring(gerr))
  t.eq(users_seen(), { "admin" }, name .. ": the simulator saw admin")
  return c
end

-- ---- token ----
works(simctl.dir .. "/token.kubeconfig", "token")

local f = kubeconfig("badtoken.yaml", { token = "wrong-token-123" })
local c = assert(k8s.client { kubeconfig = f })
local obj, err = c:get(NS_PATH)
t.eq({ obj, err and err.code, err and err.reason }, { nil, 401, "Unauthorized" }, "bad token: 401 Unauthorized")
t.eq(tostring(err), "Error from server (Unauthorized): Unauthorized", "bad token: tostring")
t.eq(err.retries, 0, "bad token: a static token is not retried")
t.ok(not tostring(err):find("wrong-token-123", 1, true) and not err.message:find("wrong-token-123", 1, true),
  "bad token: the token is in no error message")

-- ---- tokenFile ----
kt.write(dir .. "/tok.txt", "  admin-token\n")
works(kubeconfig("tokfile.yaml", { tokenFile = "tok.txt" }), "tokenFile (relative, trimmed)")
works(kubeconfig("tokwins.yaml", { token = "wrong-token-123", tokenFile = dir .. "/tok.txt" }),
  "tokenFile wins over token")

-- A rotated token file is read again after a 401 and the request repeated once.
kt.write(dir .. "/rot.txt", "old-token-456\n")
c = assert(k8s.client { kubeconfig = kubeconfig("rot.yaml", { tokenFile = "rot.txt" }) })
kt.write(dir .. "/rot.txt", "admin-token\n")
simctl.clear_log()
obj, err = c:get(NS_PATH)
t.ok(obj, "tokenFile: rotated file picked up after a 401", tostring(err))
local log = simctl.log()
t.eq({ #log, log[1].status, log[2] and log[2].status }, { 2, 401, 200 }, "tokenFile: 401, re-read, 200")
t.eq(c:stats().retries, 1, "tokenFile: the repeat counts as a retry")
-- unchanged file: the 401 is returned
kt.write(dir .. "/rot.txt", "old-token-456\n")
c = assert(k8s.client { kubeconfig = dir .. "/rot.yaml" })
simctl.clear_log()
obj, err = c:get(NS_PATH)
t.eq(err and err.code, 401, "tokenFile: unchanged after a 401: the 401 is returned")
t.eq(#simctl.log(), 1, "tokenFile: unchanged: sent once")

-- ---- client certificates ----
works(simctl.dir .. "/cert.kubeconfig", "client certificate data")
works(simctl.dir .. "/cert-file.kubeconfig", "client certificate files")
kt.copy(simctl.certs .. "/admin.crt", dir .. "/admin.crt")
kt.copy(simctl.certs .. "/admin.key", dir .. "/admin.key", "600")
works(kubeconfig("relcert.yaml", { ["client-certificate"] = "admin.crt", ["client-key"] = "admin.key" }),
  "client certificate files, relative paths")

-- ---- exec plugins ----
os.execute("mkdir -p " .. dir .. "/bin")
kt.copy(kt.fixtures .. "/exec-plugin.sh", dir .. "/bin/cred", "755")
local V1, V1BETA1 = "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"

-- A kubeconfig whose user runs the plugin; returns it and the plugin's state dir.
local function exec_kubeconfig(name, mode, api, extra)
  local state = dir .. "/state-" .. name
  os.execute("mkdir -p " .. state)
  local e = {
    apiVersion = api, command = "./bin/cred", args = { "--flag", "v" },
    env = {
      { name = "PLUGIN_STATE", value = state }, { name = "PLUGIN_MODE", value = mode },
      { name = "PLUGIN_API", value = api }, { name = "PLUGIN_CERTS", value = simctl.certs },
      { name = "PLUGIN_TTL", value = "2" },
    },
    interactiveMode = api == V1 and "Never" or nil,
    provideClusterInfo = true,
  }
  for k, v in pairs(extra or {}) do e[k] = v end
  local cluster = {
    server = simctl.api, ["certificate-authority"] = "ca.crt",
    extensions = { { name = "client.authentication.k8s.io/exec", extension = { audience = "demo" } } },
  }
  return kubeconfig(name .. ".yaml", { exec = e }, cluster), state
end

local function runs(state) return tonumber(kt.read(state .. "/count") or "0") end

local f1, state = exec_kubeconfig("v1", "token", V1)
c = works(f1, "exec v1 token")
t.eq(runs(state), 1, "exec v1: the plugin ran once")
if c then
  c:get(NS_PATH)
  t.eq(runs(state), 1, "exec v1: the answer is cached (no expiry)")
end
t.eq(kt.read(state .. "/args"), "--flag v\n", "exec: args passed")
local info = json.decode(kt.read(state .. "/info"))
t.eq(info.apiVersion, V1, "exec: KUBERNETES_EXEC_INFO apiVersion")
t.eq(info.kind, "ExecCredential", "exec: KUBERNETES_EXEC_INFO kind")
t.eq(info.spec.interactive, false, "exec: spec.interactive is false")
t.eq(info.spec.cluster.server, simctl.api, "exec: provideClusterInfo gives the server")
t.eq(info.spec.cluster.config, { audience = "demo" }, "exec: the cluster's exec extension is spec.cluster.config")
local base64 = require "base64"
t.eq(base64.decode(info.spec.cluster["certificate-authority-data"]), kt.read(ca),
  "exec: certificate-authority-data is the CA, base64")

f1, state = exec_kubeconfig("v1beta1", "token", V1BETA1)
works(f1, "exec v1beta1 token (interactiveMode optional)")
info = json.decode(kt.read(state .. "/info"))
t.eq(info.apiVersion, V1BETA1, "exec v1beta1: KUBERNETES_EXEC_INFO apiVersion")

f1, state = exec_kubeconfig("nocluster", "token", V1, { provideClusterInfo = false })
works(f1, "exec without provideClusterInfo")
info = json.decode(kt.read(state .. "/info"))
t.eq(info.spec, { interactive = false }, "exec: no spec.cluster without provideClusterInfo")

f1, state = exec_kubeconfig("cert", "cert", V1)
works(f1, "exec v1 client certificate answer")
f1, state = exec_kubeconfig("certbeta", "cert", V1BETA1)
works(f1, "exec v1beta1 client certificate answer")

f1, state = exec_kubeconfig("expiring", "expiring", V1)
c = works(f1, "exec with expirationTimestamp")
if c then
  c:get(NS_PATH)
  t.eq(runs(state), 1, "exec expiring: reused before expiry")
  os.execute("sleep 2.2")
  c:get(NS_PATH)
  t.eq(runs(state), 2, "exec expiring: run again after expiry")
end

f1, state = exec_kubeconfig("stale", "stale", V1)
simctl.clear_log()
c = assert(k8s.client { kubeconfig = f1 })
obj, err = c:get(NS_PATH)
t.ok(obj, "exec after a 401: the request succeeds with the new credential", tostring(err))
t.eq(runs(state), 2, "exec after a 401: the plugin ran again")
log = simctl.log()
t.eq({ #log, log[1].status, log[2] and log[2].status }, { 2, 401, 200 }, "exec after a 401: 401 then 200")
t.eq(c:stats().retries, 1, "exec after a 401: one retry")

f1, state = exec_kubeconfig("wrong", "wrong", V1)
simctl.clear_log()
c = assert(k8s.client { kubeconfig = f1 })
obj, err = c:get(NS_PATH)
t.eq(err and err.code, 401, "exec: a credential rejected again: the 401 is returned")
t.eq(runs(state), 2, "exec: the plugin ran again after the 401")
t.eq(#simctl.log(), 1, "exec: the same credential is not sent twice")

local function exec_fails(mode, want, name)
  local fx = exec_kubeconfig("f-" .. mode, mode, V1)
  local cx = assert(k8s.client { kubeconfig = fx })
  local o, e = cx:get(NS_PATH)
  t.ok(o == nil and e.reason == "Config" and e.message:find(want, 1, true), name, t.show(e))
end
exec_fails("fail", "exec plugin ./bin/cred failed with exit code 3", "exec: plugin failure")
exec_fails("half", "exec plugin ./bin/cred returned only certificate or key, not both", "exec: certificate without key")
exec_fails("wrongapi", "exec plugin ./bin/cred is configured to use API version " .. V1
  .. ", plugin returned version " .. V1BETA1, "exec: answer in another apiVersion")

f1 = kubeconfig("hint.yaml", { exec = { apiVersion = V1, command = "xcsreg-no-such-plugin", interactiveMode = "Never",
  installHint = "install it from example.invalid" } })
c = assert(k8s.client { kubeconfig = f1 })
obj, err = c:get(NS_PATH)
t.ok(err and err.message:find("exec plugin xcsreg-no-such-plugin: ", 1, true) == 1
  and err.message:find("\ninstall it from example.invalid", 1, true), "exec: not found shows the install hint",
  t.show(err))

-- ---- in-cluster ----
local sa = dir .. "/serviceaccount"
os.execute("mkdir -p " .. sa)
kt.write(sa .. "/token", "admin-token\n")
kt.copy(ca, sa .. "/ca.crt")
kt.write(sa .. "/namespace", "kube-system\n")
local port = simctl.api:match(":(%d+)$")
local env = {
  HOME = dir, KUBECONFIG = "", POD_NAMESPACE = "", XCSREG_IN_CLUSTER_DIR = sa,
  KUBERNETES_SERVICE_HOST = "127.0.0.1", KUBERNETES_SERVICE_PORT = port,
}
local status = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c, err = k8s.client()
if not t.ok(c, "in-cluster: client", tostring(err)) then return t.done() end
t.eq(c.server, "https://127.0.0.1:]] .. port .. [[", "in-cluster: server from KUBERNETES_SERVICE_HOST/PORT")
t.eq(c.namespace, "kube-system", "in-cluster: namespace from the namespace file")
t.eq(c.context, nil, "in-cluster: no context")
local obj, gerr = c:get("/api/v1/namespaces/default")
t.ok(obj, "in-cluster: token and CA work", tostring(gerr))
t.eq(k8s.client({ namespace = "x" }).namespace, "x", "in-cluster: namespace option overrides")
return t.done()
]], env)
t.eq(status, 0, "in-cluster: nested run passed")

env.POD_NAMESPACE = "from-env"
status = kt.nested(dir, [[
local t = require "test"
t.eq(require("k8s").client().namespace, "from-env", "in-cluster: POD_NAMESPACE wins over the file")
return t.done()
]], env)
t.eq(status, 0, "in-cluster: POD_NAMESPACE nested run passed")

env.POD_NAMESPACE, env.XCSREG_IN_CLUSTER_DIR = "", dir .. "/nowhere"
local out
status, out = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c, err = k8s.client()
t.eq(err and err.message, "no configuration: set KUBECONFIG, --kubeconfig, or run in a cluster",
  "no token file, no kubeconfig: no configuration")
t.ok(k8s.client { in_cluster_dir = "]] .. sa .. [[" }, "in_cluster_dir option")
return t.done()
]], env)
t.eq(status, 0, "no configuration: nested run passed")

return t.done()
