-- needs: apisim
-- setup.lua --watch (issue 14): a namespace created, a ServiceAccount
-- rewritten, a Secret deleted or edited are repaired within a second; our
-- own writes cause nothing; a restarted API server and a compaction (410
-- Gone) bring a relist and no duplicate write; idle, only the watches'
-- own restarts go out; /healthz and /metrics; SIGTERM ends it with 0.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local w = require "watchlib"

local env = { GHCR_TOKEN = "fake-ghcr-token-Watch1" }
t.secret(env.GHCR_TOKEN, "watch-ghcr")
local site = w.write("watch-site.lua", [[
return { namespace_selector = "xnat=jobs",
  registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot", password_env = "GHCR_TOKEN" } } }
]])

w.reset()
-- bookmarks every 0.5 s: the idle count below sees them flow without requests
w.control("POST", "/watch", { bookmark_seconds = 0.5 })
w.namespace("w-old", { xnat = "jobs" })
w.namespace("w-other", { xnat = "web" })

local h = w.start({ "--config", site, "--no-leader-elect", "--listen", "127.0.0.1:0", "--watch-timeout", "2" }, env)

-- ---- the namespaces there at the start are reconciled once ----
t.ok(w.wait_for(function() return w.has_pull("w-old", "ghcr") end, 10), "start: the selected namespace is reconciled")
t.eq(w.pulls("w-other"), {}, "start: a namespace the selector leaves out is not touched")

-- ---- a new matching namespace: its default ServiceAccount is patched ----
w.namespace("w-new", { xnat = "jobs" })
local ok, took = w.wait_for(function() return w.has_pull("w-new", "ghcr") end, 5)
t.ok(ok and took < 1.5, "a namespace created is handled within a second", tostring(took))
t.ok(w.get("Secret", "w-new", "ghcr") ~= nil, "... its Secret is created")

-- ---- a ServiceAccount rewritten without our entry is repaired ----
w.sleep(0.3)
w.clear_log()
local api = w.client()
local sa = assert(api:get("/api/v1/namespaces/w-new/serviceaccounts/default"))
sa.imagePullSecrets = { { name = "someone-elses" } }
assert(api:replace("/api/v1/namespaces/w-new/serviceaccounts/default", sa))
ok, took = w.wait_for(function() return w.has_pull("w-new", "ghcr") end, 5)
t.ok(ok and took < 1.5, "a ServiceAccount rewritten without our entry is repaired within a second", tostring(took))
t.eq(w.pulls("w-new"), { "someone-elses", "ghcr" }, "... keeping the entry that was there")
w.sleep(0.5)
t.eq(w.writes(), { "PUT /api/v1/namespaces/w-new/serviceaccounts/default",
  "PATCH /api/v1/namespaces/w-new/serviceaccounts/default" },
  "... with one write: the Secret was right, and the patch's own event causes nothing")

-- ---- a managed Secret deleted is recreated; one edited is repaired ----
w.clear_log()
assert(api:delete("/api/v1/namespaces/w-new/secrets/ghcr"))
ok, took = w.wait_for(function() return w.get("Secret", "w-new", "ghcr") end, 5)
t.ok(ok and took < 1.5, "a managed Secret deleted is recreated within a second", tostring(took))
w.sleep(0.5)
t.eq(w.writes(), { "DELETE /api/v1/namespaces/w-new/secrets/ghcr", "POST /api/v1/namespaces/w-new/secrets" },
  "... with one write (the ServiceAccount still lists it)")

local secret = assert(api:get("/api/v1/namespaces/w-new/secrets/ghcr"))
local good = secret.data[".dockerconfigjson"]
secret.data[".dockerconfigjson"] = "e30=" -- {}
assert(api:replace("/api/v1/namespaces/w-new/secrets/ghcr", secret))
ok, took = w.wait_for(function()
  local s = w.get("Secret", "w-new", "ghcr")
  return s and s.data[".dockerconfigjson"] == good
end, 5)
t.ok(ok and took < 1.5, "a managed Secret edited is written back within a second", tostring(took))

-- ---- the metrics and health ----
local port = w.port(h)
local status, body = w.fetch("http://127.0.0.1:" .. tostring(port) .. "/healthz")
t.eq({ status, body }, { 200, "ok" }, "/healthz: 200 ok")
status, body = w.fetch("http://127.0.0.1:" .. tostring(port) .. "/metrics")
t.eq(status, 200, "/metrics: 200")
body = body or ""
for _, name in ipairs { "xcsreg_last_run_success 1", "xcsreg_watch_events_total ", "xcsreg_reconciles_total ",
                        "xcsreg_watch_restarts_total ", "xcsreg_leader 1" } do
  t.ok(body:find("\n" .. name, 1, true), "/metrics: " .. name, body)
end
local reconciles = tonumber(body:match("\nxcsreg_reconciles_total (%d+)"))
t.ok(reconciles and reconciles >= 5, "/metrics: every repair counted as a reconcile", body)
t.eq(w.fetch("http://127.0.0.1:" .. tostring(port) .. "/nothing"), 404, "another path: 404")

-- ---- idle: nothing but the watches' restarts (their 2 s timeout) ----
w.clear_log()
w.sleep(3)
local others = {}
for _, e in ipairs(w.log()) do
  if not (e.method == "GET" and e.query and e.query.watch) then others[#others + 1] = e.method .. " " .. e.path end
end
t.eq(others, {}, "idle 3 s: no request but the watches started again after their timeout")
local watches = 0
for _, e in ipairs(w.log()) do
  if e.query and e.query.watch then watches = watches + 1 end
end
t.ok(watches >= 3 and watches <= 9, "idle 3 s: each of the 3 watches restarted once or twice", tostring(watches))

-- ---- the API server restarted mid-watch: a relist, and no duplicate write ----
w.clear_log()
w.control("POST", "/restart", { down_ms = 300 })
w.namespace("w-after", { xnat = "jobs" })
ok = w.wait_for(function() return w.has_pull("w-after", "ghcr") end, 10)
t.ok(ok, "after a restart, a namespace created meanwhile is handled")
local function lists()
  local n = 0
  for _, e in ipairs(w.log()) do
    if e.method == "GET" and not (e.query and e.query.watch) then n = n + 1 end
  end
  return n
end
t.ok(w.wait_for(function() return lists() >= 3 end, 5), "after a restart: the 3 collections are listed again",
  table.concat(w.requests(), "\n"))
w.sleep(0.5)
local writes = w.writes()
t.eq(writes, { "POST /api/v1/namespaces/w-after/secrets", "PATCH /api/v1/namespaces/w-after/serviceaccounts/default" },
  "after a restart: only the new namespace is written, none twice")

-- ---- 410 Gone: a watch resumed from a compacted version relists ----
w.control("POST", "/watch", { bookmark_seconds = 3600 }) -- the versions seen stay behind
w.sleep(2.5)
w.namespace("w-unrelated", { xnat = "web" }) -- moves the store's version on
w.clear_log()
w.control("POST", "/compact")
w.sleep(3)
local expired, relisted = 0, 0
for _, e in ipairs(w.log()) do
  if e.query and e.query.watch and (e.watch_end == "expired" or (e.watch_events == 1 and e.watch_end ~= "timeout")) then
    expired = expired + 1
  end
  if e.method == "GET" and not (e.query and e.query.watch) then relisted = relisted + 1 end
end
t.ok(relisted >= 1, "410 Expired: the collection is listed again", table.concat(w.requests(), "\n"))
t.eq(w.writes(), {}, "410 Expired: no write")
w.namespace("w-late", { xnat = "jobs" })
t.ok(w.wait_for(function() return w.has_pull("w-late", "ghcr") end, 5), "after the relist, events are handled again")

-- ---- SIGTERM: the namespace in hand is finished, then exit 0 ----
w.clear_log()
-- its Secret's create is slow: the signal comes before the ServiceAccount's patch is sent
w.fault { method = "POST", path_regex = "/namespaces/w-term/secrets$", action = "delay", latency_ms = 1000 }
w.namespace("w-term", { xnat = "jobs" })
t.ok(w.wait_for(function()
  for _, e in ipairs(w.control("GET", "/log")) do -- as it is: the POST not answered yet
    if e.method == "POST" and e.path:find("w-term", 1, true) then return e.status == json.null end
  end
end, 5), "SIGTERM: sent while a namespace's Secret is being created")
t.eq(w.stop(h, "TERM"), 0, "SIGTERM: exit status 0")
t.ok(w.has_pull("w-term", "ghcr"), "SIGTERM: the namespace in hand was finished first (its ServiceAccount patched "
  .. "after the signal)")
w.clear_faults()
local err = w.read(h.err)
t.ok(err:find("SIGTERM: stopping", 1, true), "SIGTERM: it says why it stops", err)
t.ok(not err:find("error:", 1, true) and not err:find("Sanitizer", 1, true), "no error logged", err)
local out = w.read(h.out)
t.ok(out:find("w-new: serviceaccount/default configured\n", 1, true), "what it did is printed per namespace", out)

-- ---- usage errors, before any request ----
w.clear_log()
for _, case in ipairs {
  { { "--listen", "127.0.0.1:0" }, "--listen needs --watch" },
  { { "--watch", "--lease-duration", "5", "--renew-deadline", "5" }, "--renew-deadline must be shorter than --lease-duration" },
  { { "--watch", "--retry-period", "10" }, "--retry-period must be shorter than --renew-deadline" },
  { { "--watch", "--lease-duration", "2.5", "--renew-deadline", "1", "--retry-period", "0.5" },
    '--lease-duration: must be a whole number of seconds' },
  { { "--watch", "--dry-run", "server" }, "--dry-run cannot be combined with --watch" },
  { { "--watch", "--no-leader-elect", "--listen", "nowhere" }, "--listen: nowhere: not an address" },
  { { "--watch", "--context", "sim", "--context", "other" }, "--watch watches one cluster, not 2" },
} do
  local args = { "--config", site }
  table.move(case[1], 1, #case[1], #args + 1, args)
  local status, _, uerr = w.setup(args, { env = env })
  t.ok(status == 2 and uerr:find(case[2], 1, true), table.concat(case[1], " ") .. ": exit 2, " .. case[2], uerr)
end
t.eq(w.writes(), {}, "usage errors write nothing")
t.done()
