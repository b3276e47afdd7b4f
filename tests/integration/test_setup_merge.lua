-- setup.lua against the simulator: pull secrets merged, re-runs that only read, conflicts, foreign Secrets, dry runs.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"

local PW1, PW2 = "fake-pw:one<&>\"\\ü", "fake-pw-two"
local env = { PW1 = PW1, PW2 = PW2 }

local function run(ns, secret, server, pw_var, ...)
  return lib.setup({ "-n", ns, "--secret-name", secret, "--docker-server", server, "--docker-username", "xnat-bot",
    "--docker-password-env", pw_var, ... }, { env = env })
end

local function dockerconfigjson(ns, name)
  local s = lib.get("Secret", ns, name)
  return s and base64.decode(s.data[".dockerconfigjson"])
end

lib.reset()
lib.namespace("ns1")
lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "ns1" },
  imagePullSecrets = { { name = "a" }, { name = "b" } } }

-- ---- [a, b] -> [a, b, new] ----
local sa_rv = lib.get("ServiceAccount", "ns1", "default").metadata.resourceVersion
lib.clear_log()
local status, out, err = run("ns1", "new", "reg1.example.org", "PW1")
t.eq({ status, out, err }, { 0, "secret/new created\nserviceaccount/default configured\n", "" },
  "first run: Secret created, ServiceAccount configured")
t.eq(lib.pull_secrets("ns1", "default"), { "a", "b", "new" }, "[a, b] becomes [a, b, new]")
t.eq(lib.methods(lib.log()), "GET:404 POST GET PATCH", "requests: GET, create, GET, merge patch")
local kstatus, kout = proc.run { argv = { "kubectl", "create", "secret", "docker-registry", "new",
  "--docker-server=reg1.example.org", "--docker-username=xnat-bot", "--docker-password=" .. PW1,
  "--dry-run=client", "-o", "json" }, env = { KUBECONFIG = "/nonexistent" } }
t.ok(kstatus == 0 and dockerconfigjson("ns1", "new") == base64.decode(json.decode(kout).data[".dockerconfigjson"]),
  "the stored .dockerconfigjson equals kubectl's bytes")
local stored = lib.get("Secret", "ns1", "new")
t.eq({ stored.type, stored.metadata.labels }, { "kubernetes.io/dockerconfigjson",
  { ["app.kubernetes.io/managed-by"] = "xcsreg" } }, "type and managed-by label")
local patch = lib.log()[4]
t.eq({ patch.content_type, json.decode(patch.body) }, { "application/merge-patch+json", {
  metadata = { resourceVersion = sa_rv },
  imagePullSecrets = { { name = "a" }, { name = "b" }, { name = "new" } } } },
  "the patch: merge patch with the resourceVersion read and the whole list")

-- ---- a second registry later keeps the first ----
local new_rv = lib.get("Secret", "ns1", "new").metadata.resourceVersion
status, out, err = run("ns1", "second", "reg2.example.org", "PW2")
t.eq({ status, out, err }, { 0, "secret/second created\nserviceaccount/default configured\n", "" }, "second registry")
t.eq(lib.pull_secrets("ns1", "default"), { "a", "b", "new", "second" }, "the first registry is kept")
t.eq(lib.get("Secret", "ns1", "new").metadata.resourceVersion, new_rv, "the first Secret is not touched")

-- ---- a re-run writes nothing ----
lib.clear_log()
status, out, err = run("ns1", "second", "reg2.example.org", "PW2")
t.eq({ status, out, err }, { 0, "secret/second unchanged\nserviceaccount/default unchanged\n", "" }, "re-run: unchanged")
t.eq(lib.methods(lib.log()), "GET GET", "re-run: two GETs, no write")

-- ---- rotation: in place, with the resourceVersion, no delete ----
local uid = lib.get("Secret", "ns1", "second").metadata.uid
lib.clear_log()
status, out = lib.setup({ "-n", "ns1", "--secret-name", "second", "--docker-server", "reg2.example.org",
  "--docker-username", "xnat-bot", "--docker-password-stdin" }, { stdin = "fake-rotated\n" })
