-- needs: apisim
-- setup.lua --watch with two replicas (issue 14): only the holder of the
-- Lease writes; the other takes over within the lease duration of the
-- leader's death (kill -9); a leader that cannot renew (stopped, or its
-- Lease updates refused) makes no write after its renew deadline; SIGTERM
-- releases the Lease (client-go's ReleaseOnCancel) and exits 0.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local w = require "watchlib"

local env = { GHCR_TOKEN = "fake-ghcr-token-Leader1" }
t.secret(env.GHCR_TOKEN, "leader-ghcr")
local site = w.write("leader-site.lua", [[
return { namespace_selector = "xnat=jobs",
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } } }
]])
local LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/xcsreg"
-- lease 3 s, renew deadline 2 s, retry 0.5 s (client-go's 15/10/2, scaled down)
local timing = { "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5" }

w.reset()
-- each replica is a user of its own, so that the log tells their requests apart
local function kubeconfig(user)
  local token = "token-of-" .. user
  w.control("POST", "/users", { name = user, token = token, groups = { "system:masters" } })
  local text = w.read(w.dir .. "/token.kubeconfig"):gsub("admin%-token", token)
  return w.write(user .. ".kubeconfig", text)
end
local function replica(name)
  local args = { "--config", site }
  for _, a in ipairs(timing) do args[#args + 1] = a end
  local e = { KUBECONFIG = kubeconfig(name), POD_NAME = name }
  for k, v in pairs(env) do e[k] = v end
  local h = w.start(args, e)
  h.name = name
  return h
end
local api = w.client()
local function holder()
  local lease = api:get(LEASE)
  return lease and lease.spec.holderIdentity, lease
end
-- The non-Lease writes in the log, by user.
local function writes_by()
  local by = {}
  for _, e in ipairs(w.log()) do
    if (e.method == "POST" or e.method == "PUT" or e.method == "PATCH" or e.method == "DELETE")
      and not e.path:find("/leases", 1, true) then
      by[e.user] = (by[e.user] or 0) + 1
    end
  end
  return by
end
local function lease_writes(user)
  local n = 0
  for _, e in ipairs(w.log()) do
    if e.user == user and e.path:find("/leases", 1, true) and e.method ~= "GET" then n = n + 1 end
  end
  return n
end

w.namespace("l-1", { xnat = "jobs" })
local a = replica("replica-a")
t.eq(w.wait_for(function() return holder() == "replica-a" and "replica-a" end, 5), "replica-a",
  "the first replica takes the Lease")
local b = replica("replica-b")
t.ok(w.wait_for(function() return w.has_pull("l-1", "ghcr") end, 5), "the leader reconciles")
local _, lease = holder()
t.eq({ lease.spec.leaseDurationSeconds, lease.spec.leaseTransitions }, { 3, 0 },
  "the Lease: leaseDurationSeconds from --lease-duration, no transition yet")
t.ok(tostring(lease.spec.renewTime):match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"),
  "renewTime is a MicroTime", tostring(lease.spec.renewTime))

-- ---- only the leader writes ----
w.sleep(1)
w.clear_log()
for i = 2, 4 do w.namespace("l-" .. i, { xnat = "jobs" }) end
t.ok(w.wait_for(function() return w.has_pull("l-4", "ghcr") and w.has_pull("l-2", "ghcr") end, 5),
  "new namespaces are handled with two replicas running")
w.sleep(0.5)
t.eq(writes_by(), { ["replica-a"] = 6 }, "only the leader wrote (a Secret and a ServiceAccount per namespace)")
t.eq(holder(), "replica-a", "the leader keeps the Lease by renewing it")
t.eq(lease_writes("replica-b"), 0, "the candidate never writes the Lease while it is held")
-- idle: the leader renews, the candidate reads the Lease; nothing else but watches
w.clear_log()
w.sleep(2)
local idle = {}
for _, e in ipairs(w.log()) do
  local what = e.path:find("/leases/xcsreg", 1, true) and (e.user .. " " .. e.method .. " lease")
    or (e.query and e.query.watch and "watch") or (e.user .. " " .. e.method .. " " .. e.path)
  idle[what] = true
end
idle.watch = nil
t.eq(idle, { ["replica-a PUT lease"] = true, ["replica-b GET lease"] = true },
  "idle 2 s: the leader's renewals and the candidate's reads of the Lease, nothing else")

-- ---- kill -9 the leader: the other takes over within leaseDuration ----
local killed = w.now()
w.stop(a, "KILL")
local took
_, took = w.wait_for(function() return holder() == "replica-b" end, 8)
took = w.now() - killed
t.ok(holder() == "replica-b" and took <= 3 + 0.5 + 0.5, "kill -9 the leader: the other holds the Lease within "
  .. "the lease duration (and a retry period)", string.format("%.2f s", took))
_, lease = holder()
t.eq(lease.spec.leaseTransitions, 1, "the takeover counts as a transition")
w.clear_log()
w.namespace("l-5", { xnat = "jobs" })
t.ok(w.wait_for(function() return w.has_pull("l-5", "ghcr") end, 5), "the new leader handles a new namespace")
t.eq(writes_by(), { ["replica-b"] = 2 }, "... and it alone writes")

-- ---- a leader that cannot renew (stopped) makes no write once it may have lost ----
local c = replica("replica-c")
w.sleep(1)
os.execute("kill -STOP " .. b.pid)
local stopped = w.now()
t.ok(w.wait_for(function() return holder() == "replica-c" end, 8), "a stopped leader's Lease is taken over")
t.ok(w.now() - stopped >= 3 - 0.5, "... not before the lease duration has passed by the candidate's clock",
  string.format("%.2f s", w.now() - stopped))
w.clear_log()
w.namespace("l-6", { xnat = "jobs" })
t.ok(w.wait_for(function() return w.has_pull("l-6", "ghcr") end, 5), "the new leader handles a new namespace")
os.execute("kill -CONT " .. b.pid)
-- the resumed one sees the events it missed, and its lease long past its renew deadline
w.namespace("l-7", { xnat = "jobs" })
t.ok(w.wait_for(function() return w.has_pull("l-7", "ghcr") end, 5), "a namespace created after it resumed is handled")
w.sleep(1)
t.eq(writes_by()["replica-b"], nil, "the resumed old leader wrote nothing (objects)")
t.eq(lease_writes("replica-b"), 0, "... nor the Lease")
t.ok(w.read(b.err):find("lease default/xcsreg: not leading any more (not renewed for 2s)", 1, true),
  "... and it says it stopped leading", w.read(b.err))

-- ---- a leader whose Lease updates fail stops writing at its renew deadline ----
w.clear_log()
w.fault { method = "PUT", path_regex = "/leases/xcsreg$", count = 1000, status = 500 }
local faulted = w.now()
w.sleep(2.6) -- past the renew deadline (2 s) and a retry period
w.namespace("l-8", { xnat = "jobs" })
w.sleep(1)
t.eq(writes_by(), {}, "Lease updates refused: no replica writes once the renew deadline has passed")
t.ok(w.read(c.err):find("not leading any more (not renewed for 2s)", 1, true), "the leader says it stopped",
  string.format("%.1f s after the fault", w.now() - faulted))
w.clear_faults()
t.ok(w.wait_for(function() return w.has_pull("l-8", "ghcr") end, 8), "once the Lease can be written, a leader handles "
  .. "what happened meanwhile")

-- ---- SIGTERM: the Lease is released, exit 0, the other takes over at once ----
local leader_now = holder()
local leading, other = c, b
if leader_now == "replica-b" then leading, other = b, c end
t.eq(w.stop(leading, "TERM"), 0, "SIGTERM: the leader exits 0")
local released = w.now()
_, lease = holder()
t.ok(lease.spec.holderIdentity == "" or lease.spec.holderIdentity == other.name,
  "SIGTERM: the Lease is released (holderIdentity \"\")", tostring(lease.spec.holderIdentity))
t.ok(w.wait_for(function() return holder() == other.name end, 3) and w.now() - released < 2.5,
  "the other replica takes a released Lease without waiting for its duration",
  string.format("%.2f s", w.now() - released))
t.eq(w.stop(other, "TERM"), 0, "SIGTERM: the other exits 0 too")
_, lease = holder()
t.eq({ lease.spec.holderIdentity, lease.spec.leaseDurationSeconds }, { "", 1 },
  "a released Lease: holderIdentity \"\", leaseDurationSeconds 1 (ReleaseOnCancel)")
t.done()
