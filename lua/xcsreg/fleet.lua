-- xcsreg.fleet: one run over several clusters (README.md, "Fleets").
--
-- A fleet is the site file's `clusters`, or --context given more than once.
-- Its run parses the flags and the site file once, here, then runs the same
-- script once per cluster, each in a process of its own: the host started
-- again as it was started (/proc/self/exe and the host's options, which
-- main.c leaves in arg[-N..-1]), with that cluster's --kubeconfig and
-- --context, which make a run one cluster's whatever the site file says.
-- A process per cluster, not a client per cluster in this one: a cluster
-- that hangs, answers garbage or makes its run raise is that process's
-- problem, and --cluster-timeout ends it without touching the others.
--
-- What the processes share is decided here: the lock is this run's (the
-- clusters' runs get --lock none, so a second fleet run waits for the
-- whole of the first); a password given on the command line or stdin
-- reaches them on their stdin (--docker-password-stdin), never in their
-- argv or environment; the other sources they read themselves, from the
-- environment and files they inherit. Each writes its metrics to a file in
-- a private directory; this run writes the one --metrics-file, every
-- series labelled with its cluster, once all have ended.
local cli = require "xcsreg.cli"
local file = require "file"
local json = require "json"
local log = require "log"
local metrics = require "xcsreg.metrics"
local proc = require "proc"
local script = require "xcsreg.script"
local time = require "xcsreg.time"

local fleet = {}
local EXIT = script.EXIT

fleet.MAX_CONCURRENCY = 8
-- Beyond --run-timeout: a cluster's run may spend up to 60 s in the site
-- file (its wall-time limit) before its --run-timeout starts.
fleet.TIMEOUT_MARGIN = 60
-- After SIGTERM, the time a cluster's run has to stop cleanly before SIGKILL.
fleet.KILL_AFTER = 10

-- The clusters of a run, or nil when it is one cluster's. opts: the parsed
-- flags; plan: the plan (its clusters from the site file). --context or
-- --kubeconfig overrides the site file's clusters, as -n does its
-- namespaces: one --context is that one cluster, several a fleet of those
-- contexts of the one kubeconfig. A site file naming one cluster makes a
-- run of it alone, as if its flags had been given (opts changed). Returns
-- clusters | nil, and a message for a usage error.
function fleet.clusters(opts, plan)
  local contexts = opts.context or {}
  if #contexts > 1 then
    local list, seen = {}, {}
    for i, c in ipairs(contexts) do
      if seen[c] then return nil, string.format('--context: "%s" given twice', c) end
      seen[c] = true
      list[i] = { name = c, context = c, kubeconfig = opts.kubeconfig }
    end
    return list
  end
  local file_clusters = plan and plan.clusters
  if #contexts == 1 or opts.kubeconfig or not file_clusters then return nil end
  if #file_clusters == 1 then
    opts.kubeconfig, opts.context = file_clusters[1].kubeconfig, file_clusters[1].context and { file_clusters[1].context }
    return nil
  end
  return file_clusters
end

