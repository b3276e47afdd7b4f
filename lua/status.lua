-- status.lua: report the pull secrets xcsreg manages, when they expire, and pods that cannot pull
--
-- Per namespace: each managed Secret with its registries, when it was last
-- rotated and when it expires; whether every wanted ServiceAccount lists it;
-- Secrets the site file wants that are missing; and pods stuck in
-- ErrImagePull / ImagePullBackOff (XNAT shows such jobs as waiting forever).
-- Only reads. Exit 1 when anything needs attention, so it serves as a
-- monitoring check.
local base64 = require "base64"
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"
local json = require "json"
local k8s = require "k8s"
local log = require "log"
local namespaces = require "xcsreg.namespaces"
local rotation = require "xcsreg.rotation"
local secrets = require "xcsreg.secrets"

local EXIT_OK, EXIT_ATTENTION, EXIT_USAGE = 0, 1, 2

local flags = {
  { long = "config", arg = "FILE", help = "site file: which Secrets and ServiceAccounts are wanted (also $XCSREG_CONFIG)" },
  { long = "namespace", short = "n", arg = "NS", repeated = true, help = "namespace (repeatable; overrides the file)" },
  { long = "service-account", arg = "SA", repeated = true, help = "ServiceAccount that must list the Secrets (default: default)" },
  { long = "kubeconfig", arg = "FILE", help = "kubeconfig file" },
  { long = "context", arg = "NAME", help = "kubeconfig context" },
  { long = "warn-within", arg = "DURATION", help = "report credentials expiring within DURATION (default 24h)" },
  { long = "output", short = "o", arg = "FORMAT", help = "text (default) or json" },
  { long = "quiet", short = "q", help = "print only what needs attention" },
  { long = "help", short = "h", help = "print this help" },
}

local usage = [[
usage: xcsreg run status.lua [--config FILE] [-n NS ...] [flags]

Reports, per namespace, the pull secrets xcsreg manages, when they expire,
whether the ServiceAccounts list them, and pods that cannot pull their image.
Exit status: 0 all is well, 1 something needs attention, 2 usage error.

Flags:
]] .. cli.help(flags) .. "\n"

local STUCK = { ErrImagePull = true, ImagePullBackOff = true, InvalidImageName = true }

