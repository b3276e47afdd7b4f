-- xcsreg.xnat's site-table checks, xcsreg.hubs' URL form and choice of
-- credentials, and which images XNAT's commands run (xnat.command_images).
-- needs: none
local t = require "test"
local hubs = require "xcsreg.hubs"
local xnat = require "xcsreg.xnat"

local base = { url = "https://xnat.example.org/", username = "xcsreg", password_env = "XNAT_PW" }
local function with(over)
  local c = {}
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over) do c[k] = v ~= "nil" and v or nil end
  return c
end
local cfg = assert(xnat.check(base))
t.eq({ cfg.url, cfg.hubs, cfg.source, cfg.timeout }, { "https://xnat.example.org", false, "password_env", 30 },
  "defaults: url without its trailing /, hubs false, timeout 30")
for _, case in ipairs {
  { "nope", "xnat: must be a table, not string" },
  { with { extra = 1 }, 'xnat: unknown key "extra"' },
  { with { url = "nil" }, "xnat.url: missing" },
  { with { url = "http://xnat.example.org" }, "xnat.url: must be an https:// URL (XNAT's password is sent with it)" },
  { with { username = "" }, "xnat.username: must not be empty" },
  { with { username = "a:b" }, "xnat.username: must not contain ':' (HTTP Basic)" },
  { with { password_env = "nil" }, "xnat: missing password: give password_env, password_file or password_command" },
  { with { password_file = "/x" }, "xnat: password_env and password_file both given: give only one" },
  { with { password_env = "nil", password_command = "pass" }, "xnat.password_command: must be a list of strings" },
  { with { hubs = "yes" }, 'xnat.hubs: must be true, false, "always" or a list of registry servers, not yes' },
  { with { hubs = {} }, 'xnat.hubs: must be true, false, "always" or a non-empty list of registry servers' },
  { with { hubs = { 1 } }, "xnat.hubs[1]: must be a registry server" },
  { with { timeout = 0 }, "xnat.timeout: must be a number of seconds above 0" },
} do
  local got, err = xnat.check(case[1])
  t.eq({ got, err }, { nil, case[2] }, case[2])
end
t.raises("xnat.client: a checked xnat table expected", "xnat.client: misuse raises", xnat.client, "x")

-- hub URLs: the bare host Swarm compares with an image's registry; Docker Hub's key
for _, case in ipairs {
  { "ghcr.io", "ghcr.io" }, { "https://GHCR.io/", "ghcr.io" }, { "harbor.example.org:8443", "harbor.example.org:8443" },
  { "https://index.docker.io/v1/", "https://index.docker.io/v1/" }, { "docker.io", "https://index.docker.io/v1/" },
} do
  t.eq(hubs.url(case[1]), case[2], "hubs.url(" .. case[1] .. ")")
end
local creds = {
  { server = "ghcr.io", username = "a", password = "pw-one-123", email = "", generation = "ns1/s@t1" },
  { server = "https://ghcr.io", username = "b", password = "pw-two-456", email = "", generation = "ns2/s@t2" },
  { server = "quay.io", username = "q", password = "pw-three-789", email = "", generation = "ns1/q@t1" },
}
local want = hubs.wanted({ hubs = true }, creds)
t.eq({ #want, want[1].url, want[1].username, want[2].url }, { 2, "ghcr.io", "a", "quay.io" },
  "one hub per url, the first credential wins")
want = hubs.wanted({ hubs = { "quay.io" } }, creds)
t.eq({ #want, want[1].url }, { 1, "quay.io" }, "a list: only those registries")
local none, err = hubs.wanted({ hubs = { "harbor.example" } }, creds)
t.eq({ none, err }, { nil, "xnat.hubs: harbor.example: no Secret holds a credential for it after this run" },
  "a listed registry without a credential this run")

-- the images of commands: setup/wrapup types, a wrapper's via-setup-command
local images = xnat.command_images {
  { name = "a", id = 1, type = "docker", image = "r.example/a:1", wrappers = { { id = 9, name = "w", enabled = false } },
    via = { "r.example/setup:2", "r.example/s:1" } },
  { name = "s", id = 2, type = "docker-setup", image = "r.example/s:1", wrappers = {}, via = {} },
}
local got = {}
for i, e in ipairs(images) do got[i] = { e.command, e.type, e.image, e.enabled, e.via } end
t.eq(got, { { "a", "docker", "r.example/a:1", false }, { "s", "docker-setup", "r.example/s:1" },
  { "a", "setup/wrapup of a", "r.example/setup:2", nil, "a" } },
  "every command's image, then setup images no command has, each once")
return t.done()
