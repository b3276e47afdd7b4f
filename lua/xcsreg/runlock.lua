-- xcsreg.runlock: one run at a time. cron or a timer may start a run while
-- the last one still works (a slow API server, a registry timing out); two
-- runs would mint twice and race each other's writes.
--
-- The default lock is in a directory only the runner owns and may write to
-- (file.private_dir): in a directory every user may write to (/run/lock,
-- /tmp), another user could hold the lock, or plant a symlink there, and
-- stop every run.
local file = require "file"
local log = require "log"
local proc = require "proc"

local runlock = {}

-- The numeric (effective) user id, for a directory of our own in /tmp
-- (the lock's here, xcsreg.credcache's too).
function runlock.uid()
  local f = io.open("/proc/self/status")
  local status = f and f:read("a")
  if f then f:close() end
  return status and status:match("\nUid:%s*%d+%s+(%d+)") or "unknown"
end

-- Where the lock is when --lock does not say: the first of these whose
-- directory can be made: /run/xcsreg/lock for root, else
-- $XDG_RUNTIME_DIR/xcsreg/lock; then /tmp/xcsreg-UID/lock. env: os.getenv
-- or a stand-in.
function runlock.candidates(env)
  local id = runlock.uid()
  local list = {}
  if id == "0" then
    list[1] = "/run/xcsreg/lock"
  else
    local runtime = env("XDG_RUNTIME_DIR")
    if runtime and runtime ~= "" then list[#list + 1] = runtime:gsub("/+$", "") .. "/xcsreg/lock" end
  end
  list[#list + 1] = "/tmp/xcsreg-" .. id .. "/lock"
  return list
end

-- Takes the lock at path (nil: the default; "none": no lock), waiting up to
-- timeout seconds for another run to let go. Returns the lock (false for
-- "none"), or nil, message and whether another run holds it.
function runlock.take(path, timeout)
  if path == "none" then return false end
  local err
  for _, p in ipairs(path and { path } or runlock.candidates(os.getenv)) do
    local ok = true
    if not path then
      -- a directory that cannot be made: the next one; one that is not ours: stop
      ok, err = file.private_dir(p:match("^(.*)/"))
      if not ok and err:find("^refusing ") then
        return nil, err .. " (it holds the default lock; remove it, or give --lock a file of your own)", false
      end
    end
    if ok then
      local lock
      lock, err = proc.lock(p, { timeout = timeout > 0 and timeout or nil }) -- nil: no wait
      if lock then
        log.debug("lock %s taken", p)
        return lock
      end
      if err:find(" is held by another run", 1, true) then return nil, err, true end
      if path == nil and err:find(" is owned by ", 1, true) then return nil, err, false end
    end
  end
  return nil, err, false
end

return runlock
