-- needs: apisim httpd
-- The site customisations of examples/, each run as a site would run it:
-- `xcsreg run setup.lua --config examples/NAME.lua` against the simulator,
-- with the test server (tests/lib/httpd.py) as Vault and as the chat
-- webhook. Each checks what the example promises in its header, in the
-- stored objects and the bytes of the Secrets.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local base64 = require "base64"
local http = require "http"
local json = require "json"

local examples = dir .. "/../../examples/"
local server = assert(os.getenv("XCSREG_TEST_HTTP"))

-- The example's text, with `local NAME = "..."` lines set to the test's values.
local function example(name, settings)
  local f = assert(io.open(examples .. name .. ".lua"))
  local text = f:read("a")
  f:close()
  for var, value in pairs(settings or {}) do
    local n
    text, n = text:gsub('\nlocal ' .. var .. ' = "[^\n]*"', '\nlocal ' .. var .. ' = "' .. value .. '"')
    assert(n == 1, name .. ": no line local " .. var)
  end
  return lib.write("example-" .. name .. ".lua", text)
end

-- server -> {username, password} of a stored Secret's .dockerconfigjson.
local function auths(ns, name)
  local s = lib.get("Secret", ns, name)
  if not s then return nil end
  local doc = json.decode(base64.decode(s.data[".dockerconfigjson"]))
  local out = {}
  for server_key, a in pairs(doc.auths) do out[server_key] = { a.username, a.password } end
  return out
end

local function names(kind, ns)
  local list = {}
  for _, obj in ipairs(lib.objects(kind, ns)) do list[#list + 1] = obj.metadata.name end
  table.sort(list)
  return list
end

local GHCR, HARBOR = "example-static-pw-3b8c", "harbor-robot-from-vault-9a41"
local env = { GHCR_TOKEN = GHCR, HARBOR_PASSWORD = HARBOR }

-- ---- registries-by-label ----
lib.reset()
lib.namespace("container-service", { ["xcsreg.io/registry-set"] = "xnat" })
lib.namespace("team-a", { ["xcsreg.io/registry-set"] = "team" })
lib.namespace("lab", { ["xcsreg.io/registry-set"] = "unknown" })
lib.namespace("other")
local site = example("registries-by-label")
local status, out, err = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "registries-by-label: exit 0")
t.eq(names("Secret", "container-service"), { "ghcr", "harbor" }, "registries-by-label: set xnat, both Secrets")
t.eq(auths("container-service", "harbor"), { ["harbor.example.org"] = { "robot$xnat", HARBOR } },
  "registries-by-label: the harbor Secret's bytes")
t.eq(names("Secret", "team-a"), { "ghcr" }, "registries-by-label: set team, GHCR only")
t.eq(lib.pull_secrets("team-a", "default"), { "ghcr" }, "registries-by-label: team-a's default lists it")
t.eq(names("Secret", "lab"), {}, "registries-by-label: an unknown set: no Secret")
t.ok(err:find("namespace lab: no registry set of that name here", 1, true), "registries-by-label: ... and a warning",
  err)
t.eq(names("Secret", "other"), {}, "registries-by-label: an unlabelled namespace is not touched")
lib.clear_log()
status, out = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "registries-by-label: a second run, exit 0")
t.eq(out:find("created") or out:find("configured"), nil, "registries-by-label: ... changes nothing")
for _, e in ipairs(lib.log()) do
  if e.method ~= "GET" then t.ok(false, "registries-by-label: the second run only reads", e.method .. " " .. e.path) end
end

-- ---- password-from-vault ----
lib.reset()
lib.namespace("container-service")
local TOKEN = "hvs.xcsreg-test-vault-token-7c1f"
local VAULT_PW = { ghcr = "ghcr-pat-from-vault-5d2e", harbor = HARBOR }
for name, pw in pairs(VAULT_PW) do
  local code = http.request { url = server .. "/v1/secret/data/xcsreg/" .. name, method = "POST",
    headers = { ["X-Vault-Token"] = TOKEN }, body = json.encode { data = { password = pw } } }
  assert(code == 200, "storing a test secret in the Vault stand-in")
