-- needs: apisim
-- Where the configuration comes from and what it does over TLS: KUBECONFIG
-- with several files (first file wins, paths relative to each file), the
-- context and namespace options, CA checks, insecure-skip-tls-verify and
-- its warning, tls-server-name.
local t = require "test"
local k8s = require "k8s"
local simctl = require "simctl"
local kt = require "k8sfixtures.k8stest"

local dir = kt.tmpdir()
local NS_PATH = "/api/v1/namespaces/default"
local port = simctl.api:match(":(%d+)$")

-- ---- KUBECONFIG: a.yaml in one directory, b.yaml in another ----
os.execute("mkdir -p " .. dir .. "/a " .. dir .. "/b/sub")
kt.copy(simctl.certs .. "/ca.crt", dir .. "/a/ca.crt")
kt.copy(simctl.certs .. "/ca.crt", dir .. "/b/sub/ca.crt")
kt.write(dir .. "/b/sub/tok", "admin-token\n")
local a = kt.kubeconfig(dir .. "/a/a.yaml", {
  clusters = { shared = { server = simctl.api, ["certificate-authority"] = "ca.crt" } },
  users = { ua = { token = "admin-token" } },
  contexts = {
    ["ctx-a"] = { cluster = "shared", user = "ua", namespace = "ns-a" },
    ["ctx-s"] = { cluster = "shared", user = "ua" },
  },
})
local b = kt.kubeconfig(dir .. "/b/sub/b.yaml", {
  clusters = {
    shared = { server = "https://127.0.0.1:1", ["insecure-skip-tls-verify"] = true },
    other = { server = simctl.api .. "/", ["certificate-authority"] = "ca.crt" },
  },
  users = { ub = { tokenFile = "tok" }, ua = { token = "not-this-one" } },
  contexts = {
    ["ctx-a"] = { cluster = "other", user = "ub", namespace = "from-b" },
    ["ctx-b"] = { cluster = "other", user = "ub", namespace = "ns-b" },
  },
  current_context = "ctx-b",
})

local env = { HOME = dir, KUBECONFIG = a .. ":" .. dir .. "/missing.yaml:" .. b .. ":" .. a }
local status = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c, err = k8s.client()
if not t.ok(c, "KUBECONFIG a:missing:b: client", tostring(err)) then return t.done() end
t.eq(c.context, "ctx-b", "current-context from the first file that sets it (b)")
t.eq(c.namespace, "ns-b", "ctx-b's namespace")
t.eq(c.server, "]] .. simctl.api .. [[", "ctx-b's cluster from b")
local obj, gerr = c:get("/api/v1/namespaces/default")
t.ok(obj, "b's relative tokenFile and CA resolve against b's directory", tostring(gerr))

c, err = k8s.client { context = "ctx-a" }
if not t.ok(c, "context option: client", tostring(err)) then return t.done() end
t.eq(c.namespace, "ns-a", "ctx-a is a's entry, b's is ignored")
t.eq(c.server, "]] .. simctl.api .. [[", "cluster 'shared' is a's entry")
obj, gerr = c:get("/api/v1/namespaces/default")
t.ok(obj, "a's relative CA resolves against a's directory; a's user", tostring(gerr))

c = assert(k8s.client { context = "ctx-a", namespace = "override" })
t.eq(c.namespace, "override", "namespace option overrides the context's")
return t.done()
]], env)
t.eq(status, 0, "KUBECONFIG a:b nested run passed")

env.KUBECONFIG = b .. ":" .. a
status = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c = assert(k8s.client { context = "ctx-a" })
t.eq({ c.server, c.namespace }, { "]] .. simctl.api .. [[", "from-b" }, "KUBECONFIG b:a: b's ctx-a wins")
c = assert(k8s.client { context = "ctx-s", retries = 0 })
t.eq(c.server, "https://127.0.0.1:1", "KUBECONFIG b:a: a's ctx-s gets b's cluster 'shared', whole")
local obj, err = c:get("/api")
t.ok(err and err.message:find("^https://127%.0%.0%.1:1: "), "b's 'shared' entry, not a's: its server is used",
  tostring(err))
return t.done()
]], env)
t.eq(status, 0, "KUBECONFIG b:a nested run passed")

-- ~/.kube/config when KUBECONFIG is unset or empty
os.execute("mkdir -p " .. dir .. "/.kube")
kt.copy(a, dir .. "/.kube/config")
kt.copy(simctl.certs .. "/ca.crt", dir .. "/.kube/ca.crt")
env.KUBECONFIG = ""
status = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c, err = k8s.client { context = "ctx-a" }
t.ok(c and c:get("/api/v1/namespaces/default"), "~/.kube/config is read when KUBECONFIG is empty", tostring(err))
return t.done()
]], env)
t.eq(status, 0, "~/.kube/config nested run passed")

-- ---- CA checks ----
local c = assert(k8s.client { kubeconfig = simctl.dir .. "/wrong-ca.kubeconfig" })
local obj, err = c:get(NS_PATH)
t.eq({ obj, err and err.reason }, { nil, "Transport" }, "wrong CA: Transport error")
t.ok(err.message:find(simctl.api .. ": SSL certificate problem: ", 1, true) == 1,
  "wrong CA: the message names the server and says it is a certificate problem", err.message)