-- The registries of a managed Secret (never its credentials).
local function registries(secret)
  local data = secret.data and secret.data[".dockerconfigjson"]
  local doc = data and json.decode(base64.decode(log.secret(data)) or "")
  local list = {}
  if type(doc) == "table" and type(doc.auths) == "table" then
    for server in pairs(doc.auths) do list[#list + 1] = server end
  end
  table.sort(list)
  return list
end

local function when(t, now)
  if not t then return nil end
  local d = t - now
  if d > 0 then return "in " .. rotation.format_duration(d) end
  return rotation.format_duration(-d) .. " ago"
end

-- What one namespace looks like: a report table, or nil, error.
local function inspect(client, ns, plan, now, warn_within)
  local r = { namespace = ns, secrets = {}, pods = {}, problems = {} }
  local function problem(fmt, ...) r.problems[#r.problems + 1] = string.format(fmt, ...) end

  local list, err = client:list(k8s.path("/api/v1/namespaces/%s/secrets", ns),
    { labelSelector = secrets.MANAGED_BY .. "=xcsreg" })
  if not list then return nil, err end
  local listed = {}
  for _, sa_name in ipairs(plan.service_accounts) do
    local sa, serr = client:get(k8s.path("/api/v1/namespaces/%s/serviceaccounts/%s", ns, sa_name))
    if sa then
      listed[sa_name] = {}
      for _, ref in ipairs(sa.imagePullSecrets or {}) do listed[sa_name][ref.name] = true end
    elseif serr.code == 404 then
      problem("serviceaccount/%s: not found", sa_name)
    else
      return nil, serr
    end
  end

  local have = {}
  for _, s in ipairs(list.items) do
    local name = s.metadata.name
    have[name] = true
    local annotations = s.metadata.annotations or {}
    local rotated = rotation.parse_time(annotations[rotation.ROTATED_AT])
    local expires = rotation.parse_time(annotations[rotation.EXPIRES_AT])
    local entry = { name = name, registries = registries(s), rotated_at = annotations[rotation.ROTATED_AT],
                    expires_at = annotations[rotation.EXPIRES_AT], missing_from = {} }
    if expires and expires <= now then
      entry.state = "expired"
      problem("secret/%s: expired %s", name, when(expires, now))
    elseif expires and expires - now <= warn_within then
      entry.state = "expiring"
      problem("secret/%s: expires %s", name, when(expires, now))
    else
      entry.state = "ok"
    end
    for _, sa_name in ipairs(plan.service_accounts) do
      if listed[sa_name] and not listed[sa_name][name] then
        entry.missing_from[#entry.missing_from + 1] = sa_name
        problem("secret/%s: not in the imagePullSecrets of serviceaccount/%s", name, sa_name)
      end
    end
    entry.rotated = when(rotated, now)
    entry.expires = when(expires, now)
    r.secrets[#r.secrets + 1] = entry
  end
  for _, s in ipairs(plan.secrets or {}) do
    if not have[s.name] then problem("secret/%s: missing (the site file wants it; run setup.lua)", s.name) end
  end

  local pods, perr = client:list(k8s.path("/api/v1/namespaces/%s/pods", ns))
  if not pods then return nil, perr end
  for _, pod in ipairs(pods.items) do
    local status = pod.status or {}
    for _, field in ipairs { "initContainerStatuses", "containerStatuses" } do
      for _, c in ipairs(status[field] or {}) do
        local waiting = c.state and c.state.waiting
        if waiting and STUCK[waiting.reason] then
          r.pods[#r.pods + 1] = { name = pod.metadata.name, container = c.name, image = c.image,
                                  reason = waiting.reason, message = waiting.message }
          problem("pod/%s: container %s cannot pull %s: %s%s", pod.metadata.name, c.name, tostring(c.image),
            waiting.reason, waiting.message and (": " .. waiting.message) or "")
        end
      end
    end
  end
  return r
end

local function print_text(reports, quiet)
  for _, r in ipairs(reports) do
    if not quiet or #r.problems > 0 or r.error then print("namespace " .. r.namespace) end
    if r.error then
      print("  error: " .. r.error)
    else
      if not quiet then
        for _, s in ipairs(r.secrets) do
          print(string.format("  secret/%s  %s  rotated %s  expires %s%s", s.name, table.concat(s.registries, ","),
            s.rotated or "(unknown)", s.expires or "(no expiry known)", s.state ~= "ok" and ("  " .. s.state:upper()) or ""))
        end
      end
      for _, p in ipairs(r.problems) do print("  ! " .. p) end
    end
  end
end

local function main(...)
  local opts, args = cli.parse(flags, { ... })
  if not opts then
    io.stderr:write("error: ", args, "\nSee 'xcsreg run status.lua --help' for usage.\n")
    return EXIT_USAGE
  end
  if opts.help then io.write(usage) return EXIT_OK end
  if #args > 0 then
    io.stderr:write("error: unexpected argument: ", args[1], "\n")
    return EXIT_USAGE
  end
  local format = opts.output or "text"
  if format ~= "text" and format ~= "json" then
    io.stderr:write('error: --output: must be "text" or "json", not "', format, '"\n')
    return EXIT_USAGE
  end
  local warn_within, derr = rotation.parse_duration(opts["warn-within"] or "24h")
  if not warn_within then
    io.stderr:write("error: --warn-within: ", derr, "\n")
    return EXIT_USAGE
  end
  local clock_err = rotation.check_clock()
  if clock_err then io.stderr:write("error: ", clock_err, "\n") return EXIT_USAGE end

  local plan = { service_accounts = { "default" } }
  local path = opts.config or os.getenv("XCSREG_CONFIG")
  if path then
    local err
    plan, err = config.load_file(path, { credentials = false })
    if not plan then io.stderr:write("error: ", err, "\n") return EXIT_USAGE end
  end
  local err
  plan, err = config.override(plan, opts.namespace, opts["service-account"])
  if not plan then io.stderr:write("error: ", err, "\n") return EXIT_USAGE end

  local client, cerr = k8s.client { kubeconfig = opts.kubeconfig, context = opts.context }
  if not client then io.stderr:write("error: ", tostring(cerr), "\n") return EXIT_USAGE end

  local now = rotation.now()
  local reports, attention = {}, false
  local names, nerr = namespaces.resolve(client, plan)
  if not names then
    io.stderr:write("error: ", tostring(nerr), "\n")
    client:close()
    return EXIT_ATTENTION
  end
  for _, ns in ipairs(names) do
    local r, ierr = inspect(client, ns, plan, now, warn_within)
    if not r then
      r = { namespace = ns, error = tostring(ierr), secrets = {}, pods = {}, problems = {} }
      if ierr.code == 403 then
        r.error = r.error .. " (status.lua needs get/list on secrets, get on serviceaccounts and list on pods: see scripts/k8s/rbac.yaml)"
      end
    end
    attention = attention or r.error ~= nil or #r.problems > 0
    reports[#reports + 1] = r
  end
  client:close()

  if format == "json" then
    for _, r in ipairs(reports) do
      r.secrets, r.pods, r.problems = json.array(r.secrets), json.array(r.pods), json.array(r.problems)
      for _, s in ipairs(r.secrets) do
        s.registries, s.missing_from = json.array(s.registries), json.array(s.missing_from)
      end
    end
    print(json.encode({ time = rotation.format_time(now), ok = not attention, namespaces = json.array(reports) },
      { indent = 2 }))
  else
    print_text(reports, opts.quiet)
    if not opts.quiet and not attention then print("all is well") end
  end
  return attention and EXIT_ATTENTION or EXIT_OK
end

return main(...)
