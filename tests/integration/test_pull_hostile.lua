-- needs: hostile
-- pull.check against tests/lib/hostile.py posing as a registry (Basic auth,
-- so the credential goes with every manifest request): answers that must end
-- bounded, as unreachable or denied, with a clear message and the credential
-- never sent to another host.
local t = require "test"
local http = require "http"
local json = require "json"
local keyring = require "xcsreg.keyring"
local pull = require "xcsreg.pull"

local HTTPS, CA = os.getenv("XCSREG_HOSTILE_HTTPS"), os.getenv("XCSREG_HOSTILE_CA")
local HOST = HTTPS:match("//(.*)")
local PASSWORD = "fake-pull-password"
local kr = assert(keyring.from_secret({[HOST] = {username = "u", password = PASSWORD}}, "hostile"))
local function credentials_for(ref) return kr:lookup(ref.name) end

local function check(tag, timeout)
  local start = os.time()
  local results = pull.check({HOST .. "/team/app:" .. tag}, credentials_for, {ca_file = CA, timeout = timeout or 10})
  local r = results[1]
  t.ok(not r.message:find(PASSWORD, 1, true), tag .. ": no password in the message")
  t.ok(os.time() - start <= (timeout or 10) + 2, tag .. ": bounded in time")
  return r
end
local function like(r, state, piece, name)
  t.ok(r.state == state and r.message:find(piece, 1, true), name, t.show({r.state, r.message}))
end

-- first the answers that leave the connection usable; then those that send a
-- body even to a HEAD (a later request on that connection would read it)
local r = check("redirect-other-host")
like(r, "unreachable", HOST .. " answered HTTP 302, a redirect to http://localhost:", "a redirect to another host is not followed")
local status, _, body = http.request{url = HTTPS .. "/other-seen", ca_file = CA}
t.eq({status, json.decode(body or "")}, {200, {}}, "the other host was sent nothing")
like(check("v2"), "denied", HOST .. " denied user u pull of team/app (HTTP 401: UNAUTHORIZED: authentication required)",
     "a 401 to every request with the credential: denied, after one HEAD")
like(check("silent", 2), "unreachable", "imed out", "a registry that never answers: unreachable after the timeout")
like(check("huge"), "unreachable", "exceeds 1048576 bytes", "a 200 MiB answer: unreachable, not read")
like(check("hugeheaders"), "unreachable", "/manifests/hugeheaders: ", "16 MiB of headers: unreachable")
like(check("html500"), "unreachable", HOST .. " answered HTTP 500", "an HTML error page")
return t.done()
