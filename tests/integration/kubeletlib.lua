-- kubeletlib: the kubelet's side of the image credential provider protocol,
-- for the tests of credential-provider.lua. No kubelet binary is packaged
-- for Debian (only kubectl, in kubernetes-client), so this plays it, from
-- kubernetes pkg/credentialprovider/plugin/plugin.go (execPlugin.ExecPlugin,
-- pluginProvider.provide) and config.go (validateCredentialProviderConfig),
-- and staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go:
--   * the request is the v1 CredentialProviderRequest as Go encodes it:
--     kind, apiVersion, image, then serviceAccountToken and
--     serviceAccountAnnotations only when set (omitempty);
--   * the plugin is `BINDIR/NAME args...`, with the provider's env appended
--     to the kubelet's own environment (mergeEnvVars), killed after 1 minute;
--   * a non-zero exit is a failure (stderr is logged); otherwise stdout's
--     apiVersion must be the provider's, and it must decode as a
--     CredentialProviderResponse. Decoded here strictly: an unknown field, a
--     field of the wrong type, a cacheKeyType other than Image, Registry or
--     Global, a cacheDuration Go's time.ParseDuration refuses, an auth key
--     ParseSchemelessURL refuses, or a missing serviceAccountTokenCacheType
--     when a token was sent, and the answer is refused;
--   * the credentials used for an image are the answer's auth put in a
--     keyring and looked up (xcsreg.keyring, keyring.go's rules).
local json = require "json"
local keyring = require "xcsreg.keyring"
local proc = require "proc"
local yaml = require "yaml"

local M = {}

M.API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
M.TIMEOUT = 60

local UNITS = { ns = 1e-9, us = 1e-6, ["µs"] = 1e-6, ms = 1e-3, s = 1, m = 60, h = 3600 }

-- Go's time.ParseDuration: seconds (a float) | nil, message.
function M.parse_go_duration(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if s == "0" then return 0 end
  local sign, rest = s:match("^([-+]?)(.+)$")
  local total, pos = 0, 1
  if rest == "" then return nil, "invalid duration " .. s end
  while pos <= #rest do
    local num, unit, after = rest:match("^(%d*%.?%d*)([a-zµ]+)()", pos)
    if not num or num == "" or num == "." or not UNITS[unit] then return nil, "invalid duration " .. s end
    total, pos = total + tonumber(num) * UNITS[unit], after
  end
  return sign == "-" and -total or total
end

-- The provider named name of a CredentialProviderConfig file, checked as
-- validateCredentialProviderConfig checks it: provider | nil, message.
function M.provider(path, name)
  local f = assert(io.open(path))
  local doc = assert(yaml.decode(f:read("a")))
  f:close()
  if doc.apiVersion ~= "kubelet.config.k8s.io/v1" or doc.kind ~= "CredentialProviderConfig" then
    return nil, "not a kubelet.config.k8s.io/v1 CredentialProviderConfig"
  end
  if type(doc.providers) ~= "table" or #doc.providers == 0 then return nil, "providers: at least 1 item is required" end
  local seen, found = {}, nil
  for _, p in ipairs(doc.providers) do
    if type(p.name) ~= "string" or p.name == "" or p.name:find("[/ ]") or p.name == "." or p.name == ".." then
      return nil, "providers.name: invalid " .. tostring(p.name)
    end
    if seen[p.name] then return nil, "providers.name: duplicate " .. p.name end
    seen[p.name] = true
    if p.apiVersion ~= M.API_VERSION and p.apiVersion ~= "credentialprovider.kubelet.k8s.io/v1beta1"
      and p.apiVersion ~= "credentialprovider.kubelet.k8s.io/v1alpha1" then
      return nil, "providers.apiVersion: not supported: " .. tostring(p.apiVersion)
    end
    if type(p.matchImages) ~= "table" or #p.matchImages == 0 then
      return nil, "providers.matchImages: at least 1 item in matchImages is required"
    end
    for _, m in ipairs(p.matchImages) do
      if type(m) ~= "string" or not keyring.key(m) then
        return nil, "providers.matchImages: match image is invalid: " .. tostring(m)
      end
    end
    local d = M.parse_go_duration(p.defaultCacheDuration)
    if not d or d < 0 then return nil, "providers.defaultCacheDuration: required, >= 0" end
    local ta = p.tokenAttributes
    if ta ~= nil then
      if type(ta.serviceAccountTokenAudience) ~= "string" or ta.serviceAccountTokenAudience == "" then
        return nil, "providers.tokenAttributes.serviceAccountTokenAudience: Required value"
      end
      if type(ta.requireServiceAccount) ~= "boolean" then
        return nil, "providers.tokenAttributes.requireServiceAccount: Required value"
      end
      if p.apiVersion ~= M.API_VERSION then return nil, "tokenAttributes is only supported for " .. M.API_VERSION end
      if not ta.requireServiceAccount and ta.requiredServiceAccountAnnotationKeys then
        return nil, "requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set"
      end
      for _, list in ipairs { ta.requiredServiceAccountAnnotationKeys or {}, ta.optionalServiceAccountAnnotationKeys or {} } do
        for _, k in ipairs(list) do
          local prefix, n = k:lower():match("^(.*)/(.*)$")
          n = n or k:lower()
          if not n:match("^[%w][%w%-_.]*$") or not n:match("[%w]$") or #n > 63
            or (prefix and not prefix:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$")) then
            return nil, "tokenAttributes: annotation key is not a qualified name: " .. k
          end
        end
      end
    end
    for _, e in ipairs(p.env or {}) do
      if type(e.name) ~= "string" or type(e.value) ~= "string" then return nil, "providers.env: name and value" end
    end
    if p.name == name then found = p end
  end
  return found or nil, found == nil and "no provider " .. tostring(name) or nil
end

-- Whether the kubelet runs the provider for image (isImageAllowed).
function M.allowed(provider, image)
  for _, m in ipairs(provider.matchImages) do
    if keyring.matches(m, image) then return true end
  end
  return false
end

-- The request's JSON, as Go's encoder writes the v1 type (field order, omitempty).
function M.request(image, token, annotations)
  local parts = { '"kind":"CredentialProviderRequest"', '"apiVersion":' .. json.encode(M.API_VERSION),
                  '"image":' .. json.encode(image) }
  if token and token ~= "" then parts[#parts + 1] = '"serviceAccountToken":' .. json.encode(token) end
  if annotations and next(annotations) then
    parts[#parts + 1] = '"serviceAccountAnnotations":' .. json.encode(annotations)
  end
  return "{" .. table.concat(parts, ",") .. "}\n"
end

local RESPONSE_FIELDS = { apiVersion = "string", kind = "string", cacheKeyType = "string", cacheDuration = "string",
                          serviceAccountTokenCacheType = "string", auth = "table" }

-- The response decoded strictly: response (with .duration, seconds or nil) | nil, why refused.
function M.decode_response(text, api_version, token_sent)
  local doc, err = json.decode(text)
  if type(doc) ~= "table" or json.kind(doc) ~= "object" then return nil, "not a JSON object: " .. tostring(err) end
  if doc.apiVersion ~= api_version then
    return nil, "apiVersion from credential plugin response did not match expected apiVersion"
  end
  if doc.kind ~= "CredentialProviderResponse" then return nil, "unexpected Kind: " .. tostring(doc.kind) end
  for k, v in pairs(doc) do
    if not RESPONSE_FIELDS[k] then return nil, "unknown field " .. tostring(k) end
    if type(v) ~= RESPONSE_FIELDS[k] and v ~= json.null then return nil, "field " .. k .. " has the wrong type" end
  end
  if doc.cacheKeyType ~= "Image" and doc.cacheKeyType ~= "Registry" and doc.cacheKeyType ~= "Global" then
    return nil, "did not return a valid cacheKeyType: " .. tostring(doc.cacheKeyType)
  end
  if doc.cacheDuration ~= nil then
    doc.duration, err = M.parse_go_duration(doc.cacheDuration)
    if not doc.duration then return nil, "cacheDuration: " .. err end
  end
  local satct = doc.serviceAccountTokenCacheType
  if token_sent and satct ~= "ServiceAccount" and satct ~= "Pod" then
    return nil, "serviceAccountTokenCacheType is required when a serviceAccountToken is sent"
  end
  if satct ~= nil and satct ~= "" and satct ~= "ServiceAccount" and satct ~= "Pod" then
    return nil, "invalid serviceAccountTokenCacheType " .. satct
  end
  if doc.auth ~= nil then
    if json.kind(doc.auth) ~= "object" then return nil, "auth is not an object" end
    for key, a in pairs(doc.auth) do
      if not keyring.key(key) then return nil, "auth key is not a match image: " .. key end
      if type(a) ~= "table" or json.kind(a) ~= "object" then return nil, "auth[" .. key .. "] is not an object" end
      for f, v in pairs(a) do
        if (f ~= "username" and f ~= "password") or type(v) ~= "string" then
          return nil, "auth[" .. key .. "]: unknown or mistyped field " .. tostring(f)
        end
      end
    end
  end
  return doc
end

-- Runs the provider for image as the kubelet does. opts: bin (the binary
-- NAME stands for), env (the kubelet's environment: proc.run's env),
-- token, annotations, stdin (a request of one's own instead).
-- Returns { status, stdout, stderr, response, refused, seconds }.
function M.exec(provider, image, opts)
  opts = opts or {}
  local argv = { opts.bin or provider.name }
  for _, a in ipairs(provider.args or {}) do argv[#argv + 1] = a end
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = v end
  for _, e in ipairs(provider.env or {}) do env[e.name] = e.value end -- appended last: they win
  local start = M.clock()
  local status, out, err = proc.run { argv = argv, env = env, stdin = opts.stdin or M.request(image, opts.token,
    opts.annotations), timeout = M.TIMEOUT }
  local r = { status = status, stdout = out, stderr = err, seconds = M.clock() - start }
  if status == 0 then
    r.response, r.refused = M.decode_response(out, provider.apiVersion, opts.token and opts.token ~= "")
  end
  return r
end

-- The credentials the kubelet tries for image with a response, in order.
function M.lookup(response, image)
  local kr = keyring.new()
  if response.auth then assert(kr:add(response.auth, "plugin")) end
  return kr:lookup(image)
end

-- Wall-clock seconds (monotonic enough for a test), from /proc/uptime.
function M.clock()
  local f = io.open("/proc/uptime")
  local up = f and tonumber(f:read("a"):match("^[%d.]+"))
  if f then f:close() end
  return up or os.time()
end

return M
