-- xcsreg.status: what the cluster holds for xcsreg, judged against the site
-- file: the managed pull Secrets, when they were rotated and when they
-- expire, whether the ServiceAccounts list them, and the pods stuck pulling
-- their images (XNAT shows those jobs as waiting forever). Only reads.
--
-- status.namespace(client, ns, want, ctx) gathers one namespace's report;
-- status.text and status.document render reports. Every problem found is a
-- line in report.problems, so a caller's exit code is `#problems > 0`.
local config = require "xcsreg.config"
local dockerconfigjson = require "xcsreg.dockerconfigjson"
local hooks = require "xcsreg.hooks"
local image_ref = require "xcsreg.image_ref"
local json = require "json"
local k8s = require "k8s"
local keyring = require "xcsreg.keyring"
local log = require "log"
local pager = require "xcsreg.pager"
local pull = require "xcsreg.pull"
local registry_host = require "xcsreg.registry_host"
local rotation = require "xcsreg.rotation"
local secrets = require "xcsreg.secrets"
local snapshot = require "xcsreg.snapshot"
local time = require "xcsreg.time"
local workloads = require "xcsreg.workloads"

local status = {}

-- The waiting reasons of a container whose image cannot be pulled: it
-- waits in them forever, and so does the XNAT job.
status.STUCK_REASONS = { ErrImagePull = true, ImagePullBackOff = true, InvalidImageName = true }

-- What each read needs, as a Role grants it: "list pods", ...
local SECRETS_LIST, SECRET_GET, SA_GET, PODS_LIST = "list secrets", "get secrets", "get serviceaccounts", "list pods"
status.PERMISSIONS = "secrets get, list; serviceaccounts get; pods list"

-- The registry servers of a dockerconfigjson Secret (the keys of its
-- "auths"; the credentials are only kept out of any log), sorted | nil, message.
function status.registries(obj)
  local auths, err = dockerconfigjson.decode(obj.data and obj.data[".dockerconfigjson"])
  if not auths then return nil, err end
  local servers = {}
  for server in pairs(auths) do servers[#servers + 1] = server end
  table.sort(servers)
  return servers
end

-- Whether a pull secret holding keys `servers` covers image, as the
-- kubelet's keyring matches it (xcsreg.keyring, after kubernetes
-- pkg/credentialprovider/keyring.go): host glob, port, path prefix, and the
-- Docker Hub key for docker.io images that no other key matched. Also the
-- image's registry ("docker.io" for Docker Hub; nil when it does not parse).
function status.covers(servers, image)
  local ref = image_ref.parse(image)
  if not ref then return false end
  local hub_key = keyring.key(registry_host.DOCKER_HUB_KEY)
  local has_hub_key = false
  for _, server in ipairs(servers) do
    local key = keyring.key(server)
    if key and keyring.matches(key, ref.name) then return true, ref.registry end
    if key == hub_key then has_hub_key = true end
  end
  return has_hub_key and keyring.is_default_registry_match(ref.name), ref.registry
end

