-- scripts/systemd/ and scripts/cron/: systemd-analyze verify and its security score, the timer's schedule, the crontab's fields, and the flags of every command.
-- needs: none
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/deployfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "deploylib"
local proc = require "proc"

local function run(argv)
  local code, out, err = proc.run { argv = argv, timeout = 60, env = { LC_ALL = "C", SYSTEMD_COLORS = "0" } }
  assert(code, out)
  return code, out, err
end
local function words(s)
  local list = {}
  for w in s:gmatch("%S+") do list[#list + 1] = w end
  return list
end
local function dirname(p) return p:match("^(.*)/[^/]*$") end

-- A unit file as { [section] = { [key] = { value, ... } } }.
local function unit(path)
  local sections, current = {}, nil
  for line in lib.read(path):gmatch("[^\n]+") do
    local section = line:match("^%[(.+)%]$")
    if section then
      current = {}
      sections[section] = current
    elseif not line:find("^[#;]") then
      local k, v = line:match("^(%w+)=(.*)$")
      assert(k and current, path .. ": cannot read line: " .. line)
      current[k] = current[k] or {}
      table.insert(current[k], v)
    end
  end
  return sections
end

-- ---- xcsreg.service ----
local service = unit("scripts/systemd/xcsreg.service")
local s = service.Service
local function one(key) return s[key] and s[key][1] end
t.eq({ one("Type"), one("User"), one("Group") }, { "oneshot", "xcsreg", "xcsreg" }, "service: oneshot, a dedicated user")
for key, want in pairs { NoNewPrivileges = "yes", ProtectSystem = "strict", ProtectHome = "yes", PrivateTmp = "yes",
  PrivateDevices = "yes", RestrictSUIDSGID = "yes", CapabilityBoundingSet = "" } do
  t.eq(one(key), want, "service: " .. key .. "=" .. want)
end
local exec = words(one("ExecStart"))
t.eq(exec[1], "/usr/local/bin/xcsreg", "service: runs the installed binary (make install)")
table.remove(exec, 1)
local check = assert(lib.check_args(exec))
t.eq({ check.script, check.unknown }, { "setup.lua", {} }, "service: setup.lua, with flags it takes")
t.ok(exec[3] == "-q" or exec[3] == "--quiet", "service: -q")
local lock, metrics = lib.arg_value(exec, "--lock"), lib.arg_value(exec, "--metrics-file")
t.eq(dirname(lock), "/run/" .. one("RuntimeDirectory"), "service: --lock in its RuntimeDirectory")
t.eq(dirname(metrics), (one("ReadWritePaths"):gsub("^%-", "")), "service: --metrics-file in its one ReadWritePaths (optional: \"-\")")
t.eq(one("UMask"), "0022", "service: the metrics file is readable by node_exporter")
local check_exec = words(s.ExecStart[2] or "")
table.remove(check_exec, 1)
local status_check = assert(lib.check_args(check_exec))
t.eq({ #s.ExecStart, status_check.script, status_check.unknown, check_exec[3],
  lib.arg_value(check_exec, "--config") }, { 2, "status.lua", {}, "-q", lib.arg_value(exec, "--config") },
  "service: then status.lua -q, with flags it takes, on the same site file")

-- ---- xcsreg.timer ----
local timer = unit("scripts/systemd/xcsreg.timer")
t.eq({ timer.Timer.Persistent[1], timer.Install.WantedBy[1], timer.Timer.Unit },
  { "true", "timers.target", nil }, "timer: Persistent, enabled by timers.target, starts xcsreg.service")
t.ok(timer.Timer.RandomizedDelaySec ~= nil, "timer: RandomizedDelaySec")
local code, out = run { "systemd-analyze", "calendar", "--iterations=3", timer.Timer.OnCalendar[1] }
local times = {}
for h, m in out:gmatch("%d%d%d%d%-%d%d%-%d%d (%d%d):(%d%d):00") do times[#times + 1] = tonumber(h) * 60 + tonumber(m) end
t.eq({ code, #times, (times[2] - times[1]) % 1440, (times[3] - times[2]) % 1440, times[1] % 60 },
  { 0, 3, 240, 240, 17 }, "timer: OnCalendar every 4 hours at minute 17, as the CronJob")

-- ---- systemd-analyze: verify, and the security exposure ----
local work = lib.tmp .. "/deploy-systemd"
run { "mkdir", "-p", work }
-- verify wants ExecStart's binary to exist: point it at the one under test
local text = lib.read("scripts/systemd/xcsreg.service"):gsub("ExecStart=/usr/local/bin/xcsreg",
  "ExecStart=" .. lib.xcsreg:gsub("%%", "%%%%"))
local f = assert(io.open(work .. "/xcsreg.service", "w"))
f:write(text)
f:close()
run { "cp", lib.root .. "/scripts/systemd/xcsreg.timer", work .. "/xcsreg.timer" }
local err
code, out, err = run { "systemd-analyze", "verify", work .. "/xcsreg.service", work .. "/xcsreg.timer" }
t.eq({ code, out, err }, { 0, "", "" }, "systemd-analyze verify: no error, no warning")
f = assert(io.open(work .. "/typo.service", "w"))
f:write((text:gsub("ProtectSystem=", "ProtectSytem=")))
f:close()
code, out, err = run { "systemd-analyze", "verify", work .. "/typo.service" }
t.ok(err:find("Unknown key 'ProtectSytem' in section [Service], ignoring.", 1, true) ~= nil,
  "systemd-analyze verify: a misspelt key would be caught", err)
code, out = run { "systemd-analyze", "security", "--offline=true", work .. "/xcsreg.service" }
local exposure = tonumber(out:match("Overall exposure level for xcsreg%.service: (%d+%.%d)"))
t.ok(exposure and exposure <= 2.0, "systemd-analyze security: exposure 2.0 or less (OK)", out:match("Overall[^\n]*"))

-- ---- the crontab ----
local jobs, vars = {}, {}
for line in lib.read("scripts/cron/xcsreg.cron"):gmatch("[^\n]+") do
  if not line:find("^%s*#") then
    local k, v = line:match("^(%u+)=(.*)$")
    if k then
      vars[k] = v
    else
      jobs[#jobs + 1] = words(line)
    end
  end
end
t.eq({ vars.KUBECONFIG, vars.PATH ~= nil, vars.MAILTO ~= nil }, { "/etc/xcsreg/kubeconfig", true, true },
  "cron: KUBECONFIG, PATH and MAILTO set")
local FIELD = { { 0, 59 }, { 0, 23 }, { 1, 31 }, { 1, 12 }, { 0, 7 } }
local function valid_field(v, range)
  for part in v:gmatch("[^,]+") do
    local base, step = part:match("^([^/]+)/?(%d*)$")
    local lo, hi = (base or ""):match("^(%d+)%-(%d+)$")
    lo, hi = tonumber(lo or base), tonumber(hi or base)
    if base == "*" then lo, hi = range[1], range[2] end
    if not lo or not hi or lo < range[1] or hi > range[2] or lo > hi or (step ~= "" and tonumber(step) < 1) then
      return false
    end
  end
  return true
end
t.eq(#jobs, 2, "cron: two jobs, setup.lua and status.lua")
for _, job in ipairs(jobs) do
  local ok = #job > 7
  for i = 1, 5 do ok = ok and valid_field(job[i], FIELD[i]) end
  local argv = table.move(job, 7, #job, 1, {})
  local c = assert(lib.check_args(argv))
  t.ok(ok and job[6] == "xcsreg" and argv[1] == "xcsreg", "cron: " .. c.script .. ": five time fields, user xcsreg")
  t.eq(c.unknown, {}, "cron: " .. c.script .. ": flags it takes")
  t.eq(argv[4], "-q", "cron: " .. c.script .. " -q, so that cron mails only problems")
  if c.script == "setup.lua" then
    t.eq({ job[1], job[2] }, { "17", "*/4" }, "cron: setup.lua every 4 hours at minute 17")
    t.eq(dirname(lib.arg_value(argv, "--lock")), "/var/lib/xcsreg",
      "cron: --lock in /var/lib/xcsreg (the user's own, not /run/lock that every user may write to)")
    t.eq(lib.arg_value(argv, "--metrics-file"), metrics, "cron: the same metrics file as the systemd unit")
  end
end
t.ok(not valid_field("*/0", FIELD[1]) and not valid_field("60", FIELD[1]) and valid_field("1-5,7", FIELD[5]),
  "cron: the field check can fail")

return t.done()
