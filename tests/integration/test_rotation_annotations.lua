-- needs: apisim
-- The rotation annotations of Secrets without a known expiry: a static
-- password and a credential helper (tests/lib/fixtures-sources) are read
-- every run, written only when the content differs; rotated-at moves only
-- with a write, a stale expires-at goes, other annotations stay; a helper
-- that fails leaves its Secret uncreated and the others done.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local time = require "xcsreg.time"
local t = require "test"
local base64 = require "base64"
local lib = require "setuplib"
local rotation = require "xcsreg.rotation"

local T0 = 1700000000
local site = lib.write("rotation-annotations.lua", [[
return {
  registries = {
    { secret = "static", server = "static.example.test", username = "u", password_env = "PW" },
    { secret = "helper", server = "registry.example.test", credential_helper = "xcsreg-test" },
    { secret = "missing", server = "missing.example.test", credential_helper = "xcsreg-test" },
  },
}]])
local env = { PW = "fake-static-one", PATH = dir .. "/../lib/fixtures-sources:" .. os.getenv("PATH") }
local helper_log = lib.tmp .. "/docker-credential-xcsreg-test.log"
local function helper_calls()
  local n = 0
  local f = io.open(helper_log)
  if not f then return 0 end
  for _ in f:lines() do n = n + 1 end
  f:close()
  return n
end
local function at(seconds)
  env.XCSREG_NOW = tostring(T0 + seconds)
  return lib.setup({ "--config", site, "-n", "a1" }, { env = env })
end
local missing_err = "error: namespace a1: secret/missing: not created: credential_helper: docker-credential-xcsreg-test "
  .. "has no credentials for missing.example.test: log in with `docker login missing.example.test` (or store them in "
  .. "the helper)\n"

lib.reset()
lib.namespace("a1")
lib.seed { apiVersion = "v1", kind = "Secret", type = "kubernetes.io/dockerconfigjson",
  metadata = { name = "static", namespace = "a1", labels = { ["app.kubernetes.io/managed-by"] = "xcsreg" },
    annotations = { ["team.example/owner"] = "ops", ["xcsreg.io/expires-at"] = "2023-01-01T00:00:00Z" } },
  data = { [".dockerconfigjson"] = base64.encode('{"auths":{}}') } }
os.remove(helper_log)

local status, out, err = at(0)
t.eq({ status, out, err }, { 1, "secret/static configured\nsecret/helper created\nserviceaccount/default configured\n",
  missing_err }, "t0: static rewritten, helper created, the failing helper reported, exit 1")
t.eq(lib.get("Secret", "a1", "static").metadata.annotations, { ["team.example/owner"] = "ops",
  ["xcsreg.io/rotated-at"] = time.format(T0) }, "static: rotated-at set, the stale expires-at gone, "
  .. "another annotation kept")
t.eq(lib.get("Secret", "a1", "helper").metadata.annotations, { ["xcsreg.io/rotated-at"] = time.format(T0) },
  "helper: rotated-at, no expires-at (the helper tells none)")
t.eq(lib.get("Secret", "a1", "missing"), nil, "no Secret for the failing helper")
t.eq(lib.pull_secrets("a1", "default"), { "static", "helper" }, "default lists the two Secrets made")
t.eq(helper_calls(), 2, "the helper asked once for each of its servers")

local before = lib.snapshot("a1")
lib.clear_log()
status, out, err = at(60)
t.eq({ status, out, err }, { 1, "secret/static unchanged\nsecret/helper unchanged\nserviceaccount/default unchanged\n",
  missing_err }, "a minute later: unchanged")
t.eq(helper_calls(), 4, "the helper asked again (no expiry to go by)")
t.eq(lib.methods(lib.log()), "GET GET GET:404 GET", "GETs only (the missing Secret is still missing)")
t.eq(lib.snapshot("a1"), before, "rotated-at not moved: nothing written")

local helper_before = lib.get("Secret", "a1", "helper")
env.PW = "fake-static-two"
status, out = at(120)
t.eq({ status, out }, { 1, "secret/static configured\nsecret/helper unchanged\nserviceaccount/default unchanged\n" },
  "a new static password: configured")
t.eq(lib.get("Secret", "a1", "static").metadata.annotations, { ["team.example/owner"] = "ops",
  ["xcsreg.io/rotated-at"] = time.format(T0 + 120) }, "rotated-at moved with the write")
t.eq(lib.get("Secret", "a1", "helper"), helper_before, "the helper's Secret untouched")

return t.done()
