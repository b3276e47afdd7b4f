-- needs: apisim
-- The k8s module's watch (client:watch, watch:next, client:wait) and the
-- http module's responder (http.listen), against the simulator: events as
-- the server sent them, nil until one arrives, false at a clean end, an
-- API error as one, an event over max_event_bytes as InvalidResponse, the
-- waits on watches and descriptors; GET answered, other methods and
-- oversized requests refused, nothing blocking.
local t = require "test"
local http = require "http"
local k8s = require "k8s"
local proc = require "proc"
local simctl = require "simctl"

simctl.reset()
simctl.watch { bookmark_seconds = 0.3 }
local c <close> = assert(k8s.client { kubeconfig = simctl.dir .. "/token.kubeconfig" })
local list = assert(c:list("/api/v1/namespaces/default/serviceaccounts"))
local rv = list.metadata.resourceVersion

-- Reads events of w until one passes keep (or the watch ends), waiting on c: it, or false, err.
local function next_event(w, keep, timeout)
  local deadline = proc.clock() + (timeout or 5)
  while proc.clock() < deadline do
    local ev, err = w:next()
    if ev == false then return false, err end
    if ev and (not keep or keep(ev)) then return ev end
    if ev == nil then c:wait(0.5) end
  end
  return nil, "timed out"
end

-- ---- events, bookmarks, nil while nothing came ----
local w <close> = assert(c:watch("/api/v1/namespaces/default/serviceaccounts",
  { resourceVersion = rv, allowWatchBookmarks = "true", timeoutSeconds = 3 }))
t.eq(w:next(), nil, "next: nil before anything arrived")
assert(c:create("/api/v1/namespaces/default/serviceaccounts", { metadata = { name = "watched" } }))
local bm
local ev = next_event(w, function(e)
  if e.type == "BOOKMARK" then bm = e end
  return e.type ~= "BOOKMARK"
end)
t.eq({ ev and ev.type, ev and ev.object.metadata.name, ev and ev.object.kind }, { "ADDED", "watched", "ServiceAccount" },
  "an ADDED event, its object decoded (kind included)")
bm = bm or next_event(w, function(e) return e.type == "BOOKMARK" end)
t.ok(bm and type(bm.object.metadata.resourceVersion) == "string", "a BOOKMARK, with its resourceVersion")
local ended, err = next_event(w, function() return false end, 5)
t.eq({ ended, err }, { false, nil }, "timeoutSeconds: the watch ends cleanly (false, no error)")
t.eq({ w:next() }, { false }, "... and stays ended")
w:close()
t.raises("closed watch", "next on a closed watch raises", function() return w:next() end)

-- ---- a watch from a compacted version: the ERROR event is an event ----
simctl.compact()
local old <close> = assert(c:watch("/api/v1/namespaces/default/serviceaccounts", { resourceVersion = rv }))
ev = next_event(old)
t.eq({ ev and ev.type, ev and ev.object.code, ev and ev.object.reason }, { "ERROR", 410, "Expired" },
  "a compacted resourceVersion: an ERROR event with the 410 Expired Status")

-- ---- an API error answer: false, err ----
local bad <close> = assert(c:watch("/api/v1/namespaces/default/nothings"))
ended, err = next_event(bad)
t.eq({ ended, type(err) == "table" and err.code }, { false, 404 }, "a watch the server refuses: false and its error")
t.raises("timeoutSeconds must be a positive number", "timeoutSeconds 0 is misuse",
  function() return c:watch("/api/v1/secrets", { timeoutSeconds = 0 }) end)

-- ---- an event over max_event_bytes ends the watch, bounded ----
local small <close> = assert(c:watch("/api/v1/namespaces/default/secrets", { resourceVersion = "0" },
  { max_event_bytes = 512 }))
assert(c:create("/api/v1/namespaces/default/secrets", { metadata = { name = "big" },
  stringData = { big = string.rep("x", 4096) } }))
