-- setup.lua: create docker-registry Secrets and merge them into ServiceAccounts' imagePullSecrets
--
-- Replaces, and fixes, the two commands of XNAT's "Private Registries with
-- Kubernetes" guide (`kubectl create secret docker-registry` and a `kubectl
-- patch serviceaccount` that drops the pull secrets already there). This
-- script is its flags only: the workflow and its invariants are
-- xcsreg.reconcile's (`xcsreg cat xcsreg/reconcile.lua`), and a site changes
-- one of its steps with a hook in the site file (README, "Hooks"), not by
-- copying this file.
local config = require "xcsreg.config"
local script = require "xcsreg.script"

local flags = script.flags {
  "config",
  { long = "secret-name", arg = "NAME", help = "one registry from flags: the Secret's name" },
  { long = "docker-server", arg = "SERVER", help = "registry server (default " .. config.DEFAULT_SERVER .. ")" },
  { long = "docker-username", arg = "USER", help = "registry user name" },
  { long = "docker-email", arg = "EMAIL", help = "registry email (optional)" },
  { long = "docker-password-stdin", help = "read the password from standard input" },
  { long = "docker-password-file", arg = "FILE", help = "read the password from FILE" },
  { long = "docker-password-env", arg = "VAR", help = "take the password from environment variable VAR" },
  { long = "docker-password", arg = "PASSWORD", help = "the password (visible to other users in the process list)" },
  "namespace", "service-account", "kubeconfig", "context",
  { long = "dry-run", arg = "MODE", help = "client: print the Secrets, contact no cluster; server: change nothing" },
  { long = "output", short = "o", arg = "FORMAT", help = "json or yaml: print the Secrets (with --dry-run=client)" },
  { long = "adopt", help = "take over Secrets of the same name that xcsreg did not make" },
  { long = "no-verify", help = "write credentials without logging in to their registries first" },
  { long = "force-rotate", help = "mint credentials from their sources again, even when not due" },
  { long = "restart-stuck", help = "delete the pods stuck pulling an image that now pulls, when a Job owns them" },
  "lock", "lock-timeout", "metrics-file", "concurrency", "request-timeout", "run-timeout",
  "cluster-concurrency", "cluster-timeout",
  "watch", "listen", "no-leader-elect", "lease-name", "lease-namespace", "lease-duration", "renew-deadline",
  "retry-period", "watch-timeout", "quiet", "verbose", "help",
}

local function usage(flags_help)
  return [[
usage: xcsreg run setup.lua [--config FILE] [flags]
       xcsreg run setup.lua -n NS --secret-name NAME --docker-server SERVER \
           --docker-username USER --docker-password-stdin [--docker-email EMAIL] [flags]

Creates (or updates in place) kubernetes.io/dockerconfigjson Secrets, identical to
`kubectl create secret docker-registry`, and adds them to ServiceAccounts'
imagePullSecrets without dropping the entries already there.

Flags:
]] .. flags_help .. [[


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
xnat = { url = ..., username = ..., password_env = ..., hubs = true }: after the
Secrets, XNAT's image hubs (Docker/Swarm backends) get the same credentials
(see README.md, "XNAT").
Hooks (functions in the site file's hooks table) change one step: namespaces,
registries (per namespace), password, result (see README.md, "Hooks").

Fleets: clusters = { { context = "prod" }, { name = "dev", kubeconfig = FILE } } in
the site file, or --context repeated: every cluster at once, each in a process of
its own, its lines prefixed with its name; one lock, one metrics file (a cluster
label on each series); the exit status is the clusters' common one, else 1.

--watch (controller mode, README "Controller mode"): LIST then WATCH the Namespaces,
ServiceAccounts and managed Secrets, repair a namespace within a second of the event
that broke it, rotate minted credentials when due; with 2 replicas, only the holder of
the Lease writes (scripts/k8s/deployment.yaml). One cluster. SIGTERM: release the
Lease, exit 0.

Exit status: 0 all namespaces done (--watch: stopped by a signal), 1 some failed,
2 usage or configuration error (a hook that failed included; nothing was written),
3 another run holds the lock.
]]
end

local function run(opts)
  local dry_run = opts["dry-run"]
  if dry_run ~= nil and dry_run ~= "client" and dry_run ~= "server" and dry_run ~= "none" then
    return script.EXIT.USAGE, string.format('--dry-run: must be "none", "server" or "client", not "%s"', dry_run)
  end
  if opts.output and opts.output ~= "json" and opts.output ~= "yaml" then
    return script.EXIT.USAGE, string.format('--output: must be "json" or "yaml", not "%s"', opts.output)
  end
  if opts.output and dry_run ~= "client" then return script.EXIT.USAGE, "--output needs --dry-run=client" end
  if opts.watch then return require("xcsreg.controller").run(opts) end
  for _, flag in ipairs { "listen", "no-leader-elect", "lease-name", "lease-namespace", "lease-duration",
                          "renew-deadline", "retry-period", "watch-timeout" } do
    if opts[flag] then return script.EXIT.USAGE, "--" .. flag .. " needs --watch" end
  end
  -- required here, not above: --help and usage errors need none of the
  -- workflow's modules, and start in a third of the time without them
  return require("xcsreg.reconcile").run(opts, flags)
end

return script.main { name = "setup.lua", flags = flags, usage = usage, run = run }(...)
