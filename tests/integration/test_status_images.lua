-- needs: apisim registry
-- status.lua's pull readiness (#17): the site file's `images`, each checked
-- against real registries (tests/lib/with-registry) with the credentials
-- the kubelet would offer a pod of the ServiceAccount: the Secrets it lists.
-- Each of the five states is produced by what it means: a pushed image
-- (ok), a repository the token service refuses this user (denied), a tag
-- never pushed (not-found), a registry no Secret covers (uncovered), a port
-- that refuses connections (unreachable).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"
local push = require "registry_push"

local function env(name) return assert(os.getenv("XCSREG_REG_" .. name), "run under with-registry") end
local B, T, CLOSED, CA = env("BASIC"), env("TOKEN"), env("CLOSED"), env("CA")
push.image(B, "team/app", "1.0", "amd64")
push.image(T, "team/app", "1.0", "amd64")
push.image(T, "restricted/app", "1.0", "amd64")

lib.reset()
lib.namespace("xnat")
local IMAGES = { B .. "/team/app:1.0", T .. "/team/app:1.0", T .. "/restricted/app:1.0", B .. "/team/app:9.9",
                 "quay.example.test/team/app:1", CLOSED .. "/team/app:1" }
local function site_file(images)
  local list = {}
  for i, image in ipairs(images) do list[i] = string.format("%q", image) end
  return lib.write("status-images-site.lua", string.format([[
return {
  namespaces = { "xnat" },
  registries = {
    { secret = "basic", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
    { secret = "token", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
    { secret = "closed", server = %q, username = %q, password_env = "REG_PW" },
  },
  images = { %s },
}]], B, env("USER"), CA, T, env("USER"), CA, CLOSED, env("USER"), table.concat(list, ", ")))
end
local site = site_file(IMAGES)
local status = lib.setup({ "--config", site }, { env = { REG_PW = env("PASSWORD") } })
t.eq(status, 0, "setup.lua wrote the three Secrets")

local function run_status(...)
  local st, out, err = proc.run { argv = { lib.xcsreg, "run", "status.lua", ... },
    env = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp }, timeout = 120 }
  assert(st, out)
  return st, out, err
end

local code, out = run_status("--config", site, "-o", "json")
local doc = json.decode(out)
t.eq(code, 1, "-o json: an image that will not pull: exit 1")
local got = {}
for i, img in ipairs(doc and doc.images or {}) do got[i] = { img.image, img.state, img.secret } end
t.eq(got, {
  { IMAGES[1], "ok", "basic" },
  { IMAGES[2], "ok", "token" },
  { IMAGES[3], "denied", "token" },
  { IMAGES[4], "not-found", "basic" },
  { IMAGES[5], "uncovered", json.null },
  { IMAGES[6], "unreachable", "closed" },
}, "-o json: each image as given, its state and the Secret that covers it")
local img3 = doc and doc.images[3] or {}
t.ok(type(img3.message) == "string" and img3.message:find("restricted/app", 1, true) ~= nil,
  "denied: the registry's message names the repository", tostring(img3.message))
t.eq({ img3.namespace, img3.serviceAccount }, { "xnat", "default" }, "each image: its namespace and ServiceAccount")
t.ok(doc and doc.ok == false, "-o json: ok = false")

code, out = run_status("--config", site)
t.eq(code, 1, "text: exit 1")
t.ok(out:find("NAMESPACE  SERVICEACCOUNT  IMAGE", 1, true) ~= nil, "text: an image table", out)
t.ok(out:find("\nxnat       default         " .. IMAGES[3], 1, true) ~= nil
  and out:find("token   denied", 1, true) ~= nil, "text: the denied image's row", out)
t.ok(out:find(", 2 of 6 image checks ok", 1, true) ~= nil, "text: the summary counts them", out)
code, out = run_status("--config", site, "-q")
t.eq(out:find(IMAGES[1], 1, true), nil, "-q: an image that pulls is not listed")

-- only images that pull: exit 0
site = site_file({ IMAGES[1], IMAGES[2] })
code, out = run_status("--config", site)
t.eq(code, 0, "images that all pull: exit 0")
t.ok(out:find("all well (3 Secrets in 1 namespace, 2 of 2 image checks ok)", 1, true) ~= nil, "... all well", out)

-- the ServiceAccount does not list the Secret: the image is uncovered for it
lib.seed { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default", namespace = "xnat" } }
code, out = run_status("--config", site, "-o", "json")
doc = json.decode(out)
t.eq({ code, doc and doc.images[1].state }, { 1, "uncovered" },
  "a ServiceAccount that lists no Secret: uncovered, as a new pod would be")

-- a site file with a bad image reference: exit 2
local bad = lib.write("status-images-bad.lua", 'return { namespaces = { "xnat" }, images = { "Team/App" }, '
  .. 'registries = { { secret = "s", server = "r.example", username = "u", password_env = "X" } } }')
local _, _, err
code, _, err = run_status("--config", bad)
t.eq(code, 2, "a bad image reference: exit 2")
t.ok(err:find("images[1]: invalid image reference", 1, true) ~= nil, "... named", err)

-- setup.lua (#17): a new credential is written only if every listed image
-- it covers will pull with it; else the stored Secret is kept, exit 1
lib.reset()
lib.namespace("xnat")
local gate = site_file({ T .. "/team/app:1.0", T .. "/restricted/app:1.0", B .. "/team/app:1.0" })
local st, sout, serr = lib.setup({ "--config", gate }, { env = { REG_PW = env("PASSWORD") }, verify = true })
t.eq(st, 1, "setup.lua: an image the new credential cannot pull: exit 1")
t.ok(serr:find("image " .. T .. "/restricted/app:1.0 will not pull with it: denied", 1, true) ~= nil,
  "setup.lua: the image named, and why", serr)
t.eq(lib.get("Secret", "xnat", "token"), nil, "setup.lua: that Secret is not written")
t.ok(lib.get("Secret", "xnat", "basic") ~= nil and sout:find("secret/basic created", 1, true) ~= nil,
  "setup.lua: a Secret whose images pull is written", sout)
st = lib.setup({ "--config", gate, "--no-verify" }, { env = { REG_PW = env("PASSWORD") }, verify = true })
t.eq({ st, lib.get("Secret", "xnat", "token") ~= nil }, { 0, true }, "setup.lua --no-verify: written regardless")
gate = site_file({ T .. "/team/app:1.0", B .. "/team/app:1.0" })
lib.reset()
lib.namespace("xnat")
st = lib.setup({ "--config", gate }, { env = { REG_PW = env("PASSWORD") }, verify = true })
t.eq({ st, lib.get("Secret", "xnat", "token") ~= nil }, { 0, true }, "setup.lua: images that all pull: written, exit 0")

-- --workload-images: the images of the namespace's workloads too, pod
-- templates of suspended Jobs (as XNAT makes them) and init containers
lib.reset()
lib.namespace("xnat")
st = lib.setup({ "--config", site_file({ IMAGES[1] }) }, { env = { REG_PW = env("PASSWORD") } })
lib.seed { apiVersion = "batch/v1", kind = "Job", metadata = { name = "xnat-job-7", namespace = "xnat" },
  spec = { suspend = true, template = { spec = { restartPolicy = "Never",
    initContainers = { { name = "setup", image = B .. "/team/app:1.0" } },
    containers = { { name = "job", image = T .. "/restricted/app:1.0" } } } } } }
lib.seed { apiVersion = "apps/v1", kind = "Deployment", metadata = { name = "viewer", namespace = "xnat" },
  spec = { template = { spec = { containers = { { name = "web", image = B .. "/team/app:9.9" } } } } } }
code, out = run_status("--config", site_file({ IMAGES[1] }), "--workload-images", "-o", "json")
doc = json.decode(out)
got = {}
for i, img in ipairs(doc and doc.images or {}) do got[i] = { img.image, img.state } end
t.eq(got, { { IMAGES[1], "ok" }, { T .. "/restricted/app:1.0", "denied" }, { B .. "/team/app:9.9", "not-found" } },
  "--workload-images: the site file's, then the Job's (init container first, seen already) and the Deployment's")
t.eq(code, 1, "--workload-images: an image of a suspended Job that will not pull: exit 1")

-- two namespaces whose ServiceAccounts offer the same credential: each
-- image is asked of its registry once, not once per namespace
lib.reset()
lib.namespace("xnat")
lib.namespace("xnat2")
local one_ns = io.open(site_file({ T .. "/team/app:1.0" })):read("a")
local two = lib.write("status-images-two.lua",
  (one_ns:gsub('namespaces = { "xnat" }', 'namespaces = { "xnat", "xnat2" }')))
st = lib.setup({ "--config", two }, { env = { REG_PW = env("PASSWORD") } })
local function token_requests()
  local n = 0
  for line in io.lines((env("TOKEN_LOG"))) do
    if line:find("scope=repository%3Ateam%2Fapp%3Apull", 1, true) then n = n + 1 end
  end
  return n
end
local before = token_requests()
code, out = run_status("--config", two, "-o", "json")
doc = json.decode(out)
t.eq({ code, doc and #doc.images, doc and doc.images[1].state, doc and doc.images[2].state }, { 0, 2, "ok", "ok" },
  "two namespaces, the same Secret: the image reported for each")
t.eq(token_requests() - before, 1, "... and its token asked for once")
return t.done()
