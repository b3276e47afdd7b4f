-- xcsreg.xnat_status: status.lua's preflight of XNAT's commands: will the
-- image of every installed command pull, before a user launches a job?
-- Facts: ../shared/reference/xnat.md ("ref §N").
--
--   xnat_status.check(k8s_client, cfg, reports, ctx) -> info
--   xnat_status.text(info, quiet) -> text
--   xnat_status.document(info) -> the `xnat` object of status.lua -o json
--
-- Every command's image counts, setup and wrapup commands included, and
-- those of disabled wrappers too: enablement gates the UI and automation,
-- not a direct launch (ref §3 "Images to cover"); whether each command has a
-- wrapper enabled for the site, and in which projects, is reported beside.
-- The pull check is xcsreg.status's (status.pull_results, xcsreg.pull):
-- per namespace and wanted ServiceAccount, with the Secrets it lists, as
-- the kubelet offers them to a job pod (XNAT never sets a pod's
-- serviceAccountName nor imagePullSecrets, ref §1, so its pods run as
-- `default`). On Docker and Swarm backends each row also names the hub
-- whose url equals the image's registry host (ref §5), or none.
-- info: { url, backend, commands = { row... }, problems = { line... },
-- error = message or nil }; a row: the command (xnat.command_images's
-- entry) with namespace, service_account, state, secret, registry,
-- message, digest, hub.
local hubs = require "xcsreg.hubs"
local image_ref = require "xcsreg.image_ref"
local json = require "json"
local status = require "xcsreg.status"
local xnat = require "xcsreg.xnat"

local xnat_status = {}

local function fail(info, msg)
  info.error = msg
  info.problems[#info.problems + 1] = msg
  return info
end

function xnat_status.check(client, cfg, reports, ctx)
  local info = { url = cfg.url, commands = {}, problems = {} }
  local c <close>, err = xnat.client(cfg)
  if not c then return fail(info, "xnat: " .. err) end
  local backend, server = c:backend()
  if not backend then return fail(info, server) end
  info.backend = backend
  local commands, cerr = c:commands()
  if not commands then return fail(info, cerr) end
  local entries = xnat.command_images(commands)
  local hub_of = {}
  if backend == "docker" or backend == "swarm" then
    local list, herr = c:json("GET", "/xapi/docker/hubs", { what = "list the image hubs (GET /xapi/docker/hubs)" })
    if not list then return fail(info, herr) end
    for _, h in ipairs(json.kind(list) == "array" and list or {}) do
      if type(h) == "table" and type(h.url) == "string" then hub_of[h.url] = h.name or h.url end
    end
  end
  local images = {}
  for i, e in ipairs(entries) do images[i] = e.image end
  for _, report in ipairs(reports) do
    for _, per_sa in ipairs(#images > 0 and status.pull_results(client, report, images, ctx) or {}) do
      for i, r in ipairs(per_sa.results) do
        local e = entries[i]
        local row = setmetatable({ namespace = report.namespace, service_account = per_sa.service_account,
          state = r.state, secret = r.secret, registry = r.registry, message = r.message, digest = r.digest }, { __index = e })
        local ref = image_ref.parse(e.image)
        if ref and next(hub_of) then
          local url = hubs.url(ref.registry)
          row.hub = hub_of[url] and url
        end
        info.commands[#info.commands + 1] = row
        if r.state ~= "ok" then
          info.problems[#info.problems + 1] = string.format("command %s: image %s: %s (%s: serviceaccount/%s%s): %s",
            e.command, e.image, r.state, report.namespace, per_sa.service_account,
            r.secret and ", secret/" .. r.secret or "", r.message or "")
        end
      end
    end
  end
  return info
end

local function enabled_text(e)
  if e.enabled == nil then return "?" end
  if not e.enabled then return "no" end
  return #e.projects > 0 and "yes (" .. table.concat(e.projects, ",") .. ")" or "yes"
end

-- The XNAT section of status.lua's text: a line on XNAT and its backend, a
-- table of the commands' images, each problem (quiet: only what is wrong).
function xnat_status.text(info, quiet)
  local out = {}
  if info.error then return status.printable(info.error) .. "\n" end
  local rows = { { "COMMAND", "TYPE", "ENABLED", "IMAGE", "REGISTRY", "SECRET", "PULL", "MESSAGE" } }
  local show_hub = info.backend == "docker" or info.backend == "swarm"
  if show_hub then table.insert(rows[1], 7, "HUB") end
  local failing = 0
  for _, r in ipairs(info.commands) do
    if r.state ~= "ok" then failing = failing + 1 end
    if not quiet or r.state ~= "ok" then
      local row = { r.command, r.type, enabled_text(r), r.image, r.registry or "<invalid>", r.secret or "<none>",
                    r.state, ((r.message or ""):gsub("%s+", " ")) }
      if show_hub then table.insert(row, 7, r.hub or "<none>") end
      rows[#rows + 1] = row
    end
  end
  if not quiet or failing > 0 then
    out[#out + 1] = string.format("XNAT %s: backend %s, %d of %d command image check%s ok\n", info.url, info.backend,
      #info.commands - failing, #info.commands, #info.commands == 1 and "" or "s")
  end
  if #rows > 1 then out[#out + 1] = status.table_text(rows) end
  for _, p in ipairs(info.problems) do out[#out + 1] = status.printable(p) .. "\n" end
  return table.concat(out)
end

local function or_null(v) if v == nil then return json.null end return v end

function xnat_status.document(info)
  local commands = {}
  for _, r in ipairs(info.commands) do
    local wrappers = {}
    for _, w in ipairs(r.wrappers or {}) do
      wrappers[#wrappers + 1] = { id = or_null(w.id), name = w.name, enabledForSite = or_null(w.enabled),
        projects = w.projects and json.array(w.projects) or json.null }
    end
    commands[#commands + 1] = {
      command = r.command, commandId = or_null(r.id), type = r.type, version = or_null(r.version), image = r.image,
      setupOf = or_null(r.via), enabledForSite = or_null(r.enabled), projects = json.array(r.projects or {}),
      wrappers = json.array(wrappers), namespace = r.namespace, serviceAccount = r.service_account, state = r.state,
      secret = or_null(r.secret), registry = or_null(r.registry), message = or_null(r.message),
      digest = or_null(r.digest), hub = or_null(r.hub),
    }
  end
  return { url = info.url, backend = or_null(info.backend), error = or_null(info.error), ok = #info.problems == 0,
           commands = json.array(commands), problems = json.array(info.problems) }
end

return xnat_status
