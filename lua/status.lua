-- status.lua: report the pull Secrets xcsreg manages, their expiry, and the pods stuck pulling images
--
-- A monitoring check: per namespace, each Secret labelled
-- app.kubernetes.io/managed-by=xcsreg with its registries, when it was
-- rotated and when it expires, whether the wanted ServiceAccounts list it in
-- imagePullSecrets, the Secrets the site file wants that are missing, and
-- the pods whose containers wait in ErrImagePull or ImagePullBackOff (XNAT
-- shows such jobs as waiting forever). Only reads; never prints a
-- credential. Exit 0 when all is well, 1 when anything needs attention.
local time = require "xcsreg.time"
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local namespaces = require "xcsreg.namespaces"
local rotation = require "xcsreg.rotation"
local status = require "xcsreg.status"

local EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

local flags = {
  { long = "config", arg = "FILE", help = "site file (also $XCSREG_CONFIG; default " .. config.DEFAULT_FILE
    .. " if it exists)" },
  { long = "namespace", short = "n", arg = "NS", repeated = true,
    help = "namespace (repeatable; overrides the file; default: the context's)" },
  { long = "service-account", arg = "SA", repeated = true,
    help = "ServiceAccount that must list the Secrets (repeatable; default: the file's, or default)" },
  { long = "kubeconfig", arg = "FILE", help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)" },
  { long = "context", arg = "NAME", help = "kubeconfig context" },
  { long = "request-timeout", arg = "SECONDS", help = "give up on an API request after this long (default 30)" },
  { long = "warn-within", arg = "DURATION", help = "a Secret expiring sooner is a problem (e.g. 90m, 2h, 3d; "
    .. "default: an eighth of its lifetime, else 24h)" },
  { long = "output", short = "o", arg = "FORMAT", help = "text (default) or json" },
  { long = "quiet", short = "q", help = "print only what is wrong (nothing when all is well)" },
  { long = "verbose", short = "v", repeated = true, help = "log more (repeat for more)" },
  { long = "help", short = "h", help = "print this help" },
}

local usage = [[
usage: xcsreg run status.lua [--config FILE] [-n NS ...] [--warn-within DURATION] [-o text|json] [-q]

Reports, per namespace, the kubernetes.io/dockerconfigjson Secrets that xcsreg
manages (label app.kubernetes.io/managed-by=xcsreg): their registries, when
they were rotated, when they expire, and whether every wanted ServiceAccount
lists them in imagePullSecrets; the Secrets the site file wants that are
missing; and the pods whose containers wait in ErrImagePull or ImagePullBackOff.
Only reads: it needs secrets get, list; serviceaccounts get; pods list.

Flags:
]] .. cli.help(flags) .. [[


A Secret is expiring when less than --warn-within is left or, by default,
less than an eighth of its lifetime (from its xcsreg.io/rotated-at to its
xcsreg.io/expires-at; 24h when unknown): setup.lua renews at half of it.

Exit status: 0 all is well; 1 something is expired, expiring, missing or not
referenced, a pod is stuck, or a read failed; 2 usage or configuration error.
]]

local function usage_error(msg)
  log.error("%s\nSee 'xcsreg run status.lua --help' for usage.", msg)
  return EXIT_USAGE
end

-- The plan of the site file, its passwords left unread (a report needs
-- none, and minting one would be a write), or a plan wanting nothing in
-- particular when there is no site file.
local function load_plan(opts)
  local path = opts.config or os.getenv("XCSREG_CONFIG")
  if not path then
    local f = io.open(config.DEFAULT_FILE)
    if not f then return { service_accounts = { "default" } } end
    f:close()
    path = config.DEFAULT_FILE
  end
  return config.load_file(path, { credentials = false })
end

-- What the plan wants of each namespace: the ServiceAccounts, and each
-- Secret's name and registry servers (nil without a site file).
local function wanted(plan)
  local want = { service_accounts = plan.service_accounts }
  if plan.secrets then
    want.secrets = {}
    for i, s in ipairs(plan.secrets) do
      local servers = {}
      for j, r in ipairs(s.registries) do servers[j] = r.server end
      want.secrets[i] = { name = s.name, servers = servers }
    end
  end
  return want
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
  local output = opts.output or "text"
  if output ~= "text" and output ~= "json" then
    return usage_error(string.format('--output: must be "text" or "json", not "%s"', output))
  end
  local warn_text = opts["warn-within"]
  local warn_within, derr = time.parse_duration(math.tointeger(tonumber(warn_text)) or warn_text)
  if derr then return usage_error("--warn-within: " .. derr) end
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

  local client <close>, cerr = k8s.client { kubeconfig = opts.kubeconfig, context = opts.context,
                                            request_timeout = request_timeout }
  if not client then
    log.error("%s", tostring(cerr))
    return EXIT_USAGE
  end
  local list, nerr = namespaces.resolve(client, plan)
  if not list then
    log.error("%s", nerr)
    return EXIT_PROBLEMS
  end
  local want = wanted(plan)
  local ctx = { now = time.now(), warn_within = warn_within, warn_text = warn_text }
  local reports = {}
  for i, ns in ipairs(list) do
    local report = status.namespace(client, ns, want, ctx)
    reports[#reports + 1] = report
    for _, e in ipairs(report.errors) do log.error("%s", e) end
    if report.fatal then
      if i < #list then
        log.error("stopped: %d namespace(s) not checked (%s)", #list - i, table.concat(list, ", ", i + 1))
      end
      break
    end
  end
  log.debug("%d request(s) to %s", client:stats().requests, client.server)

  if output == "json" then
    io.write(json.encode(status.document(reports, ctx), { indent = 2 }), "\n")
  else
    io.write(status.text(reports, opts.quiet))
  end
  return #status.problems(reports) > 0 and EXIT_PROBLEMS or EXIT_OK
end

return main(...)
