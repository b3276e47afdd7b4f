-- needs: none
-- xcsreg.registry_host: Docker Hub's names and host canonicalisation, table-driven.
local t = require "test"
local registry_host = require "xcsreg.registry_host"

t.eq(registry_host.DOCKER_HUB_KEY, "https://index.docker.io/v1/", "the key kubectl and docker login write for Docker Hub")

-- host -> is_docker_hub, canonical, endpoint, docker_config_key
local hosts = {
  {"docker.io", true, "docker.io", "https://registry-1.docker.io", "https://index.docker.io/v1/"},
  {"index.docker.io", true, "docker.io", "https://registry-1.docker.io", "https://index.docker.io/v1/"},
  {"registry-1.docker.io", true, "docker.io", "https://registry-1.docker.io", "https://index.docker.io/v1/"},
  {"registry.hub.docker.com", true, "docker.io", "https://registry-1.docker.io", "https://index.docker.io/v1/"},
  {"Docker.IO", true, "docker.io", "https://registry-1.docker.io", "https://index.docker.io/v1/"},
  {"docker.io:443", false, "docker.io:443", "https://docker.io:443", "docker.io:443"},
  {"myhostdocker.io", false, "myhostdocker.io", "https://myhostdocker.io", "myhostdocker.io"},
  {"ghcr.io", false, "ghcr.io", "https://ghcr.io", "ghcr.io"},
  {"Harbor.Example.org:8443", false, "harbor.example.org:8443", "https://harbor.example.org:8443", "harbor.example.org:8443"},
  {"127.0.0.1:5000", false, "127.0.0.1:5000", "https://127.0.0.1:5000", "127.0.0.1:5000"},
  {"[FC00::1]:5000", false, "[fc00::1]:5000", "https://[fc00::1]:5000", "[fc00::1]:5000"},
  {"localhost", false, "localhost", "https://localhost", "localhost"},
}
for _, c in ipairs(hosts) do
  local host = c[1]
  t.eq({registry_host.is_docker_hub(host), registry_host.canonical(host), registry_host.endpoint(host),
        registry_host.docker_config_key(host)}, {c[2], c[3], c[4], c[5]}, "host " .. host)
end

local servers = {
  {"https://index.docker.io/v1/", "index.docker.io"},
  {"HTTPS://Quay.io", "quay.io"},
  {"http://127.0.0.1:5000/v2/", "127.0.0.1:5000"},
  {"registry.example/some/path?x=1", "registry.example"},
  {"registry.example?x=1", "registry.example"},
  {"https://[::1]:5000/v2/", "[::1]:5000"},
  {"ghcr.io", "ghcr.io"},
}
for _, c in ipairs(servers) do
  t.eq(registry_host.host_of(c[1]), c[2], "host_of " .. c[1])
end

-- hostport -> host, port (or nil, message)
local splits = {
  {"registry.example", {"registry.example"}},
  {"registry.example:5000", {"registry.example", "5000"}},
  {"10.0.0.1:80", {"10.0.0.1", "80"}},
  {"[::1]:5000", {"::1", "5000"}},
  {"[fc00:1:2:3:4:5:6:7]", {"fc00:1:2:3:4:5:6:7"}},
  {"fc00::1", {"fc00::1"}},
  {"", {""}},
  {"registry.example:", {nil, 'invalid host "registry.example:": the port must be digits'}},
  {"registry.example:http", {nil, 'invalid host "registry.example:http": the port must be digits'}},
  {"[::1", {nil, "invalid host \"[::1\": '[' without ']'"}},
  {"[::1]5000", {nil, 'invalid host "[::1]5000": expected [address]:port'}},
  {"[::1]:", {nil, 'invalid host "[::1]:": expected [address]:port'}},
}
for _, c in ipairs(splits) do
  t.eq({registry_host.split_host_port(c[1])}, c[2], ("split_host_port %q"):format(c[1]))
end

for _, fn in ipairs{"is_docker_hub", "canonical", "endpoint", "docker_config_key", "host_of", "split_host_port"} do
  t.raises("registry_host." .. fn .. ": expected a string, got nil", fn .. " raises on a non-string", registry_host[fn])
end

-- the callers that had their own alias sets now agree with this one
local helper = require "xcsreg.sources.helper"
local registry = require "xcsreg.registry"
for _, name in ipairs{"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
                      "https://index.docker.io/v1/"} do
  t.eq({helper.key(name), helper.hostname(name), registry.base_url(name)},
       {"https://index.docker.io/v1/", "index.docker.io", "https://registry-1.docker.io"},
       "helper and registry read " .. name .. " as Docker Hub")
end

return t.done()
