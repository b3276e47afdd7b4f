-- needs: apisim aws
-- setup.lua with an ECR credential (tests/lib/awssim.py, environment keys):
-- one mint for three namespaces, then cron runs played with XCSREG_NOW:
-- nothing minted or written before half of the 12-hour lifetime is past, a
-- refresh in place after it, --force-rotate, a failing refresh that leaves
-- the Secret as it was, and the metrics file of each.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local time = require "xcsreg.time"
local t = require "test"
local base64 = require "base64"
local http = require "http"
local json = require "json"
local lib = require "setuplib"
local rotation = require "xcsreg.rotation"

local sim = assert(os.getenv("AWSSIM_URL"), "run under tests/lib/with-aws")
local function aws(path, body)
  local status, _, reply = http.request { method = body and "POST" or "GET", url = sim .. path, body = body }
  assert(status == 200, "awssim " .. path)
  return json.decode(reply)
end
local function mints() -- GetAuthorizationToken requests since the last /_reset
  local n = 0
  for _, r in ipairs(aws("/_log")) do
    if r.op == "ecr" then n = n + 1 end
  end
  return n
end

local NAMESPACES = { "r1", "r2", "r3" }
local SERVER = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
local prom = lib.tmp .. "/rotation-ecr.prom"
local site = lib.write("rotation-ecr.lua", string.format([[
return {
  namespaces = { "r1", "r2", "r3" },
  registries = { { secret = "ecr", server = %q, ecr = {} } },
}]], SERVER))
-- The simulator's environment key (tests/lib/awssim.py); fake.
local env = { AWS_ACCESS_KEY_ID = "AKIAXCSREGENVTEST001", AWS_SECRET_ACCESS_KEY = "fake-env-secret-key/for+tests",
              AWS_EC2_METADATA_DISABLED = "true" }
local T0 = os.time()
local function at(seconds, ...)
  env.XCSREG_NOW = tostring(T0 + seconds)
  return lib.setup({ "--config", site, "--metrics-file", prom, ... }, { env = env })
end
local function secret(ns) return lib.get("Secret", ns, "ecr") end
local function password(obj)
  local auth = json.decode(base64.decode(obj.data[".dockerconfigjson"])).auths[SERVER]
  return auth.username .. ":" .. auth.password
