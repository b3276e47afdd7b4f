-- Helpers for the fault-injection tests (test_faults_*.lua): running
-- setup.lua with a site file, the faults of each kind, and the invariants
-- checked over every version of every object (the simulator's history).
local lib = require "setuplib"
local proc = require "proc"
local secrets = require "xcsreg.secrets"

local faultlib = {}

-- A request timeout short enough for the timeout faults to cost little,
-- long enough that a loaded test machine does not hit it by itself; the
-- simulator holds a timed-out request well past it.
faultlib.REQUEST_TIMEOUT = 0.5
local HOLD_MS = 1500

-- The kinds of fault, each as the simulator's fault and which requests the
-- client repeats after it: "all" (the answer says the server did nothing),
-- or "reads" (no answer: a write may have been done). Retry-After is 0 to
-- keep the suite fast; the client's backoff still applies.
faultlib.KINDS = {
  { name = "500", fault = { status = 500 }, retried = "none" },
  { name = "503", fault = { status = 503, retry_after = 0 }, retried = "all" },
  { name = "429", fault = { status = 429, retry_after = 0 }, retried = "all" },
  { name = "drop", fault = { action = "drop" }, retried = "reads" },
  { name = "timeout", fault = { action = "timeout", hold_ms = HOLD_MS }, retried = "reads" },
  { name = "lost", fault = { action = "timeout", hold_ms = 0 }, retried = "reads" }, -- done, answer lost
}

-- Runs setup.lua, without the run lock, with the site file `site` and
-- environment `env`: status, stdout, stderr. opts: concurrency,
-- request_timeout.
function faultlib.run(site, env, opts)
  opts = opts or {}
  local argv = { lib.xcsreg, "run", "setup.lua", "--config", site, "--no-verify", "--lock", "none" }
  if opts.concurrency then
    argv[#argv + 1] = "--concurrency"
    argv[#argv + 1] = tostring(opts.concurrency)
  end
  if opts.request_timeout then
    argv[#argv + 1] = "--request-timeout"
    argv[#argv + 1] = tostring(opts.request_timeout)
  end
  local full = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp }
  for k, v in pairs(env) do full[k] = v end
  local status, out, err = proc.run { argv = argv, env = full, timeout = 120 }
  assert(status, out)
  return status, out, err
end

local together_runs = 0

-- Runs setup.lua once for each site file of `sites` at the same time, all
-- with environment `env`: a list of {status, stdout, stderr}. Their output
-- stays in $XCSREG_TEST_LOGS, for tests/run's secret scan.
function faultlib.together(sites, env)
  together_runs = together_runs + 1
  local script, files = {}, {}
  for i, site in ipairs(sites) do
    local argv = { lib.xcsreg, "run", "setup.lua", "--config", site, "--no-verify", "--lock", "none" }
    for j, a in ipairs(argv) do argv[j] = "'" .. a:gsub("'", "'\\''") .. "'" end
    local base = string.format("%s/together-%d-%d", os.getenv("XCSREG_TEST_LOGS") or lib.tmp, together_runs, i)
    files[i] = { base .. ".out", base .. ".err" }
    script[#script + 1] = string.format("%s >'%s' 2>'%s' & p%d=$!", table.concat(argv, " "), files[i][1], files[i][2], i)
  end
  for i = 1, #sites do script[#script + 1] = string.format("wait $p%d; echo $?", i) end
  local full = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp }
  for k, v in pairs(env) do full[k] = v end
  local status, out = proc.run { argv = { "sh", "-c", table.concat(script, "\n") }, env = full, timeout = 120 }
  assert(status == 0, out)
  local results, i = {}, 0
  for code in out:gmatch("(%d+)\n") do
    i = i + 1
    local function slurp(path)
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      return text
    end
    results[i] = { tonumber(code), slurp(files[i][1]), slurp(files[i][2]) }
  end
  return results
end

-- The .dockerconfigjson (base64, as stored) of a Secret for `registries`.
function faultlib.data(registries)
  return secrets.desired("x", nil, registries).data[".dockerconfigjson"]
end

-- The stored Secrets and ServiceAccounts by "namespace/name".
function faultlib.state()
  local state = { Secret = {}, ServiceAccount = {} }
  for kind, by in pairs(state) do
    for _, obj in ipairs(lib.objects(kind)) do by[obj.metadata.namespace .. "/" .. obj.metadata.name] = obj end
  end
  return state
end

local function refs(sa)
  local names = {}
  for i, ref in ipairs(sa.imagePullSecrets or {}) do names[i] = ref.name end
  return names
end
faultlib.refs = refs

-- What went wrong in the history since `before` (faultlib.state()), as a
-- list of messages: a ServiceAccount version without an entry it had
-- before the run (first, in order) or in its version before (nothing here
-- removes entries: one gone is a lost update), or with one twice, or one
-- naming a Secret that did not exist then, a ServiceAccount or Secret deleted, a Secret version empty or
-- holding data other than one of allowed["ns/name"] (a set of base64
-- values; Secrets not in it are not xcsreg's and must not change at all).
function faultlib.violations(history, before, allowed)
  local found = {}
  local function bad(fmt, ...) found[#found + 1] = string.format(fmt, ...) end
  local exists, last = {}, {} -- last["ns/sa"]: the entries of its version before
  for key in pairs(before.Secret) do exists[key] = true end
  for _, h in ipairs(history) do
    local key = h.namespace .. "/" .. h.name
    if h.op == "delete" and (h.kind == "Secret" or h.kind == "ServiceAccount") then
      bad("#%d: %s %s deleted", h.seq, h.kind, key)
      exists[key] = nil
    elseif h.kind == "Secret" then
      local data = h.object.data
      local value = data and data[".dockerconfigjson"]
      if data == nil or next(data) == nil then
        bad("#%d: Secret %s stored empty", h.seq, key)
      elseif not allowed[key] then
        bad("#%d: Secret %s is not xcsreg's but was written", h.seq, key)
      elseif not allowed[key][value] then
        bad("#%d: Secret %s holds data from no source", h.seq, key)
      end
      local old = before.Secret[key]
      if old and old.metadata.uid ~= h.object.metadata.uid then bad("#%d: Secret %s replaced (new uid)", h.seq, key) end
      exists[key] = true
    elseif h.kind == "ServiceAccount" then
      local names, listed = refs(h.object), {}
      for _, name in ipairs(names) do
        if listed[name] then bad("#%d: ServiceAccount %s lists %s twice", h.seq, key, name) end
        listed[name] = true
        if not exists[h.namespace .. "/" .. name] then
          bad("#%d: ServiceAccount %s lists %s, a Secret that does not exist", h.seq, key, name)
        end
      end
      local had = before.ServiceAccount[key] and refs(before.ServiceAccount[key]) or {}
      for i, name in ipairs(had) do
        if names[i] ~= name then
          bad("#%d: ServiceAccount %s lost its entry %s, or moved it (now %s)", h.seq, key, name, table.concat(names, ","))
        end
      end
      for _, name in ipairs(last[key] or {}) do
        if not listed[name] then
          bad("#%d: ServiceAccount %s lost entry %s of its version before (now %s)", h.seq, key, name,
            table.concat(names, ","))
        end
      end
      last[key] = names
    end
  end
  return found
end

-- How the state differs from the desired one, as a list of messages:
-- want.secrets["ns/name"] = base64 data, want.refs["ns/sa"] = {names...}
-- in any order (faultlib.violations checks that old entries stay first).
function faultlib.differences(state, want)
  local found = {}
  for key, data in pairs(want.secrets) do
    local s = state.Secret[key]
    if not s then
      found[#found + 1] = "Secret " .. key .. " missing"
    elseif s.data[".dockerconfigjson"] ~= data or s.type ~= secrets.TYPE or not secrets.managed(s) then
      found[#found + 1] = "Secret " .. key .. " not as desired"
    end
  end
  for key, names in pairs(want.refs) do
    local got = state.ServiceAccount[key] and refs(state.ServiceAccount[key]) or {}
    local sorted_got, sorted_want = table.move(got, 1, #got, 1, {}), table.move(names, 1, #names, 1, {})
    table.sort(sorted_got)
    table.sort(sorted_want)
    if table.concat(sorted_got, ",") ~= table.concat(sorted_want, ",") then
      found[#found + 1] = string.format("ServiceAccount %s lists %s, not %s", key, table.concat(got, ","),
        table.concat(names, ","))
    end
  end
  table.sort(found)
  return found
end

-- The writes in a request log ("POST /api/v1/...", ...).
function faultlib.writes(log)
  local list = {}
  for _, e in ipairs(log) do
    if e.method ~= "GET" then list[#list + 1] = e.method .. " " .. e.path end
  end
  return list
end

return faultlib
