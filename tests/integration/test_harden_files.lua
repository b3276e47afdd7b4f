-- needs: none
-- Files in places other local users can write to (issue 12): the metrics
-- file (item 1), the lock (item 2), password files, tokenFile and client
-- keys (items 3 and 4). The other user is uid 65534.
local t = require "test"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
-- a directory other users can enter (the test directory is root's only)
local mktemp = io.popen("mktemp -d /tmp/xcsreg-harden-files.XXXXXX")
local TMP = mktemp:read("l")
mktemp:close()
assert(os.execute("chmod 755 '" .. TMP .. "'"))
local OTHER = 65534

local function sh(cmd) return os.execute(cmd) == true end
local function write(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(sh(("chmod %s '%s'"):format(mode or "600", path)))
  return path
end
local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
-- "TYPE OWNER MODE" of path, not following a symlink
local function stat(path)
  local p = io.popen("stat -c '%F %u %a' '" .. path .. "' 2>/dev/null")
  local s = p:read("l")
  p:close()
  return s
end
local function ls(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local s = p:read("a")
  p:close()
  return s
end

-- ---- item 1: the metrics file ----
local metrics = require "xcsreg.metrics"
local run = { time = 1700000000, success = true, expiries = {} }
local textdir = TMP .. "/textfile"
-- a collector directory another user may write to (the worst case)
assert(sh("mkdir -m 1777 '" .. textdir .. "'"))
local prom = textdir .. "/xcsreg.prom"

local victim = write(TMP .. "/victim", "root's own file\n", "600")
assert(sh(("ln -s '%s' '%s.tmp'"):format(victim, prom)))
local ok, err = metrics.write(prom, run)
t.eq({ ok, err, read(victim) }, { true, nil, "root's own file\n" },
  "metrics: a symlink planted at PATH.tmp does not make the run write its target")
t.eq(stat(prom), "regular file 0 644", "metrics: the file is a regular file of ours, mode 0644")
t.ok((read(prom) or ""):find("\nxcsreg_last_run_success 1\n", 1, true), "metrics: with the run's result", read(prom))

assert(sh(("rm -f '%s' '%s.tmp'"):format(prom, prom)))
write(prom .. ".tmp", "xcsreg_last_run_success 1\n", "666")
assert(sh(("chown %d '%s.tmp'"):format(OTHER, prom)))
run.success = false
ok, err = metrics.write(prom, run)
t.ok(ok and stat(prom) == "regular file 0 644" and (read(prom) or ""):find("\nxcsreg_last_run_success 0\n", 1, true),
  "metrics: a PATH.tmp pre-created by another user is not what gets published", stat(prom) .. "\n" .. tostring(err))
t.eq(ls(textdir), "xcsreg.prom\nxcsreg.prom.tmp\n", "metrics: no temporary file is left behind")

-- the old file stays whole when the new one cannot be written
ok, err = metrics.write(TMP .. "/no-such-dir/x.prom", run)
t.eq({ ok, err }, { nil, "cannot create a temporary file for " .. TMP .. "/no-such-dir/x.prom: No such file or directory" },
  "metrics: a directory that does not exist: nil and a message naming the file")

-- ---- item 2: the lock ----
-- as uid 65534: `xcsreg run SCRIPT` with env
local function as_other(script, env)
  local path = write(TMP .. "/" .. script:match("^%-%- (%S+)") .. ".lua", script, "644")
  return proc.run { argv = { "setpriv", "--reuid=" .. OTHER, "--regid=" .. OTHER, "--clear-groups", XCSREG, "run", path },
                    env = env }
end
local runlock = require "xcsreg.runlock"
local function env(vars) return function(name) return vars[name] end end
t.eq(runlock.candidates(env { XDG_RUNTIME_DIR = "/run/user/0" }), { "/run/xcsreg/lock", "/tmp/xcsreg-0/lock" },
  "lock: root's default is /run/xcsreg/lock (then a directory of its own in /tmp)")
local candidates = [[
-- candidates
local runlock = require "xcsreg.runlock"
print(table.concat(runlock.candidates(os.getenv), " "))
]]
local status, out, err = as_other(candidates, { XDG_RUNTIME_DIR = "/run/user/65534" })
t.eq({ status, out, err }, { 0, "/run/user/65534/xcsreg/lock /tmp/xcsreg-65534/lock\n", "" },
  "lock: another user's default is in $XDG_RUNTIME_DIR/xcsreg/ (then /tmp/xcsreg-UID/)")

-- the default lock of a user, in a directory of their own that take makes
local xdg = TMP .. "/xdg"
assert(sh(("mkdir -m 700 '%s' && chown %d '%s'"):format(xdg, OTHER, xdg)))
local take = [[
-- take
local runlock = require "xcsreg.runlock"
local lock, err = runlock.take(nil, 0)
print(lock and "taken" or err)
]]
status, out, err = as_other(take, { XDG_RUNTIME_DIR = xdg })
t.eq({ status, out, stat(xdg .. "/xcsreg"), stat(xdg .. "/xcsreg/lock") },
  { 0, "taken\n", "directory " .. OTHER .. " 700", "regular file " .. OTHER .. " 600" },
  "lock: the default lock's directory is made, mode 0700, the lock file in it 0600")
-- a directory planted where the default lock goes (here, by root for user 65534)
local planted = "/tmp/xcsreg-" .. OTHER
assert(sh(("rm -rf '%s' && mkdir -m 777 '%s'"):format(planted, planted)))
status, out, err = as_other(take, {})
t.eq(out, "refusing directory " .. planted .. ": it is owned by uid 0, not by this user (uid " .. OTHER .. ") (it holds "
  .. "the default lock; remove it, or give --lock a file of your own)\n",
  "lock: a default lock directory someone else made is refused, and the message says what to do")
assert(sh(("rm -rf '%s' && ln -s '%s' '%s'"):format(planted, xdg, planted)))
status, out, err = as_other(take, {})
t.ok(out:find("refusing directory " .. planted .. ": it is a symbolic link", 1, true) == 1, "lock: a symlink planted there too", out)
assert(sh(("rm -rf '%s'"):format(planted)))

-- root's default: in /run/xcsreg, which no other user can enter
local lock = assert(runlock.take(nil, 0))
t.eq(stat("/run/xcsreg"), "directory 0 700", "lock: /run/xcsreg is root's, mode 0700")
lock:unlock()
status = proc.run { argv = { "setpriv", "--reuid=" .. OTHER, "--regid=" .. OTHER, "--clear-groups",
                             "flock", "-n", "/run/xcsreg/lock", "true" } }
t.ok(status ~= 0, "lock: another user cannot open, let alone hold, root's default lock")

-- a lock file given with --lock that another user owns (they could hold it forever)
local theirs = write(TMP .. "/theirs.lock", "", "644")
assert(sh(("chown %d '%s'"):format(OTHER, theirs)))
t.fails("lock file " .. theirs .. " is owned by uid " .. OTHER .. ", not by this user (uid 0): another user could hold "
  .. "it and stop every run; remove it, or give --lock a file of your own", "lock: a lock file owned by another user is refused",
  proc.lock, theirs)
status, out, err = proc.run { argv = { XCSREG, "run", "setup.lua", "--secret-name", "s", "--docker-server", "r.example",
  "--docker-username", "u", "--docker-password-env", "FAKE_PASSWORD", "--lock", theirs, "-n", "ns" },
  env = { FAKE_PASSWORD = "fake-password-0", KUBECONFIG = TMP .. "/none" } }
t.eq({ status, err }, { 2, "error: --lock: lock file " .. theirs .. " is owned by uid " .. OTHER .. ", not by this user "
  .. "(uid 0): another user could hold it and stop every run; remove it, or give --lock a file of your own\n" },
  "lock: setup.lua exits 2 with that message, before contacting any cluster")

-- ---- items 3 and 4: password files, tokenFile, client keys ----
-- setup.lua --dry-run=client with a password file: status, stderr (nil, message after 10 s)
local function with_password_file(pw)
  local site = write(TMP .. "/site-" .. pw:gsub("[^%w]", "_") .. ".lua", 'return { registries = { { secret = "s", '
    .. 'server = "r.example", username = "u", password_file = "' .. pw .. '" } } }\n', "600")
  local status, out, err = proc.run { argv = { XCSREG, "run", "setup.lua", "--config", site, "--dry-run=client" },
                                      timeout = 10 }
  return status, status and err or out, site
end
local shared = TMP .. "/shared"  -- a directory the other user may write to
assert(sh(("mkdir -m 755 '%s' && chown %d '%s'"):format(shared, OTHER, shared)))
local root_only = write(TMP .. "/root-only", t.secret("fake-root-only-secret", "harden-root-only") .. "\n", "600")

local link = shared .. "/pw"
assert(sh(("ln -s '%s' '%s' && chown -h %d '%s'"):format(root_only, link, OTHER, link)))
local status, err, site = with_password_file(link)
t.eq({ status, err }, { 2, "error: " .. site .. ': registries[1] (secret "s"): password_file: cannot read ' .. link
  .. ": it is a symbolic link made by uid " .. OTHER .. " (not root, not this user): refusing to follow it\n" },
  "password_file: a symlink another user planted is not followed, exit 2")
-- a Kubernetes Secret volume: root's symlinks into ..data/
local volume = TMP .. "/volume"
assert(sh(("mkdir -p '%s/..data' && chmod 1777 '%s'"):format(volume, volume)))
write(volume .. "/..data/pw", "fake-password-0\n", "600")
assert(sh(("ln -s ..data/pw '%s/pw'"):format(volume)))
status, err = with_password_file(volume .. "/pw")
t.eq({ status, err }, { 0, "" }, "password_file: root's own symlink (a Secret volume's) is followed, no warning")

local fifo = TMP .. "/fifo"
assert(sh("mkfifo -m 600 '" .. fifo .. "'"))
status, err, site = with_password_file(fifo)
t.eq({ status, err }, { 2, "error: " .. site .. ': registries[1] (secret "s"): password_file: cannot read ' .. fifo
  .. ": a FIFO, not a regular file: refused (it could hang the run)\n" },
  "password_file: a FIFO is refused at once, naming the file (it hung the run)")
status, err, site = with_password_file("/dev/zero")
t.eq({ status, err }, { 2, "error: " .. site .. ': registries[1] (secret "s"): password_file: cannot read /dev/zero: '
  .. "a character device, not a regular file: refused (it could hang the run)\n" }, "password_file: a device is refused")

local changeable = write(TMP .. "/pw-666", "fake-password-0\n", "600")
assert(sh("chmod 622 '" .. changeable .. "'"))
status, err = with_password_file(changeable)
t.eq({ status, err }, { 0, "warning: password file " .. changeable .. " can be changed by other users (mode 0622): chmod 600 "
  .. changeable .. "\n" }, "password_file: writable by others: a warning")
local open_dir = TMP .. "/open"
assert(sh(("mkdir -m 777 '%s'"):format(open_dir)))
local in_open = write(open_dir .. "/pw", "fake-password-0\n", "600")
status, err = with_password_file(in_open)
t.eq({ status, err }, { 0, "warning: password file " .. in_open .. " is in a directory other users can write to ("
  .. open_dir .. ", mode 0777): they can replace it; move it, or chmod go-w " .. open_dir .. "\n" },
  "password_file: in a directory others can write to (not sticky): a warning")

-- kubeconfig tokenFile and client-key, through k8s.client in a child (a FIFO hung it)
local function client(user)
  local kc = write(TMP .. "/kc-" .. tostring(os.clock()):gsub("%.", "") .. ".yaml", "apiVersion: v1\nkind: Config\n"
    .. "current-context: c\nclusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
    .. "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: " .. user .. "}]\n", "600")
  local script = write(TMP .. "/client.lua", [[
local k8s = require "k8s"
local c, err = k8s.client { kubeconfig = ... }
print(c and "client" or tostring(err))
]], "600")
  local status, out, err = proc.run { argv = { XCSREG, "run", script, kc }, timeout = 10 }
  return status and err .. out or out, kc
end
local out, kc = client("{tokenFile: '" .. fifo .. "'}")
t.eq(out, kc .. ': user "u": tokenFile ' .. fifo .. ": a FIFO, not a regular file: refused (it could hang the run)\n",
  "tokenFile: a FIFO is refused at once, naming the file")
out, kc = client("{tokenFile: '" .. link .. "'}")
t.eq(out, kc .. ': user "u": tokenFile ' .. link .. ": it is a symbolic link made by uid " .. OTHER
  .. " (not root, not this user): refusing to follow it\n", "tokenFile: a symlink another user planted is refused")
local token = write(TMP .. "/token", t.secret("fake-token-file-token", "harden-token-file") .. "\n", "644")
out = client("{tokenFile: '" .. token .. "'}")
t.eq(out, "warning: tokenFile " .. token .. " can be read by other users (mode 0644): chmod 600 " .. token .. "\nclient\n",
  "tokenFile: readable by others: the warning password files get")
local key = write(TMP .. "/client.key", t.secret("fake-client-key", "harden-client-key") .. "\n", "644")
local cert = write(TMP .. "/client.crt", "fake-client-cert\n", "644")
out = client("{client-certificate: '" .. cert .. "', client-key: '" .. key .. "'}")
t.eq(out, "warning: client-key " .. key .. " can be read by other users (mode 0644): chmod 600 " .. key .. "\nclient\n",
  "client-key: readable by others: warned (the certificate is no secret: not)")
out, kc = client("{client-certificate: '" .. cert .. "', client-key: '" .. fifo .. "'}")
t.eq(out, "client-key " .. fifo .. ": a FIFO, not a regular file: refused (it could hang the run)\n",
  "client-key: a FIFO is refused")

os.execute("rm -rf '" .. TMP .. "'")
return t.done()
