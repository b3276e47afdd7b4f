-- needs: none
-- The README's crontab line is the shipped cron file's (#12 item 20): a
-- host-level -q (`xcsreg -q run ...`) does not silence setup.lua, whose
-- output cron would mail every run.
local t = require "test"

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end

-- "run setup.lua ARGS" of a crontab line (after the schedule and user), --lock X left out.
local function command(line)
  local cmd = line:match("^%s*[%d*/,-]+%s+[%d*/,-]+%s+%S+%s+%S+%s+%S+%s+%S+%s+(xcsreg.*)$")
  if not cmd then return nil end
  return (cmd:gsub("%s+%-%-lock%s+%S+", ""))
end

local readme, cron
for line in read("README.md"):gmatch("[^\n]+") do
  if line:find("run setup.lua", 1, true) and command(line) then readme = command(line) end
end
for line in read("scripts/cron/xcsreg.cron"):gmatch("[^\n]+") do
  if line:find("run setup.lua", 1, true) and command(line) then cron = command(line) end
end
t.ok(readme ~= nil and cron ~= nil, "a setup.lua crontab line in both", tostring(readme) .. " / " .. tostring(cron))
t.eq(readme, cron, "the README's crontab line runs what the shipped cron file runs")
t.ok(cron and cron:find("run setup.lua -q", 1, true) ~= nil, "-q is setup.lua's, after the script name")
return t.done()