t.eq({ status, out }, { 0, "secret/second configured\nserviceaccount/default unchanged\n" }, "new password: configured")
t.eq(lib.methods(lib.log()), "GET PUT GET", "rotation: GET, PUT, GET")
local put = lib.log()[2]
t.ok(json.decode(put.body).metadata.resourceVersion ~= nil, "the PUT carries the resourceVersion read")
local second = lib.get("Secret", "ns1", "second")
t.eq(second.metadata.uid, uid, "same object (uid kept): never deleted and recreated")
t.ok(base64.decode(second.data[".dockerconfigjson"]):find('"password":"fake-rotated"', 1, true) ~= nil,
  "the new password is stored, without the newline from stdin")

-- ---- a concurrent change between read and write ----
lib.fault({ method = "PATCH", path_regex = "/serviceaccounts/default$", count = 1,
  mutate = { imagePullSecrets = { { name = "a" }, { name = "b" }, { name = "new" }, { name = "second" },
    { name = "concurrent" } } } })
lib.clear_log()
status, out, err = run("ns1", "third", "reg3.example.org", "PW1")
t.eq({ status, out, err }, { 0, "secret/third created\nserviceaccount/default configured\n", "" },
  "a concurrent change: retried, success")
t.eq(lib.methods(lib.log()), "GET:404 POST GET PATCH:409 GET PATCH", "409 Conflict, then read again and write")
t.eq(lib.pull_secrets("ns1", "default"), { "a", "b", "new", "second", "concurrent", "third" },
  "neither change is lost")

lib.fault({ method = "PATCH", path_regex = "/serviceaccounts/default$", count = 2, action = "conflict" })
lib.clear_log()
status, out = run("ns1", "fourth", "reg4.example.org", "PW1")
t.eq({ status, out }, { 0, "secret/fourth created\nserviceaccount/default configured\n" }, "two injected 409s: success")
t.eq(lib.methods(lib.log()), "GET:404 POST GET PATCH:409 GET PATCH:409 GET PATCH", "each 409 is followed by a fresh read")

lib.fault({ method = "PATCH", path_regex = "/serviceaccounts/default$", count = 5, action = "conflict" })
status, out, err = run("ns1", "fifth", "reg5.example.org", "PW1")
t.eq({ status, out, err }, { 1, "secret/fifth created\n", "error: namespace ns1: serviceaccount/default: "
  .. 'Error from server (Conflict): Operation cannot be fulfilled on serviceaccounts "default": the object has been '
  .. "modified; please apply your changes to the latest version and try again\n" }, "five 409s in a row: give up, exit 1")
t.eq(lib.pull_secrets("ns1", "default"), { "a", "b", "new", "second", "concurrent", "third", "fourth" },
  "nothing lost after giving up")

-- ---- a foreign Secret: untouched without --adopt, taken over with it ----
local foreign_data = base64.encode('{"auths":{"reg1.example.org":{"auth":"eDp5"}}}')
lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "handmade", namespace = "ns1" },
  type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = foreign_data } }
local before = lib.get("Secret", "ns1", "handmade")
local sa_before = lib.get("ServiceAccount", "ns1", "default")
lib.clear_log()
status, out, err = run("ns1", "handmade", "reg1.example.org", "PW1")
t.eq({ status, out, err }, { 1, "", "error: namespace ns1: secret/handmade: secret/handmade exists and was not made by "
  .. "xcsreg (it has no label app.kubernetes.io/managed-by=xcsreg): left untouched; to let xcsreg take it over and "
  .. "rewrite it, run again with --adopt\n" }, "foreign Secret: exit 1, says how to take it over")
t.eq(lib.get("Secret", "ns1", "handmade"), before, "foreign Secret not modified")
t.eq(lib.get("ServiceAccount", "ns1", "default"), sa_before, "and not added to the ServiceAccount")
t.eq(lib.methods(lib.log()), "GET", "one read, no write")

status, out, err = run("ns1", "handmade", "reg1.example.org", "PW1", "--adopt")
t.eq({ status, out, err }, { 0, "secret/handmade configured\nserviceaccount/default configured\n", "" },
  "--adopt: taken over")
