-- xcsreg.status: durations, RFC 3339 times, registries of a Secret, image registries, rendering.
-- needs: none
local t = require "test"
local base64 = require "base64"
local json = require "json"
local status = require "xcsreg.status"

-- ---- --warn-within durations ----
for _, c in ipairs {
  { "0", 0 }, { "45s", 45 }, { "90m", 5400 }, { "2h", 7200 }, { "3d", 259200 }, { "1h30m", 5400 },
  { "1d1h", 90000 }, { "2h0m", 7200 }, { "0h", 0 }, { "100000h", 360000000 },
} do
  t.eq(status.parse_duration(c[1]), c[2], "parse_duration " .. c[1])
end
for _, bad in ipairs { "", "2", "h", "2 h", "-2h", "1.5h", "2w", "2H", "h2", "2hh", "1234567890s", "24h " } do
  t.fails('invalid duration "' .. bad .. '": want a number and a unit (s, m, h, d), e.g. 90m, 2h, 3d',
    "parse_duration rejects " .. string.format("%q", bad), status.parse_duration, bad)
end

-- ---- durations as kubectl prints ages (truncated, never rounded up) ----
for _, c in ipairs {
  { 0, "0s" }, { 59, "59s" }, { 60, "1m" }, { 119, "1m" }, { 1200, "20m" }, { 3600, "1h" }, { 11520, "3h12m" },
  { 11579, "3h12m" }, { 86399, "23h59m" }, { 86400, "1d" }, { 86400 + 4 * 3600 + 59, "1d4h" }, { 40 * 86400, "40d" },
  { 59.9, "59s" },
} do
  t.eq(status.format_duration(c[1]), c[2], "format_duration " .. c[1])
end

-- ---- RFC 3339 ----
for _, c in ipairs {
  { "1970-01-01T00:00:00Z", 0 }, { "2026-09-21T12:00:00Z", 1789992000 }, { "2026-09-21t12:00:00z", 1789992000 },
  { "2026-09-21T12:00:00.123456789Z", 1789992000 }, { "2026-09-21T14:00:00+02:00", 1789992000 },
  { "2026-09-21T06:30:00-05:30", 1789992000 }, { "2000-02-29T00:00:00Z", 951782400 },
  { "2100-03-01T00:00:00Z", 4107542400 }, { "1969-12-31T23:59:59Z", -1 },
} do
  t.eq(status.parse_time(c[1]), c[2], "parse_time " .. c[1])
end
for _, bad in ipairs { "", "2026-09-21", "2026-09-21 12:00:00Z", "2026-09-21T12:00:00", "2026-13-01T00:00:00Z",
  "2026-09-21T24:00:00Z", "2026-09-21T12:00:00+0200", "2026-09-21T12:00:00Zjunk", "1789992000" } do
  t.fails(string.format("%q is not an RFC 3339 time", bad), "parse_time rejects " .. string.format("%q", bad),
    status.parse_time, bad)
end
t.eq(status.format_time(1789992000), "2026-09-21T12:00:00Z", "format_time")
t.eq(status.parse_time(status.format_time(951782399)), 951782399, "format_time and parse_time round-trip")

-- ---- the registries of a Secret, and nothing else of it ----
local function secret(text)
  return { metadata = { name = "s" }, data = { [".dockerconfigjson"] = base64.encode(text) } }
end
t.eq(status.registries(secret('{"auths":{"quay.io":{"auth":"eDp5"},"ghcr.io":{"username":"u","password":"p"}}}')),
  { "ghcr.io", "quay.io" }, "registries: the auths keys, sorted")
t.eq(status.registries(secret('{"auths":{}}')), {}, "registries: an empty auths")
t.fails("has no .dockerconfigjson", "registries: no data", status.registries, { metadata = {} })
t.fails("has no .dockerconfigjson", "registries: another key", status.registries,
  { data = { [".dockercfg"] = "e30=" } })
t.fails(".dockerconfigjson is not base64", "registries: not base64", status.registries,
  { data = { [".dockerconfigjson"] = "fake-secret-not-base64!" } })
