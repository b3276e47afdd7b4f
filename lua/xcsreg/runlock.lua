-- xcsreg.runlock: one run at a time. cron or a timer may start a run while
-- the last one still works (a slow API server, a registry timing out); two
-- runs would mint twice and race each other's writes.
local log = require "log"
local proc = require "proc"

local runlock = {}

-- The numeric user id, for a lock file of our own in /tmp.
local function uid()
  local f = io.open("/proc/self/status")
  local status = f and f:read("a")
  if f then f:close() end
  return status and status:match("\nUid:%s*(%d+)") or "unknown"
end

-- Where the lock is when --lock does not say: the first of these where the
-- lock file can be made. env: os.getenv or a stand-in.
function runlock.candidates(env)
  local list = { "/run/lock/xcsreg.lock" }
  local runtime = env("XDG_RUNTIME_DIR")
  if runtime and runtime ~= "" then list[#list + 1] = runtime .. "/xcsreg.lock" end
  list[#list + 1] = "/tmp/xcsreg-" .. uid() .. ".lock"
  return list
end

-- Takes the lock at path (nil: the default; "none": no lock), waiting up to
-- timeout seconds for another run to let go. Returns the lock (false for
-- "none"), or nil, message and whether another run holds it.
function runlock.take(path, timeout)
  if path == "none" then return false end
  local err
  for _, p in ipairs(path and { path } or runlock.candidates(os.getenv)) do
    local lock
    lock, err = proc.lock(p, { timeout = timeout > 0 and timeout or nil }) -- nil: no wait
    if lock then
      log.debug("lock %s taken", p)
      return lock
    end
    if err:find(" is held by another run", 1, true) then return nil, err, true end
  end
  return nil, err, false
end

return runlock
