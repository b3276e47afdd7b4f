-- xcsreg.leader: leader election on a coordination.k8s.io/v1 Lease, as
-- client-go does it (k8s.io/client-go/tools/leaderelection/leaderelection.go,
-- tryAcquireOrRenew, renew, release; the Lease as the record:
-- tools/leaderelection/resourcelock/leaselock.go):
--   * a candidate reads the Lease every retry_period; it takes it when there
--     is none (create), when holderIdentity is empty (released), or when
--     the record has not changed for lease_duration by the candidate's own
--     clock (the holder's clock is never trusted: the record's renewTime is
--     not compared with ours); taking it bumps leaseTransitions and sets
--     acquireTime;
--   * the leader renews (renewTime) every retry_period, first with the Lease
--     it last wrote (the optimistic fast path), else after a fresh read;
--     every update carries the resourceVersion read, so of two replicas
--     only one wins (409 Conflict: the other tries again next period);
--   * a leader that has not renewed for renew_deadline stops leading at
--     once: leader:valid() says so before each write (by the local
--     monotonic clock: last renewal + renew_deadline, which is before
--     lease_duration, when another replica may take over);
--   * release (on SIGTERM, client-go's ReleaseOnCancel) writes the Lease
--     with holderIdentity "" and leaseDurationSeconds 1, so that a
--     candidate takes over at its next retry.
-- Unlike client-go's Run, a replica that lost the lease does not exit: it
-- goes back to being a candidate.
local k8s = require "k8s"
local log = require "log"
local proc = require "proc"

local leader = {}
leader.__index = leader

leader.LEASE_DURATION, leader.RENEW_DEADLINE, leader.RETRY_PERIOD = 15, 10, 2

-- MicroTime: RFC 3339 with microseconds, UTC (metav1.MicroTime's format).
function leader.micro_time(t)
  local s = math.floor(t)
  local us = math.floor((t - s) * 1e6 + 0.5)
  if us >= 1000000 then s, us = s + 1, us - 1000000 end
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%06dZ", us)
end

-- opts: namespace, name, identity, lease_duration, renew_deadline,
-- retry_period (seconds). client: used for the Lease only, its request
-- timeout short and without retries (a renewal must not outlast its period).
function leader.new(client, opts)
  local self = setmetatable({ client = client, namespace = opts.namespace, name = opts.name,
    identity = opts.identity, lease_duration = opts.lease_duration or leader.LEASE_DURATION,
    renew_deadline = opts.renew_deadline or leader.RENEW_DEADLINE,
    retry_period = opts.retry_period or leader.RETRY_PERIOD, lease = nil, observed = nil,
    observed_raw = nil, observed_at = nil, renewed_at = nil, next_try = 0, leading = false,
    transitions = 0, on_change = opts.on_change }, leader)
  self.path = k8s.path("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", self.namespace, self.name)
  self.collection = k8s.path("/apis/coordination.k8s.io/v1/namespaces/%s/leases", self.namespace)
  return self
end

local function spec_of(lease) return type(lease) == "table" and type(lease.spec) == "table" and lease.spec or {} end

local function raw(spec)
  return table.concat({ tostring(spec.holderIdentity), tostring(spec.leaseDurationSeconds),
    tostring(spec.acquireTime), tostring(spec.renewTime), tostring(spec.leaseTransitions) }, "\0")
end

-- setObservedRecord: the record and when we saw it, by our clock.
local function observe(self, lease, now)
  self.lease = lease
  self.observed = spec_of(lease)
  self.observed_raw = raw(self.observed)
  self.observed_at = now
end

local function is_leader(self) return self.observed ~= nil and self.observed.holderIdentity == self.identity end

-- isLeaseValid: the observed record's duration has not passed since we saw it.
local function lease_valid(self, now)
  local d = tonumber(self.observed and self.observed.leaseDurationSeconds) or self.lease_duration
  return self.observed_at ~= nil and self.observed_at + d > now
end

local function record(self, wall, acquire, transitions)
  return { holderIdentity = self.identity, leaseDurationSeconds = math.floor(self.lease_duration),
           acquireTime = acquire or leader.micro_time(wall), renewTime = leader.micro_time(wall),
           leaseTransitions = transitions or 0 }
end

local function update(self, lease, spec)
  local new = { apiVersion = "coordination.k8s.io/v1", kind = "Lease", metadata = lease.metadata, spec = spec }
  return self.client:replace(self.path, new)
end

-- tryAcquireOrRenew: whether we hold the Lease now.
local function try_acquire_or_renew(self, now)
  local wall = proc.time()
  -- 1. the fast path: the leader updates the Lease it last wrote
  if is_leader(self) and lease_valid(self, now) then
    local old = self.observed
    local spec = record(self, wall, old.acquireTime, old.leaseTransitions)
    local written, err = update(self, self.lease, spec)
    if written then
      observe(self, written, now)
      return true
    end
    log.debug("lease %s/%s: renewing: %s; reading it again", self.namespace, self.name, tostring(err))
  end
  -- 2. read it, or create it
  local lease, err = self.client:get(self.path)
  if not lease then
    if type(err) ~= "table" or err.code ~= 404 then
      log.warn("lease %s/%s: cannot read it: %s", self.namespace, self.name, tostring(err))
      return false
    end
    local created, cerr = self.client:create(self.collection, { apiVersion = "coordination.k8s.io/v1",
      kind = "Lease", metadata = { name = self.name, namespace = self.namespace }, spec = record(self, wall) })
    if not created then
      log.warn("lease %s/%s: cannot create it: %s", self.namespace, self.name, tostring(cerr))
      return false
    end
    observe(self, created, now)
    return true
  end
  -- 3. a record that changed is observed now; one held by another, not
  -- yet expired by our clock, is left alone
  local spec = spec_of(lease)
  if raw(spec) ~= self.observed_raw then
    observe(self, lease, now)
  else
    self.lease = lease
  end
  local holder = spec.holderIdentity
  if type(holder) == "string" and holder ~= "" and lease_valid(self, now) and not is_leader(self) then
    return false
  end
  -- 4. take it (or renew it after the fast path failed)
  local new
  if is_leader(self) then
    new = record(self, wall, spec.acquireTime, spec.leaseTransitions)
  else
    new = record(self, wall, nil, (math.tointeger(spec.leaseTransitions) or 0) + 1)
  end
  local written, uerr = update(self, lease, new)
  if not written then
    -- a 409: another replica was quicker (client-go retries next period)
    local say = type(uerr) == "table" and uerr.code == 409 and log.debug or log.warn
    say("lease %s/%s: cannot %s it: %s", self.namespace, self.name, is_leader(self) and "renew" or "take",
      tostring(uerr))
    return false
  end
  observe(self, written, now)
  return true
end

local function set_leading(self, on, why)
  if self.leading == on then return end
  self.leading = on
  if on then
    log.info("lease %s/%s: leading as %s", self.namespace, self.name, self.identity)
  else
    log.warn("lease %s/%s: not leading any more (%s): no further writes", self.namespace, self.name, why)
  end
  if self.on_change then self.on_change(on) end
end

-- Whether a write may go out now: we hold the Lease and renewed it less
-- than renew_deadline ago (by the monotonic clock).
function leader:valid(now)
  now = now or proc.clock()
  if self.leading and self.renewed_at and now - self.renewed_at >= self.renew_deadline then
    set_leading(self, false, string.format("not renewed for %gs", self.renew_deadline))
  end
  return self.leading
end

-- One attempt, when due: acquire (a candidate) or renew (the leader).
function leader:step(now)
  now = now or proc.clock()
  self:valid(now)
  if now < self.next_try then return end
  self.next_try = now + self.retry_period
  local started = proc.clock()
  if try_acquire_or_renew(self, now) then
    self.renewed_at = started
    set_leading(self, true)
  elseif self.leading then
    self:valid(proc.clock())
  end
end

-- When step next has something to do.
function leader:due()
  local t = self.next_try
  if self.leading and self.renewed_at then t = math.min(t, self.renewed_at + self.renew_deadline) end
  return t
end

-- release (ReleaseOnCancel): holderIdentity "" and leaseDurationSeconds 1.
-- Returns whether the Lease was released (or not ours to release).
function leader:release()
  local was = self.leading
  set_leading(self, false, "released")
  if not (was and self.lease and is_leader(self)) then return true end
  local wall = proc.time()
  local spec = { holderIdentity = "", leaseDurationSeconds = 1, acquireTime = leader.micro_time(wall),
                 renewTime = leader.micro_time(wall), leaseTransitions = self.observed.leaseTransitions }
  local written, err = update(self, self.lease, spec)
  if not written then
    log.warn("lease %s/%s: cannot release it: %s", self.namespace, self.name, tostring(err))
    return false
  end
  log.info("lease %s/%s: released", self.namespace, self.name)
  return true
end

return leader
