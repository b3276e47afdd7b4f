-- xcsreg.rotation (when minted credentials are due, the annotations, the
-- messages), xcsreg.runlock and xcsreg.metrics, with a stand-in ECR source.
-- needs: none
local time = require "xcsreg.time"
local t = require "test"
local metrics = require "xcsreg.metrics"
local proc = require "proc"
local rotation = require "xcsreg.rotation"
local runlock = require "xcsreg.runlock"
local secrets = require "xcsreg.secrets"
local sources = require "xcsreg.sources"

local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

-- ---- times and durations ----
for _, epoch in ipairs { 0, 951782400, 951868799, 1700000000, 4107542400, 4107628799 } do
  local text = os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
  t.eq({ time.format(epoch), time.parse(text) }, { text, epoch }, "RFC 3339 both ways: " .. text)
end
t.eq(time.parse("2024-02-29T12:00:00Z"), 1709208000, "a leap day")
for _, bad in ipairs { "2024-02-29 12:00:00Z", "2024-02-29T12:00:00+01:00", "", "x" } do
  t.eq(time.parse(bad), nil, "not our format: " .. bad)
end
t.eq(time.parse(nil), nil, "no annotation")

local DURATION = 'must be a whole number of seconds, or a duration like "2h", "90m", "1h30m" or "3d"'
for _, c in ipairs { { 600, 600 }, { "2h", 7200 }, { "90m", 5400 }, { "1h30m", 5400 }, { "3d", 259200 },
                     { "45s", 45 }, { "1d2h3m4s", 93784 } } do
  t.eq(time.parse_duration(c[1]), c[2], "duration " .. tostring(c[1]))
end
for _, bad in ipairs { "2 hours", "2H", "h", "", "0h", "1.5h", 0, -5, 1.5, true } do
  t.eq({ time.parse_duration(bad) }, { nil, DURATION }, "not a duration: " .. tostring(bad))
end
t.eq(time.parse_duration(nil), nil, "no duration")
for _, c in ipairs { { 11520, "3h12m" }, { 1200, "20m" }, { 40, "40s" }, { 187200, "2d4h" }, { 18000, "5h0m" },
                     { 0, "0s" } } do
  t.eq(time.format_duration(c[1]), c[2], "format " .. c[1])
end

-- ---- when minted credentials are due ----
-- A stand-in for the ECR source: tokens valid 12 hours, counted.
local mints, fail = 0, nil
package.loaded["xcsreg.sources.ecr"] = { get = function(_, ctx)
  mints = mints + 1
  if fail then return nil, fail end
  return { username = "AWS", password = "fake-minted-" .. mints, expires_at = ctx.now + 43200, source = "ecr" }
end }
local function credentials(s, obj, now, force)
  sources.reset() -- each call a new run
  return rotation.credentials(s, obj, now, force)
end

local T0 = 1700000000
local SERVER = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
local ecr = { name = "ecr", registries = { { server = SERVER, email = "", source = { server = SERVER, ecr = {} } } } }
-- The Secret a run at `at` wrote for registries, as the cluster stores it.
local function stored(registries, at, expires_at, labels)
  local obj = secrets.desired("ecr", "ns", registries)
  obj.metadata.annotations = rotation.annotations(at, expires_at)
  if labels ~= nil then obj.metadata.labels = labels or nil end
  return obj
end

local regs, expires = credentials(ecr, false, T0)
t.eq({ regs, expires, mints }, { { { server = SERVER, username = "AWS", password = "fake-minted-1", email = "" } },
  T0 + 43200, 1 }, "no Secret yet: minted once, with the token's expiry")
local obj = stored(regs, T0, expires)
t.eq(obj.metadata.annotations, { ["xcsreg.io/rotated-at"] = "2023-11-14T22:13:20Z",
  ["xcsreg.io/expires-at"] = "2023-11-15T10:13:20Z" }, "annotations: rotated-at and expires-at")
t.eq(rotation.expires_at(obj), T0 + 43200, "the expiry read back")

regs, expires = credentials(ecr, obj, T0 + 3600)
t.eq({ regs[1].password, expires, mints }, { "fake-minted-1", T0 + 43200, 1 },
  "t0+1h: 11h of 12h left: the stored credential, the source not asked")
