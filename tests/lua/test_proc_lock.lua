-- proc.lock: one run at a time, a bounded wait, released on close.
local t = require "test"
local proc = require "proc"

local dir = os.getenv("XCSREG_TEST_TMP") or "/tmp"
local path = dir .. "/lock-test." .. tostring(os.time()) .. "." .. tostring(math.random(1e9))

local lk, err = proc.lock(path)
t.ok(lk ~= nil, "a free lock is taken", err)
local f = io.open(path)
local pid = f and f:read("l"); if f then f:close() end
t.ok(pid and pid:match("^%d+$") ~= nil, "the holder's pid is written into the lock file")

-- flock locks belong to an open file, so a second open conflicts even here
local again, msg = proc.lock(path)
t.eq(again, nil, "a held lock is not taken twice")
t.eq(msg, "lock " .. path .. " is held by another run (pid " .. pid .. ")", "the message names the file and the holder")

local st = proc.run { argv = { "flock", "-n", path, "true" } }
t.eq(st, 1, "another process sees the lock held (flock -n fails)")

local w, wmsg = proc.lock(path, { timeout = 0.3 })
t.ok(w == nil and wmsg:find("held by another run", 1, true), "waiting on a held lock ends after the timeout")

lk:unlock()
lk:unlock()
t.ok(true, "unlock twice is harmless")
st = proc.run { argv = { "flock", "-n", path, "true" } }
t.eq(st, 0, "after unlock another process can take it")

do
  local scoped <close> = assert(proc.lock(path))
  t.eq(proc.run { argv = { "flock", "-n", path, "true" } }, 1, "held inside the block")
end
t.eq(proc.run { argv = { "flock", "-n", path, "true" } }, 0, "released when the <close> variable goes out of scope")

-- a wait that ends because the holder lets go: a background flock holds it
-- for half a second, and this run waits up to five
proc.run { argv = { "sh", "-c", 'flock -n "$1" sleep 0.5 >/dev/null 2>&1 & sleep 0.2', "sh", path } }
t.eq(proc.run { argv = { "flock", "-n", path, "true" } }, 1, "the background holder has it")
local got, gmsg = proc.lock(path, { timeout = 5 })
t.ok(got ~= nil, "a waiting run takes the lock once the holder exits", gmsg)
if got then got:unlock() end

t.fails("cannot open lock file /nonexistent-dir/x.lock: No such file or directory",
  "a lock file that cannot be created is an error naming it", proc.lock, "/nonexistent-dir/x.lock")
t.raises("unknown option 'wait'", "unknown options raise", proc.lock, path, { wait = 1 })
t.raises("bad argument #1 to 'proc.lock' (string expected, got no value)", "the path is required", proc.lock)
os.remove(path)
return t.done()
