-- Fleets (#14): one run of setup.lua and status.lua over three simulators:
-- every cluster written, output prefixed by cluster, one exit code, metrics
-- labelled by cluster; a cluster down or hanging does not stop the others;
-- --context repeated; a bad clusters entry exits 2 before any request.
-- needs: fleet
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local base64 = require "base64"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"
local simctl = require "simctl"

local N = 3
local sims = {}
for i = 1, N do
  sims[i] = { api = os.getenv("XCSREG_SIM" .. i .. "_API"), control = os.getenv("XCSREG_SIM" .. i .. "_CONTROL"),
              dir = os.getenv("XCSREG_SIM" .. i .. "_DIR") }
  assert(sims[i].control, "run under tests/lib/with-fleet")
end
-- simctl talks to one simulator: the one chosen here
local function on(i) simctl.control = sims[i].control end

local PW = t.secret("fleet-static-pw-7d41c9")
local STDIN_PW = t.secret("fleet-stdin-pw-2a90e3")
local NAMESPACES = { "apps", "jobs" }
local function reset_all()
  for i = 1, N do
    on(i)
    simctl.reset()
    for _, ns in ipairs(NAMESPACES) do simctl.namespace(ns) end
  end
end

-- One kubeconfig, a context per simulator (c1, c2, c3) and one for a
-- cluster that is down (nothing listens on port 1).
local f = assert(io.open(simctl.certs .. "/ca.crt"))
local ca = base64.encode(f:read("a"))
f:close()
local function kubeconfig(servers)
  local parts = { "apiVersion: v1\nkind: Config\nclusters:\n" }
  for name, server in pairs(servers) do
    parts[#parts + 1] = string.format("- name: %s\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n",
      name, server, ca)
  end
  parts[#parts + 1] = "users:\n- name: admin\n  user:\n    token: admin-token\ncontexts:\n"
  for name in pairs(servers) do
    parts[#parts + 1] = string.format("- name: %s\n  context:\n    cluster: %s\n    user: admin\n    namespace: default\n",
      name, name)
  end
  return table.concat(parts) .. "current-context: c1\n"
end
local KUBECONFIG = lib.write("fleet.kubeconfig", kubeconfig {
  c1 = sims[1].api, c2 = sims[2].api, c3 = sims[3].api, down = "https://127.0.0.1:1" })

local sites = 0
local function site(clusters, extra)
  sites = sites + 1
  return lib.write("fleet-site-" .. sites .. ".lua", string.format([[
return { clusters = %s, namespaces = { "apps", "jobs" }, service_accounts = { "default" },
  registries = { { secret = "reg", server = "reg.example.org", username = "u", password_env = "FLEET_PW" } }, %s }
]], clusters, extra or ""))
end
local CLUSTERS = string.format([[{ { context = "c1" }, { context = "c2", kubeconfig = %q },
  { name = "third", kubeconfig = %q } }]], KUBECONFIG, sims[3].dir .. "/token.kubeconfig")

local function run(script, args, opts)
  opts = opts or {}
  local argv = { lib.xcsreg, "run", script }
  table.move(args, 1, #args, #argv + 1, argv)
  if script == "setup.lua" then
    argv[#argv + 1] = "--no-verify"
    argv[#argv + 1] = "--lock=" .. lib.tmp .. "/fleet.lock"
  end
  local env = { KUBECONFIG = KUBECONFIG, HOME = lib.tmp, FLEET_PW = PW, XCSREG_NOW = "1789992000" }
  local started = proc.clock()
  local status, out, err = proc.run { argv = argv, env = env, stdin = opts.stdin, timeout = 120 }
  assert(status, out)
  return status, out, err, proc.clock() - started
end

-- Whether simulator i holds Secret name in every namespace, listed by default.
local function written(i, name, password)
  on(i)
  for _, ns in ipairs(NAMESPACES) do
    local s = lib.get("Secret", ns, name)
    if not s then return false, ns .. ": no secret/" .. name end
    local auths = json.decode(base64.decode(s.data[".dockerconfigjson"])).auths
    if auths["reg.example.org"].password ~= password then return false, ns .. ": another password" end
    local listed = false
    for _, p in ipairs(lib.pull_secrets(ns, "default")) do listed = listed or p == name end
    if not listed then return false, ns .. ": default does not list " .. name end
  end
  return true
end

-- Whether every line of text starts with one of the names and ": " (but
-- the fleet's last line on stderr, naming the clusters that failed).
local function prefixed(text, names)
  for line in text:gmatch("[^\n]+") do
    local ok = line:find("^error: %d+ of %d+ clusters failed: ") ~= nil
    for _, n in ipairs(names) do ok = ok or line:sub(1, #n + 2) == n .. ": " end
    if not ok then return false, line end
  end
  return true
end

-- ---- three clusters from the site file ----
reset_all()
local prom = lib.tmp .. "/fleet.prom"
os.remove(prom)
local config = site(CLUSTERS)
local status, out, err = run("setup.lua", { "--config", config, "--metrics-file", prom })
t.eq(status, 0, "three clusters from the site file: exit 0")
for i = 1, N do t.ok(written(i, "reg", PW), "cluster " .. i .. ": the Secrets written and listed", select(2, written(i, "reg", PW))) end
t.ok(prefixed(out, { "c1", "c2", "third" }), "every output line is prefixed by its cluster", out)
for _, name in ipairs { "c1", "c2", "third" } do
  t.ok(out:find(name .. ": apps: secret/reg created\n", 1, true) and out:find(name .. ": jobs: serviceaccount/default configured\n", 1, true),
    name .. ": its lines, kubectl style", out)
end
t.eq(err, "", "nothing on stderr")
f = io.open(prom)
local text = f and f:read("a") or ""
if f then f:close() end
for _, name in ipairs { "c1", "c2", "third" } do
  t.ok(text:find('xcsreg_last_run_success{cluster="' .. name .. '"} 1\n', 1, true)
    and text:find('xcsreg_last_run_timestamp_seconds{cluster="' .. name .. '"} 1789992000\n', 1, true),
    name .. ": its metrics, labelled cluster=" .. name, text)
end
t.eq(select(2, text:gsub("# TYPE xcsreg_last_run_success gauge", "")), 1, "each metric's HELP and TYPE once")

status, out = run("setup.lua", { "--config", config })
t.eq(status, 0, "the same run again: exit 0")
t.ok(out:find("third: apps: secret/reg unchanged", 1, true), "... unchanged", out)

-- ---- status.lua over the fleet ----
status, out, err = run("status.lua", { "--config", config })
t.eq(status, 0, "status.lua over the fleet: exit 0")
t.ok(prefixed(out, { "c1", "c2", "third" }), "... every line prefixed by its cluster", out)
t.ok(out:find("c2: NAMESPACE", 1, true) ~= nil, "... each cluster's table", out)
local single = select(2, run("status.lua", { "--config", config, "--context", "c2", "-o", "json" }))
status, out = run("status.lua", { "--config", config, "-o", "json" })
t.eq(status, 0, "status.lua -o json over the fleet: exit 0")
local doc = json.decode(out)
t.eq(doc and doc.ok, true, "... ok")
t.eq(doc and #doc.clusters, 3, "... one entry per cluster")
local c2 = doc and doc.clusters[2] or {}
t.eq({ c2.name, c2.context, c2.kubeconfig, c2.exitCode, #c2.errors }, { "c2", "c2", KUBECONFIG, 0, 0 },
  "... name, context, kubeconfig, exitCode, errors")
t.eq(json.encode(c2.status), json.encode(json.decode(single)), "... its status: the single-cluster document")
t.eq(doc and doc.clusters[3].context, json.null, "... a cluster without a context: null")
status, out = run("status.lua", { "--config", site([[{ { context = "c1" } }]]), "-o", "json" })
t.eq(out, select(2, run("status.lua", { "--config", config, "--context", "c1", "-o", "json" })),
  "a site file of one cluster: the single-cluster document, byte for byte")

-- ---- --context repeated, a cluster down, a password from stdin ----
reset_all()
local flags = { "--kubeconfig", KUBECONFIG, "--context", "c1", "--context", "down", "--context", "c3",
  "-n", "apps", "-n", "jobs", "--secret-name", "reg2", "--docker-server", "reg.example.org",
  "--docker-username", "u", "--docker-password-stdin", "--run-timeout", "2", "--metrics-file", prom,
  "--cluster-concurrency", "1" }
status, out, err = run("setup.lua", flags, { stdin = STDIN_PW })
t.eq(status, 1, "--context c1 --context down --context c3: exit 1")
t.ok(written(1, "reg2", STDIN_PW) and written(3, "reg2", STDIN_PW),
  "... c1 and c3 written anyway, with the password from stdin")
t.ok(err:find("down: error: ", 1, true) and err:find("127.0.0.1:1", 1, true), "... the down cluster's error, prefixed", err)
t.ok(prefixed(err, { "down" }), "... and only its", err)
t.ok(err:find("\nerror: 1 of 3 clusters failed: down %(exit 1%)\n$"), "... the last line names it", err)
t.ok(prefixed(out, { "c1", "c3" }), "... the others' lines prefixed", out)
f = io.open(prom)
text = f and f:read("a") or ""
if f then f:close() end
t.ok(text:find('xcsreg_last_run_success{cluster="c1"} 1\nxcsreg_last_run_success{cluster="down"} 0\n'
  .. 'xcsreg_last_run_success{cluster="c3"} 1\n', 1, true), "... its metrics say it failed, the others' not", text)
status, _, err = run("setup.lua", { "--config", config, "--cluster-concurrency", "0" })
t.eq({ status, err:match("^error: ([^\n]*)") }, { 2, '--cluster-concurrency: must be a whole number from 1 to 100, not "0"' },
  "--cluster-concurrency 0: exit 2")

-- --log-format json: each of a cluster's lines an object with its name
local argv = { lib.xcsreg, "--log-format", "json", "run", "setup.lua", "--kubeconfig", KUBECONFIG, "--context", "c1",
  "--context", "down", "-n", "apps", "--secret-name", "reg3", "--docker-username", "u", "--docker-password-env",
  "FLEET_PW", "--run-timeout", "1", "--no-verify", "--lock=none" }
status, _, err = proc.run { argv = argv, env = { FLEET_PW = PW, HOME = lib.tmp } }
local objects, all_down = 0, true
for line in err:gmatch("[^\n]+") do
  local obj = json.decode(line)
  objects = objects + (obj and 1 or 0)
  all_down = all_down and obj ~= nil and (obj.cluster == "down" or obj.msg == "1 of 2 clusters failed: down (exit 1)")
end
t.ok(status == 1 and objects > 0 and all_down, "--log-format json: each line an object, its cluster named", err)
status, _, err = run("setup.lua", { "--config", config, "--kubeconfig", KUBECONFIG, "--context", "c1", "--context", "c1" })
t.eq({ status, err:match("^error: ([^\n]*)") }, { 2, '--context: "c1" given twice' }, "a context given twice: exit 2")

-- ---- a cluster that hangs ----
reset_all()
on(2)
simctl.fault { count = 100000, action = "delay", latency_ms = 2500 }
status, out, err, took = run("setup.lua", { "--config", config, "--cluster-timeout", "1", "--request-timeout", "60" })
on(2)
simctl.clear_faults()
t.eq(status, 1, "a cluster that hangs: exit 1", out .. err)
t.ok(took < 8, "... the run ends soon after --cluster-timeout, not after the request timeout", took)
t.ok(written(1, "reg", PW) and written(3, "reg", PW), "... the other clusters written")
t.ok(err:find("c2: error: still running after 1s (--cluster-timeout): stopped", 1, true), "... says it was stopped", err)
t.ok(prefixed(err, { "c2" }), "... every line of it prefixed", err)
t.ok(err:find("\nerror: 1 of 3 clusters failed: c2 %(exit 1%)\n$"), "... the last line names it", err)

-- ---- SIGTERM to the fleet's run: passed on to every cluster's, which stop cleanly ----
reset_all()
on(2)
simctl.fault { count = 100000, action = "delay", latency_ms = 2500 }
local p = assert(proc.spawn { argv = { lib.xcsreg, "run", "setup.lua", "--config", config, "--no-verify", "--lock=none" },
  env = { KUBECONFIG = KUBECONFIG, HOME = lib.tmp, FLEET_PW = PW } })
local stderr, code = {}, nil
local signalled = false
while true do
  local q, kind, value = proc.wait({ p }, signalled and 15 or 2)
  if not q then
    if kind ~= "timeout" or signalled then break end
    p:kill("TERM")
    signalled = true
  elseif kind == "stderr" then
    stderr[#stderr + 1] = value
  elseif kind == "exit" then
    code = value
  end
end
p:close()
on(2)
simctl.clear_faults()
err = table.concat(stderr, "\n")
t.eq(code, 143, "SIGTERM to a fleet's run: it exits 143")
t.ok(err:find("c2: error: interrupted by SIGTERM: exiting with status 143", 1, true)
  and err:find("\nerror: 1 of 3 clusters failed: c2 %(exit 143%)\nerror: interrupted by SIGTERM: exiting with status 143$"),
  "... the hanging cluster's run was told, and stopped cleanly", err)
t.ok(written(1, "reg", PW) and written(3, "reg", PW), "... the others had finished")

-- ---- a site file of one cluster: a one-cluster run ----
reset_all()
status, out = run("setup.lua", { "--config", site([[{ { context = "c2" } }]]) })
t.ok(status == 0 and out:find("^apps: secret/reg created\n") and written(2, "reg", PW),
  "a site file of one cluster: that cluster, its lines unprefixed", out)

-- ---- status.lua over a fleet with a cluster down ----
status, out, err = run("status.lua", { "--context", "c2", "--context", "down", "-o", "json", "--run-timeout", "1" })
doc = json.decode(out) or { clusters = {} }
local down = doc.clusters[2] or {}
t.eq({ status, doc.ok, doc.clusters[1] and doc.clusters[1].exitCode, down.name, down.exitCode, down.status and down.status.ok },
  { 1, false, 0, "down", 1, false }, "status.lua -o json, a cluster down: exit 1, its exitCode 1, its document not ok")
t.ok(#(down.errors or {}) > 0 and down.errors[1]:find("127.0.0.1:1", 1, true), "... its errors say why", err)

-- ---- bad clusters entries: exit 2, no request to any cluster ----
for i = 1, N do on(i) simctl.clear_log() end
for _, case in ipairs {
  { [[{ { context = "c1", namespace = "x" } }]], 'clusters[1]: unknown key "namespace" (known: context, kubeconfig, name)' },
  { [[{ { context = "c1" }, { name = "c1", context = "c2" } }]], 'clusters[2]: name "c1": already the name of clusters[1]' },
  { [[{ { context = "c1" }, { kubeconfig = "/nonexistent/k.yaml", name = "k" } }]],
    "clusters[2].kubeconfig: cannot read /nonexistent/k.yaml: No such file or directory" },
  { [[{ { kubeconfig = "/etc/hostname" } }]], "clusters[1]: name: needed when no context names the cluster" },
  { [[{ { name = "x" } }]], "clusters[1]: give its context, its kubeconfig, or both" },
  { [[{ { context = 3 } }]], "clusters[1].context: must be a string, not number" },
  { [[{ { context = "a b" } }]], 'clusters[1]: name "a b": must be at most 253 printable characters, no spaces' },
  { [[{}]], "clusters: must be a non-empty list" },
  { [[{ { context = "c1" }, x = 1 }]], 'clusters: must be a list, not a table with key "x"' },
} do
  local bad = site(case[1])
  status, _, err = run("setup.lua", { "--config", bad })
  t.ok(status == 2 and err:find(bad .. ": " .. case[2], 1, true), "clusters " .. case[1] .. ": exit 2 naming it", err)
end
status, _, err = run("status.lua", { "--config", site([[{ { context = "c1", typo = 1 } }]]) })
t.eq(status, 2, "status.lua: a bad clusters entry exits 2 too")
local requests = 0
for i = 1, N do on(i) requests = requests + #simctl.log() end
t.eq(requests, 0, "... and no request reached any cluster")

status, _, err = run("setup.lua", { "--config", site(CLUSTERS, [[xnat = { url = "https://xnat.example.org",
  username = "x", password_env = "FLEET_PW", hubs = true }]]) })
t.ok(status == 2 and err:find("xnat.hubs with several clusters", 1, true), "xnat.hubs in a fleet: exit 2", err)

return t.done()
