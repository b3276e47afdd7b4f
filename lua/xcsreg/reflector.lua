-- xcsreg.reflector: one collection of the API kept in step by LIST then
-- WATCH, with the semantics of client-go's Reflector
-- (k8s.io/client-go/tools/cache/reflector.go, ListAndWatch and
-- watchHandler):
--   * LIST (in pages), then WATCH from the list's resourceVersion with
--     allowWatchBookmarks, and a timeoutSeconds drawn from [5, 10) minutes
--     (minWatchTimeout * (1 + rand)), so that watches do not all end at once;
--   * every event and BOOKMARK moves the last resourceVersion on; a watch
--     that ends cleanly (the server's timeout) starts again from it;
--   * 410 Gone (an ERROR event or the answer; "Expired": the version was
--     compacted) means relisting at once; any other ERROR event or a broken
--     watch relists after a backoff, as ListAndWatch returning an error
--     does; the backoff is client-go's (800 ms doubling to 30 s, jittered,
--     reset after 2 min of calm), so a server that is down sees no storm.
-- The reflector does not block: the controller's loop waits on every watch
-- at once (client:wait) and then calls step, which reads what arrived.
local log = require "log"
local pager = require "xcsreg.pager"
local proc = require "proc"

local reflector = {}
reflector.__index = reflector

-- client-go: wait.NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)
local BACKOFF_INITIAL, BACKOFF_CAP, BACKOFF_RESET = 0.8, 30, 120
local MIN_WATCH_TIMEOUT = 300

-- A reflector of the collection at path (a LIST path) selected by query
-- (labelSelector, fieldSelector), calling handler:
--   handler.replace(items, r)    after each LIST, with all of its items
--   handler.event(type, obj, r)  for ADDED, MODIFIED and DELETED
-- opts: watch_timeout (seconds; default from [5, 10) min), name (for logs).
function reflector.new(client, path, query, handler, opts)
  opts = opts or {}
  return setmetatable({ client = client, path = path, query = query or {}, handler = handler,
    name = opts.name or path, watch_timeout = opts.watch_timeout, state = "list", wake = 0,
    failures = 0, calm_since = nil, rv = nil, w = nil, stats = opts.stats or {} }, reflector)
end

local function count(r, key) r.stats[key] = (r.stats[key] or 0) + 1 end

function reflector:backoff(now, why)
  if self.calm_since and now - self.calm_since > BACKOFF_RESET then self.failures = 0 end
  local d = math.min(BACKOFF_INITIAL * 2 ^ self.failures, BACKOFF_CAP)
  self.failures = self.failures + 1
  self.calm_since = nil
  d = d * (1 + math.random())
  log.info("%s: %s; again in %.1fs", self.name, why, d)
  self.wake = now + d
  return d
end

function reflector:close()
  if self.w then self.w:close() end
  self.w = nil
end

local function relist(r, now, why, at_once)
  r:close()
  r.state = "list"
  count(r, "restarts")
  if at_once then
    log.info("%s: %s: listing again", r.name, why)
    r.wake = now
  else
    r:backoff(now, why)
  end
end

local function start_watch(r, now)
  local q = {}
  for k, v in pairs(r.query) do q[k] = v end
  q.resourceVersion = r.rv
  q.allowWatchBookmarks = "true"
  q.timeoutSeconds = tostring(r.watch_timeout or math.floor(MIN_WATCH_TIMEOUT * (1 + math.random())))
  local w, err = r.client:watch(r.path, q)
  if not w then
    if type(err) == "table" and err.code == 410 then return relist(r, now, tostring(err), true) end
    return relist(r, now, "cannot watch: " .. tostring(err))
  end
  r.w, r.state = w, "watch"
  r.calm_since = r.calm_since or now
end

local function list(r, now)
  local l, err = pager.list(r.client, r.path, r.query)
  local items = l and type(l.items) == "table" and l.items
  local rv = l and type(l.metadata) == "table" and l.metadata.resourceVersion
  if not (items and type(rv) == "string") then
    r:backoff(now, "cannot list: " .. tostring(err or "not a list"))
    return
  end
  r.rv = rv
  count(r, "lists")
  r.handler.replace(items, r)
  start_watch(r, now)
end

-- Reads what arrived, restarts what ended, lists when due. Returns the
-- number of events handled (bookmarks included).
function reflector:step(now)
  now = now or proc.clock()
  if self.state == "list" then
    if now >= self.wake then list(self, now) end
    return 0
  end
  local n = 0
  while self.w do
    local ev, err = self.w:next()
    if ev == nil then break end
    if ev == false then
      self:close()
      if err == nil then
        -- the server's timeout: go on from the last version seen
        count(self, "restarts")
        start_watch(self, now)
      elseif err.code == 410 then
        relist(self, now, tostring(err), true)
      else
        relist(self, now, "the watch broke: " .. tostring(err))
      end
      break
    end
    n = n + 1
    local obj = ev.object
    local rv = type(obj) == "table" and type(obj.metadata) == "table" and obj.metadata.resourceVersion
    if ev.type == "ERROR" then
      local code = type(obj) == "table" and obj.code
      local msg = type(obj) == "table" and obj.message or "?"
      relist(self, now, string.format("watch: %s (%s)", tostring(msg), tostring(code)), code == 410)
      break
    elseif ev.type == "BOOKMARK" then
      if type(rv) == "string" then self.rv = rv end
    elseif ev.type == "ADDED" or ev.type == "MODIFIED" or ev.type == "DELETED" then
      if type(rv) == "string" then self.rv = rv end
      self.handler.event(ev.type, obj, self)
    else
      log.warn("%s: watch event of unknown type %s ignored", self.name, tostring(ev.type))
    end
  end
  return n
end

-- When step next has something to do without an event: the time of the
-- next LIST or WATCH attempt, or nil (waiting on the watch).
function reflector:due()
  if self.state ~= "watch" then return self.wake end
end

return reflector
