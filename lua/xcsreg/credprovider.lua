-- xcsreg.credprovider: the kubelet's image credential provider protocol
-- (credentialprovider.kubelet.k8s.io/v1), answered from a site file's
-- registries: credential-provider.lua is its flags and its stdin/stdout.
--
-- The contract, from kubernetes
-- staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go and
-- the runner, pkg/credentialprovider/plugin/plugin.go (execPlugin.ExecPlugin):
--  * the kubelet runs `NAME args...` with the CredentialProviderConfig's env
--    added to its own, writes one CredentialProviderRequest
--    { apiVersion, kind, image, serviceAccountToken?, serviceAccountAnnotations? }
--    on stdin, and kills the plugin after 1 minute (a catch-all
--    context.WithTimeout); on a non-zero exit it logs stderr and uses no
--    credential from the plugin for that pull;
--  * it reads the GroupVersionKind of stdout first (json.DefaultMetaFactory.Interpret)
--    and refuses an apiVersion other than the configured one, then decodes
--    a CredentialProviderResponse (codecs.UniversalDecoder) of
--    { apiVersion, kind, cacheKeyType, cacheDuration?, serviceAccountTokenCacheType?, auth? }:
--    cacheKeyType "Image" (the image as sent), "Registry" (parseRegistry:
--    the image up to its first "/") or "Global"; anything else and the
--    answer is not used. cacheDuration is a metav1.Duration (a Go
--    time.ParseDuration string): absent, the config's defaultCacheDuration;
--    "0s", not cached. serviceAccountTokenCacheType ("ServiceAccount" or
--    "Pod") is required when the request carried a serviceAccountToken,
--    else the answer is not used. auth maps a match-image key (host with
--    globs, port, path prefix, as keyring.go's URLsMatchStr reads it) to
--    AuthConfig { username, password }; the kubelet puts them in a keyring
--    and looks the image up there (xcsreg.keyring has its rules).
--
-- What is answered: the site file's registry entries whose server, read as
-- a docker config key (keyring.key), may serve the image, each under that
-- key. Which entries, by the cache key type, since the kubelet serves its
-- cached answer to every image of the same key: "Image", those that match
-- the image (keyring.matches, and the Docker Hub fallback); "Registry", all
-- those whose host matches the image's registry (so that an answer cached
-- for quay.io also holds quay.io/team-b's key when it was asked for
-- quay.io/team-a/app); "Global", every entry. Two entries with one key: the
-- first. An image no entry serves: "auth": {}.
--
-- Credentials: static passwords read as setup.lua reads them (only those of
-- the entries answered); minted ones from xcsreg.sources, ECR and GCP tokens
-- kept on disk (xcsreg.credcache) so that one token serves every call until
-- half of its lifetime is past. cacheDuration: the earliest expiry of the
-- answered credentials minus the margin (never past an expiry), at most
-- the site default (--cache-duration) when one is given; with no expiry
-- known, the site default, else none (the kubelet's defaultCacheDuration).
-- An answer missing a credential that failed is "0s": not cached.
--
-- KEP-4412: an ECR entry with ecr.role_arn or ecr.role_annotation is served
-- only to requests carrying the pod's serviceAccountToken: the token is the
-- web identity of STS AssumeRoleWithWebIdentity for the role named by the
-- ServiceAccount annotation role_annotation (passed by the kubelet when the
-- config's tokenAttributes.optionalServiceAccountAnnotationKeys or
-- requiredServiceAccountAnnotationKeys lists it), else ecr.role_arn; so each
-- workload's IAM role (its trust policy checks the token's subject) decides
-- what it may pull. Those credentials are never put on disk (another pod
-- naming the same role must present its own token), and the answer says
-- serviceAccountTokenCacheType "ServiceAccount": the kubelet keeps it per
-- ServiceAccount (UID and annotations in its cache key).
local config = require "xcsreg.config"
local credcache = require "xcsreg.credcache"
local image_ref = require "xcsreg.image_ref"
local json = require "json"
local keyring = require "xcsreg.keyring"
local log = require "log"
local sources = require "xcsreg.sources"

local credprovider = {}

credprovider.API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
credprovider.CACHE_KEY_TYPES = { Image = true, Registry = true, Global = true }
-- Below the kubelet's 1 minute, with room for the process to start and end.
credprovider.TIMEOUT = 50
credprovider.MARGIN = 600 -- seconds of an expiring credential the kubelet is not told of
credprovider.MAX_REQUEST = 1024 * 1024