regs = credentials(ecr, obj, T0 + 6 * 3600)
t.eq({ regs[1].password, mints }, { "fake-minted-1", 1 }, "t0+6h: exactly half left: not yet")
regs, expires = credentials(ecr, obj, T0 + 6 * 3600 + 1)
t.eq({ regs[1].password, expires, mints }, { "fake-minted-2", T0 + 6 * 3600 + 1 + 43200, 2 },
  "t0+6h+1s: less than half left: minted")
regs = credentials(ecr, obj, T0 + 3600, true)
t.eq({ regs[1].password, mints }, { "fake-minted-3", 3 }, "--force-rotate: minted early")

local function mints_for(name, s, o, now)
  local before = mints
  credentials(s, o, now or T0 + 3600)
  t.eq(mints - before, 1, name)
end
local early = { name = "ecr", registries = { { server = SERVER, email = "", refresh_before = 12 * 3600,
  source = ecr.registries[1].source } } }
mints_for("refresh_before 12h with 11h left: minted", early, obj)
mints_for("a Secret xcsreg did not make: minted", ecr, stored({ { server = SERVER, username = "AWS",
  password = "fake-minted-1" } }, T0, T0 + 43200, false))
mints_for("another registry in the stored Secret: minted", ecr, stored({ { server = SERVER, username = "AWS",
  password = "fake-minted-1" }, { server = "other.example", username = "u", password = "fake-pw" } }, T0, T0 + 43200))
mints_for("another user in the stored Secret than the site file's: minted", { name = "ecr", registries = { {
  server = SERVER, username = "AWS2", email = "", source = ecr.registries[1].source } } }, obj)
local no_expiry = stored({ { server = SERVER, username = "AWS", password = "fake-minted-1" } }, T0, nil)
mints_for("no recorded expiry (a source that tells none): minted every run", ecr, no_expiry)
mints_for("an expired credential: minted", ecr, obj, T0 + 50000)
mints_for("an expiry before the rotation (no lifetime): minted", ecr, stored({ { server = SERVER, username = "AWS",
  password = "fake-minted-1" } }, T0, T0 - 1))
mints_for("a stored entry without a password: minted", ecr, stored({ { server = SERVER, username = "AWS",
  password = "" } }, T0, T0 + 43200))

-- a Secret with a static password and a minted one: the minted one is kept while not due
local mixed = { name = "ecr", registries = { ecr.registries[1],
  { server = "ghcr.io", username = "bot", password = "fake-new-static", email = "" } } }
local before = mints
regs, expires = credentials(mixed, stored({ { server = SERVER, username = "AWS", password = "fake-minted-1" },
  { server = "ghcr.io", username = "bot", password = "fake-old-static" } }, T0, T0 + 43200), T0 + 3600)
t.eq({ regs[1].password, regs[2].password, expires, mints - before }, { "fake-minted-1", "fake-new-static",
  T0 + 43200, 0 }, "static and minted in one Secret: the static password as read, the minted one kept")

fail = "ecr: AWS error (ServerException): simulated outage"
t.eq({ credentials(ecr, obj, T0 + 7 * 3600) }, { nil, fail }, "a failed mint is the source's message")
fail = nil
package.loaded["xcsreg.sources.ecr"].get = function() return { username = "AWS", password = "", source = "ecr" } end
t.eq({ credentials(ecr, false, T0) }, { nil, "ecr: the password is empty" }, "an empty credential is refused")
package.loaded["xcsreg.sources.ecr"].get = function() return { username = "a:b", password = "x", source = "ecr" } end
t.eq({ credentials(ecr, false, T0) }, { nil, "ecr: the user name contains ':'" }, "a user name with ':' is refused")
package.loaded["xcsreg.sources.ecr"].get = function() return { username = "AWS", password = "x", source = "ecr" } end
t.eq({ credentials({ name = "ecr", registries = { { server = SERVER, username = "bot", email = "",
  source = { server = SERVER, ecr = {} } } } }, false, T0) },
  { nil, "ecr: the credential is for user AWS, not bot as the site file says" }, "a user name other than the site file's")

