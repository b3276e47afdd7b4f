-- needs: apisim
-- simctl's watch controls (watch, watch_state, wait_watches, compact,
-- restart) drive the simulator as tests/apisim/README.md says; the watch
-- itself is read with curl (in the background) since it streams.
local t = require "test"
local json = require "json"
local simctl = require "simctl"

local tmp = os.getenv("XCSREG_SIM_DIR") .. "/watch-lua"
assert(os.execute("mkdir -p " .. tmp))

local function curl_watch(out, query)
  os.execute(string.format(
    "curl -sS -N -A x --cacert %s/ca.crt -H 'Authorization: Bearer admin-token' '%s/api/v1/namespaces/default/secrets?watch=true&%s' >%s 2>&1 &",
    simctl.certs, simctl.api, query, out))
end

local function lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for l in f:lines() do out[#out + 1] = json.decode(l) end
  f:close()
  return out
end

simctl.reset()
local st = simctl.watch { min_request_timeout = 30, randomize = false, bookmark_seconds = 60 }
t.eq({ st.open, st.min_request_timeout, st.randomize, st.bookmark_seconds }, { 0, 30, false, 60 },
  "watch{} sets the watch settings")
local rv = st.resourceVersion
curl_watch(tmp .. "/a", "resourceVersion=" .. rv)
t.eq(simctl.wait_watches(1).open, 1, "wait_watches(1) once curl watches")
simctl.seed { kind = "Secret", metadata = { name = "seeded", namespace = "default" } }
-- A restart drops what a watch has not sent yet: wait until curl has the event.
for _ = 1, 100 do
  if #lines(tmp .. "/a") > 0 then break end
  os.execute("sleep 0.05")
end
local restarted = simctl.restart(100)
t.eq(simctl.wait_watches(0).open, 0, "restart() drops the open watch")
local ev = lines(tmp .. "/a")
t.eq(#ev, 1, "the watch had one event")
t.eq(ev[1] and ev[1].type, "ADDED", "a seeded object is an ADDED event")
t.eq(ev[1] and ev[1].object.metadata.resourceVersion, restarted,
  "restart() returns the resourceVersion it kept")
t.eq(simctl.watch_state().compacted, restarted, "after a restart the watch history starts there")

os.execute("sleep 0.15")
curl_watch(tmp .. "/b", "resourceVersion=" .. rv)
for _ = 1, 40 do
  if #lines(tmp .. "/b") > 0 then break end
  os.execute("sleep 0.05")
end
ev = lines(tmp .. "/b")
t.eq(ev[1] and ev[1].object.code, 410, "a watch from before the restart: 410")
t.eq(ev[1] and ev[1].object.message,
  string.format("too old resource version: %s (%s)", rv, restarted), "... too old resource version")

curl_watch(tmp .. "/c", "resourceVersion=0")
simctl.wait_watches(1)
t.eq(simctl.end_watches(), 1, "end_watches() ends the open watch")
t.eq(simctl.wait_watches(0).open, 0, "... which closes")
local log = simctl.log()
t.eq(log[#log].watch_end, "timeout", "... cleanly, as at its timeout")

simctl.seed { kind = "Secret", metadata = { name = "later", namespace = "default" } }
local c = simctl.compact()
t.ok(tonumber(c) > tonumber(restarted), "compact() returns the current resourceVersion", c)
simctl.reset()
t.eq(simctl.watch_state().min_request_timeout, 1800, "reset() puts the watch settings back")
return t.done()