local REQUEST_FIELDS = { apiVersion = "string", kind = "string", image = "string", serviceAccountToken = "string",
                         serviceAccountAnnotations = "table" }

-- The request decoded and checked: { image, token, annotations } | nil, message.
-- Unknown fields are ignored, as Kubernetes' decoders do (a newer kubelet
-- may send more).
function credprovider.decode_request(text)
  local req, err = json.decode(text)
  if req == nil then return nil, "the request is not JSON: " .. tostring(err) end
  if type(req) ~= "table" or json.kind(req) ~= "object" then return nil, "the request is not a JSON object" end
  for field, want in pairs(REQUEST_FIELDS) do
    if req[field] ~= nil and type(req[field]) ~= want then
      return nil, string.format("the request's %s is a %s, not a %s", field, json.kind(req[field]) or type(req[field]),
        want == "table" and "map of strings" or want)
    end
  end
  if req.apiVersion ~= credprovider.API_VERSION then
    return nil, string.format('unsupported apiVersion "%s": this plugin speaks %s only',
      tostring(req.apiVersion or ""), credprovider.API_VERSION)
  end
  if req.kind ~= nil and req.kind ~= "CredentialProviderRequest" then
    return nil, string.format('the request\'s kind is "%s", not CredentialProviderRequest', req.kind)
  end
  if req.image == nil or req.image == "" then return nil, "the request has no image" end
  local annotations = {}
  if req.serviceAccountAnnotations ~= nil then
    if json.kind(req.serviceAccountAnnotations) ~= "object" then
      return nil, "the request's serviceAccountAnnotations is not a map of strings"
    end
    for k, v in pairs(req.serviceAccountAnnotations) do
      if type(v) ~= "string" then
        return nil, string.format("the request's serviceAccountAnnotations[%q] is not a string", tostring(k))
      end
      annotations[k] = v
    end
  end
  local token = req.serviceAccountToken ~= "" and req.serviceAccountToken or nil
  if token then log.secret(token) end
  return { image = req.image, token = token, annotations = annotations }
end

-- A number of seconds as Go's time.Duration.String writes it: "0s", "45s",
-- "10m0s", "11h50m0s".
function credprovider.go_duration(s)
  if s <= 0 then return "0s" end
  local h, m, sec = s // 3600, s % 3600 // 60, s % 60
  if h > 0 then return string.format("%dh%dm%ds", h, m, sec) end
  if m > 0 then return string.format("%dm%ds", m, sec) end
  return string.format("%ds", sec)
end

-- The kubelet's name of the image (repoToPull): parsed as the kubelet does
-- when the reference parses, else as given.
local function image_name(image)
  local ref = image_ref.parse(image)
  return ref and ref.name or image
end

