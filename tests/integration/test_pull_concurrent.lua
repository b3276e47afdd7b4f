-- needs: httpd
-- pull.check's images checked concurrently over few connections, against
-- tests/lib/httpd.py posing as an open HTTP/1.1 registry over TLS whose
-- manifests each take 100 ms and count how many are asked at once (HTTP/2
-- and one connection: tests/integration/test_http_batch_http2.sh).
local t = require "test"
local http = require "http"
local json = require "json"
local keyring = require "xcsreg.keyring"
local pull = require "xcsreg.pull"

local HTTPS, CA = assert(os.getenv("XCSREG_TEST_HTTPS"), "run under tests/lib/with-httpd"), os.getenv("XCSREG_TEST_HTTPS_CA")
local HOST = HTTPS:match("//(.*)")
local PASSWORD = "fake-concurrent-pull-password"
local kr = assert(keyring.from_secret({[HOST] = {username = "u", password = PASSWORD},
                                       ["127.0.0.1:1"] = {username = "u", password = PASSWORD}}, "conc"))
local function credentials_for(ref) return kr:lookup(ref.name) end
local function most_in_flight()
  local _, _, body = http.request{url = HTTPS .. "/hold?ms=0", ca_file = CA}
  return json.decode(body).inflight
end
local function reset() assert(http.request{url = HTTPS .. "/hold-reset", ca_file = CA} == 200) end

local images = {}
for i = 1, 12 do images[i] = ("%s/team/app%d:t%d"):format(HOST, i % 3, i) end
reset()
local results, stats = pull.check(images, credentials_for, {ca_file = CA, concurrency = 4})
local states = {}
for i, r in ipairs(results) do states[i] = r.image == images[i] and r.state end
t.eq(states, {"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"}, "12 images ok, in order")
t.eq(results[5].message, HOST .. " has team/app2:t5 (application/vnd.oci.image.manifest.v1+json), readable by user u", "a result's message")
t.eq({stats.requests, stats.challenges, stats.manifests}, {13, 1, 12}, "one challenge, one HEAD an image")
local most = most_in_flight()
t.ok(most > 1 and most <= 4, "more than one HEAD in flight, at most 4 (concurrency = 4)", "most " .. tostring(most))
t.ok(stats.connects <= 4, "at most 4 connections to the HTTP/1.1 registry", "connects " .. stats.connects)

-- again with the default concurrency: the connections are kept
reset()
results, stats = pull.check(images, credentials_for, {ca_file = CA})
most = most_in_flight()
t.ok(results[12].state == "ok" and most > 1 and most <= 8, "the default: at most 8 in flight", "most " .. tostring(most))

-- failures are their images' own
results = pull.check({HOST .. "/team/app:1", "127.0.0.1:1/team/app:1", HOST .. "/team/app:missing", HOST .. "/team/app:2"},
                     credentials_for, {ca_file = CA, timeout = 5})
t.eq({results[1].state, results[2].state, results[3].state, results[4].state}, {"ok", "unreachable", "not-found", "ok"},
     "an unreachable registry and a missing tag beside images that pull")
t.eq(results[3].message, HOST .. " has no manifest team/app:missing (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)",
     "the 404's reason, read by a GET in the last phase")
for _, r in ipairs(results) do t.ok(not r.message:find(PASSWORD, 1, true), "no password in: " .. r.message) end

-- one at a time when asked
reset()
results = pull.check({HOST .. "/a:1", HOST .. "/a:2", HOST .. "/a:3"}, credentials_for, {ca_file = CA, concurrency = 1})
t.eq({results[3].state, most_in_flight()}, {"ok", 1}, "concurrency = 1: one HEAD at a time")
t.raises("pull.check: option 'concurrency' must be an integer from 1 to 64", "concurrency out of range",
         pull.check, {}, credentials_for, {concurrency = 0})
return t.done()
