-- needs: none
-- The k8s module without a server: k8s.path, argument checks, kubeconfig
-- resolution and its Config errors, transport errors, the error object.
local t = require "test"
local k8s = require "k8s"
local kt = require "k8sfixtures.k8stest"

local dir = kt.tmpdir()

-- ---- k8s.path ----
t.eq(k8s.path("/api/v1/namespaces/%s/secrets/%s", "ns", "name"), "/api/v1/namespaces/ns/secrets/name",
  "path: plain names are kept")
t.eq(k8s.path("/x/%s", "a b/c?d#e%f"), "/x/a%20b%2Fc%3Fd%23e%25f", "path: each argument is one escaped segment")
t.eq(k8s.path("/x/%s", "system:node:ü"), "/x/system%3Anode%3A%C3%BC", "path: ':' and UTF-8 are escaped")
t.eq(k8s.path("/x/%s", "A-z_0.9~"), "/x/A-z_0.9~", "path: unreserved characters are kept")
t.eq(k8s.path("/x/%s", 42), "/x/42", "path: numbers are formatted")
t.eq(k8s.path("/x/100%%"), "/x/100%", "path: %% is a percent sign")
t.raises("bad argument #3 to 'k8s.path' (string expected, got no value)", "path: too few arguments",
  k8s.path, "/%s/%s", "a")
t.raises("bad argument #3 to 'k8s.path' (not used by the format)", "path: too many arguments",
  k8s.path, "/%s", "a", "b")
t.raises("bad argument #2 to 'k8s.path' (not a valid path segment)", "path: empty segment", k8s.path, "/%s", "")
t.raises("bad argument #2 to 'k8s.path' (not a valid path segment)", "path: '..' segment", k8s.path, "/%s", "..")
t.raises("bad format for k8s.path: only %s and %% are allowed", "path: other conversions",
  k8s.path, "/%d", 1)

-- ---- options ----
t.raises("bad argument #1 to 'k8s.client' (unknown option 'kubeconfg')", "client: unknown option raises",
  k8s.client, { kubeconfg = "x" })
t.raises("option 'retries' must be a number, not string", "client: wrong option type raises",
  k8s.client, { retries = "3" })
t.raises("option 'retries' must be an integer from 0 to 100", "client: retries range",
  k8s.client, { retries = -1 })
t.raises("option 'request_timeout' must be a positive number of seconds", "client: timeout range",
  k8s.client, { request_timeout = 0 })

-- ---- Config errors ----
local function config_error(want, name, opts)
  local c, err = k8s.client(opts)
  t.ok(c == nil and type(err) == "table" and err.reason == "Config", name .. ": reason Config",
    "got " .. t.show(err))
  if err then
    t.eq(err.message, want, name .. ": message")
    t.eq(tostring(err), want, name .. ": tostring is the message")
    t.eq(err.code, nil, name .. ": no code")
  end
end

config_error("kubeconfig " .. dir .. "/missing: No such file or directory", "missing kubeconfig",
  { kubeconfig = dir .. "/missing" })

kt.write(dir .. "/bad.yaml", "clusters: [a\n")
local c, err = k8s.client { kubeconfig = dir .. "/bad.yaml" }
t.ok(c == nil and err.reason == "Config" and err.message:find("kubeconfig " .. dir .. "/bad.yaml: ", 1, true),
  "bad YAML: Config error naming the file", t.show(err))

kt.write(dir .. "/scalar.yaml", "just a string\n")
config_error("kubeconfig " .. dir .. "/scalar.yaml: not a kubeconfig (a YAML mapping was expected)",
  "not a mapping", { kubeconfig = dir .. "/scalar.yaml" })

local server = "https://127.0.0.1:1"
local function kc(name, cfg)
  return kt.kubeconfig(dir .. "/" .. name, cfg)
end
local function one(cluster, user, context)
  return {
    clusters = { c = cluster or { server = server } },
    users = user and { u = user } or nil,
    contexts = { x = context or { cluster = "c", user = user and "u" or nil } },
    current_context = "x",
  }