local err = select(2, status.registries(secret('{"auths":["fake-secret-in-a-list"]}')))
t.eq(err, '.dockerconfigjson is not a docker config with "auths"', "registries: auths a list")
err = select(2, status.registries(secret('{"auths":{"x":{"password":"fake-secret-Zz9"}')))
t.eq(err, '.dockerconfigjson is not a docker config with "auths"', "registries: bad JSON, its text not shown")

-- ---- which registry an image is pulled from ----
for _, c in ipairs {
  { "ubuntu", "docker.io" }, { "ubuntu:22.04", "docker.io" }, { "library/ubuntu", "docker.io" },
  { "xnat/dcm2niix:1.0", "docker.io" }, { "ghcr.io/xnat/x:1", "ghcr.io" }, { "localhost/x", "localhost" },
  { "localhost:5000/x", "localhost:5000" }, { "registry:5000/x", "registry:5000" },
  { "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x@sha256:ab", "123456789012.dkr.ecr.eu-west-1.amazonaws.com" },
} do
  t.eq(status.image_registry(c[1]), c[2], "image_registry " .. c[1])
end
for _, c in ipairs {
  { "https://index.docker.io/v1/", "docker.io" }, { "docker.io", "docker.io" }, { "registry-1.docker.io", "docker.io" },
  { "ghcr.io", "ghcr.io" }, { "https://ghcr.io", "ghcr.io" }, { "http://localhost:5000/v2/", "localhost:5000" },
  { "harbor.example.org/project", "harbor.example.org" },
} do
  t.eq(status.registry_host(c[1]), c[2], "registry_host " .. c[1])
end

-- ---- rendering: a report made by hand ----
local reports = { {
  namespace = "xnat", errors = {}, service_accounts = {},
  secrets = { { name = "ecr", state = "invalid", registries = { "a.example", "b.example" }, problems = {
    "invalid annotation xcsreg.io/expires-at: soon" }, rotated_at = nil, expiry = "no expiry known",
    referenced_by = { "default" }, not_referenced_by = {} } },
  pods = { { pod = "p", container = "c", reason = "ErrImagePull", image = "a.example/i", message = "line one\n  two",
    registry = "a.example", image_pull_secrets = { "ecr" }, pull_secret = { "ecr" }, would_pull = { "ecr" } } },
  problems = { "xnat: secret/ecr: invalid annotation xcsreg.io/expires-at: soon",
    "xnat: pod/p: container c: ErrImagePull pulling a.example/i" },
} }
t.eq(status.text(reports, true), [[
NAMESPACE  SECRET  REGISTRIES           ROTATED    EXPIRY           STATUS
xnat       ecr     a.example,b.example  <unknown>  no expiry known  invalid annotation xcsreg.io/expires-at: soon

NAMESPACE  POD  CONTAINER  REASON        IMAGE        PULL SECRET  MESSAGE
xnat       p    c          ErrImagePull  a.example/i  ecr          line one two

2 problems (1 Secret in 1 namespace, 1 pod stuck)
]], "text: columns, several registries, a message on one line, no hint when the pod lists the Secret")
local doc = status.document(reports, { now = 0, warn_within = 60 })
t.eq({ doc.time, doc.ok, doc.namespaces[1].secrets[1].inSiteFile, doc.namespaces[1].stuckPods[1].message },
  { "1970-01-01T00:00:00Z", false, json.null, "line one\n  two" }, "document: no site file gives inSiteFile null")
t.eq(json.encode(status.document({ { namespace = "x", secrets = {}, service_accounts = {}, pods = {}, errors = {},
  problems = {} } }, { now = 0, warn_within = 0 })),
  '{"apiVersion":"xcsreg.io/v1","kind":"Status","namespaces":[{"errors":[],"name":"x","problems":[],'
  .. '"secrets":[],"serviceAccounts":[],"stuckPods":[]}],"ok":true,"problems":[],"time":"1970-01-01T00:00:00Z",'
  .. '"warnWithinSeconds":0}', "document: empty lists stay lists")
t.eq(status.text({ { namespace = "a", secrets = {}, pods = {}, problems = {} },
  { namespace = "b", secrets = {}, pods = {}, problems = {} } }, false),
  "No managed Secrets found in namespaces a, b.\n", "text: nothing found in two namespaces")
t.eq(status.text({ { namespace = "a", secrets = {}, pods = {}, problems = {} } }, true), "", "text -q: nothing to say")

return t.done()
