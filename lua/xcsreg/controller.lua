-- xcsreg.controller: setup.lua --watch, the site file kept true in
-- seconds rather than at the next cron run.
--
--   reflectors (LIST+WATCH: xcsreg.reflector) → cache → what breaks the
--   wanted state → dirty namespaces (debounced) → reconcile.namespace
--
-- What is watched is what the cron run reads (xcsreg.snapshot's queries):
-- the Secrets xcsreg manages (by label) and each wanted ServiceAccount (by
-- field selector), cluster-wide when the site file selects namespaces
-- (namespace_selector, all_namespaces: then the Namespaces too), else in
-- each listed namespace only. An event changes the cache; the namespace it
-- concerns is checked against the wanted state without a request, and
-- only one that differs (a new namespace, a ServiceAccount without an
-- entry, a managed Secret deleted or edited, a minted credential due) is
-- reconciled, with the cache as its first read. Our own writes come back
-- as events that match the wanted state: they cause nothing. A namespace
-- whose reconcile failed is tried again with a growing delay, never in a
-- tight loop; nothing is polled.
--
-- With leader election (the default), only the replica holding the Lease
-- writes (xcsreg.leader): every write first checks, by the local clock,
-- that the lease is still valid. SIGTERM (and SIGINT, SIGHUP) ends the
-- loop once the namespaces in hand are done; the Lease is released; exit 0.
local dockerconfig = require "xcsreg.dockerconfigjson"
local k8s = require "k8s"
local leader = require "xcsreg.leader"
local log = require "log"
local metrics = require "xcsreg.metrics"
local proc = require "proc"
local reconcile = require "xcsreg.reconcile"
local reflector = require "xcsreg.reflector"
local rotation = require "xcsreg.rotation"
local script = require "xcsreg.script"
local secrets = require "xcsreg.secrets"
local sources = require "xcsreg.sources"
local time = require "xcsreg.time"

local controller = {}
local EXIT = script.EXIT

local DEBOUNCE = 0.05          -- seconds: a burst of events is one reconcile per namespace
local RETRY_MIN, RETRY_MAX = 2, 300  -- a failed namespace is tried again after 2 s, doubling
local MAX_WAIT = 60            -- the loop wakes at least this often (nothing is sent then)
local ROTATION_CHECK = 3600    -- minted credentials are looked at at least hourly

-- ---- the cache: what the reflectors hold, by namespace and name ----

local function new_cache(sa_names)
  local c = { secrets = {}, sas = {} }
  for _, name in ipairs(sa_names) do c.sas[name] = {} end
  -- the snapshot interface reconcile.namespace reads first (xcsreg.snapshot)
  c.snapshot = {
    secret = function(_, ns, name) return c.secrets[ns] and c.secrets[ns][name] or false end,
    service_account = function(_, ns, name) return c.sas[name] and c.sas[name][ns] end,
  }
  return c
end

-- A LIST item or watch object shaped as a GET answers it.
local function shaped(obj, kind)
  if type(obj) ~= "table" or type(obj.metadata) ~= "table" then return nil end
  obj.apiVersion, obj.kind = "v1", kind
  if kind == "Secret" then return secrets.checked(obj) end
  return obj
end

-- ---- the wanted state, checked without a request ----

-- Why the stored Secret obj (false: none) is not what plan entry s wants, or nil.
local function secret_wrong(s, obj, now)
  if not obj then return "missing" end
  if not secrets.managed(obj) then return "not xcsreg's" end
  local auths = obj.data and dockerconfig.decode(obj.data[".dockerconfigjson"])
  if type(auths) ~= "table" then return "no credentials" end
  local minted = false
  local count = 0
  for _ in pairs(auths) do count = count + 1 end
  if count ~= #s.registries then return "its registries changed" end
  for _, r in ipairs(s.registries) do
    local a = auths[r.server]
    if type(a) ~= "table" then return "no credential for " .. r.server end
    if r.source then
      minted = true
    elseif a.username ~= r.username or a.password ~= r.password then
      return "the credential of " .. r.server .. " differs"
    end
  end
  if minted then return rotation.due(s, obj, now) end
end

-- Whether a ServiceAccount lists every Secret name of ns_secrets.
local function sa_complete(sa, ns_secrets)
  local listed = {}
  local refs = sa.imagePullSecrets
  if type(refs) == "table" then
    for _, ref in ipairs(refs) do
      if type(ref) == "table" and ref.name then listed[ref.name] = true end
    end
  end
  for _, s in ipairs(ns_secrets) do
    if not listed[s.name] then return false end
  end
  return true
end

-- ---- the controller ----

local C = {}
C.__index = C

function C:touch(ns)
  if not self.checks[ns] then
    self.checks[ns] = true
    if not self.flush_at then self.flush_at = proc.clock() + DEBOUNCE end
  end
end

function C:touch_all()
  for ns in pairs(self.selected) do self:touch(ns) end
end

-- The plan's Secrets for ns (hooks.registries may choose them per
-- namespace; passwords read once), or nil when they cannot be had.
function C:prepared(ns)
  local p = self.prepared_by_ns[ns]
  if p == nil then
    local by, err = reconcile.prepare(self.client, self.plan, { ns })
    if not by then
      log.error("namespace %s: %s; not handled", ns, err)
      p = false
    else
      p = by[ns]
    end
    self.prepared_by_ns[ns] = p
  end
  return p or nil