end

local f = kc("noctx.yaml", one())
config_error(f .. ": context \"nope\" does not exist", "missing context", { kubeconfig = f, context = "nope" })

f = kc("nocurrent.yaml", { clusters = { c = { server = server } } })
config_error(f .. ": no current-context is set and no context was given", "no current-context",
  { kubeconfig = f, in_cluster_dir = dir .. "/nowhere" })

f = kc("nocluster.yaml", one(nil, nil, { cluster = "other" }))
config_error(f .. ": context \"x\": cluster \"other\" does not exist", "missing cluster", { kubeconfig = f })

f = kc("nouser.yaml", one(nil, nil, { cluster = "c", user = "ghost" }))
config_error(f .. ": context \"x\": user \"ghost\" does not exist", "missing user", { kubeconfig = f })

f = kc("noserver.yaml", one({ ["insecure-skip-tls-verify"] = false }))
config_error(f .. ": cluster \"c\": no server found", "no server", { kubeconfig = f })

f = kc("ftp.yaml", one({ server = "ftp://127.0.0.1" }))
config_error(f .. ": cluster \"c\": server ftp://127.0.0.1 is not an https:// or http:// URL", "server scheme",
  { kubeconfig = f })

f = kc("cainsecure.yaml", one({ server = server, ["certificate-authority"] = "ca.crt", ["insecure-skip-tls-verify"] = true }))
config_error(f .. ": cluster \"c\": specifying a root certificates file with the insecure flag is not allowed",
  "CA and insecure together", { kubeconfig = f })

f = kc("relca.yaml", one({ server = server, ["certificate-authority"] = "sub/ca.crt" }))
config_error("certificate-authority " .. dir .. "/sub/ca.crt: No such file or directory",
  "a relative CA path resolves against the kubeconfig's directory", { kubeconfig = f })

f = kc("badb64.yaml", one({ server = server, ["certificate-authority-data"] = "not*base64" }))
config_error(f .. ": cluster \"c\": certificate-authority-data is not valid base64 (at byte 3)", "bad base64",
  { kubeconfig = f })

f = kc("proxy.yaml", one({ server = server, ["proxy-url"] = "ftp://proxy:21" }))
config_error(f .. ": cluster \"c\": proxy-url: unsupported scheme \"ftp\", must be http, https, or socks5",
  "proxy scheme", { kubeconfig = f })