-- The host's command line up to the script: the program, its options, "run".
local function host_argv()
  local first = -1
  while arg[first - 1] ~= nil do first = first - 1 end
  local argv = { "/proc/self/exe" } -- this very binary, even if its file was replaced since
  for i = first + 1, -1 do argv[#argv + 1] = arg[i] end
  argv[#argv + 1] = arg[0]
  return argv
end

-- The checked fleet flags: concurrency, timeout (seconds) | nil, message.
local function fleet_options(opts, n)
  local concurrency = math.tointeger(tonumber(opts["cluster-concurrency"] or math.min(n, fleet.MAX_CONCURRENCY)))
  if not concurrency or concurrency < 1 or concurrency > script.MAX_CONCURRENCY then
    return nil, string.format('--cluster-concurrency: must be a whole number from 1 to %d, not "%s"',
      script.MAX_CONCURRENCY, opts["cluster-concurrency"])
  end
  local copts, err = script.client_options(opts)
  if not copts then return nil, err end
  local timeout
  timeout, err = cli.seconds(opts, "cluster-timeout", copts.deadline + fleet.TIMEOUT_MARGIN)
  if not timeout then return nil, err end
  return concurrency, timeout
end

-- A line of cluster name's stderr, made ours: prefixed, or with a
-- "cluster" field first when lines are JSON (--log-format json).
local function error_line(name, line)
  if log.format() == "json" and line:sub(1, 1) == "{" then
    return '{"cluster":' .. json.encode(name) .. (line == "{}" and "" or ",") .. line:sub(2)
  end
  return name .. ": " .. line
end

-- Says what went wrong with cluster name's run, as its own lines say it.
local function cluster_error(name, msg)
  msg = log.redact(msg)
  if log.format() == "json" then
    msg = json.encode { cluster = name, level = "error", msg = msg, time = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  else
    msg = name .. ": error: " .. msg
  end
  io.stderr:write(msg, "\n")
end

-- Runs the script for each cluster, `concurrency` at once, each stopped
-- after `timeout` seconds; how = { flags = the script's flag spec, opts =
-- its parsed flags, stdin = text for each (or nil), extra = function(o, i)
-- changing o, the flags of cluster i's run, stdout = function(c, line) }.
-- Every stderr line is logged prefixed as it comes; once all have ended,
-- a line names the clusters that failed. Returns the results in cluster
-- order: {
-- code = exit status, stdout = { lines } when how.stdout is nil, errors = {
-- stderr lines }, timed_out = bool }.
function fleet.each(clusters, concurrency, timeout, how)
  local base = host_argv()
  local results, running, procs, next_i = {}, {}, {}, 1
  local function start(i)
    local c = clusters[i]
    local o = {}
    for k, v in pairs(how.opts) do o[k] = v end
    o.kubeconfig, o.context = c.kubeconfig, c.context and { c.context }
    o["cluster-concurrency"], o["cluster-timeout"] = nil, nil
    if how.extra then how.extra(o, i) end
    local args = cli.args(how.flags, o)
    local argv = table.move(args, 1, #args, #base + 1, table.move(base, 1, #base, 1, {}))
    results[i] = { code = EXIT.FAILED, stdout = {}, errors = {} }
    local p, err = proc.spawn { argv = argv, stdin = how.stdin, keep_hidden_env = true }
    if not p then
      cluster_error(c.name, err)
      results[i].errors[1] = err
      return
    end
    running[p] = { i = i, deadline = proc.clock() + timeout }
    procs[#procs + 1] = p
  end
  local function fill()
    while #procs < concurrency and next_i <= #clusters do
      start(next_i)
      next_i = next_i + 1
    end
  end
  fill()
  while #procs > 0 do
    local soonest = math.huge
    for _, r in pairs(running) do soonest = math.min(soonest, r.deadline) end
    local p, kind, value = proc.wait(procs, math.max(0, soonest - proc.clock()))
    if p then
      local r = running[p]
      local c, res = clusters[r.i], results[r.i]
      if kind == "stdout" then
        if how.stdout then how.stdout(c, value) else res.stdout[#res.stdout + 1] = value end
      elseif kind == "stderr" then
        res.errors[#res.errors + 1] = value
        io.stderr:write(error_line(c.name, value), "\n")
      else
        res.code = res.timed_out and EXIT.FAILED or value
        running[p] = nil
        for j, q in ipairs(procs) do if q == p then table.remove(procs, j) break end end
        p:close()
        fill()
      end
    end
    local now = proc.clock()
    for q, r in pairs(running) do
      if now >= r.deadline then
        local res, name = results[r.i], clusters[r.i].name
        if not res.timed_out then
          local msg = string.format("still running after %gs (--cluster-timeout): stopped", timeout)
          cluster_error(name, msg)
          res.errors[#res.errors + 1], res.timed_out = msg, true
          q:kill("TERM")
          r.deadline = now + fleet.KILL_AFTER
        else
          q:kill("KILL")
          r.deadline = math.huge
        end
      end
    end
  end
  local failed = {}
  for i, r in ipairs(results) do
    if r.code ~= EXIT.OK then failed[#failed + 1] = string.format("%s (exit %d)", clusters[i].name, r.code) end
  end
  if #failed > 0 then
    log.error("%d of %d clusters failed: %s", #failed, #clusters, table.concat(failed, ", "))
  end
  return results
end

-- The exit code of a fleet: the clusters' common one, else 1 (one failed,
-- or one found a usage error that the others did not).
function fleet.code(results)
  local code = results[1] and results[1].code
  for _, r in ipairs(results) do
    if r.code ~= code then return EXIT.FAILED end
  end
  return code or EXIT.OK
end

-- What setup.lua's run does for a fleet, under the lock this process holds:
-- exit code. plan: as checked here (a plan of flags holds its password).
function fleet.setup(opts, clusters, plan, flags)
  local concurrency, timeout = fleet_options(opts, #clusters)
  if not concurrency then return EXIT.USAGE, timeout end
  if plan.xnat and plan.xnat.hubs then
    return EXIT.USAGE, "xnat.hubs with several clusters: XNAT's image hubs belong to one XNAT, so to one "
      .. "cluster's run; run that cluster with --context, or set hubs = false"
  end
  local how = { flags = flags, opts = opts, stdout = function(c, line) io.write(c.name, ": ", line, "\n") end }
  -- the password the command line gave, or stdin (read once, here)
  if opts["docker-password"] or opts["docker-password-stdin"] then
    how.stdin = plan.secrets[1].registries[1].password
  end
  local path, dir = opts["metrics-file"], nil
  if path then
    dir = os.tmpname() -- a name no other file has; the directory made there is checked as ours
    os.remove(dir)
    local ok, err = file.private_dir(dir)
    if not ok then return EXIT.FAILED, "--metrics-file: " .. err end
  end
  how.extra = function(o, i)
    o.lock, o["docker-password"], o["docker-password-stdin"] = "none", nil, how.stdin and true or nil
    o["metrics-file"] = dir and string.format("%s/%d.prom", dir, i) or nil
  end
  local results = fleet.each(clusters, concurrency, timeout, how)
  local code = fleet.code(results)
  if path and opts["dry-run"] ~= "server" then
    local runs = {}
    for i, c in ipairs(clusters) do
      local part = dir .. "/" .. i .. ".prom"
      local f = io.open(part)
      local run = f and metrics.parse(f:read("a"))
      if f then f:close() end
      os.remove(part)
      -- a cluster's run that wrote none (stopped, or it never started) failed
      run = run or { time = time.now(), success = false, expiries = {} }
      run.name, run.success = c.name, run.success and results[i].code == EXIT.OK
      runs[i] = run
    end
    local ok, err = metrics.write(path, { clusters = runs })
    if not ok then
      log.error("--metrics-file: %s", err)
      if code == EXIT.OK then code = EXIT.FAILED end
    end
  end
  if dir then os.remove(dir) end
  return code
end

-- What status.lua's run does for a fleet: exit code. Text: each cluster's
-- report once it is complete, every line prefixed with its name. JSON (-o
-- json): { ok = every cluster's exit code 0, clusters = { { name, context,
-- kubeconfig, exitCode, errors = its stderr lines, status = its own -o json
-- document, or null when it printed none } } }.
function fleet.status(opts, clusters, flags)
  local concurrency, timeout = fleet_options(opts, #clusters)
  if not concurrency then return EXIT.USAGE, timeout end
  local results = fleet.each(clusters, concurrency, timeout, { flags = flags, opts = opts })
  if opts.output == "json" then
    local doc = { ok = true, clusters = {} }
    for i, c in ipairs(clusters) do
      local r = results[i]
      local status = #r.stdout > 0 and json.decode(table.concat(r.stdout, "\n")) or json.null
      doc.ok = doc.ok and r.code == EXIT.OK
      doc.clusters[i] = { name = c.name, context = c.context or json.null, kubeconfig = c.kubeconfig or json.null,
                          exitCode = r.code, errors = json.array(r.errors), status = status or json.null }
    end
    io.write(json.encode(doc, { indent = 2 }), "\n")
  else
    for i, c in ipairs(clusters) do
      for _, line in ipairs(results[i].stdout) do io.write(c.name, ": ", line, "\n") end
    end
  end
  return fleet.code(results)
end

return fleet
