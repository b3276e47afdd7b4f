-- xcsreg.keyring: which credentials of a pod's pull secrets the kubelet
-- offers for an image, and in which order. It follows Kubernetes'
-- pkg/credentialprovider/keyring.go (BasicDockerKeyring.Add and Lookup,
-- URLsMatchStr, ParseSchemelessURL, SplitURL, isDefaultRegistryMatch) and
-- config.go (DockerConfigEntry.UnmarshalJSON, decodeDockerConfigFieldAuth),
-- with the cases of its keyring_test.go in tests/lua/test_keyring.lua.
--
-- Adding a docker config key: "https://" is put in front unless it starts
-- with "https://" or "http://" (exactly so: the test is case-sensitive),
-- the result is read as a URL (Go's url.Parse; a key it refuses is
-- ignored, as the kubelet logs and skips it), and the index key is its host
-- plus its path, a leading "/v1/" or "/v2/" counting as "/", and a path of
-- "/" as none: "https://index.docker.io/v1/" -> "index.docker.io",
-- "quay.io/coreos" -> "quay.io/coreos".
--
-- Looking up an image name (the kubelet's repoToPull: image_ref's `name`,
-- "docker.io/library/ubuntu", without tag or digest): a key matches when
-- host and port of both, split as Go's net.SplitHostPort does, have the same
-- port (none counts as ""), the same number of "."-separated labels, each
-- label matching the key's as a filepath.Match glob ("*.example.org",
-- "reg.*.example", "app*.example"; a "*" never spans a "."), and the key's
-- path is a prefix of the image's. Every matching key's credentials are
-- returned, keys in reverse byte order (so "quay.io/coreos" before
-- "quay.io", and the kubelet tries each in turn until a pull works). Only
-- when none matches, a Docker Hub image ("ubuntu", "docker.io/...",
-- "index.docker.io/...", or a first component without "." or ":") gets the
-- credentials under "index.docker.io", the key of "https://index.docker.io/v1/".
-- So a key "registry-1.docker.io" does not cover Docker Hub images, and a
-- key's host is compared case-sensitively, both as in the kubelet.
--
--   keyring.new() -> kr
--   kr:add(auths, source) -> kr | nil, message   (auths: a .dockerconfigjson's
--       "auths" as dockerconfigjson.decode gives them; source: a name for
--       where they came from, the Secret's). An entry that is not an object,
--       or whose "auth" is not base64 of USER:PASSWORD, fails the whole add,
--       as it fails the kubelet's decoding of every pull secret of the pod.
--   keyring.from_secret(auths, source) -> kr | nil, message
--   kr:lookup(name) -> { {username, password, email, key, server, source}, ... }
--       (the server is the docker config key as written; empty when none matches)
--   keyring.key(server) -> the index key, or nil, message
--   keyring.matches(key, name) -> boolean   (URLsMatchStr)
--   keyring.is_default_registry_match(name) -> boolean
--
-- Within one Secret, keys that give the same index key come in the byte order
-- of the keys as written (the kubelet takes them in Go's random map order).
local base64 = require "base64"
local log = require "log"
local registry_host = require "xcsreg.registry_host"

local keyring = {}
local Keyring = {}
Keyring.__index = Keyring

-- the characters Go's url.Parse accepts unescaped in a host (shouldEscape, encodeHost)
local HOST_CHARS = "^[%w%-._~!$&'()*+,;=:%[%]<>\"]*$"

local function percent_decode(s)
  if s:find("%%[^%x]") or s:find("%%%x[^%x]") or s:find("%%%x?$") then return nil end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Go's url.Parse of an http(s) URL: host, path (unescaped), or nil, message.
local function parse_url(url)
  if url:find("[%c\127]") then return nil, "invalid control character in URL" end
  local rest = url:match("^[%a][%w+.-]*://(.*)$")
  if not rest then return nil, "missing scheme" end
  local authority, path = rest:match("^([^/?#]*)([^?#]*)")
  local host = authority:match("^.*@(.*)$") or authority
  if host:sub(1, 1) == "[" then
    if not host:match("^%[[^%]]*%]$") and not host:match("^%[[^%]]*%]:%d*$") then
      return nil, "invalid IPv6 host or port"
    end
  else
    local port = host:match(":([^:]*)$")
    if port and not port:match("^%d*$") then return nil, ("invalid port %q after host"):format(":" .. port) end
  end
  if not host:match(HOST_CHARS) then return nil, "invalid character in host name" end
  path = percent_decode(path)
  if not path then return nil, "invalid URL escape" end
  return host, path
end

-- Go's net.SplitHostPort, falling back to the whole host (with no port)
-- where it fails, as SplitURL does: labels, port.
local function split_url_host(host)
  local name, port
  local v6, v6_port = host:match("^%[([^%]]*)%]:(%d*)$")
  if v6 then
    name, port = v6, v6_port
  elseif not host:find("[%[%]]") then
    local h, p = host:match("^([^:]*):([^:]*)$")
    if h then name, port = h, p end
  end
  if not name then name, port = host, "" end
  local labels = {}
  for label in (name .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = label end
  return labels, port
end

-- Go's path/filepath.Match of one host label (no separator in either):
-- "*", "?", "[a-z]", "[^x]", "\\" escapes, byte by byte. A malformed
-- pattern matches nothing (the kubelet drops URLsMatchStr's error).
local function glob_match(pattern, s)
  local function escaped_char(p) -- getEsc: the character at p, the index after it
    local ch = pattern:sub(p, p)
    if ch == "" or ch == "-" or ch == "]" then return nil end
    if ch == "\\" then
      p = p + 1
      ch = pattern:sub(p, p)
      if ch == "" then return nil end
    end
    if p + 1 > #pattern then return nil end -- a class must go on to its "]"
    return ch, p + 1
  end
  local function class_at(p, c) -- the class after "[" at p: matched, the index after "]"
    local negated = pattern:sub(p, p) == "^"
    if negated then p = p + 1 end
    local matched, ranges = false, 0
    while pattern:sub(p, p) ~= "]" or ranges == 0 do
      local lo, hi
      lo, p = escaped_char(p)
      if not lo then return nil end
      hi = lo
      if pattern:sub(p, p) == "-" then
        hi, p = escaped_char(p + 1)
        if not hi then return nil end
      end
      if lo <= c and c <= hi then matched = true end
      ranges = ranges + 1
    end
    return matched ~= negated, p + 1
  end
  local function match_from(p, i)
    while p <= #pattern do
      local ch = pattern:sub(p, p)
      if ch == "*" then
        while pattern:sub(p, p) == "*" do p = p + 1 end
        for j = #s + 1, i, -1 do
          if match_from(p, j) then return true end
        end
        return false
      end
      if i > #s then return false end
      local c = s:sub(i, i)
      if ch == "[" then
        local ok, after = class_at(p + 1, c)
        if not ok then return false end
        p = after
      elseif ch == "?" then
        p = p + 1
      else
        if ch == "\\" then
          p = p + 1
          ch = pattern:sub(p, p)
        end
        if ch ~= c then return false end
        p = p + 1
      end
      i = i + 1
    end
    return i > #s
  end
  return match_from(1, 1)
end

function keyring.key(server)
  if type(server) ~= "string" then error("keyring.key: expected a string, got " .. type(server), 2) end
  local url = server
  if url:sub(1, 8) ~= "https://" and url:sub(1, 7) ~= "http://" then url = "https://" .. url end
  local host, path = parse_url(url)
  if not host then return nil, ("invalid registry key %q: %s"):format(server, path) end
  if path:sub(1, 4) == "/v2/" or path:sub(1, 4) == "/v1/" then path = path:sub(4) end
  if path == "" or path == "/" then return host end
  return host .. path
end

function keyring.matches(key, name)
  local key_host, key_path = parse_url("https://" .. key)
  local name_host, name_path = parse_url("https://" .. name)
  if not key_host or not name_host then return false end
  local key_labels, key_port = split_url_host(key_host)
  local name_labels, name_port = split_url_host(name_host)
  if key_port ~= name_port or #key_labels ~= #name_labels then return false end
  if name_path:sub(1, #key_path) ~= key_path then return false end
  for i, label in ipairs(key_labels) do
    if not glob_match(label, name_labels[i]) then return false end
  end
  return true
end

function keyring.is_default_registry_match(name)
  local first, rest = name:match("^([^/]*)/(.*)$")
  if not first then return name ~= "" end
  if first == "" then return false end
  -- the kubelet's own two names here, not every alias of Docker Hub
  if first == "docker.io" or first == "index.docker.io" then return true end
  return not first:find("[.:]")
end

-- The kubelet's fallback key for Docker Hub images.
local DEFAULT_REGISTRY_KEY = assert(keyring.key(registry_host.DOCKER_HUB_KEY))

function keyring.new()
  return setmetatable({index = {}, creds = {}}, Keyring)
end

-- DockerConfigEntry.UnmarshalJSON: username, password and email, the two
-- first replaced by those of a non-empty auth.
local function credential(server, entry)
  if type(entry) ~= "table" then return nil, ("entry %q is not a JSON object"):format(server) end
  for _, field in ipairs{"username", "password", "email", "auth"} do
    if entry[field] ~= nil and type(entry[field]) ~= "string" then
      return nil, ("entry %q: %s is not a string"):format(server, field)
    end
  end
  local username, password = entry.username or "", entry.password or ""
  if entry.auth and entry.auth ~= "" then
    log.secret(entry.auth)
    local decoded = base64.decode(entry.auth, {pad = false})
    username, password = (decoded or ""):match("^([^:]*):(.*)$")
    if not username then
      return nil, ("entry %q: auth is not base64 of USER:PASSWORD"):format(server)
    end
  end
  if password ~= "" then log.secret(password) end
  return {username = username, password = password, email = entry.email or ""}
end

function Keyring:add(auths, source)
  if type(auths) ~= "table" then error("keyring:add: expected the auths table of a docker config", 2) end
  if source ~= nil and type(source) ~= "string" then error("keyring:add: source must be a string", 2) end
  local servers = {}
  for server in pairs(auths) do
    if type(server) == "string" then servers[#servers + 1] = server end
  end
  table.sort(servers)
  local adding = {}
  for _, server in ipairs(servers) do
    local cred, err = credential(server, auths[server])
    if not cred then return nil, (source and source .. ": " or "") .. err end
    local key = keyring.key(server)
    if key then -- a key url.Parse refuses is skipped, as the kubelet does
      cred.key, cred.server, cred.source = key, server, source
      adding[#adding + 1] = cred
    else
      log.debug("keyring: %s: ignoring the docker config key %q, which is not a URL", source or "?", server)
    end
  end
  for _, cred in ipairs(adding) do
    if not self.creds[cred.key] then
      self.creds[cred.key] = {}
      self.index[#self.index + 1] = cred.key
    end
    table.insert(self.creds[cred.key], cred)
  end
  table.sort(self.index, function(a, b) return a > b end)
  return self
end

function keyring.from_secret(auths, source)
  return keyring.new():add(auths, source)
end

local function copy(cred)
  return {username = cred.username, password = cred.password, email = cred.email,
          key = cred.key, server = cred.server, source = cred.source}
end

function Keyring:lookup(name)
  if type(name) ~= "string" then error("keyring:lookup: expected an image name, got " .. type(name), 2) end
  local found = {}
  for _, key in ipairs(self.index) do
    if keyring.matches(key, name) then
      for _, cred in ipairs(self.creds[key]) do found[#found + 1] = copy(cred) end
    end
  end
  if #found == 0 and keyring.is_default_registry_match(name) and self.creds[DEFAULT_REGISTRY_KEY] then
    for _, cred in ipairs(self.creds[DEFAULT_REGISTRY_KEY]) do found[#found + 1] = copy(cred) end
  end
  return found
end

return keyring