end
-- "NS: LINE" for each namespace and line, as setup.lua prints them.
local function each(...)
  local l = {}
  for _, ns in ipairs(NAMESPACES) do
    for _, line in ipairs { ... } do l[#l + 1] = ns .. ": " .. line end
  end
  return table.concat(l, "\n") .. "\n"
end
local function errors(msg)
  local l = {}
  for i, ns in ipairs(NAMESPACES) do l[i] = "error: namespace " .. ns .. ": secret/ecr: " .. msg .. "\n" end
  return table.concat(l)
end
local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end
local function metrics(time, success, expiry)
  local text = "# HELP xcsreg_last_run_timestamp_seconds When the last xcsreg run ended, in seconds since the epoch.\n"
    .. "# TYPE xcsreg_last_run_timestamp_seconds gauge\n"
    .. "xcsreg_last_run_timestamp_seconds " .. time .. "\n"
    .. "# HELP xcsreg_last_run_success Whether the last xcsreg run succeeded (1) or failed (0).\n"
    .. "# TYPE xcsreg_last_run_success gauge\n"
    .. "xcsreg_last_run_success " .. success .. "\n"
    .. "# HELP xcsreg_secret_expiry_timestamp_seconds When the credential a Secret holds expires, in seconds since the epoch.\n"
    .. "# TYPE xcsreg_secret_expiry_timestamp_seconds gauge\n"
  for _, ns in ipairs(NAMESPACES) do
    text = text .. string.format('xcsreg_secret_expiry_timestamp_seconds{namespace="%s",secret="ecr"} %d\n', ns, expiry)
  end
  return text
end

lib.reset()
for _, ns in ipairs(NAMESPACES) do lib.namespace(ns) end
aws("/_reset", "{}")

-- ---- t0: one mint for three namespaces ----
local status, out, err = at(0)
t.eq({ status, out, err }, { 0, each("secret/ecr created", "serviceaccount/default configured"), "" },
  "t0: created in the three namespaces")
t.eq(mints(), 1, "t0: exactly one GetAuthorizationToken for three namespaces")
local first = secret("r1")
local expires_at = time.parse(first.metadata.annotations["xcsreg.io/expires-at"])
t.ok(expires_at and expires_at >= T0 + 43200 and expires_at < T0 + 43200 + 60,
  "expires-at is the token's expiresAt, 12 hours on", tostring(expires_at))
for _, ns in ipairs(NAMESPACES) do
  local s = secret(ns)
  t.eq(s.metadata.annotations, { ["xcsreg.io/rotated-at"] = time.format(T0),
    ["xcsreg.io/expires-at"] = time.format(expires_at) }, ns .. ": rotated-at (XCSREG_NOW) and expires-at")
  t.ok(password(s):match("^AWS:fake%-ecr%-password%-%d+$") and password(s) == password(first),
    ns .. ": the one minted credential, user AWS")
  t.eq(lib.pull_secrets(ns, "default"), { "ecr" }, ns .. ": default lists it")
end
t.eq(read(prom), metrics(T0, 1, expires_at), "t0: the metrics file, with each Secret's expiry")

-- ---- t0 + 1h: 11 of 12 hours left: nothing minted, nothing written ----
lib.clear_log()
status, out = at(3600)
t.eq({ status, out }, { 0, each("secret/ecr unchanged", "serviceaccount/default unchanged") }, "t0+1h: unchanged")
t.eq(mints(), 1, "t0+1h: ECR not asked")
t.eq(lib.methods(lib.log()), "GET GET", "t0+1h: reads only (one LIST of the Secrets, one of the ServiceAccounts)")
t.eq(secret("r1"), first, "t0+1h: the Secret as it was")

-- ---- t0 + 7h, ECR failing: the Secret untouched, the expiry in the message ----
local before = {}
for _, ns in ipairs(NAMESPACES) do before[ns] = secret(ns) end
aws("/_fail", json.encode { op = "ecr", status = 500, type = "ServerException", message = "simulated outage" })
lib.clear_log()
status, out, err = at(7 * 3600)
t.eq({ status, out }, { 1, "" }, "t0+7h, ECR down: exit 1, nothing done")
t.eq(err, errors("refresh failed (ecr: AWS error (ServerException): simulated outage [credentials from the "
  .. "environment]); the current credential expires in " .. time.format_duration(expires_at - T0 - 7 * 3600)),
  "the error says when the current credential expires")
t.ok(err:find("the current credential expires in 5h", 1, true) ~= nil, "... in 5 hours", err)
t.eq(mints(), 2, "one failed mint for the three namespaces")
for _, ns in ipairs(NAMESPACES) do t.eq(secret(ns), before[ns], ns .. ": byte-identical, annotations too") end
t.eq(lib.methods(lib.log()), "GET GET", "no write: the two LISTs only")
t.eq(read(prom), metrics(T0 + 7 * 3600, 0, expires_at), "a failed run: success 0, the stored expiries")

-- ---- t0 + 7h: less than half left: minted again, replaced in place ----
lib.clear_log()
status, out, err = at(7 * 3600)
t.eq({ status, out, err }, { 0, each("secret/ecr configured", "serviceaccount/default unchanged"), "" },
  "t0+7h: configured")
t.eq(mints(), 3, "t0+7h: one new mint")
local rotated = secret("r1")
t.eq(rotated.metadata.uid, first.metadata.uid, "the same object (uid)")
t.ok(rotated.metadata.resourceVersion ~= first.metadata.resourceVersion, "a new resourceVersion")
t.ok(password(rotated) ~= password(first), "a new credential")
t.eq(rotated.metadata.annotations["xcsreg.io/rotated-at"], time.format(T0 + 7 * 3600), "rotated-at: t0+7h")
t.eq(lib.methods(lib.log()), "GET GET PUT PUT PUT", "the two LISTs, then a PUT a Secret, no delete")
local new_expiry = time.parse(rotated.metadata.annotations["xcsreg.io/expires-at"])
t.eq(read(prom), metrics(T0 + 7 * 3600, 1, new_expiry), "the metrics: the new expiry")

-- ---- --force-rotate: minted although not due ----
status, out = at(7 * 3600 + 60)
t.eq({ status, mints() }, { 0, 3 }, "a minute later: not due, not minted")
status, out = at(7 * 3600 + 60, "--force-rotate")
t.eq({ status, mints() }, { 0, 4 }, "--force-rotate: minted once")
t.ok(out:find("r3: secret/ecr configured", 1, true) and password(secret("r3")) ~= password(rotated),
  "--force-rotate: a new credential written", out)

-- ---- a client dry run mints (the Secrets show the credential) and contacts no cluster ----
lib.clear_log()
env.XCSREG_NOW = tostring(T0 + 8 * 3600)
status, out = lib.setup({ "--config", site, "--dry-run=client", "-o", "json" }, { env = env })
local list = json.decode(out)
t.eq({ status, #list.items, mints() }, { 0, 3, 5 }, "--dry-run=client: three Secrets, one mint")
t.eq(lib.log(), {}, "--dry-run=client: no request to the cluster")

return t.done()
