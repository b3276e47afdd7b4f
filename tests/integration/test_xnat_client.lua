-- needs: xnat
-- xcsreg.xnat's client against the XNAT simulator: one Basic login, then
-- XNAT's session; a session XNAT dropped is replaced by one more Basic
-- request; the session ended at close; errors name the call, the status and
-- XNAT's message, cut; a 404 of "No container server defined." is XNAT's own
-- text; the backend of an XNAT before CS 3.2 (no "backend") from swarm-mode.
local t = require "test"
local json = require "json"
local xnat = require "xcsreg.xnat"
local x = require "xnatctl"

local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"
-- the password from a file, read as a registry's is (xcsreg.credentials)
local function client(password)
  local path = tmp .. "/xnat-client-password"
  local f = assert(io.open(path, "w"))
  f:write(password or x.ADMIN_PASSWORD, "\n")
  f:close()
  assert(os.execute("chmod 600 '" .. path .. "'"))
  local cfg = assert(xnat.check { url = x.url, username = x.ADMIN, password_file = path, ca_file = x.ca })
  return assert(xnat.client(cfg))
end

x.seed { server = { id = 1, backend = "swarm" } }
x.reset_log()
local c = client()
t.eq(c:backend(), "swarm", "backend: swarm")
t.eq(c:backend(), "swarm", "... again")
t.eq({ x.count_auth("basic"), x.count_auth("cookie") }, { 1, 1 }, "one Basic login, then XNAT's JSESSIONID")
x.seed { server = { id = 1, ["swarm-mode"] = true } } -- drops every session, as a restarted XNAT does
x.reset_log()
t.eq(c:backend(), "swarm", "an XNAT without backend (CS < 3.2): swarm-mode = true is swarm")
local log = x.log()
t.eq({ #log, log[1].status, log[1].auth, log[2].auth, log[2].status }, { 2, 401, "cookie", "basic", 200 },
  "a dropped session: one 401, then Basic once more")
c:close()
t.eq(x.requests("^DELETE /data/JSESSION$"), { "DELETE /data/JSESSION" }, "close ends the session")
c:close()
t.eq(#x.requests("^DELETE /data/JSESSION$"), 1, "close is idempotent")

x.seed { server = json.null }
local _, err = client():backend()
t.eq(err, "XNAT " .. x.url .. ": read the container server (GET /xapi/docker/server): HTTP 404: No container "
  .. "server defined.", "404: the call, the status and XNAT's message")
_, err = client("xnat-wrong-fake-pw"):backend()
t.ok(err:find("HTTP 401: Unauthorized", 1, true) and err:find("user admin: wrong password", 1, true) ~= nil,
  "401: XNAT's message and the user", err)
t.eq(err:find("xnat-wrong-fake-pw", 1, true), nil, "... never the password")
x.seed { users = { admin = { password = x.ADMIN_PASSWORD, roles = {} } } }
local v, st
v, err, st = client():json("DELETE", "/xapi/docker/hubs/1", { what = "delete hub 1" })
t.eq({ v, st }, { nil, 403 }, "403: nil, message, status")
t.ok(err:find("delete hub 1: HTTP 403 (user admin lacks the role", 1, true) ~= nil, "... the role named", err)
return t.done()
