-- needs: apisim gcp
-- setup.lua --watch rotates a minted credential when it falls due, by a
-- timer in its loop with the cron run's due rule (xcsreg.rotation: half of
-- its lifetime left), without any event; not before.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local w = require "watchlib"
local http = require "http"
local json = require "json"
local rotation = require "xcsreg.rotation"
local secrets = require "xcsreg.secrets"

local function gcp(path)
  local status, _, body = http.request { url = os.getenv("GCPSIM_URL") .. path, method = "POST", body = "{}",
    no_proxy = true }
  assert(status == 200, "gcpsim " .. path)
  return json.decode(body)
end
local function gcp_log()
  local status, _, body = http.request { url = os.getenv("GCPSIM_URL") .. "/_log", no_proxy = true }
  assert(status == 200)
  return json.decode(body)
end

w.reset()
w.namespace("rot")
w.namespace("rot2")
gcp("/_reset")
local site = w.write("rot-site.lua", [[
return { namespaces = { "rot", "rot2" },
  registries = { { secret = "gar", server = "europe-docker.pkg.dev", gcp = {} } } }
]])
-- a Secret xcsreg wrote 2 s ago whose credential lasts 8 s: due when 4 s are left, in 2 s
t.secret("fake-gcp-old-token-Rot1", "rotation-old")
-- and one in rot2 due 3 s later: minted again then, not served from the first mint
local now = os.time()
for ns, shift in pairs { rot = 0, rot2 = 3 } do
  local stored = secrets.desired("gar", ns, { { server = "europe-docker.pkg.dev", username = "oauth2accesstoken",
    password = "fake-gcp-old-token-Rot1" } })
  stored.metadata.annotations = rotation.annotations(now - 2 + shift, now + 6 + shift)
  assert(w.client():create("/api/v1/namespaces/" .. ns .. "/secrets", stored))
  local sa = assert(w.client():get("/api/v1/namespaces/" .. ns .. "/serviceaccounts/default"))
  sa.imagePullSecrets = { { name = "gar" } }
  assert(w.client():replace("/api/v1/namespaces/" .. ns .. "/serviceaccounts/default", sa))
end
local before = assert(w.client():get("/api/v1/namespaces/rot/secrets/gar"))
local before2 = assert(w.client():get("/api/v1/namespaces/rot2/secrets/gar"))

local h = w.start({ "--config", site, "--no-leader-elect" }, { GCE_METADATA_HOST = os.getenv("GCE_METADATA_HOST") })
w.sleep(1)
local s = assert(w.client():get("/api/v1/namespaces/rot/secrets/gar"))
t.eq({ s.metadata.resourceVersion, #gcp_log() }, { before.metadata.resourceVersion, 0 },
  "not due yet: the Secret is left as it is, no token is minted")
local rotated = w.wait_for(function()
  local cur = w.client():get("/api/v1/namespaces/rot/secrets/gar")
  return cur and cur.metadata.resourceVersion ~= before.metadata.resourceVersion and cur
end, 6)
t.ok(rotated, "due: the credential is minted again and the Secret rewritten, without any event")
t.eq(#gcp_log(), 1, "... with one token request")
local expires = rotated and rotation.expires_at(rotated)
t.ok(expires and expires >= now + 3000, "... and the new expiry recorded", tostring(expires))
t.eq(w.client():get("/api/v1/namespaces/rot2/secrets/gar").metadata.resourceVersion, before2.metadata.resourceVersion,
  "the other namespace's Secret, not due yet, is left as it is")
local rotated2 = w.wait_for(function()
  local cur = w.client():get("/api/v1/namespaces/rot2/secrets/gar")
  return cur and cur.metadata.resourceVersion ~= before2.metadata.resourceVersion and cur
end, 6)
t.ok(rotated2, "the other falls due later: rewritten then")
t.eq(#gcp_log(), 2, "... with a token minted for it (each reconcile is a run of its own)")
t.ok(rotated2 and rotated2.data[".dockerconfigjson"] ~= rotated.data[".dockerconfigjson"],
  "... a new one, not the first mint's")
w.sleep(1)
t.eq(#gcp_log(), 2, "the new credentials are not due: nothing more is minted")
t.eq(w.stop(h, "TERM"), 0, "SIGTERM: exit 0")
t.done()
