-- needs: hostile
-- The k8s client against a hostile API server (tests/lib/hostile.py over
-- TLS, with-hostile's kubeconfig and fake token): a huge body, huge headers,
-- a truncated body, invalid JSON, a slow drip, no answer, a redirect to
-- another host, HTML error pages, a gzip bomb. Each gives nil, err with a
-- clear message; the token never reaches another host nor a message.
local t = require "test"
local http = require "http"
local json = require "json"
local k8s = require "k8s"
local proc = require "proc"

local KUBECONFIG = assert(os.getenv("XCSREG_HOSTILE_KUBECONFIG"), "run under tests/lib/with-hostile")
local HTTPS = os.getenv("XCSREG_HOSTILE_HTTPS")
local HTTP = os.getenv("XCSREG_HOSTILE_HTTP")
local TOKEN = os.getenv("XCSREG_HOSTILE_TOKEN")
local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = os.getenv("XCSREG_TEST_TMP") or "/tmp"
local P = "/api/v1/namespaces/x/secrets/"
local MAX_RSS_MB = 200

local c = assert(k8s.client { kubeconfig = KUBECONFIG, retries = 0, request_timeout = 2 })

-- Every error: a table with a message that never shows the token.
local function no_token(err, name)
  t.ok(not tostring(err):find(TOKEN, 1, true) and not tostring(err.message):find(TOKEN, 1, true),
    name .. ": the token is not in the message")
end

local obj, err = c:get(P .. "ok")
t.eq(obj and obj.metadata.name, "ok", "sanity: a good answer decodes")

-- ---- size ----
local MiB = 1024 * 1024
local function too_big(cap)
  return { nil, "InvalidResponse", HTTPS .. ": the response is larger than max_response_bytes (" .. cap .. " bytes)" }
end
-- the default cap (256 MiB) against a Content-Length past it: refused before any of the body is read
local started = os.clock()
obj, err = c:get(P .. "huge?mib=300")
t.eq({ obj, err.reason, err.message }, too_big(256 * MiB), "huge, 300 MiB: refused at the default cap of 256 MiB")
t.eq(tostring(err), HTTPS .. ": the response is larger than max_response_bytes (268435456 bytes)", "huge: tostring")
t.ok(os.clock() - started < 1, "huge, 300 MiB: refused without reading it")
no_token(err, "huge")
local small = assert(k8s.client { kubeconfig = KUBECONFIG, retries = 2, request_timeout = 20,
                                  max_response_bytes = 16 * MiB })
obj, err = small:get(P .. "huge?mib=80")
t.eq({ obj, err.reason, err.message, err.retries }, { nil, "InvalidResponse", too_big(16 * MiB)[3], 0 },
  "huge, Content-Length past max_response_bytes: refused, not tried again")
-- without a Content-Length the cap holds while receiving: in a child, to measure its memory
local path = TMP .. "/hostile-k8s-huge.lua"
local f = assert(io.open(path, "w"))
f:write(([[
local k8s = require "k8s"
local c = assert(k8s.client { kubeconfig = %q, retries = 0, request_timeout = 20, max_response_bytes = 32 << 20 })
local obj, err = c:get(%q)
print(obj == nil and "nil	" .. tostring(err) or ("a %%s of %%d bytes"):format(type(obj), #obj))
for l in io.lines("/proc/self/status") do
  local kb = l:match("^VmHWM:%%s*(%%d+)") if kb then print("rss " .. kb) end
end
]]):format(KUBECONFIG, P .. "huge?mib=200&chunked=1"))
f:close()
-- (ASan's quarantine of freed memory, 256 MB by default, would be measured too:
-- TLS records churn through it; a small one keeps the measure ours)
local status, out = proc.run { argv = { XCSREG, "run", path }, timeout = 120,
                               env = { ASAN_OPTIONS = "detect_leaks=1:quarantine_size_mb=16" } }
local rss = out and tonumber(out:match("rss (%d+)"))
rss = rss and rss // 1024
t.eq({ status, out and out:match("^[^\n]*") },
  { 0, "nil\t" .. HTTPS .. ": the response is larger than max_response_bytes (33554432 bytes)" },
  "huge, 200 MiB chunked: refused at max_response_bytes = 32 MiB")
t.ok(rss and rss < MAX_RSS_MB, ("huge, 200 MiB chunked: peak RSS %s MB, under %d MB"):format(rss, MAX_RSS_MB))
print(("# huge: a 200 MiB chunked answer refused at 32 MiB with a peak RSS of %s MB"):format(rss))
-- the cap counts the decompressed body: 64 MiB gzipped into 64 KB
obj, err = small:get(P .. "gzipbomb?mib=64")
t.eq({ obj, err.reason, err.message }, too_big(16 * MiB), "gzip bomb: refused after decompression")
-- from a map's coroutines (the same receive path)
local res = small:map({ "gzipbomb?mib=64", "huge?mib=80&chunked=1", "ok" }, function(name)
  local o, e = small:get(P .. name)
  return o and o.metadata.name or e.message
end)
t.eq(res, { too_big(16 * MiB)[3], too_big(16 * MiB)[3], "ok" }, "map: each answer past the cap refused, the others not")
obj = small:get(P .. "ok")
t.eq(obj and obj.metadata.name, "ok", "after a refused answer the client goes on")
t.raises("bad argument #1 to 'k8s.client' (option 'max_response_bytes' must be a positive integer)",
  "max_response_bytes: checked", k8s.client, { kubeconfig = KUBECONFIG, max_response_bytes = 0 })

obj, err = c:get(P .. "hugeheaders?mib=2")
t.eq({ obj, err and err.reason }, { nil, "Transport" }, "huge headers: a transport error")
t.ok(err and err.message:find("Too large response headers", 1, true), "huge headers: curl's cap says so",
  err and err.message)

-- ---- broken answers ----
obj, err = c:get(P .. "truncated")
t.eq({ obj, err.reason, err.message },
  { nil, "Transport", HTTPS .. ": transfer closed with 900 bytes remaining to read" }, "truncated body")
no_token(err, "truncated body")
local c2 = assert(k8s.client { kubeconfig = KUBECONFIG, retries = 2, request_timeout = 2 })
obj, err = c2:get(P .. "truncated")
t.eq({ obj, err.retries }, { nil, 2 }, "truncated body: a GET is tried again")
t.eq(tostring(err), "Unable to connect to the server: " .. HTTPS
  .. ": transfer closed with 900 bytes remaining to read (after 2 retries)", "truncated body: tostring")

obj, err = c:get(P .. "badjson")
t.eq({ obj, err.code, err.reason, err.message, err.retries },
  { nil, 200, "InvalidResponse", "HTTP 200 from " .. HTTPS .. ": invalid JSON at line 1, column 8 (byte 7)", 0 },
  "invalid JSON: nil, err saying where")
t.eq(tostring(err), "Error from server (InvalidResponse): HTTP 200 from " .. HTTPS
  .. ": invalid JSON at line 1, column 8 (byte 7)", "invalid JSON: tostring")
local code, body
code, err = c:request { method = "GET", path = P .. "badjson" }
t.eq({ code, err.reason, err.message }, { nil, "InvalidResponse", "HTTP 200 from " .. HTTPS
  .. ": invalid JSON at line 1, column 8 (byte 7)" }, "invalid JSON through client:request: nil, err too")
obj, err = c:get(P .. "htmlpage?code=200")
t.eq({ obj, err.code, err.reason, err.message }, { nil, 200, "InvalidResponse", "HTTP 200 from " .. HTTPS
  .. ": not JSON (text/html): Bad Gateway" }, "a 200 HTML page: not JSON, the type and title")
no_token(err, "a 200 HTML page")
code, body = c:request { method = "GET", path = P .. "htmlpage?code=200" }
t.eq({ code, type(body) }, { 200, "string" }, "client:request returns an HTML page as it is")

started = os.time()
obj, err = c:get(P .. "drip")
t.eq({ obj, err.reason }, { nil, "Transport" }, "slow drip: a transport error")
t.ok(err.message:find(HTTPS .. ": Operation timed out after 2", 1, true) == 1, "slow drip: the timeout fires",
  err.message)
obj, err = c:get(P .. "silent")
t.ok(obj == nil and err.message:find(HTTPS .. ": Operation timed out after 2", 1, true) == 1,
  "no answer: the timeout fires", err.message)
t.ok(os.time() - started <= 8, "the timeouts bound the wait")
no_token(err, "timeout")

-- ---- an HTML error page ----
obj, err = c:get(P .. "html500")
t.eq({ obj, err.code, err.reason, err.status, err.message }, { nil, 500, "InternalError", nil, "HTTP 500 from "
  .. HTTPS .. ": not a Kubernetes Status (text/html): 500 Internal Server Error" }, "HTML 500: the status, type and title")
t.eq(tostring(err), "Error from server (InternalError): HTTP 500 from " .. HTTPS
  .. ": not a Kubernetes Status (text/html): 500 Internal Server Error", "HTML 500: tostring")
obj, err = c:get(P .. "htmlpage?pad=1000")
t.eq({ obj, err.code, err.reason, err.message }, { nil, 502, "Unknown", "HTTP 502 from " .. HTTPS
  .. ": not a Kubernetes Status (text/html): Bad Gateway " .. ("x"):rep(200 - 12) .. "..." },
  "an HTML 502 echoing the request's headers: the title, cut at 200 bytes")
no_token(err, "an HTML 502 echoing the request's headers")

-- ---- a redirect to another host: not followed, the token stays ----
assert(http.request { url = os.getenv("XCSREG_HOSTILE_OTHER") .. "/forget" })
obj, err = c:get(P .. "redirect-other-host")
t.eq({ obj, err.code, err.message }, { nil, 302, "the server responded with HTTP status 302" },
  "redirect: an error, not followed")
no_token(err, "redirect")
local _, _, seen = http.request { url = os.getenv("XCSREG_HOSTILE_OTHER") .. "/seen" }
t.eq(json.decode(seen), json.array {}, "redirect: the other host got nothing")

-- over plain HTTP the token is not even sent to the server itself
local plain = TMP .. "/hostile-plain.kubeconfig"
f = assert(io.open(plain, "w"))
f:write((assert(io.open(KUBECONFIG)):read("a"):gsub("server: %S+", "server: " .. HTTP)
  :gsub("\n%s*certificate%-authority: %S+", "")))
f:close()
local pc = assert(k8s.client { kubeconfig = plain, retries = 0 })
obj = pc:get(P .. "redirect-other-host")
t.eq(obj, nil, "plain http: the redirect is an error too")

return t.done()
