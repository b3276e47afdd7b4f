-- xcsreg.script: what every shipped script does the same way, so that a
-- script is its own flags and wiring only: the common flags, --help, usage
-- errors, verbosity, exit codes, and loading the plan.
--
--   return script.main {
--     name = "status.lua", flags = script.flags { "config", "namespace", ..., { long = "own", ... } },
--     usage = function(flags_help) return "usage: ..." .. flags_help end,
--     run = function(opts) return script.EXIT.OK end,
--   }(...)
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"
local log = require "log"
local proc = require "proc"
local time = require "xcsreg.time"

local script = {}

-- The exit codes are the host's (xcsreg.h), so that a script, the host and
-- cron agree: OK 0; FAILED 1 an operation failed; USAGE 2 usage or
-- configuration error, nothing was changed; LOCKED 3 another run holds the
-- lock.
script.EXIT = proc.EXIT

script.CONCURRENCY, script.MAX_CONCURRENCY = 8, 100 -- as k8s.client's
script.REQUEST_TIMEOUT = 30
script.LOCK_TIMEOUT = 30
-- Well under the shipped cron file's 4 hours and the hourly status check,
-- and far above a healthy run (seconds): a cluster that answers 429 for
-- ever makes the run stop, not pile up behind the lock (#12 item 14).
script.RUN_TIMEOUT = 600

-- The flags the scripts share, by long name.
local common = {
  config = { long = "config", arg = "FILE", help = "site file (also $XCSREG_CONFIG; default " .. config.DEFAULT_FILE .. ")" },
  namespace = { long = "namespace", short = "n", arg = "NS", repeated = true,
    help = "namespace (repeatable; overrides the file's namespaces or selection; default: the context's)" },
  ["service-account"] = { long = "service-account", arg = "SA", repeated = true,
    help = "ServiceAccount to add the pull secrets to (repeatable; default: default)" },
  kubeconfig = { long = "kubeconfig", arg = "FILE", help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)" },
  context = { long = "context", arg = "NAME", repeated = true,
    help = "kubeconfig context (repeatable: one run over each of those clusters; see README.md, \"Fleets\")" },
  -- xcsreg.fleet's
  ["cluster-concurrency"] = { long = "cluster-concurrency", arg = "N", help = "clusters of a fleet handled at once "
    .. "(default: all of them, at most 8)" },
  ["cluster-timeout"] = { long = "cluster-timeout", arg = "SECONDS", help = "stop a fleet's cluster still running "
    .. "after this long (default: --run-timeout + 60)" },
  lock = { long = "lock", arg = "FILE", help = "one run at a time (default /run/xcsreg/lock for root, else in "
    .. "$XDG_RUNTIME_DIR/xcsreg/ or /tmp/xcsreg-UID/; none: no lock)" },
  ["lock-timeout"] = { long = "lock-timeout", arg = "SECONDS", help = "wait this long for another run to end, then "
    .. "exit 3 (default " .. script.LOCK_TIMEOUT .. ")" },
  ["metrics-file"] = { long = "metrics-file", arg = "PATH", help = "write Prometheus metrics there (node_exporter's "
    .. "textfile collector)" },
  concurrency = { long = "concurrency", arg = "N", help = "namespaces handled at once, requests in flight (default "
    .. script.CONCURRENCY .. ")" },
  ["request-timeout"] = { long = "request-timeout", arg = "SECONDS", help = "give up on an API request after this "
    .. "long (default " .. script.REQUEST_TIMEOUT .. ")" },
  ["run-timeout"] = { long = "run-timeout", arg = "SECONDS", help = "stop the work on the cluster after this long, "
    .. "say what was not done, exit 1 (default " .. script.RUN_TIMEOUT .. ")" },
  quiet = { long = "quiet", short = "q", help = "print errors only" },
  verbose = { long = "verbose", short = "v", repeated = true, help = "log more (repeat for more: -vv, -vvv)" },
  help = { long = "help", short = "h", help = "print this help" },
  -- setup.lua --watch (xcsreg.controller, xcsreg.leader)
  watch = { long = "watch", help = "controller mode: keep the cluster as the site file says, from watch events, "
    .. "until SIGTERM" },
  listen = { long = "listen", arg = "ADDR", help = "with --watch: serve /healthz and /metrics on ADDR "
    .. "(e.g. 127.0.0.1:9090; port 0 picks one)" },
  ["no-leader-elect"] = { long = "no-leader-elect", help = "with --watch: write without holding the Lease "
    .. "(one replica only)" },
  ["lease-name"] = { long = "lease-name", arg = "NAME", help = "with --watch: the Lease of the leader election "
    .. "(default xcsreg)" },
  ["lease-namespace"] = { long = "lease-namespace", arg = "NS", help = "with --watch: the Lease's namespace "
    .. "(default: the context's)" },
  ["lease-duration"] = { long = "lease-duration", arg = "SECONDS", help = "with --watch: how long a Lease not "
    .. "renewed stays its holder's (default 15)" },
  ["renew-deadline"] = { long = "renew-deadline", arg = "SECONDS", help = "with --watch: the leader stops "
    .. "writing when it has not renewed for this long (default 10)" },
  ["retry-period"] = { long = "retry-period", arg = "SECONDS", help = "with --watch: between attempts to take "
    .. "or renew the Lease (default 2)" },
  ["watch-timeout"] = { long = "watch-timeout", arg = "SECONDS", help = "with --watch: ask the server to end "
    .. "each watch after this long (default 5 to 10 minutes)" },
}

-- A flag spec list: each item the name of a common flag, or a spec of the
-- script's own ({ long = ..., help = ... }); a common one's help may be
-- changed with { "name", help = "..." }.
function script.flags(list)
  local spec = {}
  for i, item in ipairs(list) do
    local name = type(item) == "string" and item or item[1]
    if name then
      local f = assert(common[name], "no common flag " .. name)
      spec[i] = f
      if type(item) == "table" then
        spec[i] = {}
        for k, v in pairs(f) do spec[i][k] = v end
        for k, v in pairs(item) do if k ~= 1 then spec[i][k] = v end end
      end
    else
      spec[i] = item
    end
  end
  return spec
end

local function usage_error(name, msg)
  log.error("%s\nSee 'xcsreg run %s --help' for usage.", msg, name)
  return script.EXIT.USAGE
end

-- What the client flags ask for, checked: { kubeconfig, context,
-- concurrency, request_timeout, deadline (--run-timeout: no request is
-- sent or retried past it) } | nil, message.
function script.client_options(opts)
  local concurrency = math.tointeger(tonumber(opts.concurrency or script.CONCURRENCY))
  if not concurrency or concurrency < 1 or concurrency > script.MAX_CONCURRENCY then
    return nil, string.format('--concurrency: must be a whole number from 1 to %d, not "%s"',
      script.MAX_CONCURRENCY, opts.concurrency)
  end
  local request_timeout, err = cli.seconds(opts, "request-timeout", script.REQUEST_TIMEOUT)
  if not request_timeout then return nil, err end
  local run_timeout
  run_timeout, err = cli.seconds(opts, "run-timeout", script.RUN_TIMEOUT)
  if not run_timeout then return nil, err end
  -- several --context are a fleet's (xcsreg.fleet), which runs each apart
  return { kubeconfig = opts.kubeconfig, context = opts.context and opts.context[#opts.context], concurrency = concurrency,
           request_timeout = request_timeout, deadline = run_timeout }
end

-- The site file named by --config or $XCSREG_CONFIG, else the default one
-- when it exists: its path, or nil and whether it is missing.
function script.site_file(opts)
  local path = opts.config or os.getenv("XCSREG_CONFIG")
  if path then return path end
  local f = io.open(config.DEFAULT_FILE)
  if not f then return nil end
  f:close()
  return config.DEFAULT_FILE
end

-- Makes a function of the script's arguments that parses them, answers
-- --help, sets the verbosity, and calls def.run(opts, positional): its
-- exit code. A usage error prints the message and the way to --help.
function script.main(def)
  return function(...)
    local opts, rest = cli.parse(def.flags, { ... })
    if not opts then return usage_error(def.name, rest) end
    if opts.help then
      io.write(def.usage(cli.help(def.flags)))
      return script.EXIT.OK
    end
    if #rest > 0 and not def.positional then
      return usage_error(def.name, string.format('unexpected argument "%s"', rest[1]))
    end
    if opts.quiet then log.level("error") end
    for _ in ipairs(opts.verbose or {}) do
      log.level(({ error = "warn", warn = "info", info = "debug", debug = "trace", trace = "trace" })[log.level()])
    end
    local clock_err = time.check_clock()
    if clock_err then return usage_error(def.name, clock_err) end
    local code, err = def.run(opts, rest)
    if code == script.EXIT.USAGE and err then return usage_error(def.name, err) end
    return code
  end
end

return script
