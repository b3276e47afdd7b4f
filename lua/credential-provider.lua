-- credential-provider.lua: a kubelet image credential provider plugin, from the site file
--
-- Node-level credentials: the kubelet runs this (a CredentialProviderConfig
-- provider whose args are `run credential-provider.lua --config FILE`) for
-- each image it pulls that matches the provider's matchImages, writes one
-- CredentialProviderRequest (credentialprovider.kubelet.k8s.io/v1) on stdin
-- and reads one CredentialProviderResponse from stdout: the credentials of
-- the site file's registries that serve the image, as setup.lua would put
-- them in Secrets, but with no Secret in the cluster. Contacts no API
-- server; never prints a credential on stderr. The protocol and the rules
-- are xcsreg.credprovider's (`xcsreg cat xcsreg/credprovider.lua`); this
-- script is its flags, stdin and stdout.
local config = require "xcsreg.config"
local credcache = require "xcsreg.credcache"
local credprovider = require "xcsreg.credprovider"
local json = require "json"
local log = require "log"
local script = require "xcsreg.script"
local site = require "site"
local time = require "xcsreg.time"

local flags = script.flags {
  "config",
  { long = "cache-key-type", arg = "TYPE", help = "Registry (default), Image or Global: what the kubelet caches "
    .. "an answer for" },
  { long = "cache-duration", arg = "DURATION", help = "how long the kubelet may keep an answer (e.g. 5m, 1h; 0: "
    .. "not at all); a minted credential's expiry shortens it (default: its expiry, else the config's "
    .. "defaultCacheDuration)" },
  { long = "expiry-margin", arg = "DURATION", help = "the part of a credential's lifetime not handed out (default "
    .. time.format_duration(credprovider.MARGIN) .. ")" },
  { long = "cache-dir", arg = "DIR", help = "where minted ECR/GCP tokens are kept (default " .. credcache.default_dir()
    .. "; none: mint every time)" },
  { long = "timeout", arg = "SECONDS", help = "give up after this long, below the kubelet's 60 (default "
    .. credprovider.TIMEOUT .. ")" },
  "quiet", "verbose", "help",
}

local function usage(flags_help)
  return [[
usage: xcsreg run credential-provider.lua --config FILE [flags] < request.json

A kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1):
reads one CredentialProviderRequest on stdin, writes one
CredentialProviderResponse on stdout with the credentials of the site file's
registries that serve the image ("auth": {} when none does). The kubelet runs
it from a CredentialProviderConfig (scripts/kubelet/credential-provider-config.yaml):
  providers: [{ name: xcsreg, args: [run, credential-provider.lua, --config, FILE], ... }]

Flags:
]] .. flags_help .. [[


Static passwords and credential_helper / docker_config are read per call;
ecr and gcp tokens are minted once and kept in --cache-dir (mode 0600) until
half their lifetime is past. With KEP-4412's serviceAccountToken, an ecr
entry naming ecr.role_arn or ecr.role_annotation (a ServiceAccount
annotation holding the role) exchanges the pod's token with STS for that
role (README.md, "Node-level credentials").

Exit status: 0 answered; 1 no credential could be had; 2 a bad request,
flag or site file. On failure nothing is written to stdout.
]]
end

-- Seconds of a duration flag, "0" allowed when zero_ok: seconds | nil, message.
local function duration(opts, name, default, zero_ok)
  local v = opts[name]
  if v == nil then return default end
  if zero_ok and (v == "0" or v == "0s") then return 0 end
  local s, err = time.parse_duration(math.tointeger(tonumber(v)) or v)
  if not s then return nil, "--" .. name .. ": " .. err end
  return s
end

local function run(opts)
  local cache_key_type = opts["cache-key-type"] or "Registry"
  if not credprovider.CACHE_KEY_TYPES[cache_key_type] then
    return script.EXIT.USAGE, string.format('--cache-key-type: must be "Image", "Registry" or "Global", not "%s"',
      cache_key_type)
  end
  local cache_duration, derr = duration(opts, "cache-duration", nil, true)
  if derr then return script.EXIT.USAGE, derr end
  local margin, merr = duration(opts, "expiry-margin", credprovider.MARGIN, true)
  if merr then return script.EXIT.USAGE, merr end
  local timeout = math.tointeger(tonumber(opts.timeout or credprovider.TIMEOUT))
  if not timeout or timeout < 1 or timeout > 600 then
    return script.EXIT.USAGE, string.format('--timeout: must be a whole number of seconds from 1 to 600, not "%s"',
      opts.timeout)
  end
  local path = script.site_file(opts)
  if not path then return script.EXIT.USAGE, "no site file: give --config FILE (or $XCSREG_CONFIG)" end

  local text = io.read(credprovider.MAX_REQUEST + 1) or ""
  if #text > credprovider.MAX_REQUEST then
    log.error("the request is larger than %d bytes", credprovider.MAX_REQUEST)
    return script.EXIT.USAGE
  end
  local req, rerr = credprovider.decode_request(text)
  if not req then
    log.error("%s", rerr)
    return script.EXIT.USAGE
  end
  local plan, perr = config.load_file(path, { credentials = false })
  if not plan then
    log.error("%s", perr)
    return script.EXIT.USAGE
  end
  local cache, cerr = credcache.open(opts["cache-dir"] or credcache.default_dir())
  if cache == nil then log.warn("no credential cache: %s", cerr) end

  -- Everything that may wait on a source, bounded (site.run: the process
  -- ends with exit 2 past the timeout, having written nothing on stdout).
  local now = time.now()
  local ok, response, err = site.run(credprovider.answer, {
    instructions = math.maxinteger >> 33, seconds = timeout, what = "credential-provider.lua" },
    plan, req, { now = now, env = os.getenv, cache = cache or false, margin = margin,
                 cache_key_type = cache_key_type, cache_duration = cache_duration, lock_timeout = timeout / 2 })
  if not ok then error(response, 0) end
  if not response then
    log.error("%s: %s", req.image, err)
    return script.EXIT.FAILED
  end
  io.write(json.encode(response), "\n")
  return script.EXIT.OK
end

return script.main { name = "credential-provider.lua", flags = flags, usage = usage, run = run }(...)
