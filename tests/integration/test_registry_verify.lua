-- needs: registry
-- registry.verify against real docker-registry servers (tests/lib/with-registry):
-- htpasswd over TLS, token auth with tokens the registry checks, an open
-- registry, broken token services and a port that refuses connections.
local t = require "test"
local log = require "log"
local registry = require "xcsreg.registry"

local env = setmetatable({}, {__index = function(_, name)
  return os.getenv("XCSREG_REG_" .. name) or error("XCSREG_REG_" .. name .. " is not set: run under tests/lib/with-registry")
end})
local USER, PASSWORD, CA = env.USER, env.PASSWORD, env.CA
local WRONG_PASSWORD = "fake-wrong-password"

local function verify(server, changes)
  local opts = {server = server, username = USER, password = PASSWORD, ca_file = CA, timeout = 10}
  for k, v in pairs(changes or {}) do opts[k] = v or nil end -- false: leave the option out
  return registry.verify(opts)
end

-- outcome and detail exactly, and never a password in the detail
local function check(name, want_outcome, want_detail, outcome, detail)
  t.eq({outcome, detail}, {want_outcome, want_detail}, name)
  t.ok(not (tostring(detail):find(PASSWORD, 1, true) or tostring(detail):find(WRONG_PASSWORD, 1, true)),
       name .. ": the detail has no password")
end

-- the outcome exactly, the detail by its start and a piece of it
local function check_like(name, want_outcome, prefix, piece, outcome, detail)
  detail = tostring(detail)
  t.ok(outcome == want_outcome and detail:sub(1, #prefix) == prefix and detail:find(piece, #prefix + 1, true),
       name, ("got %s, %q\nwant %s, %q...%q"):format(outcome, detail, want_outcome, prefix, piece))
end

local function token_requests()
  local f = assert(io.open(env.TOKEN_LOG))
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end
local function last_token_request() local lines = token_requests(); return lines[#lines] end
local ACCOUNT = "account=xcsreg%2Btest%40example.invalid" -- the user, escaped as a query value

-- htpasswd auth: a Basic challenge
local basic = env.BASIC
check("basic: the right credential is accepted", "accepted", basic .. " accepted user " .. USER, verify(basic))
t.eq(log.redact("a " .. PASSWORD .. " b"), "a *** b", "the password is registered as a secret")
check("basic: a wrong password is rejected", "rejected", basic .. " rejected user " .. USER .. " (HTTP 401)",
      verify(basic, {password = WRONG_PASSWORD}))
check("basic: an unknown user is rejected", "rejected", basic .. " rejected user nobody (HTTP 401)",
      verify(basic, {username = "nobody"}))
check("basic: the server as a URL with a path", "accepted", basic .. " accepted user " .. USER,
      verify("https://" .. basic .. "/v2/"))
check_like("basic: a CA that did not sign the certificate: unreachable", "unreachable", "https://" .. basic .. "/v2/: ", "certificate",
           verify(basic, {ca_file = env.OTHER_CA}))
check_like("basic: no CA (the system's): unreachable", "unreachable", "https://" .. basic .. "/v2/: ", "certificate",
           verify(basic, {ca_file = false}))
check("basic: insecure skips the certificate check", "accepted", basic .. " accepted user " .. USER,
      verify(basic, {ca_file = env.OTHER_CA, insecure = true}))
check("basic: insecure still rejects a wrong password", "rejected", basic .. " rejected user " .. USER .. " (HTTP 401)",
      verify(basic, {ca_file = false, insecure = true, password = WRONG_PASSWORD}))
check("basic: plain HTTP to a TLS port is an unexpected answer", "unreachable", basic .. " answered HTTP 400",
      verify("http://" .. basic))

-- token auth: a Bearer challenge, the token fetched from the realm with the credential
local token = env.TOKEN
check("token: the right credential is accepted", "accepted", token .. " accepted user " .. USER, verify(token))
t.eq(last_token_request(), "GET /token?service=xcsreg-test-registry&" .. ACCOUNT .. " HTTP/1.1 -> 200",
     "token: the realm is asked with the service and the escaped account")
check("token: a wrong password is rejected at the realm", "rejected",
      token .. ": the token service at " .. env.REALM .. " rejected user " .. USER .. " (HTTP 401)",
      verify(token, {password = WRONG_PASSWORD}))
check("oauth: a realm answering access_token only", "accepted", env.OAUTH .. " accepted user " .. USER,
      verify(env.OAUTH))
t.eq(last_token_request(), "GET /token?reply=access_token&service=xcsreg-test-registry&" .. ACCOUNT .. " HTTP/1.1 -> 200",
     "oauth: the parameters are added to the realm's own query")
check("untrusted: a token the registry does not trust is rejected", "rejected",
      env.UNTRUSTED .. " rejected user " .. USER .. " (HTTP 401)", verify(env.UNTRUSTED))
check("proxied: a realm answering HTML is unreachable", "unreachable",
      env.PROXIED .. ": the token service at " .. env.REALM .. " answered without a token", verify(env.PROXIED))
check("failing: a realm answering 500 is unreachable", "unreachable",
      env.FAILING .. ": the token service at " .. env.REALM .. " answered HTTP 500", verify(env.FAILING))
local before = #token_requests()
check_like("token: a CA that did not sign the certificate: unreachable before any token request", "unreachable",
           "https://" .. token .. "/v2/: ", "certificate", verify(token, {ca_file = env.OTHER_CA}))
t.eq(#token_requests(), before, "token: no token request when /v2/ is unreachable")

-- no auth at all
check("open: accepted, saying the credential was not checked", "accepted",
      env.OPEN .. " answers without credentials: it is open, so the credential of user " .. USER .. " was not checked",
      verify(env.OPEN))

-- nothing listening
check_like("closed: a refused connection is unreachable", "unreachable", "https://" .. env.CLOSED .. "/v2/: ", "onnect",
           verify(env.CLOSED))

return t.done()
