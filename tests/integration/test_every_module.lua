-- needs: apisim httpd
-- One script that uses every module together, as a site script would:
-- read a kubeconfig with yaml, talk to the cluster with k8s, to a web
-- server with http, run a command with proc, encode with json and base64,
-- and keep its secret out of the log.
local t = require "test"
local base64 = require "base64"
local http = require "http"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local proc = require "proc"
local yaml = require "yaml"

local dir = os.getenv("XCSREG_SIM_DIR")
local f = assert(io.open(dir .. "/token.kubeconfig"))
local kc = yaml.decode(f:read("a"))
f:close()
t.eq(kc.contexts[1].name, "sim", "yaml reads the kubeconfig")

local ca = base64.decode(kc.clusters[1].cluster["certificate-authority-data"])
t.ok(ca and ca:find("BEGIN CERTIFICATE", 1, true), "base64 decodes its CA")

local c <close> = assert(k8s.client { kubeconfig = dir .. "/token.kubeconfig" })
local sa, err = c:get(k8s.path("/api/v1/namespaces/%s/serviceaccounts/%s", c.namespace, "default"))
t.eq(sa and sa.metadata.name, "default", "k8s reads the default ServiceAccount " .. tostring(err))

local secret_value = "every-module-s3cret"
log.secret(secret_value)
local st, out = proc.run { argv = { "cat" }, stdin = json.encode { token = secret_value } }
t.eq(st, 0, "proc runs a command")
t.eq(json.decode(out).token, secret_value, "json survives the round trip through it")
t.eq(log.redact("token=" .. secret_value), "token=***", "log keeps the secret out")

local status, _, body = http.request { url = os.getenv("XCSREG_TEST_HTTP") .. "/echo", method = "POST", body = "hi" }
t.eq(status, 200, "http reaches the test server")
t.eq(json.decode(body).body, "hi", "and its answer decodes")
return t.done()
