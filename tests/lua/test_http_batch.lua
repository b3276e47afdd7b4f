-- needs: httpd
-- http.request_all against tests/lib/httpd.py (HTTP/1.1 only; HTTP/2 is
-- tests/integration/test_http_batch_http2.sh): requests in flight at once
-- but never more than asked, over kept-alive connections shared with
-- http.request, results in the requests' order, one failure spoiling no
-- other, misuse raising before anything is sent, no secret in a message.
local t = require "test"
local http = require "http"
local json = require "json"

local base = assert(os.getenv("XCSREG_TEST_HTTP"), "run under tests/lib/with-httpd")
local tls_base = assert(os.getenv("XCSREG_TEST_HTTPS"))
local ca_file = assert(os.getenv("XCSREG_TEST_HTTPS_CA"))
local PASSWORD = "fake-batch-password-51"

local function doc_of(r) return r[1] == 200 and json.decode(r[3]) or {} end
local function reset() assert(http.request { url = tls_base .. "/hold-reset", ca_file = ca_file } == 200) end

-- 12 requests that each take 150 ms, 4 at a time, over TLS
reset()
local list = {}
for i = 1, 12 do list[i] = { url = tls_base .. "/hold?ms=150&i=" .. i, ca_file = ca_file } end
local results = http.request_all(list, { concurrency = 4 })
local order, conns, connects, most = {}, {}, 0, 0
for i, r in ipairs(results) do
  local doc = doc_of(r)
  order[i] = doc.query
  conns[doc.conn or 0] = true
  connects = connects + (r[4] and r[4].connects or 0)
  most = math.max(most, doc.inflight or 0)
