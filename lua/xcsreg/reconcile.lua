-- xcsreg.reconcile: the workflow of setup.lua, step by step:
--
--   plan → lock → client → namespaces → prepare → snapshot → each namespace
--     → restart stuck pods (--restart-stuck) → XNAT's hubs → report
--
-- Each step is a function below with its contract; reconcile.run does them
-- in order. The invariants live here and in the modules it calls, not in a
-- script or a hook: per namespace, each Secret is written before any
-- ServiceAccount is given it; a ServiceAccount's pull secrets are only ever
-- added to (xcsreg.serviceaccounts); a Secret is never written with an
-- empty user name or password, nor with a credential its registry refused
-- or that cannot pull the site file's images it covers;
-- only what differs is written; every hook runs, and every password is
-- read, before the first write, so a failing hook leaves the cluster as it
-- was. A namespace that fails does not stop the others, except for an
-- error no namespace would escape (the cluster unreachable, the identity
-- refused).
local config = require "xcsreg.config"
local hooks = require "xcsreg.hooks"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local metrics = require "xcsreg.metrics"
local namespaces = require "xcsreg.namespaces"
local rbac = require "xcsreg.rbac"
local registry = require "xcsreg.registry"
local rotation = require "xcsreg.rotation"
local runlock = require "xcsreg.runlock"
local script = require "xcsreg.script"
local secrets = require "xcsreg.secrets"
local serviceaccounts = require "xcsreg.serviceaccounts"
local snapshot = require "xcsreg.snapshot"
local time = require "xcsreg.time"
local yaml = require "yaml"
-- Required where first used, as main.c registers modules: a run pays only
-- for the steps it takes (images, --restart-stuck, XNAT's hubs).
local function lazy(name)
  return setmetatable({}, { __index = function(t, k)
    local m = require(name)
    setmetatable(t, { __index = m })
    return m[k]
  end })
end
local fleet, hubs, image_ref, keyring = lazy "xcsreg.fleet", lazy "xcsreg.hubs", lazy "xcsreg.image_ref", lazy "xcsreg.keyring"
local pull, restart = lazy "xcsreg.pull", lazy "xcsreg.restart"

local reconcile = {}
local EXIT = script.EXIT

-- plan: from the one-registry flags or from the site file (xcsreg.config),
-- with -n and --service-account applied. opts: the parsed flags; read =
-- false leaves passwords unread. Returns the plan | nil, message (a usage
-- or configuration error: exit 2).
local function from_flags(opts)
  for flag in pairs(config.registry_flags) do
    if opts[flag] ~= nil then return true end
  end
  return false
end

function reconcile.plan(opts, read)
  local plan, err
  if from_flags(opts) then
    if opts.config then return nil, "--config cannot be combined with --secret-name and --docker-* flags" end
    if opts["docker-password"] then
      log.warn("--docker-password: the password is visible to other users in the process list; "
        .. "prefer --docker-password-stdin, --docker-password-file or --docker-password-env")
    end
    plan, err = config.from_flags(opts)
  else
    local path = script.site_file(opts)
    if not path then
      return nil, "nothing to do: give --config FILE (or set XCSREG_CONFIG), or --secret-name and the "
        .. "--docker-* flags; the default site file " .. config.DEFAULT_FILE .. " does not exist"
    end
    plan, err = config.load_file(path, { credentials = read })
  end
  if not plan then return nil, err end
  return config.override(plan, opts.namespace, opts["service-account"])
end

-- lock: one run at a time (xcsreg.runlock). Returns the lock (false for
-- --lock none) | nil, message, and whether another run holds it (exit 3;
-- otherwise exit 2).
function reconcile.lock(opts)
  local timeout = tonumber(opts["lock-timeout"] or script.LOCK_TIMEOUT)
  local lock, err, held = runlock.take(opts.lock, timeout)
  if lock ~= nil then return lock or false end
  if not held then return nil, "--lock: " .. err, false end
  local holder = err:gsub("^lock (.-) is held by another run", "another run holds the lock %1")
  return nil, string.format("%s: waited %gs; nothing was done", holder, timeout), true
end

-- client: the API client of the flags. Returns it | nil, message (exit 2).
function reconcile.client(opts)
  local copts, err = script.client_options(opts)
  if not copts then return nil, err end
  local client, cerr = k8s.client(copts)
  if not client then return nil, tostring(cerr) end
  return client
end

-- namespaces: those the plan names or selects (xcsreg.namespaces), or that
-- hooks.namespaces returns. Returns the list | nil, message, and whether
-- the message is a hook's (exit 2; otherwise a read failed: exit 1).
function reconcile.namespaces(client, plan)
  if not (plan.hooks and plan.hooks.namespaces) then return namespaces.resolve(client, plan) end
  local ok, list = hooks.call(plan, "namespaces", hooks.cluster(client))
  if not ok then return nil, list, true end
  if type(list) ~= "table" then
    return nil, hooks.returned(plan, "namespaces", "a " .. type(list) .. ", not a list of namespace names"), true
  end
  local seen = {}
  for i = 1, #list do
    local ns = list[i]
    local err = type(ns) ~= "string" and "a " .. type(ns) .. ", not a name" or config.check_namespace(ns)
      or seen[ns] and "a namespace already listed"
    if err then return nil, hooks.returned(plan, "namespaces", string.format("[%d]: %s", i, err)), true end
    seen[ns] = true
  end
  if #list == 0 then log.warn("hook namespaces returned no namespace: nothing to do") end
  return table.move(list, 1, #list, 1, {})
end

-- prepare: the Secrets of each namespace of list (the plan's, or those
-- hooks.registries chooses, passwords read): a table by namespace | nil,
-- message (exit 2). Runs before any write, so that no hook fails halfway.
function reconcile.prepare(client, plan, list)
  local by_ns, cluster = {}, client and hooks.cluster(client)
  for _, ns in ipairs(list) do
    local s, err = config.secrets_for(plan, ns, cluster)
    if not s then return nil, err end
    by_ns[ns] = s
  end
  return by_ns
end

-- Why the credential of registry r cannot pull one of images (the site
-- file's, #17): the first image that r's credential would be offered for
-- (the kubelet's keyring matching) and that is denied or not found; nil
-- when all pull, or when the registry cannot be reached from here (warned:
-- the cluster may reach it).
local function pull_refusal(r, images)
  local kr = keyring.new()
  if not kr:add({ [r.server] = { username = r.username, password = r.password } }, "new") then return end
  local covered = {}
  for _, image in ipairs(images) do
    local ref = image_ref.parse(image)
    if ref and #kr:lookup(ref.name) > 0 then covered[#covered + 1] = image end
  end
  if #covered == 0 then return end
  local results = pull.check(covered, function(ref) return kr:lookup(ref.name) end,
    { ca_file = r.ca_file, insecure = r.insecure })
  for _, res in ipairs(results) do
    if res.state == "unreachable" then
      log.warn("cannot check that %s will pull with the credential of user %s (%s): writing it anyway", res.image,
        r.username, res.message)
    elseif res.state ~= "ok" then
      return string.format("image %s will not pull with it: %s: %s", res.image, res.state, res.message)
    end
  end
end

-- A function that says why a registry refuses one of the credentials of a
-- Secret about to be written, or nil: its login (registry.verify), then the
-- site file's images it would be used for (pull_refusal). Each distinct
-- credential is checked once a run; one whose registry cannot be reached
-- here passes with a warning (the cluster may reach it).
function reconcile.verifier(images)
  local checked = {}
  return function(registries)
    for _, r in ipairs(registries) do
      local key = table.concat({ r.server, r.username, r.password, r.ca_file or "", tostring(r.insecure) }, "\0")
      if checked[key] == nil then
        local base, invalid = registry.base_url(r.server)
        local result, detail = "unreachable", invalid
        if base then
          result, detail = registry.verify { server = r.server, username = r.username, password = r.password,
                                             ca_file = r.ca_file, insecure = r.insecure }
        end
        if result == "unreachable" then
          log.warn("cannot verify the credential of user %s for %s (%s): writing it anyway", r.username, r.server, detail)
        else
          log.debug("%s", detail)
        end
        checked[key] = result == "rejected" and detail
          or (result == "accepted" and images and pull_refusal(r, images)) or false
      end
      if checked[key] then return checked[key] end
    end
  end
end

-- Why registries (with their credentials) must not be written, or nil: the
-- invariant no source or hook can break.
local function incomplete(registries)
  for _, r in ipairs(registries) do
    if type(r.username) ~= "string" or r.username == "" then return "no user name for " .. tostring(r.server) end
    if type(r.password) ~= "string" or r.password == "" then return "an empty password for " .. tostring(r.server) end
  end
end

-- One Secret: read it (unless the snapshot has), get its credentials
-- (minting only those due), have their registries check them unless the
-- Secret holds them already, write what differs. A Secret that cannot be
-- brought up to date is left as it is. Returns "created" | "configured" |
-- "unchanged" | nil, error; records the expiry of the credential the
-- cluster then holds in report.expiries.
local function apply_secret(client, ns, s, work, report)
  local stored, err = work.snapshot and work.snapshot:secret(ns, s.name)
  if stored == nil then stored, err = secrets.read(client, ns, s.name) end
  if stored == nil then return nil, err end
  local now = time.now()
  local registries, expires_at = rotation.credentials(s, stored, now, work.force)
  local result
  if not registries then
    err = rotation.kept(stored, expires_at, now)
  elseif incomplete(registries) then
    err = rotation.kept(stored, incomplete(registries), now)
  else
    local want = secrets.desired(s.name, ns, registries)
    local refused = work.verify and not (stored and secrets.same_content(stored, want)) and work.verify(registries)
    if refused then
      err = rotation.kept(stored, refused, now)
    else
      want.metadata.annotations = rotation.annotations(now, expires_at)
      result, err = secrets.apply(client, ns, want, work, stored)
      if result then
        -- what the cluster now holds, for XNAT's image hubs (xcsreg.hubs):
        -- the generation changes with every write of the Secret's content
        local kept = result == "unchanged" and stored and stored.metadata.annotations or want.metadata.annotations
        local generation = ns .. "/" .. s.name .. "@" .. tostring(kept[rotation.ROTATED_AT])
        for _, r in ipairs(registries) do
          report.credentials[#report.credentials + 1] = { server = r.server, username = r.username,
            password = r.password, email = r.email, generation = generation }
        end
      end
    end
  end
  local expiry = rotation.expires_at(stored)
  if result == "created" or result == "configured" then expiry = expires_at end
  if expiry then report.expiries[#report.expiries + 1] = { namespace = ns, secret = s.name, expires_at = expiry } end
  return result, err
end

-- each namespace: Secrets first, then ServiceAccounts, so that no pod is
-- ever given a pull secret that does not exist yet. What it did goes to
-- report.lines ({ text = } for stdout, { error = } for stderr) and
-- report.events (for hooks.result). Returns whether all was done, and
-- whether the run must stop (the error concerns the whole cluster).
function reconcile.namespace(client, ns, ns_secrets, plan, work, report)
  local ok, stop_ns, stop_run = true, false, false
  local function event(kind, name, result, err)
    report.events[#report.events + 1] = { namespace = ns, kind = kind, name = name, result = result,
                                          error = err, dry_run = work.dry_run or nil }
  end
  local function failed(kind, name, err)
    if type(err) == "table" and err.reason == "Deadline" then
      err = "not done: the run's time (--run-timeout) is up"
      report.timed_out = true
    end
    local msg = string.format("namespace %s: %s/%s: %s", ns, kind, name, tostring(err))
    local forbidden = type(err) == "table" and err.code == 403
    if forbidden then msg = msg .. "\n" .. rbac.role_hint(ns, err) end
    report.lines[#report.lines + 1] = { error = msg }
    event(kind, name, "failed", tostring(err))
    ok, stop_ns, stop_run = false, forbidden, report.timed_out or snapshot.cluster_wide(err)
  end
  local ready = {}
  for _, s in ipairs(ns_secrets) do
    local result, err = apply_secret(client, ns, s, work, report)
    if result then
      report.lines[#report.lines + 1] = { text = "secret/" .. s.name .. " " .. result }
      event("secret", s.name, result)
      ready[#ready + 1] = s.name
    else
      failed("secret", s.name, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  if #ready == 0 then return #ns_secrets == 0, false end
  for _, sa in ipairs(plan.service_accounts) do
    local stored = work.snapshot and work.snapshot:service_account(ns, sa)
    local result, err = serviceaccounts.add_pull_secrets(client, ns, sa, ready, work, stored)
    if result then
      report.lines[#report.lines + 1] = { text = "serviceaccount/" .. sa .. " " .. result }
      event("serviceaccount", sa, result)
    else
      failed("serviceaccount", sa, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  return ok, false
end

-- Every namespace of list, several at once (client:map: their requests go
-- out concurrently, --concurrency at most), each printed once those before
-- it are: in namespace order, as soon as can be. An error that concerns the
-- whole cluster lets the namespaces under way finish and starts no other.
-- Adds the expiries of the Secrets handled to run.expiries, and the events
-- to run.events; returns the exit code.
function reconcile.all(client, list, prepared, plan, work, run)
  local suffix = work.dry_run and " (server dry run)" or ""
  local reports, printed, failed, stop = {}, 0, 0, false
  local function print_ready()
    while reports[printed + 1] do
      printed = printed + 1
      local r = reports[printed]
      for _, line in ipairs(r.lines) do
        if line.error then
          log.error("%s", line.error)
        elseif not run.quiet then
          print((#list > 1 and list[printed] .. ": " or "") .. line.text .. suffix)
        end
      end
      table.move(r.expiries, 1, #r.expiries, #run.expiries + 1, run.expiries)
      table.move(r.events, 1, #r.events, #run.events + 1, run.events)
      table.move(r.credentials, 1, #r.credentials, #run.credentials + 1, run.credentials)
    end
  end
  local order = {}
  for i = 1, #list do order[i] = i end
  client:map(order, function(i)
    local report = { lines = {}, expiries = {}, events = {}, credentials = {}, skipped = stop }
    if not stop then
      -- An answer of a shape nothing checked for must fail its namespace,
      -- not the run: the others are still tried.
      local called, ok, fatal = pcall(reconcile.namespace, client, list[i], prepared[list[i]], plan, work, report)
      if not called then
        report.lines[#report.lines + 1] = { error = string.format("namespace %s: stopped by an unexpected "
          .. "answer from the API server: %s", list[i], tostring(ok)) }
        ok, fatal = false, false
      end
      if not ok then failed = failed + 1 end
      stop = stop or fatal
    end
    reports[i] = report
    print_ready()
  end)
  local skipped = {}
  for i, r in ipairs(reports) do
    if r.skipped then skipped[#skipped + 1] = list[i] end
  end
  if #skipped > 0 then
    log.error("stopped: %d namespace(s) not handled (%s)", #skipped, table.concat(skipped, ", "))
  end
  return (failed > 0 or stop) and EXIT.FAILED or EXIT.OK
end

-- --restart-stuck (xcsreg.restart): the pods stuck pulling an image that
-- now pulls, which their Job will make again, deleted and reported; their
-- events join run.events. Returns whether a delete failed.
function reconcile.restart_stuck(client, list, plan, work, run)
  local suffix = work.dry_run and " (server dry run)" or ""
  local failed = false
  for _, ns in ipairs(list) do
    local done, errors = restart.namespace(client, ns, plan, { dry_run = work.dry_run })
    for _, d in ipairs(done) do
      if not run.quiet then print((#list > 1 and ns .. ": " or "") .. d.text .. suffix) end
      run.events[#run.events + 1] = { namespace = ns, kind = "pod", name = d.pod, result = "deleted",
                                      dry_run = work.dry_run or nil }
    end
    for _, e in ipairs(errors) do
      log.error("%s", e)
      failed = true
    end
  end
  return failed
end

-- report: hooks.result is told of every event, in namespace order, once
-- the writes are done (a hook may not run inside client:map's tasks).
-- Returns a message when the hook failed (exit 2), else nil.
function reconcile.report(plan, events)
  if not (plan.hooks and plan.hooks.result) then return end
  for _, e in ipairs(events) do
    local ok, err = hooks.call(plan, "result", hooks.copy(e))
    if not ok then return err end
  end
end

-- --dry-run=client: what would be applied, without contacting any cluster
-- or registry (sources do mint: the Secrets hold their credentials).
function reconcile.print_client_dry_run(plan, output)
  if plan.namespace_selector or plan.all_namespaces or plan.hooks.namespaces then
    return EXIT.USAGE, string.format("--dry-run=client contacts no cluster, so it cannot find the namespaces of "
      .. "%s: give them with -n, or use --dry-run=server", plan.namespace_selector and "namespace_selector"
      or plan.all_namespaces and "all_namespaces" or "hooks.namespaces")
  end
  local list = plan.namespaces or { false }
  local several = #list > 1
  local prepared, err = reconcile.prepare(nil, plan, plan.namespaces or {})
  if not prepared then
    log.error("%s", err)
    return EXIT.USAGE
  end
  local items = {}
  for _, ns in ipairs(list) do
    local prefix = several and ns .. ": " or ""
    for _, s in ipairs(ns and prepared[ns] or plan.secrets) do
      local registries, rerr = rotation.credentials(s, false, time.now())
      if not registries then
        log.error("secret/%s: %s", s.name, rerr)
        return EXIT.FAILED
      end
      local obj = secrets.desired(s.name, ns or nil, registries)
      obj.metadata.creationTimestamp = json.null
      items[#items + 1] = obj
      if not output then print(string.format("%ssecret/%s created (dry run)", prefix, s.name)) end
    end
    if not output then
      for _, sa in ipairs(plan.service_accounts) do
        print(string.format("%sserviceaccount/%s configured (dry run)", prefix, sa))
      end
    end
  end
  local doc = { apiVersion = "v1", kind = "List", items = items, metadata = { resourceVersion = "" } }
  if output == "json" then
    io.write(json.encode(doc, { indent = 4 }), "\n")
  elseif output == "yaml" then
    io.write(yaml.encode(doc))
  end
  return EXIT.OK
end

-- The steps after the lock, while it is held: exit code.
local function locked_steps(opts, run, plan)
  local err
  if not plan then
    plan, err = reconcile.plan(opts)
    if not plan then
      log.error("%s", err)
      return EXIT.USAGE
    end
  end
  local client <close>, cerr = reconcile.client(opts)
  if not client then
    log.error("%s", cerr)
    return EXIT.USAGE
  end
  local list, nerr, hook_failed = reconcile.namespaces(client, plan)
  if not list then
    log.error("%s", nerr)
    return hook_failed and EXIT.USAGE or EXIT.FAILED
  end
  local prepared, perr = reconcile.prepare(client, plan, list)
  if not prepared then
    log.error("%s; nothing was written", perr)
    return EXIT.USAGE
  end
  local work = { adopt = opts.adopt, dry_run = opts["dry-run"] == "server", force = opts["force-rotate"],
                 verify = not opts["no-verify"] and reconcile.verifier(plan.images) }
  if #list > 1 then
    work.snapshot, err = snapshot.take(client, plan.service_accounts)
    if not work.snapshot then
      if type(err) == "table" and err.reason == "Deadline" then err = "the run's time (--run-timeout) is up" end
      log.error("%s\nstopped: %d namespace(s) not handled (%s)", tostring(err), #list, table.concat(list, ", "))
      return EXIT.FAILED
    end
  end
  local code = reconcile.all(client, list, prepared, plan, work, run)
  if opts["restart-stuck"] and reconcile.restart_stuck(client, list, plan, work, run) then code = EXIT.FAILED end
  log.debug("%d request(s) to %s", client:stats().requests, client.server)
  if plan.xnat and plan.xnat.hubs and not run.timed_out then
    -- XNAT's image hubs, after the Secrets, with what they now hold
    local hcode = hubs.step(plan.xnat, run.credentials, { dry_run = work.dry_run, quiet = run.quiet, lock = opts.lock })
    if hcode ~= EXIT.OK then code = hcode end
  end
  local herr = reconcile.report(plan, run.events)
  if herr then
    log.error("%s", herr)
    return EXIT.USAGE
  end
  return code
end

-- The plan of a run that holds the lock (plan: one of flags, already
-- made) and, for a fleet, its clusters (xcsreg.fleet) | nil, nil, message.
-- A site file's passwords are read only once the run is known to be one
-- cluster's: a fleet's runs read them themselves.
local function fleet_plan(opts, plan)
  local err
  if not plan then
    plan, err = reconcile.plan(opts, false)
    if not plan then return nil, nil, err end
  end
  local clusters
  clusters, err = fleet.clusters(opts, plan)
  if err then return nil, nil, err end
  if clusters then return plan, clusters end
  plan, err = config.read_passwords(plan)
  if not plan then return nil, nil, err end
  return plan
end

-- The whole run of setup.lua, from its checked flags: the exit code.
-- opts: the parsed flags ("dry-run" none, server or client; output);
-- flags: their spec (a fleet's runs get them again).
-- Metrics are written only by a run that got the lock, while it holds it
-- (a run locked out leaves them to the one that holds it; a dry run is no
-- run).
function reconcile.run(opts, flags)
  local lock_timeout = tonumber(opts["lock-timeout"] or script.LOCK_TIMEOUT)
  if not lock_timeout or lock_timeout < 0 then
    return EXIT.USAGE, string.format('--lock-timeout: must be a number of seconds, not "%s"', opts["lock-timeout"])
  end
  local _, cerr = script.client_options(opts)
  if cerr then return EXIT.USAGE, cerr end
  if opts["dry-run"] == "client" then
    local plan, err = reconcile.plan(opts)
    if not plan then
      log.error("%s", err)
      return EXIT.USAGE
    end
    return reconcile.print_client_dry_run(plan, opts.output)
  end
  -- A plan of flags alone is checked before the lock is waited for; a site
  -- file is read only under the lock, so that a site file that hangs
  -- cannot pile runs up (#12 item 19).
  local plan
  if from_flags(opts) then
    local err
    plan, err = reconcile.plan(opts)
    if not plan then
      log.error("%s", err)
      return EXIT.USAGE
    end
  end
  local lock, lerr, held = reconcile.lock(opts)
  if lock == nil then
    log.error("%s", lerr)
    return held and EXIT.LOCKED or EXIT.USAGE
  end
  local run = { expiries = {}, events = {}, credentials = {}, quiet = opts.quiet }
  local clusters, code, err
  plan, clusters, err = fleet_plan(opts, plan)
  if clusters then
    code, err = fleet.setup(opts, clusters, plan, flags) -- it writes the fleet's metrics
    if err then log.error("%s", err) end
    if lock then lock:unlock() end
    return code
  end
  if err then log.error("%s", err) end
  code = plan and locked_steps(opts, run, plan) or EXIT.USAGE
  local path = opts["metrics-file"]
  if path and opts["dry-run"] ~= "server" then
    local ok, err = metrics.write(path, { time = time.now(), success = code == EXIT.OK, expiries = run.expiries })
    if not ok then
      log.error("--metrics-file: %s", err)
      if code == EXIT.OK then code = EXIT.FAILED end
    end
  end
  if lock then lock:unlock() end
  return code
end

return reconcile
