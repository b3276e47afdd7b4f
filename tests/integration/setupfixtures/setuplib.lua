-- Helpers for the setup.lua integration tests: the simulator's control API,
-- and running `xcsreg run setup.lua` as a child process.
local http = require "http"
local json = require "json"
local proc = require "proc"

local lib = {}

lib.xcsreg = os.getenv("XCSREG") or "./xcsreg"
lib.tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"
lib.simdir = assert(os.getenv("XCSREG_SIM_DIR"), "run under tests/apisim/with-sim")
local control = assert(os.getenv("XCSREG_SIM_CONTROL"))

-- A control API call; returns the decoded answer (nil for 404).
function lib.sim(method, path, body)
  local status, _, resp = http.request {
    url = control .. path, method = method, body = body and json.encode(body),
    headers = body and { ["Content-Type"] = "application/json" } or nil,
  }
  assert(status, resp)
  if status == 404 then return nil end
  assert(status < 300, string.format("%s %s: %s %s", method, path, status, resp))
  if resp == "" then return true end
  return json.decode(resp)
end

function lib.reset() lib.sim("POST", "/reset") end
function lib.namespace(name, default_sa) lib.sim("POST", "/namespaces", { name = name, default_sa = default_sa ~= false }) end
function lib.put(obj) lib.sim("POST", "/objects", obj) end
function lib.get(kind, ns, name)
  return lib.sim("GET", string.format("/object?kind=%s&namespace=%s&name=%s", kind, ns, name))
end
function lib.clear_log() lib.sim("DELETE", "/log") end
function lib.log() return lib.sim("GET", "/log") end

-- The pull secret names of a ServiceAccount.
function lib.pull_secrets(ns, name)
  local names = {}
  for i, ref in ipairs(lib.get("ServiceAccount", ns, name).imagePullSecrets or {}) do names[i] = ref.name end
  return names
end

-- "GET" or "GET GET PATCH:409 ..." for the logged API requests.
function lib.methods(entries)
  local parts = {}
  for i, e in ipairs(entries) do
    parts[i] = e.method .. ((e.status == 200 or e.status == 201) and "" or ":" .. tostring(e.status))
  end
  return table.concat(parts, " ")
end

-- Writes a file (a site file, a script) and returns its path.
function lib.write(name, text, mode)
  local path = lib.tmp .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  if mode then proc.run { argv = { "chmod", mode, path } } end
  return path
end

-- Runs `xcsreg [host_args] run setup.lua args...` -> status, stdout, stderr.
-- opts: env (added), stdin, kubeconfig (a file of the simulator's; default
-- token.kubeconfig), host_args.
function lib.setup(args, opts)
  opts = opts or {}
  local argv = { lib.xcsreg }
  for _, a in ipairs(opts.host_args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "run"
  argv[#argv + 1] = "setup.lua"
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local env = { KUBECONFIG = lib.simdir .. "/" .. (opts.kubeconfig or "token.kubeconfig"), HOME = lib.tmp }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local status, out, err = proc.run { argv = argv, env = env, stdin = opts.stdin, timeout = 120 }
  assert(status, out)
  return status, out, err
end

-- The lines of a text, without the trailing newline.
function lib.lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

return lib
