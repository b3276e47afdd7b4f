-- needs: apisim
-- client:map against the simulator: requests overlap, the bound on requests
-- in flight holds, results keep their order, errors and retries inside a
-- map, a 429 pauses the whole run, connections are pooled and reused by
-- both modes, and closing the client with requests pending is clean.
local t = require "test"
local k8s = require "k8s"
local simctl = require "simctl"

local KC = simctl.dir .. "/token.kubeconfig"
local NS_PATH = "/api/v1/namespaces/default"
local SECRETS = "/api/v1/namespaces/default/secrets"

local function now()
  local f = io.open("/proc/uptime")
  local up = f:read("n")
  f:close()
  return up
end

local function client(opts)
  local o = { kubeconfig = KC }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(k8s.client(o))
end

local function range(n)
  local items = {}
  for i = 1, n do items[i] = i end
  return items
end

local function scenario(faults)
  simctl.clear_faults()
  simctl.clear_log()
  if faults then simctl.fault(faults) end
end

-- The connection ids of the logged requests, and how many distinct ones.
local function conns(log)
  local ids, n = {}, 0
  for _, e in ipairs(log) do
    if not ids[e.conn] then ids[e.conn], n = true, n + 1 end
  end
  return n
end

-- fn wrapped to count the requests in flight: the most seen at once.
local function counting(fn)
  local inflight, most = 0, 0
  return function(...)
    inflight = inflight + 1
    if inflight > most then most = inflight end
    local r = fn(...)
    inflight = inflight - 1
    return r
  end, function() return most end
end

local function delayed_get(ms, count)
  return { method = "GET", path_regex = "^/api/v1/namespaces/default$", action = "delay",
           latency_ms = ms, count = count }
end

-- ---- requests overlap ----
local c = client()
-- open the pool first: the timing below is of the requests, not of 8 TLS handshakes
c:map(range(8), function() return c:get(NS_PATH) end)
scenario(delayed_get(300, 8))
local fn, most = counting(function(i)
  local ns, err = c:get(NS_PATH)
  return ns and ns.metadata.name .. i or tostring(err)
end)
local start = now()
local r = c:map(range(8), fn)
local took = now() - start
t.eq(r, { "default1", "default2", "default3", "default4", "default5", "default6", "default7", "default8" },
  "overlap: every result, in order")
