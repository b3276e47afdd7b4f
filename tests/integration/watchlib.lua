-- Helpers for the setup.lua --watch tests: controllers run in the
-- background, waiting for the simulator to reach a state, and the writes
-- of the request log.
local http = require "http"
local json = require "json"
local lib = require "setuplib"

local w = setmetatable({}, { __index = lib })

-- A client of the simulator as admin, to change objects as users do.
function w.client()
  return assert(require("k8s").client { kubeconfig = lib.dir .. "/token.kubeconfig" })
end

-- Starts `xcsreg run setup.lua --watch args...` in the background; returns
-- a handle { pid, out, err, rc } (its stdout, stderr and exit status files).
local started = 0
function w.start(args, env)
  started = started + 1
  local base = string.format("%s/watch-%d", os.getenv("XCSREG_TEST_LOGS") or lib.tmp, started)
  local argv = { lib.xcsreg, "run", "setup.lua", "--watch", "--no-verify" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local quoted = {}
  for i, a in ipairs(argv) do quoted[i] = "'" .. a:gsub("'", "'\\''") .. "'" end
  local envs = { "KUBECONFIG='" .. lib.dir .. "/token.kubeconfig'", "HOME='" .. lib.tmp .. "'" }
  for k, v in pairs(env or {}) do envs[#envs + 1] = k .. "='" .. v .. "'" end
  os.remove(base .. ".pid")
  os.remove(base .. ".rc")
  local cmd = string.format("( env %s %s >'%s.out' 2>'%s.err' </dev/null & echo $! >'%s.pid'; wait $!; "
    .. "echo $? >'%s.rc' ) >/dev/null 2>&1 &", table.concat(envs, " "), table.concat(quoted, " "), base, base,
    base, base)
  assert(os.execute(cmd))
  local h = { out = base .. ".out", err = base .. ".err", rc = base .. ".rc" }
  h.pid = assert(w.wait_for(function() return tonumber(w.read(base .. ".pid"):match("%d+")) end, 5), "no pid")
  return h
end

function w.read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Whether process pid still runs.
function w.alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

-- Sends sig to h and waits (timeout s) for it to end: its exit status, or
-- nil if it still runs.
function w.stop(h, sig, timeout)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig or "TERM", h.pid))
  return w.wait_for(function() return tonumber(w.read(h.rc):match("%d+")) end, timeout or 5)
end

function w.sleep(s) os.execute("sleep " .. s) end

-- Calls fn every 50 ms until it returns a true value (at most timeout
-- seconds): that value, or nil; and the seconds it took.
function w.wait_for(fn, timeout)
  local start = w.now()
  repeat
    local v = fn()
    if v then return v, w.now() - start end
    w.sleep(0.05)
  until w.now() - start > (timeout or 10)
  return nil, w.now() - start
end

-- Wall-clock seconds with a fraction (date +%s.%N).
function w.now()
  local p = io.popen("date +%s.%N")
  local v = tonumber(p:read("l"))
  p:close()
  return v
end

-- The pull secret names of a ServiceAccount, or {} when it does not exist.
function w.pulls(ns, name)
  local sa = lib.get("ServiceAccount", ns, name or "default")
  local names = {}
  for i, ref in ipairs(sa and sa.imagePullSecrets or {}) do names[i] = ref.name end
  return names
end

function w.has_pull(ns, secret, sa)
  for _, n in ipairs(w.pulls(ns, sa)) do
    if n == secret then return true end
  end
  return false
end

local WRITES = { POST = true, PUT = true, PATCH = true, DELETE = true }

-- The logged API writes (not the Lease's unless leases), as "METHOD path".
function w.writes(entries, leases)
  local out = {}
  for _, e in ipairs(entries or lib.log()) do
    if WRITES[e.method] and (leases or not e.path:find("/leases", 1, true)) then
      out[#out + 1] = e.method .. " " .. e.path
    end
  end
  return out
end

-- The logged requests as "METHOD path[?watch]".
function w.requests(entries)
  local out = {}
  for _, e in ipairs(entries or lib.log()) do
    local watch = e.query and e.query.watch and "?watch" or ""
    out[#out + 1] = e.method .. " " .. e.path .. watch
  end
  return out
end

-- A control call the simctl module has no function for.
function w.control(method, path, body)
  local status, _, text = http.request { url = lib.control .. path, method = method,
    body = body and json.encode(body), headers = body and { ["Content-Type"] = "application/json" } or nil }
  assert(status and status < 300, "control " .. path .. ": " .. tostring(status) .. " " .. tostring(text))
  return json.decode(text)
end

-- GET url (http://...) -> status, body.
function w.fetch(url)
  local status, _, body = http.request { url = url, timeout = 5 }
  return status, body
end

-- The port a controller's --listen 127.0.0.1:0 picked, from its log.
function w.port(h)
  local port = w.wait_for(function() return w.read(h.err):match("serving /healthz and /metrics on [%d.]+:(%d+)") end, 5)
  return port
end

return w
