-- xcsreg.status: the registries of a Secret, the registry of an image, rendering of reports.
-- needs: none
local t = require "test"
local base64 = require "base64"
local json = require "json"
local status = require "xcsreg.status"

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

-- ---- which pull secret covers an image, as the kubelet's keyring matches ----
for _, c in ipairs {
  { { "https://index.docker.io/v1/" }, "ubuntu", true, "docker.io" },
  { { "docker.io" }, "xnat/dcm2niix:1.0", true, "docker.io" },
  { { "registry-1.docker.io" }, "ubuntu", false, "docker.io" }, -- the kubelet: not a Docker Hub key
  { { "ghcr.io" }, "ghcr.io/xnat/x:1", true, "ghcr.io" },
  { { "https://ghcr.io" }, "ghcr.io/xnat/x:1", true, "ghcr.io" },
  { { "quay.io", "ghcr.io/v2/" }, "ghcr.io/xnat/x:1", true, "ghcr.io" },
  { { "harbor.example.org/project" }, "harbor.example.org/other/x", false, "harbor.example.org" },
  { { "harbor.example.org/project" }, "harbor.example.org/project/x", true, "harbor.example.org" },
  { { "*.dkr.ecr.eu-west-1.amazonaws.com" }, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1", true,
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com" },
  { { "http://localhost:5000/v2/" }, "localhost:5000/x", true, "localhost:5000" },
  { { "localhost" }, "localhost:5000/x", false, "localhost:5000" },
  { { "ghcr.io" }, "Not/A:Ref", false, nil },
} do
  t.eq({ status.covers(c[1], c[2]) }, { c[3], c[4] }, "covers " .. table.concat(c[1], ",") .. " " .. c[2])
end

-- ---- how close to its expiry a Secret may come ----
local H = 3600
for _, c in ipairs {
  { "ECR, 12h", 0, 12 * H, {}, 5400 }, { "GCP, 1h", 0, H, {}, 450 }, { "30 days", 0, 30 * 24 * H, {}, 90 * H },
  { "no rotated-at", nil, 12 * H, {}, 24 * H }, { "rotated after it expires", 13 * H, 12 * H, {}, 24 * H },
  { "rotated as it expires", 12 * H, 12 * H, {}, 24 * H },
  { "--warn-within wins", 0, 12 * H, { warn_within = 600 }, 600 },
  { "--warn-within wins without a lifetime", nil, 12 * H, { warn_within = 600 }, 600 },
} do
  t.eq(status.warn_within(c[2], c[3], c[4]), c[5], "warn_within: " .. c[1])
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
  '{"apiVersion":"xcsreg.io/v1","images":[],"kind":"Status","namespaces":[{"errors":[],"name":"x","problems":[],'
  .. '"secrets":[],"serviceAccounts":[],"stuckPods":[]}],"ok":true,"problems":[],"time":"1970-01-01T00:00:00Z",'
  .. '"warnWithinSeconds":0}', "document: empty lists stay lists")
t.eq(status.text({ { namespace = "a", secrets = {}, pods = {}, problems = {} },
  { namespace = "b", secrets = {}, pods = {}, problems = {} } }, false),
  "No managed Secrets found in namespaces a, b.\n", "text: nothing found in two namespaces")
t.eq(status.text({ { namespace = "a", secrets = {}, pods = {}, problems = {} } }, true), "", "text -q: nothing to say")
t.eq(status.text({}, false), "", "text: no namespace selected, nothing to print")

return t.done()