t.ok(took < 1.2, "overlap: 8 requests of 300 ms took well under 8 x 300 ms", "took " .. took)
t.eq(most(), 8, "overlap: 8 in flight at once")
local log = simctl.log()
t.eq(#log, 8, "overlap: 8 requests logged")
t.eq(conns(log), 8, "overlap: on 8 connections at once (HTTP/1.1 cannot share one)")
t.eq(c:stats(), { requests = 16, connections = 8, retries = 0 }, "overlap: stats")

-- ---- the pool is reused, by maps and blocking requests alike ----
simctl.clear_log()
r = c:map(range(16), function() return c:get(NS_PATH).metadata.name end)
t.eq(#r, 16, "reuse: 16 results")
t.eq(c:stats().connections, 8, "reuse: a second map opens no connection")
t.ok(c:get(NS_PATH), "reuse: a blocking request after a map")
t.eq(c:stats().connections, 8, "reuse: the blocking request took a pooled connection")
local reused = conns(simctl.log())
t.ok(reused >= 1 and reused <= 8, "reuse: the log shows the same 8 connections or fewer", reused .. " connections")
c = client()
t.ok(c:get(NS_PATH), "reuse: a blocking request before a map")
scenario(delayed_get(200, 4))
c:map(range(4), function() return c:get(NS_PATH) end)
t.eq(c:stats().connections, 4, "reuse: the map took the blocking request's connection")

-- ---- bounded ----
scenario(delayed_get(300, 9))
c = client()
fn, most = counting(function() return c:get(NS_PATH) ~= nil end)
start = now()
r = c:map(range(9), fn, { concurrency = 3 })
took = now() - start
t.eq(r, { true, true, true, true, true, true, true, true, true }, "concurrency 3: every request succeeded")
t.eq(most(), 3, "concurrency 3: never more than 3 in flight")
t.ok(took >= 0.85 and took < 1.6, "concurrency 3: 9 x 300 ms took about 3 x 300 ms", "took " .. took)
t.ok(conns(simctl.log()) <= 3, "concurrency 3: at most 3 connections")
scenario(delayed_get(100, 20))
c = client { concurrency = 5 }
fn, most = counting(function() return c:get(NS_PATH) ~= nil end)
c:map(range(20), fn)
t.eq(most(), 5, "the client's concurrency is the default bound")
t.ok(c:stats().connections <= 5, "the client's concurrency bounds the connections")

-- ---- answers in any order, results in order ----
simctl.clear_log()
c = client()
local names = { "slow", "medium", "fast" }
for _, name in ipairs(names) do simctl.namespace(name) end
scenario {
  { method = "GET", path_regex = "^/api/v1/namespaces/slow$", action = "delay", latency_ms = 600 },
  { method = "GET", path_regex = "^/api/v1/namespaces/medium$", action = "delay", latency_ms = 300 },
}
local finished = {}
r = c:map(names, function(name)
  local ns = assert(c:get(k8s.path("/api/v1/namespaces/%s", name)))
  finished[#finished + 1] = name
  return ns.metadata.name
end)
t.eq(finished, { "fast", "medium", "slow" }, "order: the answers came fastest first")
t.eq(r, names, "order: results follow the items")

-- ---- every kind of request inside a map ----
scenario()
c = client()
r = c:map(range(6), function(i)
  local name = "map-" .. i
  local created, err = c:create(SECRETS, { metadata = { name = name }, stringData = { k = "fake-" .. i } })
  if not created then return tostring(err) end
  local patched = assert(c:patch(SECRETS .. "/" .. name, { metadata = { labels = { i = tostring(i) } } }, "merge"))
  patched.data = nil
  local replaced = assert(c:replace(SECRETS .. "/" .. name, patched))
  local status = c:request { method = "GET", path = SECRETS .. "/" .. name }
  local listed = assert(c:list(SECRETS, { labelSelector = "i=" .. i }))
  local deleted = assert(c:delete(SECRETS .. "/" .. name))
  return table.concat({ created.metadata.name, replaced.metadata.labels.i, status, #listed.items,
                        deleted.kind }, " ")
end)
t.eq(r, { "map-1 1 200 1 Status", "map-2 2 200 1 Status", "map-3 3 200 1 Status", "map-4 4 200 1 Status",
          "map-5 5 200 1 Status", "map-6 6 200 1 Status" }, "create, patch, replace, request, list, delete")
t.eq(#simctl.objects("Secret", "default"), 0, "every Secret made inside the map was deleted")
r = c:map({ "missing" }, function(name)
  local obj, e = c:get(SECRETS .. "/" .. name)
  return { obj = obj, code = e.code, text = tostring(e) }
end)
t.eq(r[1], { code = 404, text = 'Error from server (NotFound): secrets "missing" not found' },
  "an HTTP error inside a map is nil, err as anywhere")

-- ---- an error in one fn ----
scenario(delayed_get(300, 2))
c = client()
local completed = {}
local ok, err = pcall(c.map, c, range(5), function(i)
  assert(c:get(NS_PATH))
  if i == 1 then error("item 1 failed", 0) end
  completed[#completed + 1] = i
end, { concurrency = 2 })
t.eq({ ok, err }, { false, "item 1 failed" }, "error: raised by map")
-- Item 2 may finish (freeing its slot for item 3) a moment before item 1's
-- error is seen; after the error, nothing new starts.
table.sort(completed)
t.ok(completed[1] == 2 and #completed <= 2 and (completed[2] == nil or completed[2] == 3),
  "error: the item in flight completed, nothing started after the error", t.show(completed))
t.ok(#simctl.log() == #completed + 1, "error: one request per item started", tostring(#simctl.log()))
t.ok(c:get(NS_PATH), "error: the client works afterwards")
t.eq(c:map(range(3), function(i) return c:get(NS_PATH) and i end), { 1, 2, 3 }, "error: and maps again")

-- ---- retries inside a map ----
scenario { method = "POST", status = 503, retry_after = 1, count = 1 }
c = client()
r = c:map({ "r1", "r2" }, function(name)
  local s, e = c:create(SECRETS, { metadata = { name = name }, stringData = { k = "fake" } })
  return s and s.metadata.name or tostring(e)
end)
t.eq(r, { "r1", "r2" }, "503 with Retry-After on a POST inside a map: retried")
t.eq(c:stats().retries, 1, "503: one retry")
scenario { method = "GET", action = "drop", count = 1 }
c = client()
r = c:map({ 1, 2 }, function() local ns = c:get(NS_PATH) return ns and ns.metadata.name end)
t.eq(r, { "default", "default" }, "a dropped GET inside a map: retried")
local dropped = 0
for _, e in ipairs(simctl.log()) do if e.status == "dropped" then dropped = dropped + 1 end end
t.eq(dropped, 1, "dropped: one request dropped")

-- ---- a 429 pauses the whole run ----
-- Two coroutines; the first request is throttled (Retry-After: 1). The
-- other request was already in flight and completes; every later request,
-- and the retry, waits for the second to be over; then the map keeps at
-- most one request in flight (halved from 2).
scenario {
  { method = "GET", path_regex = "^/api/v1/namespaces/default$", status = 429, retry_after = 1, count = 1 },
  delayed_get(200, 100),
}
c = client()
local done_at = {}
fn, most = counting(function(i)
  assert(c:get(NS_PATH))
  done_at[i] = now()
  return i
end)
start = now()
r = c:map(range(6), fn, { concurrency = 2 })
took = now() - start
t.eq(r, range(6), "429: every item succeeded")
t.eq(c:stats().retries, 1, "429: one retry")
-- whichever of the first two requests reached the server first was throttled
local early, late = {}, {}
for i = 1, 6 do
  if done_at[i] - start < 0.6 then early[#early + 1] = i else late[#late + 1] = i end
end
t.ok(#early == 1 and early[1] <= 2, "429: the other request already in flight was not held back",
  "done early: " .. table.concat(early, ", "))
local held = true
for _, i in ipairs(late) do held = held and done_at[i] - start >= 0.95 end
t.ok(#late == 5 and held, "429: the retry and every later request waited for Retry-After")
-- after the pause, 5 requests of 200 ms one at a time: at least 1 s more
t.ok(took >= 1.0 + 5 * 0.2 - 0.05, "429: afterwards one request in flight at a time",
  string.format("took %.2f", took))
log = simctl.log()
t.eq({ log[1].status, #log }, { 429, 7 }, "429: the log shows the 429 first and 7 requests")

-- ---- requests that cannot yield go out blocking ----
scenario()
c = client()
r = c:map({ 1 }, function()
  local got
  string.gsub("x", "x", function() got = c:get(NS_PATH) end)
  local wrapped = coroutine.wrap(function() return c:get(NS_PATH) end)()
  return got.metadata.name .. " " .. wrapped.metadata.name
end)
t.eq(r, { "default default" }, "a request inside a gsub callback or a coroutine of fn's own blocks")
local other = client()
r = c:map({ 1, 2 }, function(i)
  return other:map({ i }, function(j) return other:get(NS_PATH) and j * 10 end)[1]
end)
t.eq(r, { 10, 20 }, "a map of another client inside fn")
other:close()

-- ---- resuming a map's coroutine from outside ----
scenario(delayed_get(300, 1))
c = client()
local first
r = c:map({ 1, 2 }, function(i)
  if i == 1 then
    first = coroutine.running()
    return c:get(NS_PATH).metadata.name
  end
  return select("#", coroutine.resume(first))
end)
t.eq(r, { "default", 1 }, "a coroutine resumed by fn's code keeps waiting for its answer")

-- ---- credentials renewed once for many requests ----
local dir = simctl.dir
local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end
write(dir .. "/map-token", "stale-token-for-map\n")
local kc = io.open(KC):read("a"):gsub("token: admin%-token", "tokenFile: " .. dir .. "/map-token")
write(dir .. "/map.kubeconfig", kc)
c = assert(k8s.client { kubeconfig = dir .. "/map.kubeconfig" })
write(dir .. "/map-token", "admin-token\n")
scenario()
r = c:map(range(4), function(i) local ns = c:get(NS_PATH) return ns and i end)
t.eq(r, range(4), "401 inside a map: fresh token read, every request repeated")
local statuses = {}
for _, e in ipairs(simctl.log()) do statuses[e.status] = (statuses[e.status] or 0) + 1 end
t.eq(statuses, { [401] = 4, [200] = 4 }, "401: each request repeated once")
t.eq(c:stats().retries, 4, "401: four retries")

-- ---- closing the client with requests pending ----
scenario(delayed_get(1000, 3))
c = client()
completed = {}
start = now()
ok, err = pcall(c.map, c, range(4), function(i)
  if i == 4 then
    c:close()
    return
  end
  local ns, e = c:get(NS_PATH)
  completed[#completed + 1] = ns and "answered" or tostring(e)
end)
took = now() - start
t.eq({ ok, tostring(err):match("k8s client closed") }, { false, "k8s client closed" },
  "close with requests pending: map raises")
t.eq(completed, {}, "close: the pending requests did not return")
t.ok(took < 0.9, "close: nothing waited for the pending answers", "took " .. took)
t.eq(tostring(c), "k8s client (closed)", "close: closed")

return t.done()
