-- needs: apisim
-- Retries (429, 5xx with Retry-After, dropped connections, timeouts), what
-- is never retried, exhausted budgets, and one connection for many requests.
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

-- The methods and statuses the simulator logged since the last clear.
local function seen()
  local out = {}
  for _, e in ipairs(simctl.log()) do out[#out + 1] = e.method .. " " .. tostring(e.status) end
  return out
end

local function scenario(fault)
  simctl.clear_faults()
  simctl.clear_log()
  if fault then simctl.fault(fault) end
end

-- 429 in plain text with Retry-After, as the apiserver's own throttling answers
scenario { method = "GET", path_regex = "^/api/v1/namespaces/default$", status = 429, retry_after = 1, count = 1 }
local c = client()
local start = now()
local obj, err = c:get(NS_PATH)
t.ok(obj and obj.metadata.name == "default", "429 text/plain: retried and succeeded", tostring(err))
t.ok(now() - start >= 0.95, "429: waited for Retry-After (1 s)")
t.eq(seen(), { "GET 429", "GET 200" }, "429: two requests")
t.eq(c:stats().retries, 1, "429: one retry counted")

-- 503 with Retry-After: retried, even for a POST (the server did not act)
scenario { method = "POST", status = 503, retry_after = 1, count = 1 }
c = client()
obj, err = c:create(SECRETS, { metadata = { name = "after-503" }, stringData = { k = "v" } })
t.ok(obj and obj.metadata.name == "after-503", "503 + Retry-After on POST: retried", tostring(err))
t.eq(seen(), { "POST 503", "POST 201" }, "503: two POSTs")

-- 503 without Retry-After: returned as it is
scenario { method = "GET", status = 503, count = 1 }
obj, err = client():get(NS_PATH)
t.eq({ err and err.code, err and err.reason, err and err.retries }, { 503, "ServiceUnavailable", 0 },
  "503 without Retry-After: not retried")
t.eq(err.message, "the server is currently unable to handle the request", "503: the Status message")

-- a dropped connection on GET is retried (on a fresh connection)
scenario { method = "GET", action = "drop", count = 1 }
c = client()
obj, err = c:get(NS_PATH)
t.ok(obj, "dropped GET: retried and succeeded", tostring(err))
t.eq(seen(), { "GET dropped", "GET 200" }, "dropped GET: sent twice")
t.eq(c:stats(), { requests = 1, connections = 2, retries = 1 }, "dropped GET: stats")

-- a dropped connection on POST is not retried: the server may have acted
scenario { method = "POST", action = "drop", count = 1 }
c = client()
obj, err = c:create(SECRETS, { metadata = { name = "dropped" }, stringData = { k = "v" } })
t.eq({ obj, err and err.reason, err and err.retries }, { nil, "Transport", 0 }, "dropped POST: not retried")
t.eq(seen(), { "POST dropped" }, "dropped POST: sent once")

-- a POST that times out is not retried, and really was sent once
scenario { method = "POST", action = "delay", latency_ms = 1500, count = 1 }
c = client { request_timeout = 0.5 }
start = now()
obj, err = c:create(SECRETS, { metadata = { name = "slow" }, stringData = { k = "v" } })
t.eq({ obj, err and err.reason, err and err.retries }, { nil, "Transport", 0 }, "timed-out POST: not retried")
t.ok(err and err.message:find(simctl.api .. ": Operation timed out after ", 1, true) == 1,
  "timed-out POST: curl's message", tostring(err))
t.ok(now() - start < 1.4, "timed-out POST: gave up at request_timeout")
local log = simctl.log()
t.eq(#log, 1, "timed-out POST: the simulator saw exactly one request")
t.eq(log[1] and log[1].method, "POST", "timed-out POST: and it was the POST")

-- a GET that times out is retried
scenario { method = "GET", action = "delay", latency_ms = 1500, count = 1 }
c = client { request_timeout = 0.5 }
obj, err = c:get(NS_PATH)
t.ok(obj, "timed-out GET: retried and succeeded", tostring(err))
t.eq(c:stats().retries, 1, "timed-out GET: one retry")

-- exhausted retries: the last error, naming the last status
scenario { method = "GET", status = 503, retry_after = 0, count = 100 }
c = client { retries = 2 }
obj, err = c:get(NS_PATH)
t.eq({ obj, err and err.code, err and err.reason, err and err.retries }, { nil, 503, "ServiceUnavailable", 2 },
  "exhausted: the last status, with the retry count")
t.eq(tostring(err), "Error from server (ServiceUnavailable): the server is currently unable to handle the request"
  .. " (after 2 retries)", "exhausted: tostring")
t.eq(#simctl.log(), 3, "exhausted: 1 + 2 requests")

scenario { method = "GET", status = 429, retry_after = 0, count = 100 }
obj, err = client { retries = 1 }:get(NS_PATH)
t.eq({ err and err.code, err and err.reason, err and err.message },
  { 429, "TooManyRequests", "Too many requests, please try again later." },
  "exhausted 429 in plain text: reason from the code, message the body's first line")
t.eq(err.status, nil, "plain-text error: no Status table")

-- Retry-After beyond the time budget: not waited for
scenario { method = "GET", status = 429, retry_after = 30, count = 1 }
c = client { retry_max_time = 2 }
start = now()
obj, err = c:get(NS_PATH)
t.eq({ err and err.code, err and err.retries }, { 429, 0 }, "Retry-After over retry_max_time: returned at once")
t.ok(now() - start < 1, "Retry-After over retry_max_time: no wait")

-- a Status-shaped 429 (eviction-style) is retried too
scenario { method = "GET", status = 429, retry_after = 1, count = 1, content_type = "application/json",
  body = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"slow down","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}' }
obj, err = client():get(NS_PATH)
t.ok(obj, "Status-shaped 429: retried", tostring(err))

-- ---- one connection for a run of requests ----
scenario()
c = client()
local n = 0
for i = 1, 5 do
  assert(c:create(SECRETS, { metadata = { name = "conn-" .. i }, stringData = { k = "v" } }))
  assert(c:get(SECRETS .. "/conn-" .. i))
  assert(c:patch(SECRETS .. "/conn-" .. i, { metadata = { labels = { n = tostring(i) } } }, "merge"))
  n = n + 3
end
assert(c:list(SECRETS))
assert(c:delete(SECRETS .. "/conn-1"))
n = n + 2
local conns = {}
log = simctl.log()
for _, e in ipairs(log) do conns[e.conn] = true end
local ids = {}
for id in pairs(conns) do ids[#ids + 1] = id end
t.eq(#log, n, "one connection: every request reached the simulator")
t.eq(#ids, 1, "one connection: the simulator saw one connection id")
t.eq(c:stats(), { requests = n, connections = 1, retries = 0 }, "one connection: stats")

return t.done()