-- The site file's entries that answer a request for image under
-- cache_key_type: a list of { index, entry, key } in the file's order,
-- one per key.
function credprovider.match(plan, image, cache_key_type)
  local name = image_name(image)
  local registry = image:match("^[^/]*") -- plugin.go's parseRegistry, of the image as sent
  local function serves(key)
    if cache_key_type == "Global" then return true end
    if cache_key_type == "Registry" then return keyring.matches(key:match("^[^/]*"), registry) end
    return keyring.matches(key, name)
  end
  local found, seen = {}, {}
  local hub = {}
  for i, e in ipairs(plan.entries) do
    local key = keyring.key(e.server)
    if key and not seen[key] then
      if serves(key) then
        seen[key] = true
        found[#found + 1] = { index = i, entry = e, key = key }
      elseif key == "index.docker.io" then
        hub[#hub + 1] = { index = i, entry = e, key = key }
      end
    end
  end
  -- Docker Hub's fallback (keyring.go's isDefaultRegistryMatch): the kubelet
  -- uses it when no other key matches the image; for an answer it caches per
  -- registry (or for all), which those are is its keyring's to find out.
  if hub[1] and keyring.is_default_registry_match(name) and (#found == 0 or cache_key_type ~= "Image") then
    found[#found + 1] = hub[1]
  end
  return found
end

-- The role an ECR entry exchanges the pod's token for, or nil and why it is not served.
local function web_identity(e, req, now)
  local cfg = e.ecr
  if not (cfg and (cfg.role_arn or cfg.role_annotation)) then return false end
  if not req.token then
    return nil, "it names a role, and the request has no serviceAccountToken (tokenAttributes in the "
      .. "CredentialProviderConfig, KEP-4412)"
  end
  local role = cfg.role_annotation and req.annotations[cfg.role_annotation]
  if role == nil or role == "" then role = cfg.role_arn end
  if not role then
    return nil, "the ServiceAccount has no annotation " .. cfg.role_annotation .. " and the entry no ecr.role_arn"
  end
  return { role = role, token = req.token, session = "xcsreg-credential-provider-" .. now }
end

-- A minted credential of entry e: { username, password, expires_at } | nil, message.
-- opts: now, env, cache (credcache or false), margin, lock_timeout.
local function minted(e, req, opts)
  local kind = sources.kind(e)
  local wi, why = web_identity(e, req, opts.now)
  if wi == nil then return nil, why, true end
  local id = kind .. " " .. json.encode(e[kind]) .. " " .. e.server
  local cache = not wi and (kind == "ecr" or kind == "gcp") and opts.cache
  if cache then
    local cred, miss = cache:get(id, opts.now, opts.margin)
    if cred then
      log.debug("%s: the cached %s credential serves (expires in %ds)", e.server, kind, cred.expires_at - opts.now)
      return cred
    end
    log.debug("%s: %s", e.server, miss)
  end
  local lock
  if cache then
    local lerr
    lock, lerr = cache:lock(opts.lock_timeout)
    if not lock then log.warn("%s: minting without the cache lock: %s", e.server, lerr) end
    local cred = lock and cache:get(id, opts.now, opts.margin) -- minted by another call meanwhile
    if cred then
      lock:unlock()
      return cred
    end
  end
  local cred, err = sources.get(e, { now = opts.now, env = opts.env, web_identity = wi or nil })
  if cred then
    if cred.password == "" then
      cred, err = nil, kind .. ": the password is empty"
    elseif e.username and cred.username ~= e.username then
      cred, err = nil, string.format("%s: the credential is for user %s, not %s as the site file says",
        kind, cred.username, e.username)
    end
  end
  if cred and cache then
    local ok, werr = cache:put(id, cred, opts.now)
    if not ok then log.warn("%s: the credential is not cached: %s", e.server, werr) end
  end
  if lock then lock:unlock() end
  return cred, err
end

-- The CredentialProviderResponse for req (decode_request's) from plan
-- (config.load_file's, credentials = false), or nil and a message when no
-- credential could be had for an image that entries serve.
-- opts: now, env, cache, margin, cache_key_type, cache_duration (seconds or nil), lock_timeout.
function credprovider.answer(plan, req, opts)
  local auth, failed, skipped = {}, {}, 0
  local expires_at
  for _, m in ipairs(credprovider.match(plan, req.image, opts.cache_key_type)) do
    local e = m.entry
    local cred, err, skip
    if sources.kind(e) then
      cred, err, skip = minted(e, req, opts)
    else
      local password
      password, err = config.password(plan, m.index)
      cred = password and { username = e.username, password = password }
    end
    if cred then
      auth[m.key] = { username = cred.username or "", password = cred.password }
      if cred.expires_at and (not expires_at or cred.expires_at < expires_at) then expires_at = cred.expires_at end
    elseif skip then
      skipped = skipped + 1
      log.debug("%s: not served: %s", m.key, err)
    else
      failed[#failed + 1] = m.key .. ": " .. err
    end
  end
  if #failed > 0 and next(auth) == nil then return nil, table.concat(failed, "; ") end
  for _, f in ipairs(failed) do log.warn("%s (answered without it, not to be cached)", f) end
  local duration = opts.cache_duration
  if expires_at then
    local left = math.max(0, expires_at - opts.now - opts.margin)
    duration = duration and math.min(duration, left) or left
  end
  if #failed > 0 then duration = 0 end
  local response = {
    apiVersion = credprovider.API_VERSION, kind = "CredentialProviderResponse",
    cacheKeyType = opts.cache_key_type,
    cacheDuration = duration and credprovider.go_duration(duration) or nil,
    -- required with a token (types.go); what is minted depends on the ServiceAccount only
    serviceAccountTokenCacheType = req.token and "ServiceAccount" or nil,
    auth = next(auth) and auth or json.object({}),
  }
  log.debug("%s: %d key(s) answered, %d entr%s not served", req.image, (function()
    local n = 0
    for _ in pairs(auth) do n = n + 1 end
    return n
  end)(), skipped, skipped == 1 and "y" or "ies")
  return response
end

credprovider.credcache = credcache

return credprovider
