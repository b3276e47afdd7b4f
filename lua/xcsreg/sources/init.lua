-- xcsreg.sources: registry credentials minted at run time, from the key of a
-- site-file entry that names their source:
--   credential_helper = "NAME"        docker-credential-NAME (xcsreg.sources.helper)
--   docker_config = "PATH"            a docker config.json (xcsreg.sources.docker_config)
--   ecr = { region=, registry_id=, role_arn=, role_annotation= }
--                                     AWS ECR GetAuthorizationToken (xcsreg.sources.ecr)
--   gcp = { service_account= }        the GCE/GKE metadata server (xcsreg.sources.gcp)
-- sources.get returns { username, password, expires_at (epoch seconds or
-- nil), source }, or nil and a message naming the source. Each credential is
-- minted once per run: entries with the same source settings and server get
-- the same answer (a failure too), however many namespaces use them.
local json = require "json"

local sources = {}

-- The settings each source takes: the Lua type of the key's value, or for a
-- table the type of each of its fields (all optional).
local settings = {
  credential_helper = "string",
  docker_config = "string",
  ecr = { region = "string", registry_id = "string", role_arn = "string", role_annotation = "string" },
  gcp = { service_account = "string" },
}
local modules = {
  credential_helper = "xcsreg.sources.helper", docker_config = "xcsreg.sources.docker_config",
  ecr = "xcsreg.sources.ecr", gcp = "xcsreg.sources.gcp",
}
sources.keys = { "credential_helper", "docker_config", "ecr", "gcp" }

local function named(entry)
  local keys = {}
  for _, key in ipairs(sources.keys) do
    if entry[key] ~= nil then keys[#keys + 1] = key end
  end
  return keys
end

-- The source key entry uses, or nil when it names none. Raises when it names several.
function sources.kind(entry)
  local keys = named(entry)
  if #keys > 1 then error("a registry entry names two credential sources: " .. table.concat(keys, " and "), 2) end
  return keys[1]
end

-- Checks the source settings of entry: true (also when it names no source),
-- or nil and a message naming the field ("ecr.regoin: unknown setting").
function sources.check(entry)
  local keys = named(entry)
  if #keys > 1 then return nil, "give one credential source, not " .. table.concat(keys, " and ") end
  local key = keys[1]
  if not key then return true end
  local want, value = settings[key], entry[key]
  if type(want) == "string" then
    if type(value) ~= want or value == "" then return nil, key .. ": must be a non-empty " .. want end
    return true
  end
  if type(value) ~= "table" then return nil, key .. ": must be a table" end
  for field, v in pairs(value) do
    if not want[field] then return nil, key .. "." .. tostring(field) .. ": unknown setting" end
    if type(v) ~= want[field] or v == "" then return nil, key .. "." .. field .. ": must be a non-empty " .. want[field] end
  end
  return true
end

local minted = {}

-- ctx: { now = epoch seconds, env = function(name), web_identity = { role,
-- token, session } (ecr only: credential-provider.lua's KEP-4412 mode) }
-- (all optional; the clock and the process environment by default).
function sources.get(entry, ctx)
  local key = sources.kind(entry) or error("the registry entry names no credential source", 2)
  local wi = ctx and ctx.web_identity
  ctx = { now = ctx and ctx.now or os.time(), env = ctx and ctx.env or os.getenv, web_identity = wi }
  local id = key .. " " .. json.encode(entry[key]) .. " " .. tostring(entry.server)
    .. (wi and " role " .. wi.role or "")
  if not minted[id] then
    minted[id] = table.pack(require(modules[key]).get(entry, ctx))
  end
  return minted[id][1], minted[id][2]
end

-- Forgets what was minted, as a new run would (for tests).
function sources.reset() minted = {} end

return sources
