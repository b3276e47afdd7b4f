-- Helpers for the setup.lua integration tests, on top of simctl (the
-- simulator's control API): reading objects back, summing up the request
-- log, and running `xcsreg run setup.lua` as a child process.
local proc = require "proc"
local simctl = require "simctl"

local lib = setmetatable({}, { __index = simctl })

lib.xcsreg = os.getenv("XCSREG") or "./xcsreg"
lib.tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

-- One stored object, or nil.
function lib.get(kind, ns, name)
  for _, obj in ipairs(simctl.objects(kind, ns)) do
    if obj.metadata.name == name then return obj end
  end
end

-- The Secrets and ServiceAccounts of a namespace, as stored.
function lib.snapshot(ns)
  return { simctl.objects("Secret", ns), simctl.objects("ServiceAccount", ns) }
end

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

-- Writes a file under the test directory, readable by its owner only (as
-- password files should be: xcsreg warns of others), and returns its path.
function lib.write(name, text)
  local path = lib.tmp .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  assert(os.execute("chmod 600 '" .. path .. "'"))
  return path
end

-- Runs `xcsreg [host_args] run setup.lua args... [defaults]` -> status,
-- stdout, stderr. The defaults: a lock file of the test run's own unless
-- args give a --lock, and --no-verify (the tests' registries are
-- fictional) unless opts.verify. opts: env (added), stdin, kubeconfig (a
-- file of the simulator's; default token.kubeconfig), host_args, verify.
function lib.setup(args, opts)
  opts = opts or {}
  local argv = { lib.xcsreg }
  for _, a in ipairs(opts.host_args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "run"
  argv[#argv + 1] = "setup.lua"
  local lock = lib.tmp .. "/setup.lock"
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
    if a == "--lock" or a:find("^%-%-lock=") then lock = nil end
  end
  if lock then argv[#argv + 1] = "--lock=" .. lock end
  if not opts.verify then argv[#argv + 1] = "--no-verify" end
  local env = { KUBECONFIG = simctl.dir .. "/" .. (opts.kubeconfig or "token.kubeconfig"), HOME = lib.tmp }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local status, out, err = proc.run { argv = argv, env = env, stdin = opts.stdin, timeout = 120 }
  assert(status, out)
  return status, out, err
end

return lib
