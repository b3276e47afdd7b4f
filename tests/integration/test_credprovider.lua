-- needs: aws gcp
-- credential-provider.lua run as the kubelet runs it (tests/integration/kubeletlib.lua:
-- the example CredentialProviderConfig's args and env, the v1 request on
-- stdin, its 1 minute timeout, a strict decoding of the v1 response, the
-- kubelet's keyring lookup of the answer): static, helper, docker_config,
-- ECR (tests/lib/awssim.py) and GCP (tests/lib/gcpsim.py) sources, the disk
-- cache, KEP-4412's token exchange, failures, the timeout.
local t = require "test"
local http = require "http"
local json = require "json"
local kubelet = require "kubeletlib"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG")
local tmp = os.getenv("XCSREG_TEST_TMP") .. "/test_credprovider"
assert(os.execute("mkdir -p " .. tmp .. "/slowbin && chmod 700 " .. tmp))
local function write(name, text, mode)
  local path = tmp .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  os.execute("chmod " .. (mode or "600") .. " " .. path)
  return path
end
local function control(base, path, body)
  local status, _, reply = http.request { method = body and "POST" or "GET", url = base .. path, body = body }
  assert(status == 200, "simulator control " .. path)
  return json.decode(reply)
end
local AWS, GCP = os.getenv("AWSSIM_URL"), os.getenv("GCPSIM_URL")
local function ops() -- the simulators' operations since their last reset
  local list = {}
  for _, r in ipairs(control(AWS, "/_log")) do list[#list + 1] = r.op .. (r.ok and "" or ":refused") end
  for _ in ipairs(control(GCP, "/_log")) do list[#list + 1] = "gcp" end
  return table.concat(list, " ")
end
local function reset()
  control(AWS, "/_reset", "{}")
  control(GCP, "/_reset", "{}")
end

local PW = { ghcr = "fake-credprov-ghcr-pw", wild = "fake-credprov-wild-pw", port = "fake-credprov-port-pw",
             team = "fake-credprov-team-a-pw", hub = "fake-credprov-hub-pw" }
local ROLE = "arn:aws:iam::123456789012:role/xcsreg-test" -- the simulator's
local TOKEN = "fake-web-identity-token.for-tests" -- the token the simulator's STS accepts
local dockercfg = write("config.json", json.encode { auths = { ["https://cfg.example.test"] = {
  auth = "ZG9ja2VyLXVzZXI6ZmFrZS1wbGFpbi1wYXNz" } } }) -- docker-user:fake-plain-pass
local site = write("registries.lua", string.format([[
return { registries = {
  { secret = "ghcr", server = "ghcr.io", username = "bot", password_file = %q },
  { secret = "wild", server = "*.wild.example.test", username = "w", password_file = %q },
  { secret = "port", server = "reg.example.test:5000", username = "p", password_file = %q },
  { secret = "team", server = "quay.io/team-a", username = "t", password_file = %q },
  { secret = "hub", server = "https://index.docker.io/v1/", username = "hubuser", password_file = %q },
  { secret = "helper", server = "registry.example.test", credential_helper = "xcsreg-test" },
  { secret = "cfg", server = "cfg.example.test", docker_config = %q },
  { secret = "ecr", server = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} },
  { secret = "ecr2", server = "999988887777.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} },
  { secret = "wl", server = "444455556666.dkr.ecr.eu-west-1.amazonaws.com",
    ecr = { role_annotation = "xcsreg.io/ecr-role-arn" } },
  { secret = "wl2", server = "555566667777.dkr.ecr.eu-west-1.amazonaws.com",
    ecr = { role_annotation = "xcsreg.io/ecr-role-arn", role_arn = %q } },
  { secret = "gar", server = "europe-docker.pkg.dev", gcp = {} },
  { secret = "slow", server = "slow.example.test", credential_helper = "xcsreg-slow" },
} }]], write("ghcr.pw", PW.ghcr), write("wild.pw", PW.wild), write("port.pw", PW.port), write("team.pw", PW.team),
  write("hub.pw", PW.hub), dockercfg, ROLE))
local cache_dir = tmp .. "/cache"

-- The example config's provider, its args pointed at this site file and
-- cache, its env with the simulators' keys, as a site would adapt it.
local provider = assert(kubelet.provider("scripts/kubelet/credential-provider-config.yaml", "xcsreg"))
provider.args = { "run", "credential-provider.lua", "--config", site, "--cache-dir", cache_dir }
provider.env = { { name = "AWS_REGION", value = "eu-west-1" },
                 { name = "AWS_ACCESS_KEY_ID", value = "AKIAXCSREGENVTEST001" },
                 { name = "AWS_SECRET_ACCESS_KEY", value = "fake-env-secret-key/for+tests" },
                 { name = "AWS_EC2_METADATA_DISABLED", value = "true" } }
write("slowbin/docker-credential-xcsreg-slow", "#!/bin/sh\nsleep 30\n", "755")
local function with(a, b)
  local c = {}
  for k, v in pairs(a) do c[k] = v end
  for k, v in pairs(b) do c[k] = v end
  return c
end
local ENV = { PATH = os.getenv("PWD") .. "/tests/lib/fixtures-sources:" .. tmp .. "/slowbin:" .. os.getenv("PATH"), HOME = tmp }

local function exec(image, opts)
  opts = opts or {}
  opts.bin, opts.env = XCSREG, opts.env or ENV
  return kubelet.exec(provider, image, opts)
end
-- The credentials the kubelet would try for image, as "key user:password" strings.
local function tried(r, image)
  if not r.response then return { "refused: " .. tostring(r.refused or r.stderr) } end
  local list = {}
  for _, c in ipairs(kubelet.lookup(r.response, image)) do list[#list + 1] = c.key .. " " .. c.username .. ":" .. c.password end
  return list
end
local function answered(r, name)
  return t.ok(r.status == 0 and r.response, name, string.format("status %s, refused: %s, stderr: %s",
    tostring(r.status), tostring(r.refused), tostring(r.stderr)))
end

-- 1. static entries: matched, unmatched, wildcard, port, path, Docker Hub
local r = exec("ghcr.io/org/app")
answered(r, "ghcr.io: a response the kubelet accepts")
t.eq(tried(r, "ghcr.io/org/app"), { "ghcr.io bot:" .. PW.ghcr }, "ghcr.io: its credential")
t.eq({ r.response and r.response.cacheKeyType, r.response and r.response.cacheDuration }, { "Registry" },
  "cacheKeyType Registry by default; no cacheDuration for a static password (defaultCacheDuration applies)")
t.eq(r.stderr, "", "nothing on stderr")
r = exec("elsewhere.example/app")
answered(r, "an image no entry serves is answered")
t.eq(r.stdout, '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","auth":{},"cacheKeyType":"Registry",'
  .. '"kind":"CredentialProviderResponse"}\n', 'with "auth": {}')
r = exec("a.wild.example.test/app")
t.eq(tried(r, "a.wild.example.test/app"), { "*.wild.example.test w:" .. PW.wild }, "a wildcard entry")
t.eq(tried(exec("a.b.wild.example.test/app"), "a.b.wild.example.test/app"), {}, "a '*' is one label")
t.eq(tried(exec("reg.example.test:5000/app"), "reg.example.test:5000/app"), { "reg.example.test:5000 p:" .. PW.port },
  "a port")
t.eq(tried(exec("reg.example.test/app"), "reg.example.test/app"), {}, "no port is not that port")
r = exec("quay.io/team-b/app")
t.eq(r.response and r.response.auth, { ["quay.io/team-a"] = { username = "t", password = PW.team } },
  "Registry: the answer holds the registry's path keys, since the kubelet caches it per registry")
t.eq(tried(r, "quay.io/team-b/app"), {}, "and the kubelet's keyring gives team-b's image none of them")
t.eq(tried(r, "quay.io/team-a/app"), { "quay.io/team-a t:" .. PW.team }, "but team-a's the right one")
r = exec("quay.io/team-b/app", { args = { "--cache-key-type", "Image" } })
t.eq({ r.response and r.response.cacheKeyType, r.response and r.response.auth }, { "Image", {} },
  "--cache-key-type Image: only what matches the image")
t.eq(tried(exec("docker.io/library/ubuntu"), "docker.io/library/ubuntu"), { "index.docker.io hubuser:" .. PW.hub },
  "Docker Hub, by the kubelet's default-registry fallback")
r = exec("ghcr.io/org/app", { args = { "--cache-duration", "5m" } })
t.eq(r.response and r.response.cacheDuration, "5m0s", "--cache-duration: the site default")

-- 2. bad requests and flags: non-zero, a message, nothing on stdout
local function refused(name, want, opts, image)
  local res = exec(image or "ghcr.io/x", opts)
  t.ok(res.status ~= 0 and res.stdout == "" and res.stderr:find(want, 1, true), name,
    string.format("status %s, stdout %q, stderr %q", tostring(res.status), res.stdout, res.stderr))
end
refused("another apiVersion", 'error: unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1beta1"',
  { stdin = '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"x"}' })
refused("malformed JSON", "error: the request is not JSON", { stdin = '{"apiVersion":' })
refused("no image", "error: the request has no image",
  { stdin = '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}' })
refused("empty stdin", "error: the request is not JSON", { stdin = "" })
refused("a bad --cache-key-type", '--cache-key-type: must be "Image", "Registry" or "Global", not "Pod"',
  { args = { "--cache-key-type", "Pod" } })
local help = proc.run { argv = { XCSREG, "run", "credential-provider.lua", "--help" } }
t.eq(help, 0, "--help works like the other scripts'")

-- 3. the other sources
t.eq(tried(exec("registry.example.test/app"), "registry.example.test/app"),
  { "registry.example.test helper-user:fake-helper-secret" }, "credential_helper")
t.eq(tried(exec("cfg.example.test/app"), "cfg.example.test/app"), { "cfg.example.test docker-user:fake-plain-pass" },
  "docker_config")

-- 4. ECR: minted once, kept on disk, the cacheDuration from its expiry
os.execute("rm -rf " .. cache_dir)
reset()
local ECR_IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/app"
r = exec(ECR_IMAGE)
answered(r, "ecr: answered")
local got = tried(r, ECR_IMAGE)[1] or ""
t.ok(got:match("^111122223333%.dkr%.ecr%.eu%-west%-1%.amazonaws%.com AWS:fake%-ecr%-password%-%d+$"),
  "ecr: the simulator's token", got)
t.eq(ops(), "ecr", "one GetAuthorizationToken")
local d = r.response and r.response.duration or 0
t.ok(d <= 43200 - 600 and d > 43200 - 600 - 120, "cacheDuration: 12 h less the 10 min margin",
  r.response and r.response.cacheDuration)
local _, mode = proc.run { argv = { "stat", "-c", "%a", cache_dir } }
t.eq(mode, "700\n", "the cache directory is the runner's only")
local second = exec("111122223333.dkr.ecr.eu-west-1.amazonaws.com/other")
t.eq(tried(second, "111122223333.dkr.ecr.eu-west-1.amazonaws.com/other")[1], got, "a second image: the same token")
t.eq(ops(), "ecr", "from the disk cache: not minted again")
t.ok(second.seconds < 1, "warm answer in under a second", tostring(second.seconds))
r = exec(ECR_IMAGE, { args = { "--cache-duration", "1h" } })
t.eq(r.response and r.response.cacheDuration, "1h0m0s", "--cache-duration caps a longer expiry")
-- another registry's entry never gets this token from the cache
r = exec("999988887777.dkr.ecr.eu-west-1.amazonaws.com/x")
t.eq(ops(), "ecr ecr", "another ECR registry mints its own")
-- past half its lifetime: minted again
r = exec(ECR_IMAGE, { env = with(ENV, { XCSREG_NOW = tostring(os.time() + 7 * 3600) }) })
answered(r, "7 hours later: answered")
t.eq(ops(), "ecr ecr ecr", "7 hours later (past half of 12 h): minted again")
-- corrupted cache files are ignored and replaced
local listing = select(2, proc.run { argv = { "sh", "-c", "ls " .. cache_dir .. "/cred-*.json" } })
for path in listing:gmatch("[^\n]+") do write(path:sub(#tmp + 2), "{garbage") end
r = exec(ECR_IMAGE)
answered(r, "a corrupted cache file: still answered")
t.eq(ops(), "ecr ecr ecr ecr", "a corrupted cache file: minted again")
exec(ECR_IMAGE)
t.eq(ops(), "ecr ecr ecr ecr", "and the file replaced: the next call uses it")
-- a failing source: non-zero, no stdout, the reason on stderr
os.execute("rm -rf " .. cache_dir)
control(AWS, "/_fail", json.encode { op = "ecr", status = 500, type = "ServerException", message = "simulated outage" })
refused("ecr failing: no answer", "ecr: AWS error (ServerException): simulated outage", nil, ECR_IMAGE)

-- 5. GCP
reset()
r = exec("europe-docker.pkg.dev/p/r/app")
t.eq(tried(r, "europe-docker.pkg.dev/p/r/app"), { "europe-docker.pkg.dev oauth2accesstoken:fake-gcp-token-1" }, "gcp")
d = r.response and r.response.duration or 0
t.ok(d <= 3599 - 600 and d > 3599 - 600 - 120, "cacheDuration never past the token's hour", r.response and r.response.cacheDuration)
exec("europe-docker.pkg.dev/p/r/other")
t.eq(ops(), "gcp", "one token from the metadata server for two images")

-- 6. KEP-4412: the pod's ServiceAccount token exchanged for the annotated role
reset()
local WL_IMAGE = "444455556666.dkr.ecr.eu-west-1.amazonaws.com/app"
local ann = { ["xcsreg.io/ecr-role-arn"] = ROLE }
r = exec(WL_IMAGE, { token = TOKEN, annotations = ann })
answered(r, "KEP-4412: answered")
got = tried(r, WL_IMAGE)[1] or ""
t.ok(got:match("^444455556666%.dkr%.ecr%.eu%-west%-1%.amazonaws%.com AWS:fake%-ecr%-password%-%d+$"),
  "KEP-4412: an ECR token", got)
t.eq(ops(), "sts ecr", "STS AssumeRoleWithWebIdentity with the pod's token, then ECR with the role's keys")
t.eq(r.response and r.response.serviceAccountTokenCacheType, "ServiceAccount",
  "serviceAccountTokenCacheType, which the kubelet requires with a token")
exec(WL_IMAGE, { token = TOKEN, annotations = ann })
t.eq(ops(), "sts ecr sts ecr", "a workload's credentials are never served from disk to another pod")
r = exec(WL_IMAGE, { token = TOKEN, annotations = { ["xcsreg.io/ecr-role-arn"] = "arn:aws:iam::123456789012:role/other" } })
t.ok(r.status == 1 and r.stdout == "" and r.stderr:find("AccessDenied", 1, true), "a role the token may not assume: no answer",
  r.stderr)
r = exec(WL_IMAGE, { token = "fake-wrong", annotations = ann })
t.ok(r.status == 1 and r.stdout == "" and r.stderr:find("InvalidIdentityToken", 1, true), "a token STS refuses: no answer",
  r.stderr)
reset()
r = exec(WL_IMAGE)
t.eq({ r.status, r.response and r.response.auth }, { 0, {} }, "no token: the workload entry is not served")
t.eq(ops(), "", "and nothing is asked of AWS")
r = exec(WL_IMAGE, { token = TOKEN })
t.eq(r.response and r.response.auth, {}, "no role annotation and no role_arn: not served")
r = exec("555566667777.dkr.ecr.eu-west-1.amazonaws.com/app", { token = TOKEN })
answered(r, "no annotation: the entry's role_arn")
t.eq(ops(), "sts ecr", "exchanged for role_arn")
r = exec("ghcr.io/org/app", { token = TOKEN, annotations = ann })
t.eq({ tried(r, "ghcr.io/org/app"), r.response and r.response.serviceAccountTokenCacheType },
  { { "ghcr.io bot:" .. PW.ghcr }, "ServiceAccount" }, "a static entry with a token: served, with the cache type")

-- 7. a slow source is stopped below the kubelet's minute
r = exec("slow.example.test/app", { args = { "--timeout", "2" } })
t.ok(r.status == 2 and r.stdout == "" and r.stderr:find("still running after 2 s", 1, true) and r.seconds < 10,
  "--timeout: a stuck helper is stopped, nothing on stdout", string.format("%s %q %s", tostring(r.status), r.stderr, r.seconds))

-- 8. no Kubernetes API server: a kubeconfig pointing at a closed port changes nothing
r = exec("ghcr.io/org/app", { env = with(ENV, { KUBECONFIG = write("kubeconfig", "garbage: [") }) })
answered(r, "a broken kubeconfig does not matter: no API server is contacted")

return t.done()
