-- needs: hostile
-- The k8s client against a hostile API server (tests/lib/hostile.py over
-- TLS, with-hostile's kubeconfig and fake token): a huge body, huge headers,
-- a truncated body, invalid JSON, a slow drip, no answer, a redirect to
-- another host, an HTML 500. Each gives nil, err with a clear message (or,
-- for a known gap, at least no crash: a "# GAP:" line says what is missing);
-- the token never reaches another host nor a message.
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
-- 80 MiB (more than the http module's default cap) in a child, to measure memory
local path = TMP .. "/hostile-k8s-huge.lua"
local f = assert(io.open(path, "w"))
f:write(([[
local k8s = require "k8s"
local c = assert(k8s.client { kubeconfig = %q, retries = 0, request_timeout = 20 })
local obj, err = c:get(%q)
print(obj == nil and "nil\t" .. tostring(err) or ("a %%s of %%d bytes"):format(type(obj), #obj))
for l in io.lines("/proc/self/status") do
  local kb = l:match("^VmHWM:%%s*(%%d+)") if kb then print("rss " .. kb) end
end
]]):format(KUBECONFIG, P .. "huge?mib=80"))
f:close()
local status, out = proc.run { argv = { XCSREG, "run", path }, timeout = 120 }
local rss = out and tonumber(out:match("rss (%d+)"))
rss = rss and rss // 1024
t.eq(status, 0, "huge, 80 MiB: no crash")
if out and out:find("^nil\t") then
  t.ok(out:find("exceeds", 1, true), "huge, 80 MiB: refused, the message names the cap", out)
  t.ok(rss and rss < MAX_RSS_MB, ("huge, 80 MiB: peak RSS %s MB, under %d MB"):format(rss, MAX_RSS_MB))
else
  print(("# GAP: k8s client: no response size cap: an 80 MiB body was read whole (%s), peak RSS %s MB")
    :format(out and out:match("^[^\n]*"), rss))
end

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
if obj == nil then
  t.ok(tostring(err):find("invalid JSON", 1, true), "invalid JSON: nil, err saying so", tostring(err))
else
  t.eq(obj, '{"kind":', "invalid JSON: no crash")
  print("# GAP: k8s client: a 2xx application/json answer that is not JSON is returned as a string, "
    .. "not nil, err (a caller indexing it fails far away)")
end

local started = os.time()
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
t.eq({ obj, err.code, err.reason, err.status }, { nil, 500, "InternalError", nil }, "HTML 500: code and reason")
if err.message:find("500", 1, true) then
  t.ok(err.message:find("500 Internal Server Error", 1, true), "HTML 500: the message has the page's title",
    err.message)
else
  t.eq(err.message, "<html>", "HTML 500: no crash")
  print("# GAP: k8s client: an HTML error page gives the message '" .. err.message
    .. "' (its first line), not the status and the page's title")
end

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
