-- setup.lua: create docker-registry Secrets and merge them into ServiceAccounts' imagePullSecrets
--
-- Replaces, and fixes, the two commands of XNAT's "Private Registries with
-- Kubernetes" guide (`kubectl create secret docker-registry` and a `kubectl
-- patch serviceaccount` that drops the pull secrets already there). Per
-- namespace: each Secret first (created, or updated in place), then each
-- ServiceAccount (pull secrets added, none dropped). A namespace that fails
-- does not stop the others. Copy it with `xcsreg cat setup.lua` to change it.
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local secrets = require "xcsreg.secrets"
local serviceaccounts = require "xcsreg.serviceaccounts"
local yaml = require "yaml"

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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
    help = "namespace (repeatable; overrides the file; default: the context's)" },
  { long = "service-account", arg = "SA", repeated = true,
    help = "ServiceAccount to add the pull secrets to (repeatable; default: default)" },
  { long = "kubeconfig", arg = "FILE", help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)" },
  { long = "context", arg = "NAME", help = "kubeconfig context" },
  { long = "dry-run", arg = "MODE", help = "client: print the Secrets, contact no cluster; server: change nothing" },
  { long = "output", short = "o", arg = "FORMAT", help = "json or yaml: print the Secrets (with --dry-run=client)" },
  { long = "adopt", help = "take over Secrets of the same name that xcsreg did not make" },
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
Passwords: password_env, password_file or password_command (argv list).

Exit status: 0 all namespaces done, 1 some failed, 2 usage or configuration error.
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

-- --dry-run=client: what would be applied, without contacting any cluster.
local function print_client_dry_run(plan, output)
  local items = {}
  for _, ns in ipairs(plan.namespaces or { false }) do
    for _, s in ipairs(plan.secrets) do
      local obj = secrets.desired(s.name, ns or nil, s.registries)
      obj.metadata.creationTimestamp = json.null
      items[#items + 1] = obj
      if not output then
        print(string.format("%ssecret/%s created (dry run)", plan.prefix(ns), s.name))
      end
    end
    if not output then
      for _, sa in ipairs(plan.service_accounts) do
        print(string.format("%sserviceaccount/%s configured (dry run)", plan.prefix(ns), sa))
      end
    end
  end
  local list = { apiVersion = "v1", kind = "List", items = items, metadata = { resourceVersion = "" } }
  if output == "json" then
    io.write(json.encode(list, { indent = 4 }), "\n")
  elseif output == "yaml" then
    io.write(yaml.encode(list))
  end
end

-- A ready-to-apply Role and RoleBinding for the identity a 403 names.
local function rbac_hint(ns, err)
  local user = tostring(err):match('User "([^"]+)"') or "USER"
  local sa_ns, sa_name = user:match("^system:serviceaccount:([^:]+):([^:]+)$")
  local subject = string.format("{kind: User, name: %q, apiGroup: rbac.authorization.k8s.io}", user)
  if sa_ns then subject = string.format("{kind: ServiceAccount, name: %s, namespace: %s}", sa_name, sa_ns) end
  return string.format([[
xcsreg needs, in namespace %s: secrets get, create, update, patch; serviceaccounts get, update, patch.
Have a cluster admin grant them (scripts/k8s/rbac.yaml has this Role for a CronJob's own ServiceAccount):
  kubectl apply -f - <<'EOF'
  apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: xcsreg, namespace: %s}
  rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, create, update, patch]}
  - {apiGroups: [""], resources: [serviceaccounts], verbs: [get, update, patch]}
  ---
  apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: xcsreg, namespace: %s}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: xcsreg}
  subjects: [%s]
  EOF]], ns, ns, ns, subject)
end

-- Errors that no other namespace would escape: stop the run.
local function cluster_wide(err)
  return type(err) == "table" and (err.reason == "Transport" or err.code == 401)
end

-- One namespace: Secrets first, then ServiceAccounts, so that no pod is
-- ever given a pull secret that does not exist yet. Returns whether all was
-- done, and whether the run must stop (the error concerns the whole cluster).
local function reconcile(client, ns, plan, opts, say)
  local ok, stop_ns, stop_run = true, false, false
  local function failed(what, err)
    local msg = string.format("namespace %s: %s: %s", ns, what, tostring(err))
    local forbidden = type(err) == "table" and err.code == 403
    if forbidden then msg = msg .. "\n" .. rbac_hint(ns, err) end
    log.error("%s", msg)
    ok, stop_ns, stop_run = false, forbidden, cluster_wide(err)
  end
  local ready = {}
  for _, s in ipairs(plan.secrets) do
    local result, err = secrets.apply(client, ns, secrets.desired(s.name, ns, s.registries), opts)
    if result then
      say(ns, "secret/" .. s.name .. " " .. result)
      ready[#ready + 1] = s.name
    else
      failed("secret/" .. s.name, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  if #ready == 0 then return false, false end
  for _, sa in ipairs(plan.service_accounts) do
    local result, err = serviceaccounts.add_pull_secrets(client, ns, sa, ready, opts)
    if result then
      say(ns, "serviceaccount/" .. sa .. " " .. result)
    else
      failed("serviceaccount/" .. sa, err)
      if stop_ns or stop_run then return false, stop_run end
    end
  end
  return ok, false
end

local function main(...)
  local opts, rest = cli.parse(flags, { ... })
  if not opts then return usage_error(rest) end
  if opts.help then
    io.write(usage)
    return EXIT_OK
  end
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

  local plan, err = load_plan(opts)
  if plan then plan, err = config.override(plan, opts.namespace, opts["service-account"]) end
  if not plan then
    log.error("%s", err)
    return EXIT_USAGE
  end
  local several = plan.namespaces and #plan.namespaces > 1
  function plan.prefix(ns) return several and ns .. ": " or "" end

  if dry_run == "client" then
    print_client_dry_run(plan, opts.output)
    return EXIT_OK
  end

  local client <close>, cerr = k8s.client { kubeconfig = opts.kubeconfig, context = opts.context }
  if not client then
    log.error("%s", tostring(cerr))
    return EXIT_USAGE
  end
  local apply_opts = { adopt = opts.adopt, dry_run = dry_run == "server" }
  local suffix = apply_opts.dry_run and " (server dry run)" or ""
  local function say(ns, line)
    if not opts.quiet then print(plan.prefix(ns) .. line .. suffix) end
  end

  local namespaces = plan.namespaces or { client.namespace }
  local failed = 0
  for i, ns in ipairs(namespaces) do
    local ok, fatal = reconcile(client, ns, plan, apply_opts, say)
    if not ok then failed = failed + 1 end
    if fatal then
      if i < #namespaces then
        log.error("stopped: %d namespace(s) not handled (%s)", #namespaces - i,
          table.concat(namespaces, ", ", i + 1))
      end
      return EXIT_FAILED
    end
  end
  log.debug("%d request(s) to %s", client:stats().requests, client.server)
  return failed > 0 and EXIT_FAILED or EXIT_OK
end

return main(...)
