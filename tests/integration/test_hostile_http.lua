-- needs: hostile
-- The http module against a hostile server (tests/lib/hostile.py): a body
-- past the size cap, headers past curl's cap, a truncated body, a slow
-- drip, a server that never answers, redirects to another host (the
-- credentials stay behind), an HTML 500. Each ends in a clear result or
-- nil, message; none crashes; memory stays bounded (measured in a child).
local t = require "test"
local http = require "http"
local json = require "json"
local proc = require "proc"

local H = assert(os.getenv("XCSREG_HOSTILE_HTTP"), "run under tests/lib/with-hostile")
local OTHER = os.getenv("XCSREG_HOSTILE_OTHER")
local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = os.getenv("XCSREG_TEST_TMP") or "/tmp"
local MAX_RSS_MB = 200

-- Runs code in a child `xcsreg run`; it prints its result. Returns the
-- exit status, its output without the last line, and its peak RSS in MB
-- (VmHWM, printed by a line added after code).
local function in_child(name, code)
  local path = TMP .. "/hostile-http-" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(code, "\nfor l in io.lines('/proc/self/status') do\n",
    "  local kb = l:match('^VmHWM:%s*(%d+)') if kb then print('rss ' .. kb) end\nend\n")
  f:close()
  local status, out, err = proc.run { argv = { XCSREG, "run", path }, timeout = 120 }
  local kb = out and tonumber(out:match("rss (%d+)\n$"))
  return status, out and out:gsub("rss %d+\n$", "") or err, kb and kb // 1024, err
end

local function seen_by_other()
  local status, _, body = assert(http.request { url = OTHER .. "/seen" })
  assert(status == 200)
  return json.decode(body)
end

local function forget()
  assert(http.request { url = OTHER .. "/forget" })
end

-- ---- size ----
local ok, err = http.request { url = H .. "/huge", max_body = 1 << 20 }
t.eq({ ok, err }, { nil, "response from " .. H .. "/huge exceeds 1048576 bytes" }, "huge: refused past max_body")
ok, err = http.request { url = H .. "/huge?chunked=1", max_body = 1 << 20 }
t.eq({ ok, err }, { nil, "response from " .. H .. "/huge?chunked=1 exceeds 1048576 bytes" },
  "huge, chunked (no Content-Length): refused past max_body")

local started = os.clock()
ok, err = http.request { url = H .. "/huge" }
t.eq({ ok, err }, { nil, "response from " .. H .. "/huge exceeds 67108864 bytes" },
  "huge, 200 MiB with a Content-Length: refused at the default cap of 64 MiB")
t.ok(os.clock() - started < 1, "huge, with a Content-Length: refused before reading the body")
forget()
ok, err = http.request { url = H .. "/redirect-other-host", follow_redirects = true, max_body = 100 }
t.eq({ ok, err }, { nil, "response from " .. H .. "/redirect-other-host exceeds 100 bytes" },
  "the cap holds for the answer at the end of a redirect")

-- 200 MiB chunked against the default cap, in a child to measure its memory
local status, out, rss = in_child("huge", ([[
local http = require "http"
print(http.request { url = %q })]]):format(H .. "/huge?chunked=1"))
t.eq({ status, out }, { 0, "nil\tresponse from " .. H .. "/huge?chunked=1 exceeds 67108864 bytes\n" },
  "huge, 200 MiB chunked: refused at the default cap of 64 MiB")
t.ok(rss and rss < MAX_RSS_MB, ("huge, 200 MiB chunked: peak RSS %s MB, under %d MB"):format(rss, MAX_RSS_MB))
print(("# huge: a 200 MiB chunked answer refused with a peak RSS of %s MB"):format(rss))

ok, err = http.request { url = H .. "/hugeheaders?mib=2" }
t.ok(ok == nil and err:find(H .. "/hugeheaders?mib=2: Too large response headers", 1, true) == 1,
  "huge headers: refused (by curl's 300 KB cap)", err)

-- ---- broken answers ----
ok, err = http.request { url = H .. "/truncated" }
t.eq({ ok, err }, { nil, H .. "/truncated: transfer closed with 900 bytes remaining to read" },
  "truncated body: an error, not a short body")

local _, _, body = http.request { url = H .. "/badjson" }
t.eq(body, '{"kind":', "invalid JSON: the body as sent")
t.eq({ json.decode(body) }, { nil, "invalid JSON at line 1, column 8 (byte 7)" }, "invalid JSON: decode says where")

local started = os.time()
ok, err = http.request { url = H .. "/drip", timeout = 2 }
t.ok(ok == nil and err:find(H .. "/drip: Operation timed out after 2", 1, true) == 1,
  "slow drip: the timeout fires", err)
ok, err = http.request { url = H .. "/silent", timeout = 1 }
t.ok(ok == nil and err:find(H .. "/silent: Operation timed out after 1", 1, true) == 1,
  "no answer: the timeout fires", err)
t.ok(os.time() - started <= 6, "the timeouts bound the wait")

-- ---- an HTML error page is a result, as any status ----
local code, headers
code, headers, body = http.request { url = H .. "/html500" }
t.eq({ code, headers["content-type"] }, { 500, "text/html" }, "HTML 500: status and type")
t.ok(body:find("<title>500 Internal Server Error</title>", 1, true), "HTML 500: the page")

-- ---- redirects to another host: credentials stay behind ----
forget()
code = http.request { url = H .. "/redirect-other-host", basic_auth = { "fake-user", "fake-password" } }
t.eq(code, 302, "redirect: not followed unless asked")
t.eq(seen_by_other(), json.array {}, "redirect, not followed: the other host got nothing")

code = http.request { url = H .. "/redirect-other-host", follow_redirects = true,
  basic_auth = { "fake-user", "fake-password" } }
t.eq(code, 200, "redirect followed to localhost:OTHER")
code = http.request { url = H .. "/redirect-other-host?to=ip", follow_redirects = true,
  headers = { Authorization = "Bearer fake-bearer-token", Cookie = "session=fake-cookie" } }
t.eq(code, 200, "redirect followed to 127.0.0.1:OTHER (same address, another port)")
local seen = seen_by_other()
t.eq(#seen, 2, "the other host got both requests")
for i, req in ipairs(seen) do
  t.eq({ req.authorization, req.cookie }, { json.null, json.null },
    ("redirect %d (%s): no Authorization, no Cookie reached the other host"):format(i, req.host))
end

return t.done()
