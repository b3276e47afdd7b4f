-- simctl.lua: the API simulator's control API (tests/apisim/README.md), for
-- tests running under tests/apisim/with-sim. Every call raises on failure:
-- a test cannot go on against a simulator in an unknown state.
local http = require "http"
local json = require "json"

local simctl = {
  api = os.getenv("XCSREG_SIM_API"),         -- https://127.0.0.1:PORT
  control = os.getenv("XCSREG_SIM_CONTROL"), -- http://127.0.0.1:PORT
  certs = os.getenv("XCSREG_SIM_CERTS"),     -- ca.crt, other-ca.crt, admin.crt/key, alice.crt/key
  dir = os.getenv("XCSREG_SIM_DIR"),         -- token.kubeconfig, cert.kubeconfig, ...
}

local function call(method, path, body)
  if not simctl.control then
    error("XCSREG_SIM_CONTROL is not set: run the test under tests/apisim/with-sim", 3)
  end
  local status, _, text = http.request {
    url = simctl.control .. path,
    method = method,
    body = body ~= nil and json.encode(body) or nil,
    headers = body ~= nil and { ["Content-Type"] = "application/json" } or nil,
  }
  if not status then
    error(string.format("simctl %s %s: %s", method, path, tostring(_)), 3)
  end
  if status >= 300 then
    error(string.format("simctl %s %s: HTTP %d: %s", method, path, status, text), 3)
  end
  return json.decode(text)
end

-- Forgets every object, fault, log entry, grant and throttle.
function simctl.reset() return call("POST", "/reset") end

-- Creates a namespace (with its default ServiceAccount unless default_sa is false).
function simctl.namespace(name, labels, default_sa)
  return call("POST", "/namespaces", { name = name, labels = labels, default_sa = default_sa ~= false })
end

-- Stores an object as given, bypassing authorization and validation.
function simctl.seed(obj) return call("POST", "/objects", obj) end

-- The stored objects of a kind (and namespace).
function simctl.objects(kind, namespace)
  local q = "?kind=" .. kind
  if namespace then q = q .. "&namespace=" .. namespace end
  return call("GET", "/objects" .. q)
end

-- grant{user =, verbs = {...}, resources = {...}, namespaces = {...}}
function simctl.grant(g) return call("POST", "/grant", g) end

-- Adds a bearer token for a user.
function simctl.user(name, token) return call("POST", "/users", { name = name, token = token }) end

-- fault{method =, path_regex =, skip =, count =, status =, retry_after =, body =,
--       content_type =, latency_ms =, hold_ms =,
--       action = "status"|"drop"|"delay"|"conflict"|"timeout"}
function simctl.fault(f) return call("POST", "/faults", f) end
function simctl.clear_faults() return call("DELETE", "/faults") end

-- The request log: {conn, method, path, query, content_type, user, status, body}...
-- The simulator records a status once it has answered, which may be just
-- after the client has its answer: wait (2 s at most) for those.
function simctl.log()
  local log
  for _ = 1, 40 do
    log = call("GET", "/log")
    local settled = true
    for _, e in ipairs(log) do
      if e.status == json.null then settled = false end
    end
    if settled then break end
    os.execute("sleep 0.05")
  end
  return log
end
function simctl.clear_log() return call("DELETE", "/log") end

-- Every change to the store since the last reset, restore or clear_history:
-- {seq, op = "put"|"delete", kind, namespace, name, object}...
function simctl.history() return call("GET", "/history") end
function simctl.clear_history() return call("DELETE", "/history") end

-- Keeps a copy of the store under a name; restore puts it back (and starts
-- the history anew).
function simctl.save(name) return call("POST", "/save", { name = name }) end
function simctl.restore(name) return call("POST", "/restore", { name = name }) end

-- Answers 429 (text/plain, Retry-After) beyond max_inflight concurrent requests.
-- At most n items per LIST page (nil: as limit asks).
function simctl.paging(n) return call("POST", "/paging", { max_page = n or false }) end

function simctl.throttle(max_inflight, retry_after)
  return call("POST", "/throttle", { max_inflight = max_inflight, retry_after = retry_after })
end

-- Watches (tests/apisim/README.md "Watch"). The watch settings until the next
-- reset: watch{min_request_timeout = seconds (a watch without timeoutSeconds
-- ends after it; default 1800), randomize = false (not times [1, 2) as
-- upstream), bookmark_seconds = seconds (default 60)}. Returns the state below.
function simctl.watch(settings) return call("POST", "/watch", settings or {}) end

-- {open = watches being served, resourceVersion, compacted, settings...}
function simctl.watch_state() return call("GET", "/watch") end

-- Waits (5 s at most) until n watches are open; returns the state, or raises.
function simctl.wait_watches(n)
  local st
  for _ = 1, 100 do
    st = call("GET", "/watch")
    if st.open == n then return st end
    os.execute("sleep 0.05")
  end
  error(string.format("simctl.wait_watches(%d): %d open", n, st.open), 2)
end

-- Ends every open watch now, cleanly (as at its timeout); returns how many.
function simctl.end_watches() return call("POST", "/watch/end").ended end

-- Compacts the watch history at the current resourceVersion: a watch from
-- an older one gets the 410 Expired ERROR event. Returns that resourceVersion.
function simctl.compact() return call("POST", "/compact").compacted end

-- An apiserver restart: every API connection drops (watches without their
-- terminating chunk), connections are refused for down_ms (default 0),
-- the store and the resourceVersion counter stay, and the watch history
-- starts at the current resourceVersion (older ones get 410). Returns it.
function simctl.restart(down_ms)
  return call("POST", "/restart", { down_ms = down_ms or 0 }).resourceVersion
end

return simctl