-- ---- what a kept Secret's error says ----
t.eq(rotation.kept(false, "ecr: down", T0), "not created: ecr: down", "no Secret yet")
t.eq(rotation.kept(no_expiry, "ecr: down", T0), "refresh failed (ecr: down); the Secret in the cluster is kept",
  "no known expiry")
t.eq(rotation.kept(obj, "ecr: down", T0 + 43200 - 11520), "refresh failed (ecr: down); the current credential "
  .. "expires in 3h12m", "the time left")
t.eq(rotation.kept(obj, "ecr: down", T0 + 43200 + 1200), "refresh failed (ecr: down); the current credential "
  .. "expired 20m ago", "the time since it expired")

-- ---- the run lock ----
local function env(vars) return function(name) return vars[name] end end
local _, uid = proc.run { argv = { "id", "-u" } }
uid = uid:gsub("%s+$", "")
local want = uid == "0" and { "/run/xcsreg/lock", "/tmp/xcsreg-0/lock" }
  or { "/run/user/1000/xcsreg/lock", "/tmp/xcsreg-" .. uid .. "/lock" }
t.eq(runlock.candidates(env { XDG_RUNTIME_DIR = "/run/user/1000" }), want,
  "default lock: /run/xcsreg for root, else the runtime dir's xcsreg/; then /tmp/xcsreg-UID/")
t.eq(runlock.candidates(env {}), uid == "0" and { "/run/xcsreg/lock", "/tmp/xcsreg-0/lock" }
  or { "/tmp/xcsreg-" .. uid .. "/lock" },
  "no XDG_RUNTIME_DIR: then /tmp/xcsreg-UID/")
t.eq({ runlock.take("none", 0) }, { false }, "--lock none: no lock, no error")
local path = tmp .. "/runlock-test.lock"
local held = assert(proc.lock(path))
local _, pid = proc.run { argv = { "cat", path } }
t.eq({ runlock.take(path, 0.2) }, { nil, "lock " .. path .. " is held by another run (pid " .. pid:gsub("\n", "")
  .. ")", true }, "a held lock: after the wait, the holder named, and held = true")
held:unlock()
local lock = runlock.take(path, 0)
t.ok(lock and proc.run { argv = { "flock", "-n", path, "true" } } == 1, "a free lock is taken")
if lock then lock:unlock() end
t.eq({ runlock.take("/nonexistent/x.lock", 0) }, { nil, "cannot open lock file /nonexistent/x.lock: No such file "
  .. "or directory", false }, "a lock file that cannot be made: held = false")

-- ---- the metrics file ----
local prom = tmp .. "/xcsreg.prom"
t.eq(metrics.write(prom, { time = T0, success = true, expiries = {
  { namespace = "ns1", secret = "ecr", expires_at = T0 + 43200 },
  { namespace = 'odd"ns\\', secret = "ecr", expires_at = T0 } } }), true, "metrics written")
t.eq(io.open(prom):read("a"), [[
# HELP xcsreg_last_run_timestamp_seconds When the last xcsreg run ended, in seconds since the epoch.
# TYPE xcsreg_last_run_timestamp_seconds gauge
xcsreg_last_run_timestamp_seconds 1700000000
# HELP xcsreg_last_run_success Whether the last xcsreg run succeeded (1) or failed (0).
# TYPE xcsreg_last_run_success gauge
xcsreg_last_run_success 1
# HELP xcsreg_secret_expiry_timestamp_seconds When the credential a Secret holds expires, in seconds since the epoch.
# TYPE xcsreg_secret_expiry_timestamp_seconds gauge
xcsreg_secret_expiry_timestamp_seconds{namespace="ns1",secret="ecr"} 1700043200
xcsreg_secret_expiry_timestamp_seconds{namespace="odd\"ns\\",secret="ecr"} 1700000000
]], "Prometheus text format, label values escaped")
t.eq(io.open(prom .. ".tmp"), nil, "no temporary file left")
t.eq({ metrics.write("/nonexistent/x.prom", { time = T0, success = false, expiries = {} }) },
  { nil, "cannot create a temporary file for /nonexistent/x.prom: No such file or directory" }, "an unwritable place")
os.remove(prom)
os.remove(path)
return t.done()