end

-- What ns needs: nil (nothing), or the ServiceAccounts to give the pull
-- secrets to (those that exist; a missing one is waited for: its ADDED
-- event brings the namespace back).
function C:needs(ns, now_wall)
  local ns_secrets = self:prepared(ns)
  if not ns_secrets then return nil end
  local broken = false
  for _, s in ipairs(ns_secrets) do
    local obj = self.cache.secrets[ns] and self.cache.secrets[ns][s.name] or false
    local why = secret_wrong(s, obj, now_wall)
    if why then
      log.debug("namespace %s: secret/%s: %s", ns, s.name, why)
      broken = true
    end
  end
  local present = {}
  for _, name in ipairs(self.plan.service_accounts) do
    local sa = self.cache.sas[name][ns]
    if sa then
      present[#present + 1] = name
      if not sa_complete(sa, ns_secrets) then
        log.debug("namespace %s: serviceaccount/%s lacks a pull secret", ns, name)
        broken = true
      end
    elseif not self.waiting[ns .. "/" .. name] then
      self.waiting[ns .. "/" .. name] = true
      log.info("namespace %s: serviceaccount/%s does not exist (yet): waiting for it", ns, name)
    end
  end
  if broken then return present end
end

-- A client whose writes go out only while this replica leads.
function C:guarded()
  local client, elector = self.client, self.elector
  local refused = setmetatable({ reason = "NotLeader",
    message = "not the leader (lease not renewed in time): the write was not sent" },
    { __tostring = function(e) return e.message end })
  local writes = { create = true, replace = true, patch = true, delete = true }
  return setmetatable({}, { __index = function(t, k)
    local v = client[k]
    if type(v) ~= "function" then return v end
    local f
    if writes[k] or k == "request" then
      f = function(_, a, ...)
        local write = writes[k] or (type(a) == "table" and a.method ~= "GET" and a.method ~= "HEAD")
        if write and elector and not elector:valid() then return nil, refused end
        return v(client, a, ...)
      end
    else
      f = function(_, ...) return v(client, ...) end
    end
    rawset(t, k, f)
    return f
  end })
end

-- Reconciles the namespaces of batch (each with the ServiceAccounts that
-- exist), as reconcile.all does: concurrently, printed in batch order.
function C:reconcile(batch)
  local reports, order = {}, {}
  for i = 1, #batch do order[i] = i end
  -- each batch is a run: a credential minted for an earlier one, now due,
  -- must be minted again, not taken from xcsreg.sources' memo of the run
  sources.reset()
  self.guarded_client:map(order, function(i)
    local item = batch[i]
    local report = { lines = {}, expiries = {}, events = {}, credentials = {} }
    local plan = setmetatable({ service_accounts = item.sas }, { __index = self.plan })
    local called, ok = pcall(reconcile.namespace, self.guarded_client, item.ns, self:prepared(item.ns), plan,
      self.work, report)
    if not called then
      report.lines[#report.lines + 1] = { error = string.format("namespace %s: stopped by an unexpected answer "
        .. "from the API server: %s", item.ns, tostring(ok)) }
      ok = false
    end
    report.ok = ok
    reports[i] = report
  end)
  local now, events, success = proc.clock(), {}, true
  for i, report in ipairs(reports) do
    local ns = batch[i].ns
    self.stats.reconciles = self.stats.reconciles + 1
    for _, line in ipairs(report.lines) do
      if line.error then log.error("%s", line.error) elseif not self.quiet then print(ns .. ": " .. line.text) end
    end
    for _, e in ipairs(report.expiries) do self.expiries[ns .. "/" .. e.secret] = e end
    table.move(report.events, 1, #report.events, #events + 1, events)
    if report.ok then
      self.failures[ns], self.retry_at[ns] = nil, nil
    else
      local n = (self.failures[ns] or 0) + 1
      self.failures[ns] = n
      self.retry_at[ns] = now + math.min(RETRY_MIN * 2 ^ (n - 1), RETRY_MAX)
      success = false
    end
  end
  self.last_run = { time = time.now(), success = success }
  local herr = reconcile.report(self.plan, events)
  if herr then log.error("%s", herr) end
  if self.metrics_file then
    local ok, err = metrics.write(self.metrics_file, self:metrics_run())
    if not ok then log.error("--metrics-file: %s", err) end
  end
end

-- The namespaces checked since the last flush that need work, handled in
-- batches of --concurrency (between batches the lease is renewed).
function C:flush(now)
  -- as a controller waits for its informers' HasSynced: while a collection
  -- is being listed again, what the cache says of it may be old (our own
  -- writes missed while the watch was down), and a write on it a duplicate
  if not self:all_watching() then return end
  if not self.synced then
    self.synced = true
    log.info("watching %d collection(s); %d namespace(s) selected", #self.reflectors, self:count_selected())
  end
  if self.elector and not self.elector:valid(now) then
    self.checks, self.flush_at = {}, nil -- the leader does them
    return
  end
  local wall = time.now()
  local names = {}
  for ns in pairs(self.checks) do
    if self.selected[ns] and (self.retry_at[ns] or 0) <= now then names[#names + 1] = ns end
  end
  table.sort(names)
  local kept = {}
  for ns in pairs(self.checks) do
    if self.selected[ns] and (self.retry_at[ns] or 0) > now then kept[ns] = true end
  end
  self.checks, self.flush_at = kept, nil
  local batch = {}
  for _, ns in ipairs(names) do
    local sas = self:needs(ns, wall)
    if sas then batch[#batch + 1] = { ns = ns, sas = sas } end
    if #batch >= self.concurrency then
      self:reconcile(batch)
      batch = {}
      if self.elector then self.elector:step(proc.clock()) end
    end
  end
  if #batch > 0 then self:reconcile(batch) end
end

function C:all_watching()
  for _, r in ipairs(self.reflectors) do
    if r.state ~= "watch" then return false end
  end
  return true
end

function C:count_selected()
  local n = 0
  for _ in pairs(self.selected) do n = n + 1 end
  return n
end

-- Minted credentials that fall due: their namespaces are checked.
function C:rotation_due(now)
  local wall = time.now()
  local next_at = wall + ROTATION_CHECK
  for ns in pairs(self.selected) do
    for _, s in ipairs(self:prepared(ns) or {}) do
      local obj = self.cache.secrets[ns] and self.cache.secrets[ns][s.name]
      local minted = false
      for _, r in ipairs(s.registries) do minted = minted or r.source ~= nil end
      if minted and obj then
        local at = rotation.due_at(s, obj)
        if at and at <= wall then self:touch(ns) elseif at and at < next_at then next_at = at end
      end
    end
  end
  self.rotation_at = now + math.max(1, next_at - wall)
end

function C:metrics_run()
  local expiries = {}
  for _, e in pairs(self.expiries) do expiries[#expiries + 1] = e end
  table.sort(expiries, function(a, b) return a.namespace .. "/" .. a.secret < b.namespace .. "/" .. b.secret end)
  local restarts = 0
  for _, r in ipairs(self.reflectors) do restarts = restarts + (r.stats.restarts or 0) end
  return { time = self.last_run.time, success = self.last_run.success, expiries = expiries, counters = {
    { name = "xcsreg_watch_events_total", type = "counter", value = self.stats.events,
      help = "Watch events received (bookmarks included)." },
    { name = "xcsreg_reconciles_total", type = "counter", value = self.stats.reconciles,
      help = "Namespaces reconciled after an event or a rotation falling due." },
    { name = "xcsreg_watch_restarts_total", type = "counter", value = restarts,
      help = "Watches started again (the server's timeout, 410 Gone, a broken connection)." },
    { name = "xcsreg_leader", type = "gauge", value = (not self.elector or self.elector.leading) and 1 or 0,
      help = "Whether this replica holds the Lease and may write (1) or not (0)." },
  } }
end

function C:serve()
  self.server:serve(function(method, path)
    if path == "/healthz" then return 200, "text/plain; charset=utf-8", "ok" end
    if path == "/metrics" then
      return 200, "text/plain; version=0.0.4; charset=utf-8", metrics.text(self:metrics_run())
    end
    return 404, "text/plain; charset=utf-8", "not found\n"
  end)
end

-- ---- the reflectors' handlers ----

local function ns_selected(self, obj)
  local name = obj.metadata.name
  if self.excluded[name] then return false end
  return not (type(obj.status) == "table" and obj.status.phase == "Terminating")
end

local function namespace_handler(self)
  return {
    replace = function(items)
      local now_sel = {}
      for _, obj in ipairs(items) do
        if type(obj) == "table" and type(obj.metadata) == "table" and ns_selected(self, obj) then
          now_sel[obj.metadata.name] = true
        end
      end
      for ns in pairs(self.selected) do
        if not now_sel[ns] then self.prepared_by_ns[ns] = nil end
      end
      self.selected = now_sel
      self:touch_all()
    end,
    event = function(typ, obj)
      if type(obj) ~= "table" or type(obj.metadata) ~= "table" then return end
      local name = obj.metadata.name
      if typ ~= "DELETED" and ns_selected(self, obj) then
        if not self.selected[name] then
          self.selected[name] = true
          self:touch(name)
        end
      elseif self.selected[name] then
        self.selected[name], self.prepared_by_ns[name] = nil, nil
      end
    end,
  }
end

-- Handler of the collection of kind in namespace scope_ns (nil: all).
local function object_handler(self, kind, by_ns_name)
  local function store(obj)
    local ns, name = obj.metadata.namespace, obj.metadata.name
    if kind == "Secret" then
      self.cache.secrets[ns] = self.cache.secrets[ns] or {}
      self.cache.secrets[ns][name] = obj
    else
      self.cache.sas[name][ns] = obj
      self.waiting[ns .. "/" .. name] = nil
    end
    self:touch(ns)
  end
  local function drop(ns, name)
    if kind == "Secret" then
      if self.cache.secrets[ns] then self.cache.secrets[ns][name] = nil end
    else
      self.cache.sas[name][ns] = nil
    end
    self:touch(ns)
  end
  return {
    replace = function(items, r)
      -- what the previous LIST and events left in this scope goes; the new LIST stays
      for ns, name in by_ns_name(r) do drop(ns, name) end
      for _, item in ipairs(items) do
        local obj = shaped(item, kind)
        if obj then store(obj) end
      end
    end,
    event = function(typ, item)
      local obj = shaped(item, kind)
      if not obj then return end
      if typ == "DELETED" then drop(obj.metadata.namespace, obj.metadata.name) else store(obj) end
    end,
  }
end

-- The (namespace, name) pairs the cache holds for reflector r's scope.
local function scope_of(self, kind, name_filter)
  return function(r)
    local pairs_list = {}
    if kind == "Secret" then
      for ns, byname in pairs(self.cache.secrets) do
        if not r.scope_ns or r.scope_ns == ns then
          for name in pairs(byname) do pairs_list[#pairs_list + 1] = { ns, name } end
        end
      end
    else
      for ns in pairs(self.cache.sas[name_filter]) do
        if not r.scope_ns or r.scope_ns == ns then pairs_list[#pairs_list + 1] = { ns, name_filter } end
      end
    end
    local i = 0
    return function()
      i = i + 1
      if pairs_list[i] then return pairs_list[i][1], pairs_list[i][2] end
    end
  end
end

function C:add_reflector(path, query, handler, scope_ns, what)
  local r = reflector.new(self.client, path, query, handler, { name = what, stats = {},
    watch_timeout = self.watch_timeout })
  r.scope_ns = scope_ns
  self.reflectors[#self.reflectors + 1] = r
end

function C:build_reflectors(fixed)
  local secret_q = { labelSelector = secrets.MANAGED_BY .. "=xcsreg" }
  local function sa_q(name) return { fieldSelector = "metadata.name=" .. name } end
  local secret_h = object_handler(self, "Secret", scope_of(self, "Secret"))
  if not fixed then
    local q = self.plan.namespace_selector and { labelSelector = self.plan.namespace_selector } or {}
    self:add_reflector("/api/v1/namespaces", q, namespace_handler(self), nil, "namespaces")
    self:add_reflector("/api/v1/secrets", secret_q, secret_h, nil, "secrets")
    for _, name in ipairs(self.plan.service_accounts) do
      self:add_reflector("/api/v1/serviceaccounts", sa_q(name),
        object_handler(self, "ServiceAccount", scope_of(self, "ServiceAccount", name)), nil,
        "serviceaccounts " .. name)
    end
    return
  end
  for _, ns in ipairs(fixed) do
    self:add_reflector(k8s.path("/api/v1/namespaces/%s/secrets", ns), secret_q, secret_h, ns, ns .. ": secrets")
    for _, name in ipairs(self.plan.service_accounts) do
      self:add_reflector(k8s.path("/api/v1/namespaces/%s/serviceaccounts", ns), sa_q(name),
        object_handler(self, "ServiceAccount", scope_of(self, "ServiceAccount", name)), ns,
        ns .. ": serviceaccount " .. name)
    end
  end
end

-- ---- the loop ----

function C:wake_in(now)
  local t = now + MAX_WAIT
  for _, r in ipairs(self.reflectors) do
    local d = r:due()
    if d and d < t then t = d end
  end
  if self.elector and self.elector:due() < t then t = self.elector:due() end
  if self.flush_at and self.flush_at < t and self:all_watching() then t = self.flush_at end
  if self.rotation_at < t then t = self.rotation_at end
  for ns, at in pairs(self.retry_at) do
    if self.checks[ns] and at < t then t = at end
  end
  return math.max(0, t - now)
end

function C:loop()
  while not proc.signal() do
    local now = proc.clock()
    if self.elector then
      local was = self.elector.leading
      self.elector:step(now)
      if self.elector.leading and not was then self:touch_all() end
    end
    for _, r in ipairs(self.reflectors) do self.stats.events = self.stats.events + r:step(now) end
    if now >= self.rotation_at then self:rotation_due(now) end
    for ns, at in pairs(self.retry_at) do
      if at <= now and not self.checks[ns] then self:touch(ns) end
    end
    if self.flush_at and now >= self.flush_at then self:flush(now) end
    if self.server then self:serve() end
    if proc.signal() then break end
    now = proc.clock()
    self.client:wait(self:wake_in(now), self.server and self.server:fds() or nil)
  end
  log.info("%s: stopping", proc.signal())
end

-- The options of the flags, checked: a table | nil, message.
local function options(opts)
  local o = {}
  local err
  for _, f in ipairs { { "lease-duration", leader.LEASE_DURATION }, { "renew-deadline", leader.RENEW_DEADLINE },
                       { "retry-period", leader.RETRY_PERIOD } } do
    o[f[1]], err = require("xcsreg.cli").seconds(opts, f[1], f[2])
    if not o[f[1]] then return nil, err end
  end
  if not math.tointeger(o["lease-duration"]) then
    return nil, string.format('--lease-duration: must be a whole number of seconds (a Lease\'s '
      .. 'leaseDurationSeconds), not "%s"', opts["lease-duration"])
  end
  if o["renew-deadline"] >= o["lease-duration"] then
    return nil, "--renew-deadline must be shorter than --lease-duration (client-go: leaseDuration > renewDeadline)"
  end
  if o["retry-period"] >= o["renew-deadline"] then
    return nil, "--retry-period must be shorter than --renew-deadline (client-go: renewDeadline > retryPeriod)"
  end
  if opts["watch-timeout"] then
    o.watch_timeout, err = require("xcsreg.cli").seconds(opts, "watch-timeout")
    if not o.watch_timeout then return nil, err end
    o.watch_timeout = math.max(1, math.floor(o.watch_timeout))
  end
  for _, flag in ipairs { "dry-run", "force-rotate", "restart-stuck" } do
    if opts[flag] and not (flag == "dry-run" and opts[flag] == "none") then
      return nil, "--" .. flag .. " cannot be combined with --watch"
    end
  end
  return o
end

-- setup.lua --watch: the exit code (0 after a signal, 2 for a usage or
-- configuration error, 1 when the loop cannot start).
function controller.run(opts)
  local o, oerr = options(opts)
  if not o then return EXIT.USAGE, oerr end
  local plan, perr = reconcile.plan(opts, true)
  if not plan then
    log.error("%s", perr)
    return EXIT.USAGE
  end
  -- one cluster a controller: a fleet is one Deployment per cluster (a
  -- site file of one cluster makes its flags, as for a cron run)
  local clusters, ferr = require("xcsreg.fleet").clusters(opts, plan)
  if ferr then return EXIT.USAGE, ferr end
  if clusters then
    return EXIT.USAGE, string.format("--watch watches one cluster, not %d: run one controller per cluster "
      .. "(--context NAME)", #clusters)
  end
  local copts, cerr = script.client_options(opts)
  if not copts then return EXIT.USAGE, cerr end
  copts.deadline = nil -- a controller runs until told to stop
  local client, kerr = k8s.client(copts)
  if not client then
    log.error("%s", tostring(kerr))
    return EXIT.USAGE
  end
  local self = setmetatable({ plan = plan, client = client, quiet = opts.quiet, concurrency = copts.concurrency,
    selected = {}, excluded = {}, prepared_by_ns = {}, checks = {}, flush_at = nil, retry_at = {},
    failures = {}, waiting = {}, expiries = {}, reflectors = {}, cache = new_cache(plan.service_accounts),
    stats = { events = 0, reconciles = 0 }, last_run = { time = time.now(), success = true },
    rotation_at = 0, metrics_file = opts["metrics-file"], watch_timeout = o.watch_timeout }, C)
  for _, name in ipairs(plan.exclude_namespaces or {}) do self.excluded[name] = true end
  self.work = { adopt = opts.adopt, snapshot = self.cache.snapshot,
                verify = not opts["no-verify"] and reconcile.verifier(plan.images) }
  if opts.listen then
    local server, lerr = require("http").listen(opts.listen)
    if not server then
      client:close()
      return EXIT.USAGE, "--listen: " .. lerr
    end
    self.server = server
    log.info("serving /healthz and /metrics on %s", opts.listen:gsub(":0$", ":" .. server.port))
  end
  if not opts["no-leader-elect"] then
    local lease_client = k8s.client { kubeconfig = copts.kubeconfig, context = copts.context,
      request_timeout = o["retry-period"], retries = 0 }
    self.elector = leader.new(lease_client, { namespace = opts["lease-namespace"] or client.namespace,
      name = opts["lease-name"] or "xcsreg", identity = os.getenv("POD_NAME") or proc.identity(),
      lease_duration = o["lease-duration"], renew_deadline = o["renew-deadline"], retry_period = o["retry-period"] })
  end
  self.guarded_client = self:guarded()
  proc.defer_signals()
  local fixed
  if not (plan.namespace_selector or plan.all_namespaces) then
    local list, nerr = reconcile.namespaces(client, plan)
    if not list then
      log.error("%s", nerr)
      return EXIT.FAILED
    end
    fixed = list
    for _, ns in ipairs(list) do self.selected[ns] = true end
  end
  self:build_reflectors(fixed)
  self:loop()
  for _, r in ipairs(self.reflectors) do r:close() end
  local code = EXIT.OK
  if self.elector and not self.elector:release() then code = EXIT.FAILED end
  if self.server then self.server:close() end
  client:close()
  return code
end

return controller
