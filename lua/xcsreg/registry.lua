-- registry.lua: checks a credential against its registry before xcsreg
-- stores it, by logging in the way `docker login` does.
--
--   registry.verify{server = S, username = U, password = P,
--                   ca_file = PATH, insecure = BOOL, timeout = SECONDS}
--     -> "accepted", detail | "rejected", detail | "unreachable", detail
--
-- "rejected" means the registry (or its token service) answered 401 or 403
-- to the credential: do not store it. "unreachable" means it could not be
-- asked (DNS, connect, TLS) or answered something else (a 5xx, no usable
-- challenge, no token): the caller warns and stores it anyway, since the
-- cluster may reach a registry this host cannot. An open registry (200
-- without credentials) counts as accepted, and its detail says the
-- credential was not checked. Details name the registry, the user and the
-- HTTP status, never the password or a token. timeout defaults to 30 s.
--
-- Also: registry.base_url(server) (the URL a docker config key means),
-- registry.parse_challenge(www_authenticate) (exported for tests and
-- fuzzing), and for xcsreg.pull the steps of a login:
-- registry.usable_challenge(headers) and registry.fetch_token(...), below.
local http = require "http"
local json = require "json"
local log = require "log"
local registry_host = require "xcsreg.registry_host"

local registry = {}

local TOKEN = "[%w!#$%%&'*+%-.^_`|~]+" -- RFC 9110 token characters
local MAX_BODY = 1024 * 1024
registry.MAX_BODY = MAX_BODY -- what a login step reads of an answer at most

