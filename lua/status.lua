-- status.lua: report the pull Secrets xcsreg manages, their expiry, and the pods stuck pulling images
--
-- A monitoring check: per namespace, each Secret labelled
-- app.kubernetes.io/managed-by=xcsreg with its registries, when it was
-- rotated and when it expires, whether the wanted ServiceAccounts list it in
-- imagePullSecrets, the Secrets the site file wants that are missing, and
-- the pods whose containers wait in ErrImagePull or ImagePullBackOff (XNAT
-- shows such jobs as waiting forever). Only reads; never prints a
-- credential. The checks are xcsreg.status's; this script is its flags.
local config = require "xcsreg.config"
local fleet = require "xcsreg.fleet"
local json = require "json"
local log = require "log"
local reconcile = require "xcsreg.reconcile"
local script = require "xcsreg.script"
local status = require "xcsreg.status"
local time = require "xcsreg.time"
local xnat_status = require "xcsreg.xnat_status"

local flags = script.flags {
  { "config", help = "site file (also $XCSREG_CONFIG; default /etc/xcsreg/registries.lua if it exists)" },
  { "namespace", help = "namespace (repeatable; overrides the file; default: the context's)" },
  { "service-account", help = "ServiceAccount that must list the Secrets (repeatable; default: the file's, or default)" },
  "kubeconfig", "context", "request-timeout", "run-timeout", "cluster-concurrency", "cluster-timeout",
  { long = "warn-within", arg = "DURATION", help = "a Secret expiring sooner is a problem (e.g. 90m, 2h, 3d; "
    .. "default: an eighth of its lifetime, else 24h)" },
  { long = "workload-images", help = "also check the images of the namespaces' Pods, Jobs, CronJobs, "
    .. "Deployments, StatefulSets and DaemonSets" },
  { long = "output", short = "o", arg = "FORMAT", help = "text (default) or json" },
  { "quiet", help = "print only what is wrong (nothing when all is well)" },
  "verbose", "help",
}

local function usage(flags_help)
  return [[
usage: xcsreg run status.lua [--config FILE] [-n NS ...] [--warn-within DURATION] [-o text|json] [-q]

Reports, per namespace, the kubernetes.io/dockerconfigjson Secrets that xcsreg
manages (label app.kubernetes.io/managed-by=xcsreg): their registries, when
they were rotated, when they expire, and whether every wanted ServiceAccount
lists them in imagePullSecrets; the Secrets the site file wants that are
missing; and the pods whose containers wait in ErrImagePull or ImagePullBackOff.
With an xnat table in the site file: whether the image of every XNAT command
will pull, with the Secrets a job pod would be offered. Only reads: it needs ]] .. status.PERMISSIONS .. [[.

Flags:
]] .. flags_help .. [[


A Secret is expiring when less than --warn-within is left or, by default,
less than an eighth of its lifetime (from its xcsreg.io/rotated-at to its
xcsreg.io/expires-at; 24h when unknown): setup.lua renews at half of it.

Over a fleet (the site file's clusters, or --context repeated): each cluster's
report, its lines prefixed with its name; -o json: { ok, clusters = { { name,
context, kubeconfig, exitCode, errors, status = its own document } } }.

Exit status: 0 all is well; 1 something is expired, expiring, missing or not
referenced, a pod is stuck, or a read failed; 2 usage or configuration error.
]]
end

-- The plan of the site file, its passwords left unread (a report needs
-- none, and minting one would be a write), or a plan wanting nothing in
-- particular when there is no site file.
local function load_plan(opts)
  if not script.site_file(opts) then
    return config.override({ service_accounts = { "default" }, hooks = {} }, opts.namespace, opts["service-account"])
  end
  return reconcile.plan(opts, false)
end

local function run(opts)
  local output = opts.output or "text"
  if output ~= "text" and output ~= "json" then
    return script.EXIT.USAGE, string.format('--output: must be "text" or "json", not "%s"', output)
  end
  local warn_text = opts["warn-within"]
  local warn_within, derr = time.parse_duration(math.tointeger(tonumber(warn_text)) or warn_text)
  if derr then return script.EXIT.USAGE, "--warn-within: " .. derr end
  local _, cerr = script.client_options(opts)
  if cerr then return script.EXIT.USAGE, cerr end

  local plan, err = load_plan(opts)
  if not plan then
    log.error("%s", err)
    return script.EXIT.USAGE
  end
  local clusters, ferr = fleet.clusters(opts, plan)
  if ferr then return script.EXIT.USAGE, ferr end
  if clusters then return fleet.status(opts, clusters, flags) end
  local client <close>, kerr = reconcile.client(opts)
  if not client then
    log.error("%s", kerr)
    return script.EXIT.USAGE
  end
  local list, nerr, hook_failed = reconcile.namespaces(client, plan)
  if not list then
    log.error("%s", nerr)
    return hook_failed and script.EXIT.USAGE or script.EXIT.FAILED
  end
  local wanted, werr = status.wanted(client, plan, list)
  if not wanted then
    log.error("%s", werr)
    return script.EXIT.USAGE
  end
  local ctx = { now = time.now(), warn_within = warn_within, warn_text = warn_text, images = plan.images,
                pull_options = config.pull_options(plan),
                workload_images = opts["workload-images"] }
  local reports = status.check(client, list, wanted, ctx)
  -- XNAT's commands: will their images pull? (xcsreg.xnat_status)
  local info = plan.xnat and xnat_status.check(client, plan.xnat, reports, ctx)
  log.debug("%d request(s) to %s", client:stats().requests, client.server)
  local problems = #status.problems(reports) + (info and #info.problems or 0)

  if output == "json" then
    local doc = status.document(reports, ctx)
    if info then
      doc.xnat = xnat_status.document(info)
      table.move(info.problems, 1, #info.problems, #doc.problems + 1, doc.problems)
      doc.ok = problems == 0
    end
    io.write(json.encode(doc, { indent = 2 }), "\n")
  else
    if info and info.error then log.error("%s", info.error) end
    io.write(status.text(reports, opts.quiet))
    if info and not info.error then io.write((opts.quiet and "" or "\n") .. xnat_status.text(info, opts.quiet)) end
  end
  return problems > 0 and script.EXIT.FAILED or script.EXIT.OK
end

return script.main { name = "status.lua", flags = flags, usage = usage, run = run }(...)