ended, err = next_event(small)
t.eq({ ended, type(err) == "table" and err.reason }, { false, "InvalidResponse" },
  "an event over max_event_bytes: false, InvalidResponse")
t.ok(type(err) == "table" and err.message:find("larger than max_event_bytes (512 bytes)", 1, true),
  "... saying so", tostring(err and err.message))

-- ---- many events at once: none lost, none over the bound ----
local many <close> = assert(c:watch("/api/v1/namespaces/default/serviceaccounts",
  { resourceVersion = assert(c:list("/api/v1/namespaces/default/serviceaccounts")).metadata.resourceVersion },
  { max_event_bytes = 2048 }))
for i = 1, 200 do
  assert(c:patch("/api/v1/namespaces/default/serviceaccounts/watched",
    { metadata = { annotations = { n = tostring(i) } } }, "merge"))
end
local seen = 0
for _ = 1, 200 do
  ev = next_event(many, function(e) return e.type == "MODIFIED" end)
  if ev then seen = seen + 1 end
end
t.eq(seen, 200, "200 events written at once: all 200 read, with a 2 KiB bound (the transfer paused, not dropped)")

-- ---- client:wait: descriptors, timeouts, no busy waiting ----
for _, watch in ipairs { old, bad, small, many } do watch:close() end
local srv <close> = assert(http.listen("127.0.0.1:0"))
t.ok(srv.port > 0, "http.listen port 0: the port picked")
local t0 = proc.clock()
local ready = c:wait(0.3, srv:fds())
t.ok(#ready == 0 and proc.clock() - t0 >= 0.25, "wait: nothing readable, it returns at its timeout",
  string.format("%.3f s", proc.clock() - t0))
local cpu0 = os.clock()
c:wait(0.5, srv:fds())
t.ok(os.clock() - cpu0 < 0.05, "wait: no busy waiting (CPU time while waiting)", tostring(os.clock() - cpu0))

-- a client in a child process: curl asks while this process serves
local out = os.tmpname()
os.execute(string.format("(curl -s -i http://127.0.0.1:%d/healthz; echo; curl -s -i -X POST "
  .. "http://127.0.0.1:%d/healthz; echo; curl -s -i -H \"X-Big: %s\" http://127.0.0.1:%d/) >%s 2>&1 &",
  srv.port, srv.port, string.rep("y", 9000), srv.port, out))
local asked = {}
local deadline = proc.clock() + 5
local answered = 0
while answered < 3 and proc.clock() < deadline do
  ready = c:wait(1, srv:fds())
  answered = answered + srv:serve(function(method, path)
    asked[#asked + 1] = method .. " " .. path
    return 200, "text/plain", "ok"
  end)
end
t.eq(answered, 3, "serve: three requests answered (the handler called for one)")
proc.run { argv = { "sleep", "0.3" } } -- curl has written its output
srv:serve(function() error("not called") end)
local f = io.open(out)
local text = f and f:read("a") or ""
if f then f:close() end
os.remove(out)
t.eq(asked, { "GET /healthz" }, "serve: the handler sees the GET, not the POST nor the oversized request")
t.ok(text:find("HTTP/1.1 200 OK\r\n", 1, true) and text:find("Connection: close\r\n", 1, true)
  and text:find("\r\n\r\nok", 1, true), "serve: 200, Connection: close, the body", text)
t.ok(text:find("HTTP/1.1 405 Method Not Allowed", 1, true), "serve: POST is 405", text)
t.ok(text:find("HTTP/1.1 431 ", 1, true), "serve: a request head over 8 KiB is 431", text)
local none, lerr = http.listen("no-port")
t.eq({ none, lerr }, { nil, "no-port: not an address: give HOST:PORT, e.g. 127.0.0.1:8080" }, "listen: a bad address")
none, lerr = http.listen("127.0.0.1:" .. srv.port)
t.ok(none == nil and lerr:find("cannot listen on 127.0.0.1:%d+: Address already in use"), "listen: a port in use", lerr)
srv:close()
t.raises("closed http server", "a closed server raises", function() return srv:fds() end)
t.done()