local adopted = lib.get("Secret", "ns1", "handmade")
t.eq(adopted.metadata.labels, { ["app.kubernetes.io/managed-by"] = "xcsreg" }, "--adopt: now labelled")
t.eq(dockerconfigjson("ns1", "handmade"), dockerconfigjson("ns1", "new"), "--adopt: content rewritten")
t.eq(adopted.metadata.uid, before.metadata.uid, "--adopt: updated in place")

local same = dockerconfig.encode { { server = "reg1.example.org", username = "xnat-bot", password = PW1, email = "" } }
lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "same", namespace = "ns1" },
  type = "kubernetes.io/dockerconfigjson", data = { [".dockerconfigjson"] = base64.encode(same) } }
status, out = run("ns1", "same", "reg1.example.org", "PW1")
t.eq({ status, out }, { 0, "secret/same unchanged\nserviceaccount/default configured\n" },
  "a foreign Secret that already holds the wanted content is used as it is")
t.eq(lib.get("Secret", "ns1", "same").metadata.labels, nil, "... and left unlabelled")

lib.seed { apiVersion = "v1", kind = "Secret", metadata = { name = "opaque", namespace = "ns1",
  labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" } }, type = "Opaque", data = { x = "eA==" } }
status, out, err = run("ns1", "opaque", "reg1.example.org", "PW1")
t.eq({ status, err }, { 1, "error: namespace ns1: secret/opaque: secret/opaque has type Opaque, not "
  .. "kubernetes.io/dockerconfigjson, and a Secret's type cannot be changed: delete it and run again\n" },
  "a Secret of another type is reported, not rewritten")

-- ---- --dry-run=server changes nothing ----
lib.namespace("ns2")
lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "ns2" },
  imagePullSecrets = { { name = "x" } } }
local objects = lib.snapshot("ns2")
lib.clear_log()
status, out, err = run("ns2", "dry", "reg1.example.org", "PW1", "--dry-run=server")
t.eq({ status, out, err }, { 0, "secret/dry created (server dry run)\nserviceaccount/default configured (server dry run)\n",
  "" }, "--dry-run=server: what would change")
t.eq(lib.snapshot("ns2"), objects, "--dry-run=server: objects and resourceVersions unchanged")
local dry_writes = 0
for _, e in ipairs(lib.log()) do
  if e.method ~= "GET" then
    dry_writes = dry_writes + 1
    t.eq(e.query.dryRun, { "All" }, "--dry-run=server: " .. e.method .. " sent with dryRun=All")
  end
end
t.eq(dry_writes, 2, "--dry-run=server: both writes were dry")

run("ns2", "dry", "reg1.example.org", "PW1")
objects = lib.snapshot("ns2")
status, out = run("ns2", "dry", "reg1.example.org", "PW2", "--dry-run=server")
t.eq({ status, out }, { 0, "secret/dry configured (server dry run)\nserviceaccount/default unchanged (server dry run)\n" },
  "--dry-run=server on a changed password: configured")
t.eq(lib.snapshot("ns2"), objects, "... and the stored Secret is unchanged")

-- ---- ServiceAccounts and namespaces that are not there ----
status, out, err = run("ns1", "new", "reg1.example.org", "PW1", "--service-account", "builder")
t.eq({ status, out, err }, { 1, "secret/new unchanged\n", 'error: namespace ns1: serviceaccount/builder: serviceaccount '
  .. '"builder" not found in namespace ns1: xcsreg adds pull secrets to existing ServiceAccounts only; create it first\n' },
  "a missing ServiceAccount other than default")

lib.namespace("fresh", nil, false)
lib.clear_log()
status, out, err = run("fresh", "new", "reg1.example.org", "PW1")
t.eq({ status, out, err }, { 1, "secret/new created\n", 'error: namespace fresh: serviceaccount/default: serviceaccount '
  .. '"default" not found in namespace fresh: not yet created by the cluster (a new namespace?); run again in a minute\n' },
  "default not created yet: said so")
t.eq(lib.methods(lib.log()), "GET:404 POST GET:404 GET:404 GET:404 GET:404 GET:404", "default looked for five times")

lib.namespace("late")
lib.fault({ method = "GET", path_regex = "^/api/v1/namespaces/late/serviceaccounts/default$",
  count = 2, status = 404 })