end
local want = {}
for i = 1, 12 do want[i] = "ms=150&i=" .. i end
t.eq({ #results, results[1].n, order }, { 12, 4, want }, "12 results, packed as table.pack packs, in the requests' order")
local nconns = 0
for _ in pairs(conns) do nconns = nconns + 1 end
t.ok(most > 1 and most <= 4, "more than one request in flight, never more than 4", "most in flight: " .. most)
-- (one of them may be /hold-reset's, from the pool)
t.ok(nconns >= 1 and nconns <= 4 and connects <= nconns, "at most 4 connections (one per transfer in flight)",
  ("connections seen %d, opened %d"):format(nconns, connects))

-- the pool outlives the batch, and http.request uses it too
list = {}
for i = 1, 4 do list[i] = { url = tls_base .. "/echo?again=" .. i, ca_file = ca_file } end
connects = 0
for _, r in ipairs(http.request_all(list, { concurrency = 4 })) do
  connects = connects + r[4].connects
  t.ok(conns[doc_of(r).conn], "a second batch: over a connection of the first (" .. r[4].effective_url .. ")")
end
t.eq(connects, 0, "a second batch opens no connection")
local status, _, body, info = http.request { url = tls_base .. "/echo", ca_file = ca_file }
t.eq({ status, info.connects, conns[json.decode(body).conn] }, { 200, 0, true },
  "http.request after a batch: over one of its connections")

-- concurrency = 1: one at a time
reset()
list = {}
for i = 1, 3 do list[i] = { url = base .. "/hold?ms=50&i=" .. i } end
most = 0
for _, r in ipairs(http.request_all(list, { concurrency = 1 })) do most = math.max(most, doc_of(r).inflight or 0) end
t.eq(most, 1, "concurrency = 1: never two in flight")

-- failures are results of their own request only
local closed = "http://127.0.0.1:1"
results = http.request_all({
  { url = base .. "/echo?n=1" },
  { url = closed .. "/x", basic_auth = { "u", PASSWORD } },
  { url = base .. "/big?bytes=100000", max_body = 1000 },
  { url = base .. "/status/503" },
  { url = base .. "/drop", basic_auth = { "u", PASSWORD } },
  { url = base .. "/slow?ms=3000", timeout = 0.5 },
  { method = "POST", url = base .. "/echo", body = "a\0b", headers = { ["X-N"] = "7" } },
  { method = "HEAD", url = base .. "/echo" },
})
t.eq({ results[1][1], doc_of(results[1]).query }, { 200, "n=1" }, "a good request beside failing ones")
t.ok(results[2][1] == nil and results[2].n == 2
  and results[2][2]:find("^" .. closed .. "/x: Failed to connect"), "connection refused: nil, message", results[2][2])
t.eq({ results[3][1], results[3][2] }, { nil, "response from " .. base .. "/big?bytes=100000 exceeds 1000 bytes" },
  "an answer past max_body")
t.eq({ results[4][1], results[4][3] }, { 503, "status 503\n" }, "a 503 is a result")
t.ok(results[5][1] == nil and results[5][2]:find(base .. "/drop: ", 1, true), "a dropped connection", results[5][2])
t.ok(results[6][1] == nil and results[6][2]:find("imed out", 1, true), "a timeout of its own", results[6][2])
local posted = doc_of(results[7])
t.eq({ posted.method, posted.body, posted.headers["x-n"], posted.headers["content-type"] }, { "POST", "a\0b", "7", nil },
  "a POST body (a NUL byte too) and headers, as http.request sends them")
t.eq({ results[8][1], results[8][3] }, { 200, "" }, "HEAD: no body")
for i, r in ipairs(results) do
  t.ok(not tostring(r[2]):find(PASSWORD, 1, true), "no password in result " .. i)
end

-- a credential never follows a redirect to another host
local other = base:gsub("127%.0%.0%.1", "localhost")
results = http.request_all({
  { url = base .. "/redirect?to=" .. other .. "/echo", follow_redirects = true, basic_auth = { "u", PASSWORD } },
  { url = base .. "/basic?user=u&password=" .. PASSWORD, basic_auth = { "u", PASSWORD } },
})
t.eq({ results[1][1], doc_of(results[1]).headers.authorization, results[1][4].effective_url },
  { 200, nil, other .. "/echo" }, "followed to another host: without the credential")
t.eq(results[2][1], 200, "and the same host gets it")

-- misuse raises before anything is sent
assert(http.request { url = base .. "/hooks" } == 200)
local function hooks()
  local _, _, b = http.request { url = base .. "/hooks" }
  return #json.decode(b)
end
local before = hooks()
t.raises("bad argument #1 to 'http.request_all' (requests[2]: option 'url' is required)", "a request without url",
  http.request_all, { { method = "POST", url = base .. "/hook", body = "x" }, {} })
t.raises("(requests[3]: unknown option 'bogus')", "an unknown option", http.request_all,
  { { method = "POST", url = base .. "/hook", body = "x" }, { url = base }, { url = base, bogus = true } })
t.raises("(requests[1]: headers: bad header name 'a b')", "a bad header", http.request_all,
  { { url = base, headers = { ["a b"] = "x" } } })
t.raises("(requests[2] must be a table, got string)", "a request that is not a table", http.request_all,
  { { url = base }, "x" })
t.raises("bad argument #2 to 'http.request_all' (option 'concurrency' must be an integer from 1 to 64)",
  "concurrency out of range", http.request_all, {}, { concurrency = 0 })
t.raises("unknown option 'parallel'", "an unknown batch option", http.request_all, {}, { parallel = 2 })
t.eq(hooks(), before, "nothing was sent by a misused batch")
t.eq(http.request_all {}, {}, "an empty list: no results")

-- an error raised while transfers are in flight (here: by the list's
-- __index, the second time request 3 is read, when it is to be sent and
-- 1 and 2 are on their way) leaves nothing in flight: the next batch
-- runs normally
local reads = {}
local poisoned = setmetatable({}, { __index = function(_, i)
  reads[i] = (reads[i] or 0) + 1
  if i == 3 and reads[i] == 2 then error("poisoned request " .. i) end
  if i <= 4 then return { url = base .. "/hold?ms=300&p=" .. i } end
end, __len = function() return 4 end })
t.raises("poisoned request 3", "an error raised from the list mid-batch", http.request_all, poisoned, { concurrency = 2 })
results = http.request_all({ { url = base .. "/echo?after=1" } })
t.eq(doc_of(results[1]).query, "after=1", "the next batch works")

return t.done()
