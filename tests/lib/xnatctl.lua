-- Helpers for tests against the XNAT simulator (tests/xnatsim, started by
-- tests/lib/with-xnat): its control API (seed, state, log, fail).
local http = require "http"
local json = require "json"

local xnatctl = {}
xnatctl.url = assert(os.getenv("XNATSIM_URL"), "run under tests/lib/with-xnat")
xnatctl.ca = os.getenv("XNATSIM_CA")
-- the simulator's ContainerManager (tests/lib/secrets.txt lists the password)
xnatctl.ADMIN, xnatctl.ADMIN_PASSWORD = "admin", "xnat-admin-fake-pw"

local function call(method, path, body)
  local status, _, reply = http.request { url = xnatctl.url .. "/_ctl/" .. path, method = method,
    body = body and json.encode(body), ca_file = xnatctl.ca, headers = { ["Content-Type"] = "application/json" } }
  assert(status == 200, "xnatsim " .. path .. ": " .. tostring(status) .. " " .. tostring(reply))
  return json.decode(reply)
end

-- Replaces the simulator's state: keys server, commands, hubs, users,
-- default_hub, enabled, projects (the rest as a fresh XNAT has them).
function xnatctl.seed(t) return call("POST", "seed", t or {}) end
function xnatctl.state() return call("GET", "state") end
function xnatctl.log() return call("GET", "log") end
function xnatctl.reset_log() return call("POST", "reset-log", {}) end
function xnatctl.fail(mode) return call("POST", "fail", { mode = mode }) end

-- The stored hub of url (passwords included), or nil.
function xnatctl.hub(url)
  for _, h in ipairs(xnatctl.state().hubs) do
    if h.url == url then return h end
  end
end

-- "METHOD PATH" of each logged request matching pattern (a Lua pattern on "METHOD PATH").
function xnatctl.requests(pattern)
  local out = {}
  for _, e in ipairs(xnatctl.log()) do
    local line = e.method .. " " .. e.path
    if not pattern or line:find(pattern) then out[#out + 1] = line end
  end
  return out
end

-- The number of logged requests authenticated by kind ("basic", "cookie", "none").
function xnatctl.count_auth(kind)
  local n = 0
  for _, e in ipairs(xnatctl.log()) do
    if e.auth == kind then n = n + 1 end
  end
  return n
end

-- An `xnat = {...}` table for a site file, as Lua source.
function xnatctl.site_table(extra)
  return string.format('{ url = %q, username = %q, password_env = "XNAT_PW", ca_file = %q%s }',
    xnatctl.url, xnatctl.ADMIN, xnatctl.ca, extra and (", " .. extra) or "")
end

return xnatctl
