-- needs: apisim
-- status.lua: expiring (by a Secret's own lifetime, or --warn-within),
-- expired, unreferenced and missing Secrets, pods that cannot pull, exit
-- codes for monitoring, JSON output; only reads.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local time = require "xcsreg.time"
local t = require "test"
local json = require "json"
local proc = require "proc"
local lib = require "setuplib"
local rotation = require "xcsreg.rotation"
local simctl = require "simctl"

local T0 = 1700000000
local PW = "fake-status-password"
simctl.reset()
simctl.namespace("apps")
local site = lib.write("status-site.lua", [[
return {
  namespaces = { "apps" },
  registries = {
    { secret = "good", server = "good.example.test", username = "u", password_env = "PW" },
    { secret = "third", server = "third.example.test", username = "u", password_env = "PW" },
  },
}]])

local function status(args, opts)
  opts = opts or {}
  local argv = { lib.xcsreg, "run", "status.lua" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = { KUBECONFIG = simctl.dir .. "/" .. (opts.kubeconfig or "token.kubeconfig"),
                HOME = lib.tmp, XCSREG_NOW = tostring(opts.now or T0) }
  local st, out, err = proc.run { argv = argv, env = env, timeout = 60 }
  assert(st, out)
  return st, out, err
end

-- setup.lua makes "good" and "third"; then "third" is deleted behind its back
local st = lib.setup({ "--config", site }, { env = { PW = PW, XCSREG_NOW = tostring(T0 - 3600) } })
t.eq(st, 0, "setup.lua prepared the namespace")
local code, out, err = status({ "--config", site })
t.eq(code, 0, "all is well: exit 0 " .. err)
t.ok(out:find("\napps       good    good.example.test   " .. time.format(T0 - 3600) .. "  no expiry known  ok\n", 1, true)
  ~= nil, "a healthy Secret: its registry and when it was rotated", out)
t.ok(out:find("all well (2 Secrets in 1 namespace)", 1, true) ~= nil, "and says all is well")

simctl.clear_log()
status({ "--config", site })
local writes = 0
for _, e in ipairs(simctl.log()) do
  if e.method ~= "GET" then writes = writes + 1 end
end
t.eq(writes, 0, "status only reads")

local function seed_secret(name, annotations)
  return simctl.seed { apiVersion = "v1", kind = "Secret", type = "kubernetes.io/dockerconfigjson",
    metadata = { name = name, namespace = "apps", annotations = annotations,
                 labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" } },
    data = { [".dockerconfigjson"] = "eyJhdXRocyI6eyJlY3IuZXhhbXBsZS50ZXN0Ijp7InVzZXJuYW1lIjoiQVdTIiwicGFzc3dvcmQiOiJ4IiwiYXV0aCI6IlFWZFRPbmc9In19fQ==" } }
end
-- 12-hour tokens, as ECR's: one renewed 7 hours ago, one 11 hours ago (its
-- renewal is overdue), one 13 hours ago
seed_secret("fresh", { ["xcsreg.io/rotated-at"] = time.format(T0 - 7 * 3600),
                       ["xcsreg.io/expires-at"] = time.format(T0 + 5 * 3600) })
seed_secret("soon", { ["xcsreg.io/rotated-at"] = time.format(T0 - 11 * 3600),
                      ["xcsreg.io/expires-at"] = time.format(T0 + 3600) })
seed_secret("old", { ["xcsreg.io/rotated-at"] = time.format(T0 - 13 * 3600),
                     ["xcsreg.io/expires-at"] = time.format(T0 - 20 * 60) })
local third = lib.get("Secret", "apps", "third")
proc.run { argv = { "kubectl", "--kubeconfig", simctl.dir .. "/token.kubeconfig", "--cache-dir", lib.tmp .. "/kc",
                    "delete", "secret", "third", "-n", "apps" } }
t.ok(third and lib.get("Secret", "apps", "third") == nil, "the wanted Secret 'third' is gone")

simctl.seed { apiVersion = "v1", kind = "Pod", metadata = { name = "xnat-job-1", namespace = "apps" },
  spec = { containers = { { name = "job", image = "ghcr.io/example/pipeline:1" } } },
  status = { phase = "Pending", containerStatuses = { { name = "job", image = "ghcr.io/example/pipeline:1",
    ready = false, restartCount = 0,
    state = { waiting = { reason = "ImagePullBackOff", message = "Back-off pulling image" } } } } } }

code, out, err = status({ "--config", site })
t.eq(code, 1, "something needs attention: exit 1")
-- The cells of a Secret's row: REGISTRIES, ROTATED, EXPIRY, STATUS.
local function row(name)
  local cells = {}
  for cell in ((out:match("\napps +" .. name .. "  +([^\n]*)") or "") .. "  "):gmatch("(.-)  +") do
    cells[#cells + 1] = cell
  end
  return cells
end
local function has(text, s, name) t.ok(text:find(s, 1, true) ~= nil, name, out) end
t.eq({ row("soon")[3], row("soon")[4] }, { "expires in 1h0m", "expires within 1h30m; not referenced by serviceaccount/default" },
  "a 12-hour Secret with an hour left is reported with the time left (under an eighth of its lifetime), "
  .. "and as not referenced")
t.eq({ row("fresh")[3], row("fresh")[4] }, { "expires in 5h0m", "not referenced by serviceaccount/default" },
  "a 12-hour Secret with 5 hours left is not expiring")
t.eq({ row("old")[3], row("old")[4] }, { "expired 20m ago", "expired; not referenced by serviceaccount/default" },
  "an expired Secret is reported")
t.eq(row("third"), { "third.example.test", "<none>", "<none>", "missing" }, "a wanted Secret that is missing is reported")
has(out, "\napps       xnat-job-1  job        ImagePullBackOff  ghcr.io/example/pipeline:1  <none>       Back-off pulling image\n",
  "a pod stuck in ImagePullBackOff is reported with its image, reason and message")
t.ok(not (out .. err):find(PW, 1, true), "no password in the output")

code, out = status({ "--config", site, "--warn-within", "24h" })
t.eq(row("fresh")[4], "expires within 24h; not referenced by serviceaccount/default",
  "--warn-within 24h: 5 hours left is expiring")
code, out = status({ "--config", site, "--warn-within", "30m", "-q" })
t.eq(row("soon")[4], "not referenced by serviceaccount/default", "--warn-within 30m: an hour left is fine")
t.ok(not out:find("\napps +good", 1, false), "-q: healthy Secrets are not listed", out)
t.eq(code, 1, "the other problems still give exit 1")

code, out = status({ "--config", site, "-o", "json" })
local doc = json.decode(out)
t.eq(doc and doc.ok, false, "-o json: a document with ok = false")
local ns = doc and doc.namespaces[1] or { stuckPods = {}, secrets = {} }
t.eq(ns.stuckPods[1] and ns.stuckPods[1].reason, "ImagePullBackOff", "-o json: the stuck pod's reason")
local states = {}
for _, s in ipairs(ns.secrets) do states[s.name] = s.state end
t.eq(states, { fresh = "unreferenced", good = "ok", old = "expired", soon = "expiring", third = "missing" },
  "-o json: each Secret's state")

code, _, err = status({ "--warn-within", "soon" })
t.eq(code, 2, "a bad --warn-within is a usage error")
t.ok(err:find('--warn-within: must be a whole number of seconds, or a duration like "2h"', 1, true) ~= nil,
  "and says what a duration looks like", err)
code, _, err = status({ "--request-timeout", "-1" })
t.eq(code, 2, "a bad --request-timeout is a usage error")
t.ok(err:find('--request-timeout: must be a number of seconds, above 0 and at most a day, not "-1"', 1, true) ~= nil,
  "and says what it must be", err)
code = status({ "-o", "xml" })
t.eq(code, 2, "an unknown output format is a usage error")

code, out, err = status({ "-n", "apps" }, { kubeconfig = "alice.kubeconfig" })
t.eq(code, 1, "without read rights: exit 1")
t.ok(err:find("status.lua needs, in namespace apps: secrets get, list; serviceaccounts get; pods list", 1, true) ~= nil,
  "and the message says which rights", err)

-- Text from the cluster never drives the terminal (#12 item 18): control
-- characters in an annotation or a pod's message are shown as \xNN; JSON
-- keeps them exact.
simctl.reset()
simctl.namespace("esc")
local ESC_TITLE = "\27]0;owned\7\27[2J"
simctl.seed { apiVersion = "v1", kind = "Secret", type = "kubernetes.io/dockerconfigjson",
  metadata = { name = "evil", namespace = "esc", annotations = { ["xcsreg.io/rotated-at"] = "x" .. ESC_TITLE },
               labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" } },
  data = { [".dockerconfigjson"] = "eyJhdXRocyI6e319" } }
simctl.seed { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "esc" },
  spec = { containers = { { name = "c", image = "reg.example.test/a:1" } } },
  status = { phase = "Pending", containerStatuses = { { name = "c", image = "reg.example.test/a:1",
    ready = false, restartCount = 0,
    state = { waiting = { reason = "ErrImagePull", message = "denied" .. ESC_TITLE } } } } } }
code, out = status({ "-n", "esc" })
t.eq(out:find("[%z\1-\9\11-\31\127]"), nil, "status text: no control character from the cluster reaches the terminal")
t.ok(out:find("denied\\x1b]0;owned\\x07\\x1b[2J", 1, true) ~= nil, "... a pod message's escapes shown as \\xNN", out)
code, out = status({ "-n", "esc", "-o", "json" })
doc = json.decode(out)
t.eq(doc and doc.namespaces[1].stuckPods[1].message, "denied" .. ESC_TITLE, "-o json: the message exact")

return t.done()
