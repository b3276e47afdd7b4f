-- needs: apisim aws xnat
-- A rotated ECR credential reaches XNAT's image hub in the same run as the
-- Secret (#16), cron runs played with XCSREG_NOW against the AWS simulator
-- and the XNAT simulator (Swarm backend): created at t0, left alone while
-- the Secret is not due (no write to XNAT), pushed when the Secret is
-- rotated, kept as it was when the refresh fails.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local http = require "http"
local json = require "json"
local lib = require "setuplib"
local x = require "xnatctl"

local sim = assert(os.getenv("AWSSIM_URL"), "run under tests/lib/with-aws")
local function aws(path, body)
  local status = http.request { method = "POST", url = sim .. path, body = body }
  assert(status == 200, "awssim " .. path)
end
local SERVER = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
local state_file = lib.tmp .. "/xnat-ecr-hubs.json"
os.remove(state_file)
local site = lib.write("xnat-ecr.lua", string.format([[
return {
  namespaces = { "r1", "r2" },
  registries = { { secret = "ecr", server = %q, ecr = {} } },
  xnat = %s,
}]], SERVER, x.site_table(string.format("hubs = true, state_file = %q", state_file))))
local env = { AWS_ACCESS_KEY_ID = "AKIAXCSREGENVTEST001", AWS_SECRET_ACCESS_KEY = "fake-env-secret-key/for+tests",
              AWS_EC2_METADATA_DISABLED = "true", XNAT_PW = x.ADMIN_PASSWORD }
local T0 = os.time()
local function at(seconds)
  env.XCSREG_NOW = tostring(T0 + seconds)
  x.reset_log()
  return lib.setup({ "--config", site }, { env = env })
end
local function secret_password(ns)
  local obj = lib.get("Secret", ns, "ecr")
  return json.decode(base64.decode(obj.data[".dockerconfigjson"])).auths[SERVER].password
end
local function hub() return x.hub(SERVER) end

lib.reset()
lib.namespace("r1")
lib.namespace("r2")
x.seed { server = { id = 1, backend = "swarm", ["swarm-mode"] = true } }

local code, out, err = at(0)
t.eq(code, 0, "t0: exit 0", err)
t.ok(out:find("r1: secret/ecr created", 1, true) and out:find("xnat hub/" .. SERVER .. " created", 1, true),
  "t0: the Secrets, then the hub", out)
local first = secret_password("r1")
t.ok(hub() and hub().username == "AWS" and hub().password == first, "t0: the hub holds the Secret's credential (user AWS)")

code, out = at(3600)
t.ok(code == 0 and out:find("xnat hub/" .. SERVER .. " unchanged", 1, true) ~= nil, "t0+1h: not due: the hub unchanged", out)
t.eq(x.requests("^POST /xapi"), {}, "t0+1h: no write to XNAT")

aws("/_fail", json.encode { op = "ecr", status = 500, type = "ServerException", message = "simulated outage" })
code, out, err = at(7 * 3600)
t.eq(code, 1, "t0+7h, ECR down: exit 1")
t.eq(x.requests("^POST /xapi"), {}, "... no write to XNAT")
t.ok(hub().password == first, "... the hub keeps the current credential (never blanked)")

code, out = at(7 * 3600 + 60)
t.eq(code, 0, "t0+7h: rotated: exit 0")
local rotated = secret_password("r1")
t.ok(rotated ~= first and out:find("r1: secret/ecr configured", 1, true) ~= nil, "t0+7h: the Secret has a new credential", out)
t.ok(out:find("xnat hub/" .. SERVER .. " configured", 1, true) ~= nil, "t0+7h: the hub configured in the same run", out)
t.ok(hub().password == rotated and hub().id == 2, "t0+7h: the hub, same id, holds the rotated credential")
t.eq(x.requests("^POST /xapi"), { "POST /xapi/docker/hubs/2" }, "t0+7h: one update by id")

code, out = at(8 * 3600)
t.ok(code == 0 and out:find("unchanged", 1, true) ~= nil, "t0+8h: unchanged again", out)
t.eq(x.requests("^POST /xapi"), {}, "t0+8h: no write to XNAT")
return t.done()