status, out = run("late", "new", "reg1.example.org", "PW1")
t.eq({ status, out }, { 0, "secret/new created\nserviceaccount/default configured\n" },
  "default appearing after two looks: done")

status, out, err = run("nowhere", "new", "reg1.example.org", "PW1")
t.eq({ status, out, err }, { 1, "", "error: namespace nowhere: secret/new: namespace nowhere does not exist\n" },
  "a missing namespace says so")

status, out = lib.setup({ "--secret-name", "ctx", "--docker-username", "u", "--docker-password-env", "PW1" }, { env = env })
t.eq({ status, out }, { 0, "secret/ctx created\nserviceaccount/default configured\n" }, "no -n: the context's namespace")
t.ok(lib.get("Secret", "default", "ctx") ~= nil, "... which is default in the simulator's kubeconfig")

-- ---- usage and configuration errors: exit 2, nothing sent ----
lib.clear_log()
status, out, err = lib.setup({ "-n", "ns1", "--secret-name", "x", "--docker-username", "a:b", "--docker-password-env",
  "PW1" }, { env = env })
t.eq({ status, out, err }, { 2, "", "error: --docker-username: must not contain ':' (the kubelet splits the auth field "
  .. "at the first ':')\n" }, "username with ':': exit 2")
status, out, err = lib.setup({ "--nope" })
t.eq({ status, err }, { 2, "error: unknown flag: --nope\nSee 'xcsreg run setup.lua --help' for usage.\n" }, "unknown flag")
status, out, err = lib.setup({ "-n", "Bad_NS", "--secret-name", "x", "--docker-username", "u", "--docker-password-env",
  "PW1" }, { env = env })
t.eq({ status, err }, { 2, 'error: --namespace[1]: "Bad_NS" is not a valid namespace name: it must be a lowercase RFC '
  .. "1123 label (a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)\n" }, "bad -n")
status, out, err = lib.setup({ "--dry-run=maybe" })
t.eq({ status, err }, { 2, "error: --dry-run: must be \"none\", \"server\" or \"client\", not \"maybe\"\n"
  .. "See 'xcsreg run setup.lua --help' for usage.\n" }, "bad --dry-run")
status, out, err = lib.setup({ "-o", "json" })
t.eq({ status, err }, { 2, "error: --output needs --dry-run=client\nSee 'xcsreg run setup.lua --help' for usage.\n" },
  "-o without --dry-run=client")
status, out, err = lib.setup({}, { env = { XCSREG_CONFIG = lib.tmp .. "/none.lua" } })
t.eq({ status, err }, { 2, "error: cannot read site file " .. lib.tmp .. "/none.lua: No such file or directory\n" },
  "$XCSREG_CONFIG names a missing file")
if not io.open("/etc/xcsreg/registries.lua") then
  status, out, err = lib.setup({})
  t.eq({ status, err }, { 2, "error: nothing to do: give --config FILE (or set XCSREG_CONFIG), or --secret-name and "
    .. "the --docker-* flags; the default site file /etc/xcsreg/registries.lua does not exist\n" }, "no arguments")
end
t.eq(lib.log(), {}, "no request reached the cluster for any of these")

-- ---- -q: nothing on success ----
status, out, err = lib.setup({ "-q", "-n", "ns1", "--secret-name", "new", "--docker-server", "reg1.example.org",
  "--docker-username", "xnat-bot", "--docker-password-env", "PW1" }, { env = env })
t.eq({ status, out, err }, { 0, "", "" }, "-q prints nothing when all is well")

-- ---- an unreachable cluster names the server ----
local kc = lib.write("unreachable.kubeconfig", [[
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: fake-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
]])
status, out, err = lib.setup({ "--kubeconfig", kc, "-n", "a", "-n", "b", "--secret-name", "x", "--docker-username", "u",
  "--docker-password-env", "PW1" }, { env = env })
t.eq({ status, out }, { 1, "" }, "unreachable cluster: exit 1")
t.ok(err:find("https://127.0.0.1:9", 1, true) ~= nil, "... the message names the server", err)
t.ok(err:find("stopped: 2 namespace(s) not handled (a, b)", 1, true) ~= nil,
  "... and the run stops there (at its first read, of both namespaces at once)", err)

return t.done()