-- A name twice in one file: kubectl refuses the file, whichever entry is used,
-- with client-go's words (clientcmd/api/v1 conversion), less its dump of the
-- list (which holds the credentials). Across files the first one wins (test_k8s_config).
local dup_lists = {
  clusters = "[{name: c, cluster: {server: 'https://127.0.0.1:1'}}, {name: c, cluster: {server: 'https://127.0.0.1:2'}}]",
  users = "[{name: u, user: {token: dup-token-one}}, {name: v, user: {}}, {name: v, user: {token: dup-token-two}}]",
  contexts = "[{name: x, context: {cluster: c, user: u}}, {name: x, context: {cluster: c}}]",
}
local dup_cases = {
  { "clusters", "c", "NamedCluster", "api.Cluster" },
  { "users", "v", "NamedAuthInfo", "api.AuthInfo" },
  { "contexts", "x", "NamedContext", "api.Context" },
}
for _, d in ipairs(dup_cases) do
  local lines = {}
  for _, list in ipairs { "clusters", "users", "contexts" } do
    local one_entry = {
      clusters = "[{name: c, cluster: {server: 'https://127.0.0.1:1'}}]",
      users = "[{name: u, user: {token: dup-token-one}}]",
      contexts = "[{name: x, context: {cluster: c, user: u}}]",
    }
    lines[#lines + 1] = list .. ": " .. (list == d[1] and dup_lists[list] or one_entry[list])
  end
  lines[#lines + 1] = "current-context: x\n"
  f = kt.write(dir .. "/dup-" .. d[1] .. ".yaml", table.concat(lines, "\n"))
  config_error("kubeconfig " .. f .. ": error converting *[]" .. d[3] .. " into *map[string]*" .. d[4]
    .. ": duplicate name \"" .. d[2] .. "\" in list", "a name twice in " .. d[1] .. " of one file", { kubeconfig = f })
end

f = kc("types.yaml", one({ server = server, ["insecure-skip-tls-verify"] = "yes" }))
config_error(f .. ": cluster \"c\": insecure-skip-tls-verify must be true or false", "boolean field type",
  { kubeconfig = f })

f = kc("authprov.yaml", one(nil, { ["auth-provider"] = { name = "oidc", config = {} } }))
config_error(f .. ": user \"u\": auth-provider oidc is not supported; use an exec plugin (client.authentication.k8s.io/v1)",
  "auth-provider", { kubeconfig = f })

f = kc("twoauth.yaml", one(nil, { token = "fake-token-1", username = "u", password = "fake-pass-1" }))
config_error(f .. ": user \"u\": more than one authentication method found; found [token basicAuth ], only one is allowed",
  "token and basic auth together", { kubeconfig = f })

f = kc("certnokey.yaml", one(nil, { ["client-certificate"] = "c.crt" }))
config_error(f .. ": user \"u\": client-key-data or client-key must be specified to use the clientCert authentication method",
  "certificate without key", { kubeconfig = f })

f = kc("keynocert.yaml", one(nil, { ["client-key-data"] = "AAAA" }))
config_error(f .. ": user \"u\": client-certificate-data or client-certificate must be specified to use the clientCert authentication method",
  "key without certificate", { kubeconfig = f })

f = kc("tokfile.yaml", one(nil, { tokenFile = "tok.txt" }))
config_error(f .. ": user \"u\": tokenFile " .. dir .. "/tok.txt: No such file or directory",
  "tokenFile missing, resolved against the kubeconfig's directory", { kubeconfig = f })
kt.write(dir .. "/tok.txt", " \n")
config_error(f .. ": user \"u\": read empty token from file " .. dir .. "/tok.txt", "tokenFile empty",
  { kubeconfig = f })

local function exec_user(e) return one(nil, { exec = e }) end
f = kc("execapi.yaml", exec_user { apiVersion = "client.authentication.k8s.io/v1alpha1", command = "x" })
config_error(f .. ": user \"u\": exec plugin: invalid apiVersion \"client.authentication.k8s.io/v1alpha1\"",
  "exec apiVersion", { kubeconfig = f })
f = kc("execmode.yaml", exec_user { apiVersion = "client.authentication.k8s.io/v1", command = "x" })
config_error(f .. ": user \"u\": interactiveMode must be specified to use exec authentication plugin",
  "exec v1 needs interactiveMode", { kubeconfig = f })
f = kc("execalways.yaml", exec_user { apiVersion = "client.authentication.k8s.io/v1", command = "x",
  interactiveMode = "Always" })
config_error(f .. ": user \"u\": exec plugin: interactiveMode Always needs a terminal, and xcsreg never gives exec "
  .. "plugins one (their stdin is /dev/null); use IfAvailable or Never", "exec interactiveMode Always",
  { kubeconfig = f })
f = kc("execnocmd.yaml", exec_user { apiVersion = "client.authentication.k8s.io/v1beta1" })
config_error(f .. ": user \"u\": exec plugin: command must be specified", "exec command required",
  { kubeconfig = f })
f = kc("execplain.yaml", exec_user { apiVersion = "client.authentication.k8s.io/v1beta1", command = "/nonexistent/plugin" })
c = k8s.client { kubeconfig = f, retries = 0 }
local obj
obj, err = c:get("/api")
t.ok(obj == nil and err.reason == "Config" and err.message:find("exec plugin /nonexistent/plugin: ", 1, true) == 1,
  "exec: a plugin that cannot run is a Config error at request time", t.show(err))
t.eq(c:stats().requests, 1, "exec: the failed request is counted")
t.eq(c:stats().connections, 0, "exec: nothing was sent")

-- ---- what a good kubeconfig gives ----
f = kc("good.yaml", {
  clusters = { c = { server = "https://127.0.0.1:1/prefix/" } },
  contexts = { x = { cluster = "c", namespace = "team-a" }, y = { cluster = "c" } },
  current_context = "x",
})
c = assert(k8s.client { kubeconfig = f })
t.eq(c.server, "https://127.0.0.1:1/prefix", "server: trailing slashes removed")
t.eq(c.namespace, "team-a", "namespace: the context's")
t.eq(c.context, "x", "context: current-context")
t.eq(c.nothing, nil, "other fields are nil")
c = assert(k8s.client { kubeconfig = f, context = "y" })
t.eq({ c.context, c.namespace }, { "y", "default" }, "context option; namespace defaults to 'default'")
c = assert(k8s.client { kubeconfig = f, namespace = "other" })
t.eq(c.namespace, "other", "namespace option overrides")
t.ok(tostring(c):find("k8s client (https://127.0.0.1:1/prefix)", 1, true), "tostring names the server")
t.eq(c:stats(), { requests = 0, connections = 0, retries = 0 }, "stats start at zero")

-- ---- argument checks on methods ----
t.raises("bad argument #1 to 'get' (string expected, got no value)", "get needs a path",
  function() return c:get() end)
t.raises("bad argument #1 to 'get' (path must start with '/')", "path must be absolute",
  function() return c:get("api") end)
t.raises("query value for 'a' must be a string, number or boolean", "query values are checked",
  c.get, c, "/api", { a = {} })
t.raises("bad argument #3 to 'patch' (invalid option 'strategic-merge')", "patch type is checked",
  function() return c:patch("/x", {}, "strategic-merge") end)
t.raises("option 'force' is only for apply patches", "force only with apply",
  c.patch, c, "/x", {}, "merge", { force = true })
t.raises("unknown option 'field_manager'", "delete takes dry_run only", c.delete, c, "/x", { field_manager = "m" })
t.raises("unknown option 'dryrun'", "write options are checked", c.create, c, "/x", {}, { dryrun = true })
t.raises("table or JSON string expected, got boolean", "create body type", c.create, c, "/x", true)
t.raises("option 'method' is required", "request needs a method", c.request, c, { path = "/x" })
t.raises("option 'method' must be an upper-case HTTP method", "request method is checked",
  c.request, c, { method = "get", path = "/x" })
t.raises("unknown option 'url'", "request options are checked", c.request, c, { method = "GET", url = "/x" })

-- ---- transport errors ----
c = assert(k8s.client { kubeconfig = f, retries = 0 })
obj, err = c:get("/api")
t.eq(obj, nil, "refused: nil")
t.eq(err.reason, "Transport", "refused: reason Transport")
t.ok(err.message:find("^https://127%.0%.0%.1:1/prefix: Failed to connect to 127%.0%.0%.1 port 1"),
  "refused: message names the server and curl's reason", err.message)
t.eq(tostring(err), "Unable to connect to the server: " .. err.message, "refused: tostring like kubectl")
t.eq(err.retries, 0, "refused: no retries with retries=0")
t.eq(err.code, nil, "refused: no code")

c = assert(k8s.client { kubeconfig = f, retries = 2 })
obj, err = c:create("/api/v1/namespaces/default/secrets", { metadata = { name = "x" } })
t.eq(err.retries, 2, "refused: a POST is retried, it cannot have reached the server")
t.eq(c:stats(), { requests = 1, connections = 0, retries = 2 }, "refused: stats count the retries")
t.ok(tostring(err):find(" (after 2 retries)", 1, true), "refused: tostring says how many retries", tostring(err))

c:close()
t.raises("attempt to use a closed k8s client", "a closed client raises", c.get, c, "/api")
c:close()
t.ok(true, "close is idempotent")
t.eq(c.server, nil, "a closed client has no fields")
do
  local scoped <close> = assert(k8s.client { kubeconfig = f })
  t.eq(scoped.context, "x", "a client can be a to-be-closed variable")
end

return t.done()
