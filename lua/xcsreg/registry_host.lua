-- xcsreg.registry_host: one home for what a registry's host is called.
--
-- Docker Hub goes by several names: "docker.io" in image references (the
-- distribution/reference grammar normalises "index.docker.io" to it),
-- "https://index.docker.io/v1/" as the key `docker login` and `kubectl create
-- secret docker-registry` store its credential under, "registry-1.docker.io"
-- as the host that actually serves the registry API (containerd's
-- remotes/docker DefaultHost), and "registry.hub.docker.com", an old alias.
--
--   registry_host.DOCKER_HUB_KEY        "https://index.docker.io/v1/"
--   registry_host.is_docker_hub(host)   true for any of Docker Hub's names
--   registry_host.canonical(host)       lower-cased, Docker Hub as "docker.io"
--   registry_host.endpoint(host)        the https base URL its API is at
--   registry_host.docker_config_key(host) the key docker keeps its credential under
--   registry_host.host_of(server)       the host[:port] of a key or URL
--   registry_host.split_host_port(hostport) -> host, port | nil, message
--
-- A host is "name", "name:port", "1.2.3.4[:port]" or "[v6]:port" (brackets
-- kept, as in a URL). Arguments that are not strings raise.
local registry_host = {}

registry_host.DOCKER_HUB_KEY = "https://index.docker.io/v1/"
registry_host.DOCKER_HUB = "docker.io"
registry_host.DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"

local DOCKER_HUB_NAMES = {
  ["docker.io"] = true, ["index.docker.io"] = true,
  ["registry-1.docker.io"] = true, ["registry.hub.docker.com"] = true,
}

local function check(fn, value)
  if type(value) ~= "string" then
    error(("registry_host.%s: expected a string, got %s"):format(fn, type(value)), 3)
  end
end

function registry_host.is_docker_hub(host)
  check("is_docker_hub", host)
  return DOCKER_HUB_NAMES[host:lower()] == true
end

function registry_host.canonical(host)
  check("canonical", host)
  host = host:lower()
  if DOCKER_HUB_NAMES[host] then return registry_host.DOCKER_HUB end
  return host
end

function registry_host.endpoint(host)
  check("endpoint", host)
  host = registry_host.canonical(host)
  if host == registry_host.DOCKER_HUB then return registry_host.DOCKER_HUB_ENDPOINT end
  return "https://" .. host
end

function registry_host.docker_config_key(host)
  check("docker_config_key", host)
  host = registry_host.canonical(host)
  if host == registry_host.DOCKER_HUB then return registry_host.DOCKER_HUB_KEY end
  return host
end

-- "https://Registry.example:5000/v2/" -> "registry.example:5000": the scheme,
-- any path, query or fragment dropped, lower-cased (what docker compares).
function registry_host.host_of(server)
  check("host_of", server)
  return (server:gsub("^%a[%w+.-]*://", ""):match("^[^/?#]*"):lower())
end

-- "[::1]:5000" -> "::1", "5000"; "reg.example" -> "reg.example", nil;
-- "10.0.0.1:80" -> "10.0.0.1", "80". The brackets of an IPv6 literal are
-- dropped (as Go's net.SplitHostPort does); a bare IPv6 address without
-- brackets is all host. nil, message for a port that is not digits or a
-- bracket that does not close.
function registry_host.split_host_port(hostport)
  check("split_host_port", hostport)
  if hostport:sub(1, 1) == "[" then
    local v6, rest = hostport:match("^%[([^%]]*)%](.*)$")
    if not v6 then return nil, ("invalid host %q: '[' without ']'"):format(hostport) end
    if rest == "" then return v6, nil end
    local port = rest:match("^:(%d+)$")
    if not port then return nil, ("invalid host %q: expected [address]:port"):format(hostport) end
    return v6, port
  end
  local host, port = hostport:match("^([^:]*):([^:]*)$")
  if not host then return hostport, nil end -- no colon, or several (a bare IPv6 address)
  if not port:match("^%d+$") then return nil, ("invalid host %q: the port must be digits"):format(hostport) end
  return host, port
end

return registry_host
