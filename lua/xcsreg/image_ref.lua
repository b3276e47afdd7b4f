-- xcsreg.image_ref: image references read as the kubelet and containerd read
-- them, by the docker reference grammar of github.com/distribution/reference
-- (reference.go's grammar and Parse, regexp.go's patterns, normalize.go's
-- ParseNormalizedNamed, splitDockerDomain and ParseDockerRef):
--
--   reference        := name [ ":" tag ] [ "@" digest ]
--   name             := [domain '/'] path-component ['/' path-component]*
--   domain           := (domain-name | "[" IPv6 "]") [":" port]
--   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
--   path-component   := [a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*
--   tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
--   digest           := algorithm ":" hex{32,}, algorithm sha256, sha384 or
--                       sha512 with exactly 64, 96 or 128 lower-case hex digits
--                       (go-digest's Parse, which reference.Parse calls)
--
-- The first component is a domain when it is "localhost", or has a "." or a
-- ":", or has an upper-case letter; otherwise the registry is docker.io (and
-- "index.docker.io" is read as docker.io). A one-component name on docker.io
-- gets "library/". The path is at most 255 characters and lower-case; a bare
-- 64-digit hex string is refused (it would be an image ID).
--
--   image_ref.parse(ref) -> {
--     image      = ref, exactly as given
--     registry   = "docker.io" | "ghcr.io" | "127.0.0.1:5000" | "[::1]:5000" ...
--     repository = "library/ubuntu" (the path on the registry, /v2/<repository>/...)
--     name       = "docker.io/library/ubuntu" (what the kubelet looks the
--                  pull secrets up by: parsers.ParseImageName's repoToPull)
--     tag        = "latest" when neither tag nor digest is given; nil when
--                  only a digest is
--     digest     = "sha256:..." or nil
--     reference  = the digest if there is one, else the tag: what a runtime
--                  asks /v2/<repository>/manifests/ for (ParseDockerRef
--                  drops the tag of a reference that has both)
--     canonical  = name[:tag][@digest], normalised
--   } | nil, 'invalid image reference "REF": <why>'
--
-- One deliberate difference: when the first component is taken for a domain
-- but is not a valid one ("my_host.example/app"), distribution's Parse
-- quietly makes a reference without a domain whose path is the whole name;
-- runtimes then treat "my_host.example" as a host anyway. That is refused here.
local image_ref = {}

local DIGEST_HEX_LENGTH = { sha256 = 64, sha384 = 96, sha512 = 128 }
local MAX_PATH = 255
local MAX_QUOTED = 64

local function quote(s)
  if #s > MAX_QUOTED then return ("%q... (%d bytes)"):format(s:sub(1, MAX_QUOTED), #s) end
  return ("%q"):format(s)
end

local function path_component_valid(c)
  local pos = c:match("^[a-z0-9]+()")
  if not pos then return false end
  while pos <= #c do
    pos = c:match("^[._][a-z0-9]+()", pos) or c:match("^__[a-z0-9]+()", pos) or c:match("^%-+[a-z0-9]+()", pos)
    if not pos then return false end
  end
  return true
end

local function path_valid(path)
  if path == "" or path:sub(-1) == "/" then return false end
  for component in (path .. "/"):gmatch("([^/]*)/") do
    if not path_component_valid(component) then return false end
  end
  return true
end

local function domain_name_valid(name)
  for component in (name .. "."):gmatch("([^.]*)%.") do
    if not (component:match("^[%a%d]$") or component:match("^[%a%d][%a%d-]*[%a%d]$")) then return false end
  end
  return true
end

local function domain_valid(domain)
  local host, port = domain:match("^(.-):(%d+)$")
  host = host or domain
  if host:match("^%[[%x:]+%]$") then return true end
  return host ~= "" and not host:find("[^%w.-]") and domain_name_valid(host)
end

local function tag_valid(tag)
  return #tag <= 128 and tag:match("^[%w_][%w_.-]*$") ~= nil
end

-- go-digest's Digest.Validate, after the reference grammar's digest pattern.
local function digest_problem(digest)
  local algorithm, hex = digest:match("^([^:]+):(.*)$")
  local want = DIGEST_HEX_LENGTH[algorithm]
  if not want then return "unsupported digest algorithm" end
  if #hex ~= want then return "invalid checksum digest length" end
  if hex:find("[^a-f0-9]") then return "invalid checksum digest format" end
end

local function digest_syntax_valid(digest)
  local algorithm, hex = digest:match("^([^:]*):(.*)$")
  if not algorithm or #hex < 32 or hex:find("[^%x]") then return false end
  return (algorithm .. "+"):gsub("[%a][%w]*[-_+.]", "") == ""
end

-- distribution's Parse of "domain/remainder": the parts, or nil, why.
local function parse_qualified(domain, remainder)
  local rest, digest = remainder, nil
  local at = remainder:find("@", 1, true)
  if at then rest, digest = remainder:sub(1, at - 1), remainder:sub(at + 1) end
  local path, tag = rest:match("^([^:]*):([^:/]*)$")
  if not path then path = rest end
  if not domain_valid(domain) or not path_valid(path) or (tag and not tag_valid(tag))
      or (digest and not digest_syntax_valid(digest)) then
    return nil, "invalid reference format"
  end
  if #path > MAX_PATH then return nil, ("repository name must not be more than %d characters"):format(MAX_PATH) end
  if digest then
    local problem = digest_problem(digest)
    if problem then return nil, problem end
  end
  return {registry = domain, repository = path, tag = tag, digest = digest}
end

-- normalize.go's splitDockerDomain.
local function split_docker_domain(ref)
  local first, rest = ref:match("^([^/]*)/(.*)$")
  if not first then return "docker.io", "library/" .. ref end
  local domain, remainder
  if first == "localhost" or first:find("[.:]") or first:lower() ~= first then
    domain, remainder = first, rest
  else
    domain, remainder = "docker.io", ref
  end
  if domain == "index.docker.io" then domain = "docker.io" end
  if domain == "docker.io" and not remainder:find("/", 1, true) then remainder = "library/" .. remainder end
  return domain, remainder
end

function image_ref.parse(ref)
  if type(ref) ~= "string" then
    error(("image_ref.parse: expected a string, got %s"):format(type(ref)), 2)
  end
  local function invalid(why) return nil, ("invalid image reference %s: %s"):format(quote(ref), why) end
  if ref:match("^" .. ("[a-f0-9]"):rep(64) .. "$") then
    return invalid("cannot specify 64-byte hexadecimal strings")
  end
  local domain, remainder = split_docker_domain(ref)
  local remote = remainder:match("^[^:]*")
  if remote:lower() ~= remote then
    return invalid(("repository name (%s) must be lowercase"):format(quote(remote)))
  end
  -- (Parse's own "repository name must be lowercase" cannot happen after this check.)
  local parts, why = parse_qualified(domain, remainder)
  if not parts then return invalid(why) end
  parts.image = ref
  parts.name = parts.registry .. "/" .. parts.repository
  if not parts.tag and not parts.digest then parts.tag = "latest" end
  parts.reference = parts.digest or parts.tag
  parts.canonical = parts.name .. (parts.tag and ":" .. parts.tag or "") .. (parts.digest and "@" .. parts.digest or "")
  return parts
end

return image_ref
