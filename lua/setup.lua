-- setup.lua: create docker-registry Secrets and merge them into ServiceAccounts' imagePullSecrets
--
-- Replaces, and fixes, the two commands of XNAT's "Private Registries with
-- Kubernetes" guide (`kubectl create secret docker-registry` and a `kubectl
-- patch serviceaccount` that drops the pull secrets already there). Per
-- namespace: each Secret first (created, or updated in place), then each
-- ServiceAccount (pull secrets added, none dropped). A namespace that fails
-- does not stop the others; several are handled at once, and what each did
-- is printed in namespace order. Over many namespaces, one cluster-wide
-- read replaces the reads of each, where allowed (xcsreg.snapshot); only
-- what differs is written. Credentials that a source mints (ECR, GCP, a
-- credential helper) are minted again only when due (xcsreg.rotation); each
-- credential about to be written is first checked with its registry. Copy
-- it with `xcsreg cat setup.lua` to change it.
local time = require "xcsreg.time"
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local metrics = require "xcsreg.metrics"
local namespaces = require "xcsreg.namespaces"
local rbac = require "xcsreg.rbac"
local registry = require "xcsreg.registry"
local rotation = require "xcsreg.rotation"
local runlock = require "xcsreg.runlock"
local secrets = require "xcsreg.secrets"
local serviceaccounts = require "xcsreg.serviceaccounts"
local snapshot = require "xcsreg.snapshot"
local yaml = require "yaml"

local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
local LOCK_TIMEOUT = 30
local CONCURRENCY, MAX_CONCURRENCY = 8, 100 -- as k8s.client's

local flags = {
  { long = "config", arg = "FILE", help = "site file (also $XCSREG_CONFIG; default " .. config.DEFAULT_FILE .. ")" },
  { long = "secret-name", arg = "NAME", help = "one registry from flags: the Secret's name" },
  { long = "docker-server", arg = "SERVER", help = "registry server (default " .. config.DEFAULT_SERVER .. ")" },
  { long = "docker-username", arg = "USER", help = "registry user name" },
  { long = "docker-email", arg = "EMAIL", help = "registry email (optional)" },
  { long = "docker-password-stdin", help = "read the password from standard input" },
  { long = "docker-password-file", arg = "FILE", help = "read the password from FILE" },
  { long = "docker-password-env", arg = "VAR", help = "take the password from environment variable VAR" },
  { long = "docker-password", arg = "PASSWORD", help = "the password (visible to other users in the process list)" },
  { long = "namespace", short = "n", arg = "NS", repeated = true,
    help = "namespace (repeatable; overrides the file's namespaces or selection; default: the context's)" },
  { long = "service-account", arg = "SA", repeated = true,
    help = "ServiceAccount to add the pull secrets to (repeatable; default: default)" },
  { long = "kubeconfig", arg = "FILE", help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)" },
  { long = "context", arg = "NAME", help = "kubeconfig context" },
  { long = "dry-run", arg = "MODE", help = "client: print the Secrets, contact no cluster; server: change nothing" },
  { long = "output", short = "o", arg = "FORMAT", help = "json or yaml: print the Secrets (with --dry-run=client)" },
  { long = "adopt", help = "take over Secrets of the same name that xcsreg did not make" },
  { long = "no-verify", help = "write credentials without logging in to their registries first" },
  { long = "force-rotate", help = "mint credentials from their sources again, even when not due" },
  { long = "lock", arg = "FILE", help = "one run at a time (default /run/xcsreg/lock for root, else in "
    .. "$XDG_RUNTIME_DIR/xcsreg/ or /tmp/xcsreg-UID/; none: no lock)" },
  { long = "lock-timeout", arg = "SECONDS", help = "wait this long for another run to end, then exit 3 (default "
    .. LOCK_TIMEOUT .. ")" },
  { long = "metrics-file", arg = "PATH", help = "write Prometheus metrics there (node_exporter's textfile collector)" },
  { long = "concurrency", arg = "N", help = "namespaces handled at once, requests in flight (default "
    .. CONCURRENCY .. ")" },
  { long = "request-timeout", arg = "SECONDS", help = "give up on an API request after this long (default 30)" },
  { long = "quiet", short = "q", help = "print errors only" },
  { long = "verbose", short = "v", repeated = true, help = "log more (repeat for more)" },
  { long = "help", short = "h", help = "print this help" },
}

local usage = [[
usage: xcsreg run setup.lua [--config FILE] [flags]
       xcsreg run setup.lua -n NS --secret-name NAME --docker-server SERVER \
           --docker-username USER --docker-password-stdin [--docker-email EMAIL] [flags]

Creates (or updates in place) kubernetes.io/dockerconfigjson Secrets, identical to
`kubectl create secret docker-registry`, and adds them to ServiceAccounts'
imagePullSecrets without dropping the entries already there.

Flags:
]] .. cli.help(flags) .. [[


A site file is Lua returning a table (see README.md, "Site file"):
  return { namespaces = { "xnat-jobs" }, service_accounts = { "default" },
    registries = { { secret = "ghcr", server = "ghcr.io", username = "xnat-bot",
                     password_env = "GHCR_TOKEN" } } }
Instead of namespaces: namespace_selector = "xnat=jobs" (a label selector), or
all_namespaces = true with exclude_namespaces = { ... }; both list namespaces
(scripts/k8s/clusterrole-optional.yaml), so new ones are handled by the next run.
Passwords: password_env, password_file or password_command (argv list); or
minted at run time by credential_helper, docker_config, ecr or gcp, again when
half their lifetime is past (or refresh_before is left). Checked with the
registry before they are written (registry_ca_file, insecure_registry).

Exit status: 0 all namespaces done, 1 some failed, 2 usage or configuration error,
3 another run holds the lock.
]]

local function usage_error(msg)
  log.error("%s\nSee 'xcsreg run setup.lua --help' for usage.", msg)
  return EXIT_USAGE
end

-- The plan from flags or from the site file (see xcsreg.config).
local function load_plan(opts)
  local from_flags = false
  for flag in pairs(config.registry_flags) do
    if opts[flag] ~= nil then from_flags = true end
  end
  if from_flags then
    if opts.config then return nil, "--config cannot be combined with --secret-name and --docker-* flags" end
    if opts["docker-password"] then
      log.warn("--docker-password: the password is visible to other users in the process list; "
        .. "prefer --docker-password-stdin, --docker-password-file or --docker-password-env")
    end
    return config.from_flags(opts)
  end
  local path = opts.config or os.getenv("XCSREG_CONFIG")
  if not path then
    local f = io.open(config.DEFAULT_FILE)
    if not f then
      return nil, "nothing to do: give --config FILE (or set XCSREG_CONFIG), or --secret-name and the "
        .. "--docker-* flags; the default site file " .. config.DEFAULT_FILE .. " does not exist"
    end
    f:close()
  end
  return config.load_file(path or config.DEFAULT_FILE)
end

-- --dry-run=client: what would be applied, without contacting any cluster
-- or registry (sources do mint: the Secrets hold their credentials).
local function print_client_dry_run(plan, output)
  local several = plan.namespaces and #plan.namespaces > 1
  local function prefix(ns) return several and ns .. ": " or "" end
  local items = {}
  for _, ns in ipairs(plan.namespaces or { false }) do
    for _, s in ipairs(plan.secrets) do
      local registries, err = rotation.credentials(s, false, time.now())
      if not registries then
        log.error("secret/%s: %s", s.name, err)
        return EXIT_FAILED
      end
      local obj = secrets.desired(s.name, ns or nil, registries)
      obj.metadata.creationTimestamp = json.null
      items[#items + 1] = obj
      if not output then
        print(string.format("%ssecret/%s created (dry run)", prefix(ns), s.name))
      end
    end
    if not output then
      for _, sa in ipairs(plan.service_accounts) do
        print(string.format("%sserviceaccount/%s configured (dry run)", prefix(ns), sa))
      end
    end
  end
  local list = { apiVersion = "v1", kind = "List", items = items, metadata = { resourceVersion = "" } }
  if output == "json" then
    io.write(json.encode(list, { indent = 4 }), "\n")
  elseif output == "yaml" then
    io.write(yaml.encode(list))
  end
  return EXIT_OK
end

-- A function that says why a registry refuses one of the credentials of a
-- Secret about to be written, or nil. Each distinct credential is checked
-- once a run; one whose registry cannot be reached here passes with a
-- warning (the cluster may reach it).
local function verifier()
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
        checked[key] = result == "rejected" and detail or false
      end
      if checked[key] then return checked[key] end
    end
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
  else
    local want = secrets.desired(s.name, ns, registries)
    local refused = work.verify and not (stored and secrets.same_content(stored, want)) and work.verify(registries)
    if refused then
      err = rotation.kept(stored, refused, now)
    else
      want.metadata.annotations = rotation.annotations(now, expires_at)
      result, err = secrets.apply(client, ns, want, work, stored)
    end
  end
  local expiry = rotation.expires_at(stored)
  if result == "created" or result == "configured" then expiry = expires_at end
  if expiry then report.expiries[#report.expiries + 1] = { namespace = ns, secret = s.name, expires_at = expiry } end
  return result, err
end

-- One namespace: Secrets first, then ServiceAccounts, so that no pod is
-- ever given a pull secret that does not exist yet. What it did goes to
-- report.lines ({ text = } for stdout, { error = } for stderr). Returns
-- whether all was done, and whether the run must stop (the error concerns
-- the whole cluster).
local function reconcile(client, ns, plan, work, report)
  local ok, stop_ns, stop_run = true, false, false
  local function say(line) report.lines[#report.lines + 1] = { text = line } end
  local function failed(what, err)
    local msg = string.format("namespace %s: %s: %s", ns, what, tostring(err))
    local forbidden = type(err) == "table" and err.code == 403
    if forbidden then msg = msg .. "\n" .. rbac.role_hint(ns, err) end
    report.lines[#report.lines + 1] = { error = msg }
    ok, stop_ns, stop_run = false, forbidden, snapshot.cluster_wide(err)
  end
  local ready = {}
  for _, s in ipairs(plan.secrets) do
    local result, err = apply_secret(client, ns, s, work, report)
    if result then
      say("secret/" .. s.name .. " " .. result)
      ready[#ready + 1] = s.name
    else
      failed("secret/" .. s.name, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  if #ready == 0 then return false, false end
  for _, sa in ipairs(plan.service_accounts) do
    local stored = work.snapshot and work.snapshot:service_account(ns, sa)
    local result, err = serviceaccounts.add_pull_secrets(client, ns, sa, ready, work, stored)
    if result then
      say("serviceaccount/" .. sa .. " " .. result)
    else
      failed("serviceaccount/" .. sa, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  return ok, false
end

-- Every namespace of `list`, several at once (client:map: their requests
-- go out concurrently, --concurrency at most), each reported once those
-- before it are: in namespace order, as soon as can be. An error that
-- concerns the whole cluster lets the namespaces under way finish and
-- starts no other. Adds the expiries of the Secrets handled to `expiries`;
-- returns the exit code.
local function reconcile_all(client, list, plan, work, quiet, expiries)
  local suffix = work.dry_run and " (server dry run)" or ""
  local reports, printed, failed, stop = {}, 0, 0, false
  local function print_ready()
    while reports[printed + 1] do
      printed = printed + 1
      local r = reports[printed]
      for _, line in ipairs(r.lines) do
        if line.error then
          log.error("%s", line.error)
        elseif not quiet then
          print((#list > 1 and list[printed] .. ": " or "") .. line.text .. suffix)
        end
      end
      table.move(r.expiries, 1, #r.expiries, #expiries + 1, expiries)
    end
  end
  local order = {}
  for i = 1, #list do order[i] = i end
  client:map(order, function(i)
    local report = { lines = {}, expiries = {}, skipped = stop }
    if not stop then
      local ok, fatal = reconcile(client, list[i], plan, work, report)
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
  return (failed > 0 or stop) and EXIT_FAILED or EXIT_OK
end

-- The run after the flags are parsed: returns the exit code. Keeps the lock
-- it takes, and the expiries of the Secrets it handles, in `state`.
local function run(opts, rest, state)
  if #rest > 0 then return usage_error(string.format('unexpected argument "%s"', rest[1])) end
  if opts.quiet then log.level("error") end
  for _ in ipairs(opts.verbose or {}) do
    log.level(({ error = "warn", warn = "info", info = "debug", debug = "trace", trace = "trace" })[log.level()])
  end
  local dry_run = opts["dry-run"]
  if dry_run ~= nil and dry_run ~= "client" and dry_run ~= "server" and dry_run ~= "none" then
    return usage_error(string.format('--dry-run: must be "none", "server" or "client", not "%s"', dry_run))
  end
  if opts.output and opts.output ~= "json" and opts.output ~= "yaml" then
    return usage_error(string.format('--output: must be "json" or "yaml", not "%s"', opts.output))
  end
  if opts.output and dry_run ~= "client" then return usage_error("--output needs --dry-run=client") end
  local lock_timeout = tonumber(opts["lock-timeout"] or LOCK_TIMEOUT)
  if not lock_timeout or lock_timeout < 0 then
    return usage_error(string.format('--lock-timeout: must be a number of seconds, not "%s"', opts["lock-timeout"]))
  end
  local concurrency = math.tointeger(tonumber(opts.concurrency or CONCURRENCY))
  if not concurrency or concurrency < 1 or concurrency > MAX_CONCURRENCY then
    return usage_error(string.format('--concurrency: must be a whole number from 1 to %d, not "%s"',
      MAX_CONCURRENCY, opts.concurrency))
  end
  local request_timeout, terr = cli.seconds(opts, "request-timeout", 30)
  if not request_timeout then return usage_error(terr) end
  local clock_err = time.check_clock()
  if clock_err then return usage_error(clock_err) end

  local plan, err = load_plan(opts)
  if plan then plan, err = config.override(plan, opts.namespace, opts["service-account"]) end
  if not plan then
    log.error("%s", err)
    return EXIT_USAGE
  end

  if dry_run == "client" then
    if plan.namespace_selector or plan.all_namespaces then
      return usage_error(string.format("--dry-run=client contacts no cluster, so it cannot find the namespaces of "
        .. "%s: give them with -n, or use --dry-run=server", plan.namespace_selector and "namespace_selector"
        or "all_namespaces"))
    end
    return print_client_dry_run(plan, opts.output)
  end

  local held
  state.lock, err, held = runlock.take(opts.lock, lock_timeout)
  if state.lock == nil then
    if not held then
      log.error("--lock: %s", err)
      return EXIT_USAGE
    end
    local holder = err:gsub("^lock (.-) is held by another run", "another run holds the lock %1")
    log.error("%s: waited %gs; nothing was done", holder, lock_timeout)
    return EXIT_LOCKED
  end
  local client <close>, cerr = k8s.client { kubeconfig = opts.kubeconfig, context = opts.context,
                                            concurrency = concurrency, request_timeout = request_timeout }
  if not client then
    log.error("%s", tostring(cerr))
    return EXIT_USAGE
  end
  local list
  list, err = namespaces.resolve(client, plan)
  if not list then
    log.error("%s", err)
    return EXIT_FAILED
  end
  local work = { adopt = opts.adopt, dry_run = dry_run == "server", force = opts["force-rotate"],
                 verify = not opts["no-verify"] and verifier() }
  if #list > 1 then
    work.snapshot, err = snapshot.take(client, plan.service_accounts)
    if not work.snapshot then
      log.error("%s\nstopped: %d namespace(s) not handled (%s)", tostring(err), #list, table.concat(list, ", "))
      return EXIT_FAILED
    end
  end

  local code = reconcile_all(client, list, plan, work, opts.quiet, state.expiries)
  log.debug("%d request(s) to %s", client:stats().requests, client.server)
  return code
end

local function main(...)
  local opts, rest = cli.parse(flags, { ... })
  if not opts then return usage_error(rest) end
  if opts.help then
    io.write(usage)
    return EXIT_OK
  end
  local state = { expiries = {} }
  local code = run(opts, rest, state)
  -- written while the lock is held; a run locked out leaves them to the
  -- run that holds it, and a dry run is no run
  local path = opts["metrics-file"]
  if path and code ~= EXIT_LOCKED and (opts["dry-run"] or "none") == "none" then
    local ok, err = metrics.write(path, { time = time.now(), success = code == EXIT_OK, expiries = state.expiries })
    if not ok then
      log.error("--metrics-file: %s", err)
      if code == EXIT_OK then code = EXIT_FAILED end
    end
  end
  if state.lock then state.lock:unlock() end
  return code
end

return main(...)