end
site = example("password-from-vault", { VAULT_ADDR = server })
lib.clear_log()
status, out, err = lib.setup({ "--config", site }, { env = { VAULT_TOKEN = "hvs.wrong-token-for-vault-0000" } })
t.eq(status, 2, "password-from-vault: Vault refuses the token: exit 2")
t.ok(err:sub(1, #site + 8) == "error: " .. site .. ":" and err:find("^%d+: hook password: Vault answered 403 for ", #site + 9) ~= nil,
  "password-from-vault: ... the file, line and hook named", err)
t.eq(lib.log(), {}, "password-from-vault: ... and nothing sent to the cluster")
t.eq(names("Secret", "container-service"), {}, "password-from-vault: ... no Secret")
status, out, err = lib.setup({ "--config", site }, { env = { VAULT_TOKEN = TOKEN } })
t.eq({ status, out }, { 0, "secret/ghcr created\nsecret/harbor created\nserviceaccount/default configured\n" },
  "password-from-vault: exit 0, both written")
t.eq(auths("container-service", "ghcr"), { ["ghcr.io"] = { "xnat-bot", VAULT_PW.ghcr } },
  "password-from-vault: the ghcr Secret holds Vault's password")
t.eq(auths("container-service", "harbor"), { ["harbor.example.org"] = { "robot$xnat", VAULT_PW.harbor } },
  "password-from-vault: the harbor Secret holds Vault's password")
t.eq(err:find(TOKEN, 1, true), nil, "password-from-vault: the Vault token is not in the output")

-- ---- results-webhook ----
lib.reset()
lib.namespace("container-service")
site = example("results-webhook", { WEBHOOK_URL = server .. "/hook" })
local function posted()
  local code, _, body = http.request { url = server .. "/hooks" }
  assert(code == 200)
  local texts = {}
  for i, b in ipairs(json.decode(body)) do texts[i] = json.decode(b).text end
  return texts
end
status = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "results-webhook: exit 0")
t.eq(posted(), { "xcsreg: secret/ghcr in namespace container-service created",
  "xcsreg: serviceaccount/default in namespace container-service configured" },
  "results-webhook: what changed is posted, one message per object")
status = lib.setup({ "--config", site }, { env = env })
t.eq({ status, #posted() }, { 0, 2 }, "results-webhook: an unchanged run posts nothing")
assert(lib.fault { method = "PUT", path_regex = "/secrets/ghcr$", count = 1, status = 403 })
status = lib.setup({ "--config", site }, { env = { GHCR_TOKEN = "example-vault-ghcr-rotated-1" } })
local texts = posted()
t.eq(status, 1, "results-webhook: a failed write: exit 1")
t.ok(#texts == 3 and texts[3]:find("^xcsreg: secret/ghcr in namespace container%-service failed: ")
  ~= nil, "results-webhook: the failure is posted with its error", t.show(texts))
site = example("results-webhook", { WEBHOOK_URL = "http://127.0.0.1:9/hook" })
status, out, err = lib.setup({ "--config", site }, { env = { GHCR_TOKEN = "example-vault-ghcr-rotated-2" } })
t.eq(status, 0, "results-webhook: a webhook that is down does not fail the run")
t.ok(err:find("warning: webhook: ", 1, true) ~= nil, "results-webhook: ... it is warned of", err)

-- ---- namespaces-by-annotation ----
lib.reset()
for _, ns in ipairs { "proj-neuro", "proj-cardio", "proj-gone", "kube-system" } do lib.namespace(ns) end
local function annotate(name, annotations, phase)
  lib.seed { apiVersion = "v1", kind = "Namespace", metadata = { name = name, annotations = annotations },
             status = { phase = phase or "Active" } }
end
annotate("proj-neuro", { ["xnat.example.org/project"] = "Neuro imaging" })
annotate("proj-cardio", { ["xnat.example.org/project"] = "Cardio" })
annotate("proj-gone", { ["xnat.example.org/project"] = "Old" }, "Terminating")
site = example("namespaces-by-annotation")
status, out = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "namespaces-by-annotation: exit 0")
t.eq({ names("Secret", "proj-cardio"), names("Secret", "proj-neuro") }, { { "ghcr" }, { "ghcr" } },
  "namespaces-by-annotation: each annotated namespace has the Secret")
t.eq({ names("Secret", "proj-gone"), names("Secret", "kube-system") }, { {}, {} },
  "namespaces-by-annotation: a terminating or unannotated namespace is not touched")
t.eq(out, "proj-cardio: secret/ghcr created\nproj-cardio: serviceaccount/default configured\n"
  .. "proj-neuro: secret/ghcr created\nproj-neuro: serviceaccount/default configured\n",
  "namespaces-by-annotation: the hook's namespaces, in its order")

return t.done()