-- The value of the quoted-string whose opening quote is at s[i], and the
-- index after its closing quote; nil when it never closes.
local function quoted_string(s, i)
  local parts = {}
  i = i + 1
  while true do
    local plain, stop = s:match('^([^"\\]*)()', i)
    parts[#parts + 1] = plain
    if s:sub(stop, stop) == '"' then return table.concat(parts), stop + 1 end
    if stop >= #s then return nil end
    parts[#parts + 1] = s:sub(stop + 1, stop + 1) -- a backslash quotes the next character
    i = stop + 2
  end
end

-- The challenges of a WWW-Authenticate value (RFC 9110 section 11.6.1) as a
-- list of {scheme = "bearer", params = {realm = ..., service = ...}}; scheme
-- and parameter names lower-cased. A token68 (Negotiate, NTLM) is skipped.
-- Malformed input gives an empty list, never an error.
function registry.parse_challenge(header)
  local challenges, current, pos = {}, nil, 1
  while true do
    pos = header:match("^[ \t,]*()", pos)
    if pos > #header then return challenges end
    local name, after = header:match("^(" .. TOKEN .. ")()", pos)
    if not name then return {} end
    local value_at = header:match("^[ \t]*=[ \t]*()", after)
    if value_at then -- name=value, a parameter of the current challenge
      if not current then return {} end
      local value
      if header:sub(value_at, value_at) == '"' then
        value, pos = quoted_string(header, value_at)
      else
        value, pos = header:match("^(" .. TOKEN .. ")()", value_at)
      end
      if not value then return {} end
      current.params[name:lower()] = value
      pos = header:match("^[ \t]*()", pos)
      if pos <= #header and header:sub(pos, pos) ~= "," then return {} end
    else -- a scheme starts the next challenge
      current = {scheme = name:lower(), params = {}}
      challenges[#challenges + 1] = current
      pos = after
      local token68_end = header:match("^[ \t]+[%w%-._~+/]+=*[ \t]*()", pos)
      if token68_end and (token68_end > #header or header:sub(token68_end, token68_end) == ",") then
        current, pos = nil, token68_end
      end
    end
  end
end

local function valid_host(host)
  return host:match("^[%w.-]+$") or host:match("^[%w.-]+:%d+$")
      or host:match("^%[[%x:.]+%]$") or host:match("^%[[%x:.]+%]:%d+$")
end

-- The base URL of the registry that a docker config "auths" key names, as
-- docker finds it: Docker Hub's keys mean https://registry-1.docker.io, a
-- host[:port] means HTTPS, a URL keeps its scheme and host and loses its
-- path. Returns nil, message for anything else.
function registry.base_url(server)
  local scheme, rest = server:match("^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and scheme:lower() or "https"
  local host = (rest or server):match("^[^/?#]*"):lower()
  if (scheme ~= "https" and scheme ~= "http") or not valid_host(host) then
    return nil, ("invalid registry server %q: expected host[:port] or an http(s) URL"):format(server)
  end
  if registry_host.is_docker_hub(host) then return registry_host.endpoint(host) end
  return scheme .. "://" .. host
end

local function query_escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- How a login step ended, from what http.request returned. `who` names
-- what was asked, e.g. "127.0.0.1:5000"; http's transport errors name the URL.
local function outcome(who, user, status, err)
  if not status then return "unreachable", err end
  if status >= 200 and status < 300 then return "accepted", ("%s accepted user %s"):format(who, user) end
  if status == 401 or status == 403 then
    return "rejected", ("%s rejected user %s (HTTP %d)"):format(who, user, status)
  end
  return "unreachable", ("%s answered HTTP %d"):format(who, status)
end

local function nonempty_string(v) return type(v) == "string" and v ~= "" and v or nil end

-- The token that a Bearer challenge's realm gives for the credential
-- (auth: http.request's basic_auth or nothing), or nil, outcome
-- ("rejected" or "unreachable"), detail. get(url, auth) makes the request
-- and returns what http.request does. scope (a string of space-separated
-- scopes) replaces the challenge's own when given. The token is registered
-- with log.secret before it is returned.
function registry.fetch_token(get, base, user, auth, params, scope)
  local host, realm = base:match("//(.*)"), params.realm or ""
  local realm_base = realm:match("^https?://[^/?#]+[^?#]*")
  if not realm_base then return nil, "unreachable", ("%s: Bearer challenge without an http(s) realm"):format(host) end
  if base:match("^https:") and realm:match("^http:") then
    return nil, "unreachable", ("%s: refusing to send the credential over plain HTTP to %s"):format(host, realm_base)
  end
  local query = {}
  if params.service then query[#query + 1] = "service=" .. query_escape(params.service) end
  if user ~= "" then query[#query + 1] = "account=" .. query_escape(user) end
  for one in (scope or params.scope or ""):gmatch("%S+") do query[#query + 1] = "scope=" .. query_escape(one) end
  local url = realm .. (realm:find("?", 1, true) and "&" or "?") .. table.concat(query, "&")

  local who = ("%s: the token service at %s"):format(host, realm_base)
  local status, err, body = get(url, auth)
  if not status or status < 200 or status >= 300 then return nil, outcome(who, user, status, err) end
  local answer = json.decode(body)
  local token = type(answer) == "table" and (nonempty_string(answer.token) or nonempty_string(answer.access_token))
  if not token then return nil, "unreachable", who .. " answered without a token" end
  log.secret(token)
  return token
end

local warned_plain = {} -- hosts: once a run

-- The first Basic or Bearer challenge of a 401's headers, or nil.
function registry.usable_challenge(headers)
  for _, c in ipairs(registry.parse_challenge(headers["www-authenticate"] or "")) do
    if c.scheme == "basic" or c.scheme == "bearer" then return c end
  end
end

local OPTIONS = {server = "string", username = "string", password = "string",
                 ca_file = "string", insecure = "boolean", timeout = "number"}

function registry.verify(opts)
  if type(opts) ~= "table" then error("registry.verify: expected a table of options", 2) end
  for key, value in pairs(opts) do
    if not OPTIONS[key] then error(("registry.verify: unknown option '%s'"):format(key), 2) end
    if type(value) ~= OPTIONS[key] then
      error(("registry.verify: option '%s' must be a %s"):format(key, OPTIONS[key]), 2)
    end
  end
  for _, key in ipairs{"server", "username", "password"} do
    if not opts[key] then error(("registry.verify: option '%s' is required"):format(key), 2) end
  end
  local base, err = registry.base_url(opts.server)
  if not base then error("registry.verify: " .. err, 2) end
  log.secret(opts.password)

  local function get(url, auth)
    log.debug("registry: GET %s", url)
    return http.request{method = "GET", url = url, headers = auth.headers, basic_auth = auth.basic_auth,
                        ca_file = opts.ca_file, insecure = opts.insecure, timeout = opts.timeout or 30,
                        max_body = MAX_BODY}
  end
  local user, host, v2 = opts.username, base:match("//(.*)"), base .. "/v2/"

  local status, headers = get(v2, {})
  if not status then return "unreachable", headers end
  if status >= 200 and status < 300 then
    return "accepted", ("%s answers without credentials: it is open, so the credential of user %s was not checked")
        :format(host, user)
  end
  if status ~= 401 then return "unreachable", ("%s answered HTTP %d"):format(host, status) end
  local challenge = registry.usable_challenge(headers)
  if not challenge then return "unreachable", ("%s answered HTTP 401 with no Basic or Bearer challenge"):format(host) end

  if base:match("^http:") then
    -- docker, too, talks plain HTTP only to an "insecure registry" it is told of
    if not opts.insecure then
      return "unreachable", ("%s: refusing to send the credential of user %s over plain HTTP, where anyone on "
        .. "the path can read it; set insecure_registry = true for this registry to allow it"):format(host, user)
    end
    if not warned_plain[host] then
      warned_plain[host] = true
      log.warn("%s: sending the credential of user %s over plain HTTP (insecure_registry)", host, user)
    end
  end
  local auth = {basic_auth = {user, opts.password}}
  if challenge.scheme == "bearer" then
    local token, result, detail = registry.fetch_token(get, base, user, auth, challenge.params)
    if not token then return result, detail end
    auth = {headers = {Authorization = "Bearer " .. token}}
  end
  return outcome(host, user, get(v2, auth))
end

return registry
