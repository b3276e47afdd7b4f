-- xcsreg.credprovider and xcsreg.credcache in process: the request as the
-- kubelet's v1 types allow it, Go durations, which entries answer an image
-- under each cache key type (the kubelet's keyring rules), the disk cache's
-- refusals, and the example CredentialProviderConfig of scripts/kubelet/
-- checked as the kubelet validates it and against the example site file.
local t = require "test"
local config = require "xcsreg.config"
local credcache = require "xcsreg.credcache"
local credprovider = require "xcsreg.credprovider"
local json = require "json"
local kubelet = require "kubeletlib"
local proc = require "proc"

local tmp = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/test_credprovider." .. os.time()
assert(os.execute("mkdir -p " .. tmp))
local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

-- 1. requests
local V1 = credprovider.API_VERSION
local function req(t_)
  return json.encode(t_)
end
local r = credprovider.decode_request(kubelet.request("ghcr.io/org/app"))
t.eq(r, { image = "ghcr.io/org/app", annotations = {} }, "the kubelet's request, as Go encodes it")
r = credprovider.decode_request(kubelet.request("ghcr.io/org/app", "fake-sa-token", { ["a.io/role"] = "r" }))
t.eq(r, { image = "ghcr.io/org/app", token = "fake-sa-token", annotations = { ["a.io/role"] = "r" } },
  "KEP-4412's serviceAccountToken and serviceAccountAnnotations")
r = credprovider.decode_request(req { apiVersion = V1, kind = "CredentialProviderRequest", image = "x",
                                      futureField = { 1 } })
t.eq(r and r.image, "x", "an unknown field is ignored, as Kubernetes' decoders do")
local bad = {
  { "{", "the request is not JSON: invalid JSON at line 1, column 1 (byte 0)" },
  { "[]", "the request is not a JSON object" },
  { "null", "the request is not a JSON object" },
  { req { apiVersion = "credentialprovider.kubelet.k8s.io/v1beta1", image = "x" },
    'unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1beta1": this plugin speaks '
      .. "credentialprovider.kubelet.k8s.io/v1 only" },
  { req { image = "x" }, 'unsupported apiVersion "": this plugin speaks credentialprovider.kubelet.k8s.io/v1 only' },
  { req { apiVersion = V1, kind = "CredentialProviderRequest" }, "the request has no image" },
  { req { apiVersion = V1, image = "" }, "the request has no image" },
  { req { apiVersion = V1, image = 5 }, "the request's image is a number, not a string" },
  { req { apiVersion = V1, kind = "Other", image = "x" }, 'the request\'s kind is "Other", not CredentialProviderRequest' },
  { req { apiVersion = V1, image = "x", serviceAccountAnnotations = { a = 1 } },
    'the request\'s serviceAccountAnnotations["a"] is not a string' },
  { req { apiVersion = V1, image = "x", serviceAccountAnnotations = json.array { "a" } },
    "the request's serviceAccountAnnotations is not a map of strings" },
}
for _, c in ipairs(bad) do
  t.fails(c[2], "refused: " .. c[1]:sub(1, 60), credprovider.decode_request, c[1])
end

-- 2. durations, as Go's time.Duration.String writes them and ParseDuration reads them
for _, c in ipairs { { 0, "0s" }, { -5, "0s" }, { 45, "45s" }, { 600, "10m0s" }, { 42600, "11h50m0s" },
                     { 3599, "59m59s" }, { 90061, "25h1m1s" } } do
  t.eq(credprovider.go_duration(c[1]), c[2], "go_duration(" .. c[1] .. ")")
  t.ok(kubelet.parse_go_duration(c[2]) == math.max(c[1], 0), c[2] .. " parses back as Go's ParseDuration")
end

-- 3. which entries answer
local site = write("site.lua", [[
return { registries = {
  { secret = "a", server = "ghcr.io", username = "u", password_env = "CP_A" },
  { secret = "b", server = "*.example.test", username = "u", password_env = "CP_A" },
  { secret = "c", server = "reg.example.org:5000", username = "u", password_env = "CP_A" },
  { secret = "d", server = "quay.io/team-a", username = "u", password_env = "CP_A" },
  { secret = "e", server = "https://index.docker.io/v1/", username = "u", password_env = "CP_A" },
  { secret = "f", server = "https://ghcr.io", username = "other", password_env = "CP_A" },
} }]])
local plan = assert(config.load_file(site, { credentials = false }))
local function keys(image, kind)
  local list = {}
  for _, m in ipairs(credprovider.match(plan, image, kind or "Image")) do list[#list + 1] = m.key end
  return list
end
t.eq(keys("ghcr.io/org/app"), { "ghcr.io" }, "an exact host; a second entry of the same key is not answered")
t.eq(keys("a.example.test/app"), { "*.example.test" }, "a wildcard label")
t.eq(keys("a.b.example.test/app"), {}, "a '*' spans one label only")
t.eq(keys("reg.example.org:5000/app"), { "reg.example.org:5000" }, "the port must match")
t.eq(keys("reg.example.org/app"), {}, "no port is not port 5000")
t.eq(keys("quay.io/team-a/app"), { "quay.io/team-a" }, "a path prefix")
t.eq(keys("quay.io/team-b/app"), {}, "another path")
t.eq(keys("quay.io/team-b/app", "Registry"), { "quay.io/team-a" },
  "Registry: every key of the registry, since the kubelet serves the cached answer to all its images")
t.eq(keys("docker.io/library/ubuntu"), { "index.docker.io" }, "Docker Hub's fallback key")
local hubplan = assert(config.load_file(write("hub.lua", [[
return { registries = {
  { secret = "org", server = "docker.io/myorg", username = "u", password_env = "CP_A" },
  { secret = "hub", server = "https://index.docker.io/v1/", username = "u", password_env = "CP_A" },
} }]]), { credentials = false }))
local function hubkeys(image, kind)
  local list = {}
  for _, m in ipairs(credprovider.match(hubplan, image, kind)) do list[#list + 1] = m.key end
  return list
end
t.eq(hubkeys("docker.io/library/ubuntu", "Image"), { "index.docker.io" }, "Image: the fallback when no key matches")
t.eq(hubkeys("docker.io/myorg/app", "Image"), { "docker.io/myorg" }, "Image: no fallback when one does")
t.eq(hubkeys("docker.io/myorg/app", "Registry"), { "docker.io/myorg", "index.docker.io" },
  "Registry: the fallback key too, for the other Docker Hub images the cached answer will serve")
t.fails("ecr: role_arn and role_annotation are for credential-provider.lua with the pod's ServiceAccount token",
  "setup.lua never mints a workload's role with its own identity", require("xcsreg.sources").get,
  { server = "444455556666.dkr.ecr.eu-west-1.amazonaws.com", ecr = { role_arn = "arn:aws:iam::1:role/x" } },
  { env = function() return nil end })
t.eq(keys("ubuntu:22.04"), { "index.docker.io" }, "a reference with a tag, as a pod spec has it")
t.eq(keys("elsewhere.example/x"), {}, "nothing for an image no entry serves")
t.eq(#keys("elsewhere.example/x", "Global"), 5, "Global: every key")

-- 4. answers, in process: static passwords only for the answered entries; no cluster
local pw = t.secret("fake-credprov-inproc-pw")
local site2 = write("site2.lua", [[
return { registries = {
  { secret = "a", server = "ghcr.io", username = "u", password_file = "]] .. write("pw", pw) .. [[" },
  { secret = "b", server = "other.example", username = "u", password_file = "/nonexistent/never-read" },
} }]])
os.execute("chmod 600 " .. tmp .. "/pw")
local plan2 = assert(config.load_file(site2, { credentials = false }))
local opts = { now = 1700000000, env = os.getenv, cache = false, margin = 600, cache_key_type = "Registry" }
local answer = credprovider.answer(plan2, { image = "ghcr.io/a/b", annotations = {} }, opts)
t.eq(answer, { apiVersion = V1, kind = "CredentialProviderResponse", cacheKeyType = "Registry",
               auth = { ["ghcr.io"] = { username = "u", password = pw } } },
  "the matching entry's password; the other's file is never read")
local text = json.encode(credprovider.answer(plan2, { image = "nothing.example/x", annotations = {} }, opts))
t.eq(text, '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","auth":{},"cacheKeyType":"Registry",'
  .. '"kind":"CredentialProviderResponse"}', 'no entry: "auth": {}')
t.fails("other.example: " .. site2 .. ': registries[2] (secret "b"): password_file: cannot read',
  "an unreadable password of the only answered entry fails the call",
  credprovider.answer, plan2, { image = "other.example/x", annotations = {} }, opts)
opts.cache_duration = 300
local a2 = credprovider.answer(plan2, { image = "ghcr.io/a/b", token = "fake-sa-token", annotations = {} }, opts)
t.eq({ a2.cacheDuration, a2.serviceAccountTokenCacheType }, { "5m0s", "ServiceAccount" },
  "the site default; with a token, the cache type the kubelet requires")
t.ok(kubelet.decode_response(json.encode(a2), V1, true), "the answer decodes strictly as the kubelet's v1 type")
t.eq({ package.loaded.k8s, package.loaded["xcsreg.reconcile"] }, {}, "no Kubernetes client is even loaded")

-- 5. the disk cache
local dir = tmp .. "/cache"
local cache = assert(credcache.open(dir))
local function mode(path)
  local _, out = proc.run { argv = { "stat", "-c", "%a", path } }
  return (out or ""):match("%d+")
end
t.eq(mode(dir), "700", "the cache directory is 0700")
local cred = { username = "AWS", password = t.secret("fake-credprov-disk-pw"), expires_at = 1000 + 43200 }
assert(cache:put("ecr A", cred, 1000))
t.eq(mode(cache:path("ecr A")), "600", "a cache file is 0600")
t.eq(cache:get("ecr A", 2000, 600), { username = "AWS", password = cred.password, expires_at = 44200,
                                      minted_at = 1000 }, "served while fresh")
t.fails("half of the cached credential's lifetime is past", "not served past half its lifetime",
  cache.get, cache, "ecr A", 1000 + 21600, 600)
t.fails("the cached credential expires too soon", "never served within the margin of its expiry",
  cache.get, cache, "ecr A", 44200 - 300, 600)
t.fails("not cached", "another id, another file", cache.get, cache, "ecr B", 2000, 600)
-- a collision (or a copied file): the file says whose it is
local fa = assert(io.open(cache:path("ecr A"), "rb"))
local body = fa:read("a")
fa:close()
write("cache/" .. cache:path("ecr B"):match("[^/]+$"), body)
t.fails("the cache file holds another credential: ignored", "never another registry's credential",
  cache.get, cache, "ecr B", 2000, 600)
for _, garbage in ipairs { "", "{", "[]", '{"version":1}', (body:gsub('"expires_at":%d+', '"expires_at":"soon"')) } do
  write("cache/" .. cache:path("ecr A"):match("[^/]+$"), garbage)
  t.fails("the cache file is not one of ours: ignored", "a corrupted cache file is ignored: " .. garbage:sub(1, 20),
    cache.get, cache, "ecr A", 2000, 600)
end
assert(cache:put("helper X", { username = "u", password = "p-no-expiry" }, 1000))
t.fails("not cached", "a credential without an expiry is not stored", cache.get, cache, "helper X", 1000, 0)
t.eq(credcache.open("none"), false, "--cache-dir none")
os.execute("ln -s /tmp " .. tmp .. "/link")
t.fails("refusing directory " .. tmp .. "/link: it is a symbolic link", "a symlinked cache directory is refused",
  credcache.open, tmp .. "/link")

-- 6. the example CredentialProviderConfig, as the kubelet validates it
local provider, perr = kubelet.provider("scripts/kubelet/credential-provider-config.yaml", "xcsreg")
t.ok(provider, "scripts/kubelet/credential-provider-config.yaml passes validateCredentialProviderConfig's checks", perr)
provider = provider or { matchImages = {}, args = {} }
t.eq({ provider.args[1], provider.args[2], provider.args[3] }, { "run", "credential-provider.lua", "--config" },
  "it runs credential-provider.lua with a site file")
t.ok(provider.tokenAttributes and provider.tokenAttributes.serviceAccountTokenAudience ~= nil,
  "it shows KEP-4412's tokenAttributes")
local example = assert(config.load_file("scripts/kubelet/registries.lua", { credentials = false }))
for _, e in ipairs(example.entries) do
  local key = require("xcsreg.keyring").key(e.server)
  t.ok(kubelet.allowed(provider, key .. "/some/image"), "matchImages covers " .. e.server)
end
t.ok(not kubelet.allowed(provider, "quay.io/some/image"), "and not a registry the site file does not have")
t.ok(not kubelet.allowed(provider, "a.b.dkr.ecr.eu-west-1.amazonaws.com/x"), "a glob spans one label (ECR's)")
for _, m in ipairs { "ghcr.io:port", "ghcr.io/%zz" } do
  local f = write("bad-config.yaml", "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n"
    .. "providers:\n- name: xcsreg\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  matchImages: ['" .. m
    .. "']\n  defaultCacheDuration: 1m\n")
  t.fails("match image is invalid", "the validation refuses matchImages " .. m, kubelet.provider, f, "xcsreg")
end

return t.done()
