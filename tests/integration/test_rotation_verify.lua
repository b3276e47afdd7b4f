-- needs: apisim registry
-- setup.lua checks each credential with its registry before writing it:
-- real docker-registry servers (tests/lib/with-registry) accept the right
-- password, reject a wrong one before any Secret is written, and a closed
-- port only warns; each credential is checked once a run; --no-verify and
-- a client dry run send the registry nothing.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"

local function need(name) return os.getenv(name) or error(name .. " is not set: run under tests/lib/with-registry") end
local BASIC, TOKEN, CLOSED, CA = need("XCSREG_REG_BASIC"), need("XCSREG_REG_TOKEN"), need("XCSREG_REG_CLOSED"),
  need("XCSREG_REG_CA")
local USER, PASSWORD = need("XCSREG_REG_USER"), need("XCSREG_REG_PASSWORD")
local WRONG = "fake-wrong-password"
local env = { REG_PW = PASSWORD, WRONG_PW = WRONG }

-- Requests the htpasswd registry has answered, from its access log.
local function registry_requests()
  local n = 0
  for line in io.lines(need("XCSREG_REG_LOG_DIR") .. "/basic.log") do
    if line:find('"GET /v2/ HTTP', 1, true) then n = n + 1 end
  end
  return n
end
local function token_requests()
  local n = 0
  for _ in io.lines(need("XCSREG_REG_TOKEN_LOG")) do n = n + 1 end
  return n
end
local function site(name, registries)
  local entries = {}
  for i, r in ipairs(registries) do
    entries[i] = string.format("{ secret = %q, server = %q, username = %q, password_env = %q, registry_ca_file = %q }",
      r[1], r[2], USER, r[3], CA)
  end
  return lib.write(name, 'return { namespaces = { "v1", "v2" }, registries = { ' .. table.concat(entries, ", ") .. " } }")
end
local function setup(file, ...)
  return lib.setup({ "--config", file, ... }, { env = env, verify = true })
end
local function writes()
  local n = 0
  for _, e in ipairs(lib.log()) do
    if e.method ~= "GET" then n = n + 1 end
  end
  return n
end
local function no_password(name, text)
  t.ok(not text:find(PASSWORD, 1, true) and not text:find(WRONG, 1, true), name .. ": no password in the output")
end

lib.reset()
lib.namespace("v1")
lib.namespace("v2")

-- ---- accepted: written; checked once for two namespaces ----
local good = site("verify-good.lua", { { "good", BASIC, "REG_PW" } })
local seen = registry_requests()
local status, out, err = setup(good)
t.eq({ status, out, err }, { 0, "v1: secret/good created\nv1: serviceaccount/default configured\n"
  .. "v2: secret/good created\nv2: serviceaccount/default configured\n", "" }, "accepted: created in both namespaces")
t.eq(registry_requests() - seen, 2, "one login (challenge, then with the password) for both namespaces")
local stored = lib.get("Secret", "v1", "good")
t.eq(json.decode(base64.decode(stored.data[".dockerconfigjson"])).auths[BASIC].username, USER, "the credential stored")

-- ---- rejected: no Secret written, the others done ----
local bad = site("verify-bad.lua", { { "good", BASIC, "REG_PW" }, { "bad", BASIC, "WRONG_PW" } })
lib.clear_log()
seen = registry_requests()
status, out, err = setup(bad)
t.eq({ status, out }, { 1, "v1: secret/good unchanged\nv1: serviceaccount/default unchanged\n"
  .. "v2: secret/good unchanged\nv2: serviceaccount/default unchanged\n" }, "rejected: exit 1, the other Secret done")
local rejected = BASIC .. " rejected user " .. USER .. " (HTTP 401)"
t.eq(err, "error: namespace v1: secret/bad: not created: " .. rejected .. "\n"
  .. "error: namespace v2: secret/bad: not created: " .. rejected .. "\n", "the registry, the user and the status")
no_password("rejected", out .. err)
t.eq(writes(), 0, "no POST or PUT: nothing written")
t.eq(lib.get("Secret", "v1", "bad"), nil, "no Secret bad")
t.eq(registry_requests() - seen, 2, "the wrong password tried once; the unchanged Secret not checked again")

-- a stored Secret whose new password is rejected is kept as it is
local changed = site("verify-changed.lua", { { "good", BASIC, "WRONG_PW" } })
lib.clear_log()
status, out, err = setup(changed, "-n", "v1")
t.eq({ status, out, err }, { 1, "", "error: namespace v1: secret/good: refresh failed (" .. rejected .. "); "
  .. "the Secret in the cluster is kept\n" }, "a rejected new password: the stored Secret kept, exit 1")
t.eq(lib.get("Secret", "v1", "good"), stored, "... byte-identical")
t.eq(writes(), 0, "... and not written")

-- ---- unreachable: a warning, and written ----
local closed = site("verify-closed.lua", { { "closed", CLOSED, "REG_PW" } })
status, out, err = setup(closed)
t.eq({ status, out }, { 0, "v1: secret/closed created\nv1: serviceaccount/default configured\n"
  .. "v2: secret/closed created\nv2: serviceaccount/default configured\n" }, "a closed port: written anyway")
local prefix = "warning: cannot verify the credential of user " .. USER .. " for " .. CLOSED .. " (https://" .. CLOSED
  .. "/v2/: "
local suffix = "): writing it anyway\n"
t.ok(err:sub(1, #prefix) == prefix and err:sub(-#suffix) == suffix and select(2, err:gsub("\n", "")) == 1,
  "one warning naming user, registry and failure", err)

-- ---- token auth: the Bearer flow, through the token service ----
local token = site("verify-token.lua", { { "token", TOKEN, "REG_PW" } })
seen = token_requests()
status, out, err = setup(token, "-n", "v1")
t.eq({ status, out, err }, { 0, "secret/token created\nserviceaccount/default configured\n", "" },
  "token auth: accepted, written")
t.eq(token_requests() - seen, 1, "one token fetched")

-- ---- --no-verify and --dry-run=client: the registry is not asked ----
local unchecked = site("verify-unchecked.lua", { { "unchecked", BASIC, "WRONG_PW" } })
seen = registry_requests()
status, out = lib.setup({ "--config", unchecked, "-n", "v1", "--no-verify" }, { env = env })
t.eq({ status, out }, { 0, "secret/unchecked created\nserviceaccount/default configured\n" },
  "--no-verify: written unchecked")
status = setup(bad, "--dry-run=client")
t.eq(status, 0, "--dry-run=client: exit 0")
t.eq(registry_requests() - seen, 0, "--no-verify, --dry-run=client: no request to the registry")

return t.done()