t.eq(err.retries, 0, "wrong CA: not retried")

local function cluster_kc(name, cluster, user)
  return kt.kubeconfig(dir .. "/" .. name, {
    clusters = { sim = cluster },
    users = { me = user or { token = "admin-token" } },
    contexts = { sim = { cluster = "sim", user = "me" } },
    current_context = "sim",
  })
end

-- no CA at all: the system's CAs do not know the simulator's
c = assert(k8s.client { kubeconfig = cluster_kc("noca.yaml", { server = simctl.api }) })
obj, err = c:get(NS_PATH)
t.ok(err and err.message:find("SSL certificate problem", 1, true), "no CA: the system CAs are used (and fail)",
  tostring(err))

-- ---- insecure-skip-tls-verify ----
local insecure = cluster_kc("insecure.yaml", { server = simctl.api, ["insecure-skip-tls-verify"] = true })
local out, stderr
status, out, stderr = kt.nested(dir, [[
local t = require "test"
local k8s = require "k8s"
local c = assert(k8s.client { kubeconfig = "]] .. insecure .. [[" })
t.ok(c:get("/api/v1/namespaces/default"), "insecure-skip-tls-verify: works without the CA")
t.ok(c:get("/api/v1/namespaces/default"), "insecure-skip-tls-verify: second request")
return t.done()
]], {})
t.eq(status, 0, "insecure nested run passed")
local _, warnings = stderr:gsub("warning: [^\n]*insecure%-skip%-tls%-verify is set", "")
t.eq(warnings, 1, "insecure-skip-tls-verify: one warning per client")
t.ok(stderr:find("warning: " .. insecure .. ": cluster \"sim\": insecure-skip-tls-verify is set: "
  .. "the server's certificate is not checked", 1, true), "insecure-skip-tls-verify: the warning's text", stderr)

-- ---- tls-server-name ----
-- The server certificate has SAN IP:127.0.0.1 and DNS:localhost.
local sni = cluster_kc("sni.yaml", { server = simctl.api, ["certificate-authority"] = simctl.certs .. "/ca.crt",
  ["tls-server-name"] = "localhost" })
c = assert(k8s.client { kubeconfig = sni })
t.eq(c.server, simctl.api, "tls-server-name: server is still the configured one")
obj, err = c:get(NS_PATH)
t.ok(obj, "tls-server-name localhost: verified against that name", tostring(err))
simctl.clear_log()
c:get(NS_PATH)
t.eq(simctl.log()[1].path, NS_PATH, "tls-server-name: requests reach the server")

local wrong = cluster_kc("sni-wrong.yaml", { server = simctl.api, ["certificate-authority"] = simctl.certs .. "/ca.crt",
  ["tls-server-name"] = "kubernetes.example" })
c = assert(k8s.client { kubeconfig = wrong, retries = 0 })
obj, err = c:get(NS_PATH)
t.ok(err and err.reason == "Transport" and err.message:find("certificate", 1, true),
  "tls-server-name not in the certificate: a certificate error", tostring(err))

-- ---- proxy-url ----
-- The control API is a plain HTTP server that cannot CONNECT: its 501
-- proves the request went through the proxy.
local proxied = cluster_kc("proxy.yaml", { server = simctl.api, ["certificate-authority"] = simctl.certs .. "/ca.crt",
  ["proxy-url"] = simctl.control })
c = assert(k8s.client { kubeconfig = proxied, retries = 0 })
obj, err = c:get(NS_PATH)
t.ok(err and err.reason == "Transport" and err.message:find("CONNECT tunnel failed, response 501", 1, true),
  "proxy-url: requests go through the proxy", tostring(err))
-- as client-go (http.ProxyURL): NO_PROXY does not apply to a cluster's proxy-url
status, out, stderr = kt.nested(dir, [[
local t = require "test"
local c = assert(require("k8s").client { kubeconfig = "]] .. proxied .. [[", retries = 0 })
local obj, err = c:get("]] .. NS_PATH .. [[")
t.ok(err and err.reason == "Transport" and err.message:find("CONNECT tunnel failed, response 501", 1, true),
  "proxy-url with NO_PROXY and no_proxy naming the server: still through the proxy", tostring(err))
return t.done()
]], { NO_PROXY = "127.0.0.1,localhost", no_proxy = "*" })
t.eq(status, 0, "NO_PROXY and proxy-url: the nested run exits 0")

-- ---- plain http: no credentials are sent ----
local plain = cluster_kc("plain.yaml", { server = "http://127.0.0.1:" .. port })
status, out, stderr = kt.nested(dir, [[
local t = require "test"
local c = assert(require("k8s").client { kubeconfig = "]] .. plain .. [[" })
t.eq(c.server, "http://127.0.0.1:]] .. port .. [[", "http server accepted")
return t.done()
]], {})
t.ok(stderr:find("warning: " .. plain .. ": user \"me\": the server http://127.0.0.1:" .. port
  .. " is not https: no credentials are sent", 1, true), "http: a warning says no credentials are sent", stderr)

return t.done()
