-- needs: gcp
-- gcp: an access token from the metadata server (tests/lib/gcpsim.py).
local t = require "test"
local sources = require "xcsreg.sources"
local http = require "http"
local json = require "json"
local log = require "log"

local sim = os.getenv("GCPSIM_URL")
local function control(path, body)
  local status, _, reply = http.request { method = body and "POST" or "GET", url = sim .. path, body = body }
  assert(status == 200, "simulator control " .. path)
  return json.decode(reply)
end
local function get(entry, ctx)
  sources.reset()
  return sources.get(entry, ctx)
end
local entry = { secret = "gcr", server = "europe-docker.pkg.dev", gcp = {} }
local now = 1700000000

control("/_reset", "{}")
local cred, err = get(entry, { now = now })
t.ok(cred and cred.username == "oauth2accesstoken" and cred.password == "fake-gcp-token-1" and cred.source == "gcp",
  "the access token is the password of oauth2accesstoken", err)
t.eq(cred and cred.expires_at, now + 3599, "expires_in is kept as an expiry time")
t.eq(log.redact("fake-gcp-token-1"), "***", "the token is registered as secret")
local requests = control("/_log")
t.eq(requests, { { method = "GET", path = "/computeMetadata/v1/instance/service-accounts/default/token",
                   metadata_flavor = "Google" } }, "one GET of the default account's token, with Metadata-Flavor")

control("/_reset", "{}")
sources.reset()
for _ = 1, 3 do sources.get(entry, { now = now }) end
t.eq(#control("/_log"), 1, "three namespaces, one token")

control("/_reset", "{}")
get({ server = "gcr.io", gcp = { service_account = "builder@example.iam.gserviceaccount.com" } }, { now = now })
t.eq(control("/_log")[1].path,
  "/computeMetadata/v1/instance/service-accounts/builder@example.iam.gserviceaccount.com/token",
  "service_account picks the account")

control("/_fail", json.encode { status = 503 })
t.fails("gcp: the metadata server answered HTTP 503 without an access token: simulated failure",
  "an error status", get, entry, { now = now })

local closed = { now = now, env = function(name)
  if name == "GCE_METADATA_HOST" then return "127.0.0.1:1" end
  return os.getenv(name)
end }
cred, err = get(entry, closed)
t.ok(err and err:find("^gcp: cannot reach the metadata server %(http://127%.0%.0%.1:1/computeMetadata/v1/"
  .. "instance/service%-accounts/default/token: .+%): run on GCE or GKE "
  .. "with a service account, or set GCE_METADATA_HOST$"), "an unreachable metadata server", err)

return t.done()