-- A permission refused: the message names the request, and what to grant.
local function api_error(report, ns, what, err)
  local msg = string.format("namespace %s: cannot %s: %s", ns, what, tostring(err))
  if type(err) == "table" and err.code == 403 then
    msg = msg .. string.format("\nstatus.lua needs, in namespace %s: %s (missing: %s); "
      .. "scripts/k8s/rbac-status.yaml has this Role (xcsreg-status)", ns, status.PERMISSIONS, what)
  end
  report.errors[#report.errors + 1] = msg
  report.problems[#report.problems + 1] = string.format("%s: cannot %s", ns, what)
  -- Errors no other namespace would escape stop the run.
  report.fatal = snapshot.cluster_wide(err)
end

local function names_of(refs)
  local names = {}
  for _, ref in ipairs(refs or {}) do
    if type(ref) == "table" and type(ref.name) == "string" then names[#names + 1] = ref.name end
  end
  return names
end

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

-- How close to its expiry a Secret may come before that is a problem:
-- --warn-within when given, else an eighth of the lifetime its annotations
-- record (expires-at minus rotated-at), else 24 hours. setup.lua renews a
-- minted credential once less than half of its lifetime is left, so while
-- it runs at least every three eighths of a lifetime (4h30m for a 12-hour
-- ECR token, 22m for a 1-hour GCP one), no Secret gets below an eighth.
-- rotated may be nil; epoch seconds all.
status.DEFAULT_WARN = 86400
function status.warn_within(rotated, expires, ctx)
  if ctx.warn_within then return ctx.warn_within end
  if rotated and rotated < expires then return (expires - rotated) // 8 end
  return status.DEFAULT_WARN
end

-- Expiry of a Secret from its annotations, into entry (and problems).
local function judge_expiry(entry, annotations, ctx, problem)
  local rotated_text, rotated = annotations[rotation.ROTATED_AT], nil
  if rotated_text then
    rotated = time.parse(rotated_text)
    entry.rotated_at = rotated and rotated_text
    if not rotated then problem("invalid annotation " .. rotation.ROTATED_AT .. ": " .. rotated_text, "invalid") end
  end
  local expires = annotations[rotation.EXPIRES_AT]
  if not expires then
    entry.expiry = "no expiry known"
    return
  end
  local t = time.parse(expires)
  if not t then
    entry.expiry = "no expiry known"
    problem("invalid annotation " .. rotation.EXPIRES_AT .. ": " .. expires, "invalid")
    return
  end
  entry.expires_at, entry.expires_in = expires, t - ctx.now
  entry.warn_within = status.warn_within(rotated, t, ctx)
  if t <= ctx.now then
    entry.expiry = "expired " .. time.format_duration(ctx.now - t) .. " ago"
    problem("expired", "expired", entry.expiry)
  else
    entry.expiry = "expires in " .. time.format_duration(t - ctx.now)
    if t - ctx.now <= entry.warn_within then
      local within = ctx.warn_text or time.format_duration(entry.warn_within)
      problem("expires within " .. within, "expiring", entry.expiry .. " (within " .. within .. ")")
    end
  end
end

-- The containers of a pod waiting for an image that cannot be pulled.
local function stuck_containers(pod, managed)
  local found = {}
  local spec_image = {}
  for _, list in ipairs { "initContainers", "containers" } do
    for _, c in ipairs(pod.spec and pod.spec[list] or {}) do spec_image[c.name] = c.image end
  end
  local pull_secrets = names_of(pod.spec and pod.spec.imagePullSecrets)
  for _, list in ipairs { "initContainerStatuses", "containerStatuses" } do
    for _, cs in ipairs(pod.status and pod.status[list] or {}) do
      local waiting = type(cs.state) == "table" and cs.state.waiting
      if type(waiting) == "table" and status.STUCK_REASONS[waiting.reason] then
        local image = spec_image[cs.name] or cs.image or ""
        local host = select(2, status.covers({}, image)) or image
        -- Which of the pod's pull secrets hold a credential for its image,
        -- and which managed Secrets would.
        local listed, available = {}, {}
        for name, servers in pairs(managed) do
          if status.covers(servers, image) then available[name] = true end
        end
        for _, name in ipairs(pull_secrets) do
          if available[name] then listed[#listed + 1] = name end
        end
        local would = {}
        for name in pairs(available) do would[#would + 1] = name end
        table.sort(would)
        found[#found + 1] = {
          pod = pod.metadata.name, container = cs.name, reason = waiting.reason, image = image,
          message = type(waiting.message) == "string" and waiting.message or "",
          registry = host, service_account = pod.spec and pod.spec.serviceAccountName or nil,
          image_pull_secrets = pull_secrets, pull_secret = listed, would_pull = would,
        }
      end
    end
  end
  return found
end

-- One namespace's report. want: { service_accounts = {...}, secrets = nil
-- (no site file) or { { name =, servers = {...} }, ... } }. ctx: { now =
-- epoch seconds, and from --warn-within: warn_within = seconds, warn_text
-- = "24h" (both nil: each Secret's own) }.
-- The report: { namespace, secrets = { entry... }, service_accounts = {...},
-- pods = {...}, errors = { message... }, problems = { line... }, fatal }.
function status.namespace(client, ns, want, ctx)
  local report = { namespace = ns, secrets = {}, service_accounts = {}, pods = {}, errors = {}, problems = {} }

  -- The wanted ServiceAccounts and what they list.
  local sa_lists = {}
  for _, name in ipairs(want.service_accounts) do
    local sa, err = client:get(k8s.path("/api/v1/namespaces/%s/serviceaccounts/%s", ns, name))
    local entry = { name = name, found = sa ~= nil, image_pull_secrets = {} }
    if sa then
      entry.image_pull_secrets = names_of(sa.imagePullSecrets)
      sa_lists[name] = set_of(entry.image_pull_secrets)
    elseif err.code == 404 then
      report.problems[#report.problems + 1] = string.format("%s: serviceaccount/%s not found", ns, name)
    else
      api_error(report, ns, SA_GET, err)
      if report.fatal then return report end
    end
    report.service_accounts[#report.service_accounts + 1] = entry
  end

  -- The managed Secrets, found by their label.
  local list, err = pager.list(client, k8s.path("/api/v1/namespaces/%s/secrets", ns),
    { labelSelector = secrets.MANAGED_BY .. "=xcsreg" })
  if not list then
    api_error(report, ns, SECRETS_LIST, err)
    if report.fatal then return report end
  end
  local wanted = {}
  for _, s in ipairs(want.secrets or {}) do wanted[s.name] = s end
  local managed, seen = {}, {}
  for _, obj in ipairs(list and list.items or {}) do
    local name = obj.metadata.name
    local entry = { name = name, state = "ok", problems = {}, referenced_by = {}, not_referenced_by = {} }
    if want.secrets then entry.in_site_file = wanted[name] ~= nil end
    seen[name] = true
    -- text for the table; line, when given, for the list of problems
    local function problem(text, state, line)
      entry.problems[#entry.problems + 1] = text
      if entry.state == "ok" then entry.state = state end
      report.problems[#report.problems + 1] = string.format("%s: secret/%s: %s", ns, name, line or text)
    end
    local servers, rerr = status.registries(obj)
    entry.registries = servers or {}
    if servers then
      managed[name] = servers
    else
      problem(rerr, "unreadable")
    end
    judge_expiry(entry, obj.metadata.annotations or {}, ctx, problem)
    for _, sa in ipairs(want.service_accounts) do
      if sa_lists[sa] then
        local into = sa_lists[sa][name] and entry.referenced_by or entry.not_referenced_by
        into[#into + 1] = sa
      end
    end
    if #entry.not_referenced_by > 0 then
      problem("not referenced by serviceaccount/" .. table.concat(entry.not_referenced_by, ", serviceaccount/"),
        "unreferenced")
    end
    if wanted[name] and servers then
      local want_servers = table.move(wanted[name].servers, 1, #wanted[name].servers, 1, {})
      table.sort(want_servers)
      if table.concat(want_servers, "\n") ~= table.concat(servers, "\n") then
        problem("registries differ from the site file (wants " .. table.concat(want_servers, ", ") .. ")", "stale")
      end
    end
    report.secrets[#report.secrets + 1] = entry
  end

  -- Secrets the site file wants that are not among them.
  if list then
    for _, s in ipairs(want.secrets or {}) do
      if not seen[s.name] then
        local entry = { name = s.name, state = "missing", problems = {}, in_site_file = true,
          registries = s.servers, referenced_by = {}, not_referenced_by = {} }
        local obj, gerr = client:get(k8s.path("/api/v1/namespaces/%s/secrets/%s", ns, s.name))
        local text = "missing"
        if obj then
          entry.state = "unmanaged"
          text = string.format("exists without the label %s=xcsreg: setup.lua leaves it untouched "
            .. "(--adopt takes it over)", secrets.MANAGED_BY)
        elseif gerr.code ~= 404 then
          api_error(report, ns, SECRET_GET, gerr)
          if report.fatal then return report end
          text = nil
        end
        if text then
          entry.problems[1] = text
          report.problems[#report.problems + 1] = string.format("%s: secret/%s: %s", ns, s.name, text)
          report.secrets[#report.secrets + 1] = entry
        end
      end
    end
  end

  local images = ctx.images
  if ctx.workload_images then
    -- the site file's images, then those the namespace's workloads use
    local found, errors = workloads.images(client, ns)
    images = {}
    local seen = {}
    for _, list in ipairs { ctx.images or {}, found } do
      for _, image in ipairs(list) do
        if not seen[image] then seen[image], images[#images + 1] = true, image end
      end
    end
    for _, e in ipairs(errors) do
      report.errors[#report.errors + 1] = e
      report.problems[#report.problems + 1] = e
    end
  end
  if images and #images > 0 then status.images(client, report, ctx, images) end

  -- Pods waiting for an image they cannot pull.
  local pods, perr = pager.list(client, k8s.path("/api/v1/namespaces/%s/pods", ns))
  if not pods then
    api_error(report, ns, PODS_LIST, perr)
    return report
  end
  for _, pod in ipairs(pods.items or {}) do
    for _, stuck in ipairs(stuck_containers(pod, managed)) do
      report.pods[#report.pods + 1] = stuck
      report.problems[#report.problems + 1] = string.format("%s: pod/%s: container %s: %s pulling %s",
        ns, stuck.pod, stuck.container, stuck.reason, stuck.image)
    end
  end
  return report
end

-- Pull readiness (#17): each image of the site file, checked for each
-- wanted ServiceAccount with the credentials the kubelet would offer a pod
-- of it: every Secret the ServiceAccount lists, added to one keyring, as
-- the kubelet's MakeDockerKeyring (kubernetes pkg/credentialprovider/
-- secrets/secrets.go) builds one from a pod's pull secrets; a listed Secret
-- that is missing or holds no .dockerconfigjson is skipped, as there.
-- status.pull_results gives, for each ServiceAccount of report found,
-- { service_account = name, results = pull.check's results for images };
-- status.images adds report.images ({ image, state, secret, registry,
-- message, service_account }) and a problem per image that is not ok.
-- images: the references, checked at once for each ServiceAccount;
-- ctx.pull_options(registry): pull.check's options_for (a registry's site
-- entry's CA). Results may be shared between namespaces (pull_memo): copy
-- before changing one.
function status.pull_results(client, report, images, ctx)
  local ns = report.namespace
  local read = {}
  local function auths_of(name)
    if read[name] == nil then
      local obj = secrets.read(client, ns, name)
      local data = obj and obj.type == secrets.TYPE and obj.data and obj.data[".dockerconfigjson"]
      read[name] = data and dockerconfigjson.decode(data) or false
    end
    return read[name]
  end
  local out = {}
  for _, sa in ipairs(report.service_accounts) do
    if sa.found then
      local kr = keyring.new()
      for _, name in ipairs(sa.image_pull_secrets) do
        local auths = auths_of(name)
        if auths and not kr:add(auths, name) then log.debug("%s: secret/%s: not a usable docker config", ns, name) end
      end
      -- An image offered the same credentials as in a namespace already
      -- checked has that answer: a run over many namespaces asks each
      -- registry once per image and credential, not once per namespace.
      local results, memo = {}, ctx.pull_memo or {}
      ctx.pull_memo = memo
      local function memo_key(image)
        local ref = image_ref.parse(image)
        local parts = { image }
        for _, c in ipairs(ref and kr:lookup(ref.name) or {}) do
          parts[#parts + 1] = table.concat({ c.source or "", c.server, c.username, c.password }, "\0")
        end
        return table.concat(parts, "\1")
      end
      -- the others in one check, each registry with its own CA
      local todo, at, keys = {}, {}, {}
      for i, image in ipairs(images) do
        keys[i] = memo_key(image)
        if memo[keys[i]] then
          results[i] = memo[keys[i]]
        else
          todo[#todo + 1], at[#at + 1] = image, i
        end
      end
      if #todo > 0 then
        local got = pull.check(todo, function(ref) return kr:lookup(ref.name) end,
          { options_for = ctx.pull_options })
        for n, r in ipairs(got) do
          memo[keys[at[n]]] = r
          results[at[n]] = r
        end
      end
      out[#out + 1] = { service_account = sa.name, results = results }
    end
  end
  return out
end

function status.images(client, report, ctx, images)
  local ns = report.namespace
  report.images = report.images or {}
  for _, per_sa in ipairs(status.pull_results(client, report, images, ctx)) do
    local sa = per_sa.service_account
    for _, shared in ipairs(per_sa.results) do
      local r = {}
      for k, v in pairs(shared) do r[k] = v end
      r.service_account = sa
      report.images[#report.images + 1] = r
      if r.state ~= "ok" then
        report.problems[#report.problems + 1] = string.format("%s: image %s: %s (serviceaccount/%s%s): %s", ns,
          r.image, r.state, sa, r.secret and ", secret/" .. r.secret or "", r.message or "")
      end
    end
  end
end

-- What the plan wants of each namespace of list: the ServiceAccounts, and
-- each Secret's name and registry servers (secrets nil without a site
-- file), by namespace | nil, message (a hook failed).
function status.wanted(client, plan, list)
  local by_ns, cluster = {}, hooks.cluster(client)
  for _, ns in ipairs(list) do
    local want = { service_accounts = plan.service_accounts }
    if plan.secrets then
      local ns_secrets, err = config.secrets_for(plan, ns, cluster)
      if not ns_secrets then return nil, err end
      want.secrets = {}
      for i, s in ipairs(ns_secrets) do
        local servers = {}
        for j, r in ipairs(s.registries) do servers[j] = r.server end
        want.secrets[i] = { name = s.name, servers = servers }
      end
    end
    by_ns[ns] = want
  end
  return by_ns
end

-- The reports of the namespaces of list, one after the other; an error no
-- namespace would escape stops the checks (and says which were not made).
function status.check(client, list, wanted, ctx)
  local reports = {}
  for i, ns in ipairs(list) do
    -- an answer of a shape nothing checked for fails its namespace only
    local called, report = pcall(status.namespace, client, ns, wanted[ns], ctx)
    if not called then
      local msg = string.format("%s: stopped by an unexpected answer from the API server: %s", ns, tostring(report))
      report = { namespace = ns, secrets = {}, service_accounts = {}, pods = {}, errors = { msg }, problems = { msg } }
    end
    reports[#reports + 1] = report
    for _, e in ipairs(report.errors) do log.error("%s", e) end
    if report.fatal then
      if i < #list then
        log.error("stopped: %d namespace(s) not checked (%s)", #list - i, table.concat(list, ", ", i + 1))
      end
      break
    end
  end
  return reports
end

-- Text from the cluster (annotations, pod messages, server errors) made
-- safe for a terminal: each control character as \xNN, so that no escape
-- sequence in an annotation reaches the admin's terminal. `keep` spares
-- the newlines of our own layout. JSON output stays exact.
local function printable(text, keep_newlines)
  local function escape(c) return string.format("\\x%02x", c:byte()) end
  if keep_newlines then return (text:gsub("[%z\1-\9\11-\31\127]", escape)) end
  return (text:gsub("%c", escape))
end
status.printable = printable

-- Columns padded to their widest cell, two spaces apart, as kubectl prints.
function status.table_text(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      cell = printable(cell)
      row[i] = cell
      widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i < #row and cell .. string.rep(" ", widths[i] - (utf8.len(cell) or #cell)) or cell
    end
    lines[#lines + 1] = table.concat(cells, "  ")
  end
  return table.concat(lines, "\n") .. "\n"
end

local function or_none(list)
  if #list == 0 then return "<none>" end
  return table.concat(list, ",")
end

-- The problems of all reports, in order.
function status.problems(reports)
  local all = {}
  for _, r in ipairs(reports) do table.move(r.problems, 1, #r.problems, #all + 1, all) end
  return all
end

-- kubectl-like text: a table of Secrets, one of stuck pods, the problems
-- that fit neither, and a closing line. quiet: only what is wrong.
function status.text(reports, quiet)
  if #reports == 0 then return "" end -- a namespace selection that found none: warned about already
  local out = {}
  local secret_rows = { { "NAMESPACE", "SECRET", "REGISTRIES", "ROTATED", "EXPIRY", "STATUS" } }
  local pod_rows = { { "NAMESPACE", "POD", "CONTAINER", "REASON", "IMAGE", "PULL SECRET", "MESSAGE" } }
  local image_rows = { { "NAMESPACE", "SERVICEACCOUNT", "IMAGE", "REGISTRY", "SECRET", "PULL", "MESSAGE" } }
  local counted = {}
  for _, r in ipairs(reports) do
    for _, s in ipairs(r.secrets) do
      if not quiet or #s.problems > 0 then
        local state = #s.problems > 0 and table.concat(s.problems, "; ") or "ok"
        if s.in_site_file == false and #s.problems == 0 then state = "ok (not in the site file)" end
        local absent = s.state == "missing" or s.state == "unmanaged"
        secret_rows[#secret_rows + 1] = { r.namespace, s.name, or_none(s.registries),
          absent and "<none>" or s.rotated_at or "<unknown>", absent and "<none>" or s.expiry, state }
      end
      counted[string.format("%s: secret/%s: ", r.namespace, s.name)] = true
    end
    for _, p in ipairs(r.pods) do
      local pull = #p.pull_secret > 0 and table.concat(p.pull_secret, ",") or "<none>"
      pod_rows[#pod_rows + 1] = { r.namespace, p.pod, p.container, p.reason, p.image, pull,
        (p.message:gsub("%s+", " ")) }
      counted[string.format("%s: pod/%s: ", r.namespace, p.pod)] = true
    end
    for _, i in ipairs(r.images or {}) do
      if not quiet or i.state ~= "ok" then
        image_rows[#image_rows + 1] = { r.namespace, i.service_account, i.image, i.registry or "<invalid>",
          i.secret or "<none>", i.state, ((i.message or ""):gsub("%s+", " ")) }
      end
      counted[string.format("%s: image %s: ", r.namespace, i.image)] = true
    end
  end
  if #secret_rows > 1 then out[#out + 1] = status.table_text(secret_rows) end
  if #pod_rows > 1 then
    if #out > 0 then out[#out + 1] = "\n" end
    out[#out + 1] = status.table_text(pod_rows)
  end
  if #image_rows > 1 then
    if #out > 0 then out[#out + 1] = "\n" end
    out[#out + 1] = status.table_text(image_rows)
  end
  -- Problems not shown in a table: ServiceAccounts not found, reads refused.
  local others = {}
  for _, line in ipairs(status.problems(reports)) do
    local key = line:match("^[^:]+: secret/[^:]+: ") or line:match("^[^:]+: pod/[^:]+: ")
      or line:match("^[^:]+: image %S+: ")
    if not (key and counted[key]) then others[#others + 1] = line .. "\n" end
  end
  if #others > 0 then
    if #out > 0 then out[#out + 1] = "\n" end
    out[#out + 1] = table.concat(others)
  end
  local hints = {}
  for _, r in ipairs(reports) do
    for _, p in ipairs(r.pods) do
      if #p.pull_secret == 0 and #p.would_pull > 0 then
        hints[#hints + 1] = string.format("hint: %s: pod/%s does not list secret/%s for %s: it was made before "
          .. "its ServiceAccount listed it; delete the pod so that its Job makes a new one\n",
          r.namespace, p.pod, table.concat(p.would_pull, ", secret/"), p.registry)
      elseif #p.pull_secret == 0 then
        hints[#hints + 1] = string.format("hint: %s: pod/%s: no managed Secret holds a credential for %s\n",
          r.namespace, p.pod, p.registry)
      end
    end
  end
  if #hints > 0 then
    if #out > 0 then out[#out + 1] = "\n" end
    out[#out + 1] = table.concat(hints)
  end
  local total = #status.problems(reports)
  local secrets, pods = 0, 0
  for _, r in ipairs(reports) do secrets, pods = secrets + #r.secrets, pods + #r.pods end
  if total == 0 and secrets == 0 and not quiet then
    local names = {}
    for i, r in ipairs(reports) do names[i] = r.namespace end
    out[#out + 1] = string.format("No managed Secrets found in namespace%s %s.\n", #names == 1 and "" or "s",
      table.concat(names, ", "))
  elseif total > 0 or not quiet then
    local summary = string.format("%d Secret%s in %d namespace%s", secrets, secrets == 1 and "" or "s",
      #reports, #reports == 1 and "" or "s")
    local images, failing = 0, 0
    for _, r in ipairs(reports) do
      for _, i in ipairs(r.images or {}) do
        images = images + 1
        if i.state ~= "ok" then failing = failing + 1 end
      end
    end
    if images > 0 then
      summary = summary .. string.format(", %d of %d image check%s ok", images - failing, images, images == 1 and "" or "s")
    end
    if total > 0 then
      summary = string.format("%d problem%s (%s, %d pod%s stuck)", total, total == 1 and "" or "s", summary,
        pods, pods == 1 and "" or "s")
    else
      summary = "all well (" .. summary .. ")"
    end
    out[#out + 1] = (#out > 0 and "\n" or "") .. summary .. "\n"
  end
  return printable(table.concat(out), true)
end

local function array(t) return json.array(t or {}) end

-- The machine-readable document of `-o json`.
function status.document(reports, ctx)
  local namespaces = {}
  for _, r in ipairs(reports) do
    local secrets, sas, pods = {}, {}, {}
    for _, s in ipairs(r.secrets) do
      secrets[#secrets + 1] = {
        name = s.name, state = s.state, registries = array(s.registries),
        inSiteFile = s.in_site_file == nil and json.null or s.in_site_file,
        rotatedAt = s.rotated_at or json.null, expiresAt = s.expires_at or json.null,
        expiresInSeconds = s.expires_in or json.null, warnWithinSeconds = s.warn_within or json.null,
        referencedBy = array(s.referenced_by), notReferencedBy = array(s.not_referenced_by),
        problems = array(s.problems),
      }
    end
    for _, sa in ipairs(r.service_accounts) do
      sas[#sas + 1] = { name = sa.name, found = sa.found, imagePullSecrets = array(sa.image_pull_secrets) }
    end
    for _, p in ipairs(r.pods) do
      pods[#pods + 1] = {
        name = p.pod, container = p.container, reason = p.reason, image = p.image, message = p.message,
        registry = p.registry, serviceAccountName = p.service_account or json.null,
        imagePullSecrets = array(p.image_pull_secrets), pullSecretsForRegistry = array(p.pull_secret),
        managedSecretsForRegistry = array(p.would_pull),
      }
    end
    namespaces[#namespaces + 1] = {
      name = r.namespace, secrets = array(secrets), serviceAccounts = array(sas), stuckPods = array(pods),
      errors = array(r.errors), problems = array(r.problems),
    }
  end
  -- images: top-level, one object per image, namespace and ServiceAccount
  local images = {}
  for _, r in ipairs(reports) do
    for _, i in ipairs(r.images or {}) do
      images[#images + 1] = { image = i.image, state = i.state, secret = i.secret or json.null,
        message = i.message or json.null, registry = i.registry or json.null, namespace = r.namespace,
        serviceAccount = i.service_account, digest = i.digest or json.null }
    end
  end
  local problems = status.problems(reports)
  return {
    apiVersion = "xcsreg.io/v1", kind = "Status",
    time = time.format(ctx.now), warnWithinSeconds = ctx.warn_within or json.null,
    ok = #problems == 0, problems = array(problems), namespaces = array(namespaces), images = array(images),
  }
end

return status
