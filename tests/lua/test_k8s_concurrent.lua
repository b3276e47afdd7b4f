-- needs: none
-- client:map without a server: arguments, results in order, errors raised by
-- fn, yields that are not requests, nesting, closing the client inside fn,
-- and requests that fail at once (connection refused) from coroutines.
local t = require "test"
local k8s = require "k8s"
local kt = require "k8sfixtures.k8stest"

local dir = kt.tmpdir()
local KC = kt.kubeconfig(dir .. "/refused.yaml", {
  clusters = { c = { server = "https://127.0.0.1:1" } },
  users = { u = { token = "fake-token-for-map-tests" } },
  contexts = { x = { cluster = "c", user = "u" } },
  current_context = "x",
})

local function client(opts)
  local o = { kubeconfig = KC, retries = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(k8s.client(o))
end

local function id(x) return x end

-- ---- arguments ----
local c = client()
t.eq(c.concurrency, 8, "concurrency: 8 by default")
t.eq(client({ concurrency = 3 }).concurrency, 3, "concurrency: set by k8s.client")
t.raises("bad argument #1 to 'k8s.client' (option 'concurrency' must be an integer from 1 to 100)",
  "k8s.client: concurrency 0", k8s.client, { kubeconfig = KC, concurrency = 0 })
t.raises("bad argument #1 to 'k8s.client' (option 'concurrency' must be an integer from 1 to 100)",
  "k8s.client: concurrency 101", k8s.client, { kubeconfig = KC, concurrency = 101 })
t.raises("bad argument #1 to 'map' (table expected, got nil)", "map: items must be a table",
  function() c:map(nil, id) end)
t.raises("bad argument #2 to 'map' (function expected, got table)", "map: fn must be a function",
  function() c:map({}, {}) end)
t.raises("bad argument #3 to 'map' (unknown option 'concurency')", "map: unknown option",
  function() c:map({}, id, { concurency = 2 }) end)
t.raises("bad argument #3 to 'map' (option 'concurrency' must be an integer from 1 to 100)",
  "map: concurrency must be an integer", function() c:map({}, id, { concurrency = 1.5 }) end)
t.raises("bad argument #3 to 'map' (option 'concurrency' must be a number, not string)",
  "map: concurrency must be a number", function() c:map({}, id, { concurrency = "2" }) end)

-- ---- results ----
t.eq(c:map({}, id), {}, "no items: empty results")
t.eq(c:map({ "a", "b", "c" }, function(s) return s:upper(), "ignored" end), { "A", "B", "C" },
  "results in order, first value of each")
local r = c:map({ 1, 2, 3, 4 }, function(i) if i % 2 == 0 then return i end end)
t.eq({ r[1], r[2], r[3], r[4] }, { nil, 2, nil, 4 }, "nil results leave holes")
local seen = {}
c:map({ 1, 2, 3, 4, 5 }, function(i) seen[#seen + 1] = i end, { concurrency = 2 })
t.eq(seen, { 1, 2, 3, 4, 5 }, "every item runs once")

-- ---- errors ----
local boom = setmetatable({}, { __tostring = function() return "boom" end })
local ran = {}
local ok, err = pcall(c.map, c, { 1, 2, 3, 4 }, function(i)
  ran[#ran + 1] = i
  if i == 2 then error(boom) end
  return i
end, { concurrency = 1 })
t.ok(not ok and rawequal(err, boom), "fn raising: map raises the same error value", tostring(err))
t.eq(ran, { 1, 2 }, "fn raising: no further item starts")
ok, err = pcall(c.map, c, { 1, 2 }, function(i) error("item " .. i .. " failed", 0) end)
t.eq({ ok, err }, { false, "item 1 failed" }, "two failing items: the first error is raised")
t.raises("attempt to yield from a function run by client:map", "fn yielding by itself is an error",
  function() c:map({ 1 }, function() coroutine.yield("x") end) end)
t.raises("client:map is already running on this client", "maps do not nest on one client",
  function() c:map({ 1 }, function() c:map({ 2 }, id) end) end)
local closed_marker = false
ok, err = pcall(c.map, c, { 1 }, function()
  local guard <close> = setmetatable({}, { __close = function() closed_marker = true end })
  error("with a to-be-closed variable", 0)
end)
t.ok(closed_marker, "fn raising: its to-be-closed variables are closed")
t.eq(c:map({ 1 }, function(i) return i end), { 1 }, "the client still maps after errors")

-- ---- requests that fail at once ----
c = client()
r = c:map({ "a", "b", "c" }, function(name)
  local obj, e = c:get(k8s.path("/api/v1/namespaces/%s", name))
  return { obj = obj, reason = e and e.reason, retries = e and e.retries }
end)
t.eq(r, {
  { reason = "Transport", retries = 0 }, { reason = "Transport", retries = 0 }, { reason = "Transport", retries = 0 },
}, "refused inside map: nil, Transport error for each")
local status, body = c:map({ 1 }, function()
  return select("#", c:request { method = "GET", path = "/version" })
end)[1]
t.eq({ status, body }, { 2, nil }, "client:request inside map: nil, err")
t.eq(c:stats().requests, 4, "stats: requests made inside map are counted")
local o, e = c:get("/api/v1/namespaces/x")
t.eq({ o, e and e.reason }, { nil, "Transport" }, "blocking request after a map")
t.eq(c:stats().requests, 5, "stats: both modes counted")

-- ---- closing the client inside fn ----
c = client()
ran = {}
t.raises("k8s client closed", "close inside fn: map raises when items were left",
  function()
    c:map({ 1, 2, 3 }, function(i)
      ran[#ran + 1] = i
      c:close()
    end, { concurrency = 1 })
  end)
t.eq(ran, { 1 }, "close inside fn: no further item starts")
t.eq(tostring(c), "k8s client (closed)", "close inside fn: the client is closed afterwards")
t.raises("attempt to use a closed k8s client", "close inside fn: later requests raise",
  function() return c:get("/api") end)
t.raises("attempt to use a closed k8s client", "map on a closed client raises",
  function() return c:map({}, id) end)
c = client()
t.eq(c:map({ 1 }, function() c:close() return "done" end), { "done" },
  "close in the last item: map returns its results")
t.eq(tostring(c), "k8s client (closed)", "close in the last item: closed")
c = client()
t.raises("attempt to use a closed k8s client", "a request after close inside fn raises",
  function() c:map({ 1 }, function() c:close(); c:get("/api") end) end)

do
  local scoped <close> = client()
  t.eq(scoped:map({ 1, 2 }, function(i) return i * 10 end), { 10, 20 }, "a <close> client maps")
end

return t.done()
