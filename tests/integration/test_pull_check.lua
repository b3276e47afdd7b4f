-- needs: registry
-- pull.check against real docker-registry servers (tests/lib/with-registry):
-- images pushed here over the registry API (blob uploads, OCI and Docker
-- manifests, a multi-arch index checked by digest), then checked with
-- credentials read from .dockerconfigjson payloads through the kubelet's
-- keyring. The token service refuses the user "pull" on restricted/*, so a
-- credential that logs in fine is shown to be denied.
local t = require "test"
local base64 = require "base64"
local dockerconfigjson = require "xcsreg.dockerconfigjson"
local keyring = require "xcsreg.keyring"
local pull = require "xcsreg.pull"
local registry = require "xcsreg.registry"
local push = require "registry_push" -- tests/lib
local push_image, push_index = push.image, push.index

local env = setmetatable({}, {__index = function(_, name)
  return os.getenv("XCSREG_REG_" .. name) or error("XCSREG_REG_" .. name .. " is not set: run under tests/lib/with-registry")
end})
local USER, PASSWORD, CA = env.USER, env.PASSWORD, env.CA
local WRONG_PASSWORD = "fake-wrong-password"

local OCI_MANIFEST, OCI_INDEX = push.OCI_MANIFEST, push.OCI_INDEX
local DOCKER_MANIFEST, DOCKER_LIST = push.DOCKER_MANIFEST, push.DOCKER_LIST

local B, T, O = env.BASIC, env.TOKEN, env.OPEN
push_image(B, "team/app", "1.0", "amd64")
local index, arches = push_index(B, "team/multi", "v1")
push_index(B, "team/dockerlist", "v2", true)
push_image(B, "team/docker", "2", "amd64", true)
push_image(T, "team/app", "1.0", "amd64")
push_image(T, "team/app", "1.1", "amd64")
push_image(T, "restricted/app", "1.0", "amd64")
push_image(O, "team/app", "1.0", "amd64")
t.ok(true, "images pushed over the registry API to the htpasswd, token and open registries")

-- the pull secrets, as Secrets carry them (kubectl's bytes, base64)
local function secret_auths(registries)
  return assert(dockerconfigjson.decode(base64.encode(dockerconfigjson.encode(registries))))
end
local kr = keyring.new()
assert(kr:add(secret_auths{{server = B, username = USER, password = PASSWORD},
                           {server = "https://" .. T .. "/v2/", username = USER, password = PASSWORD}}, "regcred"))
assert(kr:add(secret_auths{{server = T .. "/team/other", username = USER, password = WRONG_PASSWORD}}, "stale"))
assert(kr:add(secret_auths{{server = O, username = USER, password = PASSWORD},
                           {server = env.CLOSED, username = USER, password = PASSWORD},
                           {server = env.FAILING, username = USER, password = PASSWORD},
                           {server = env.PROXIED, username = USER, password = PASSWORD},
                           {server = env.UNTRUSTED, username = USER, password = PASSWORD}}, "others"))
local function credentials_for(ref) return kr:lookup(ref.name) end

local function token_scope_requests(repo)
  local f = assert(io.open(env.TOKEN_LOG))
  local n, pattern = 0, "scope=repository%3A" .. repo:gsub("/", "%%2F") .. "%3Apull "
  for line in f:lines() do
    if line:find(pattern, 1, true) then n = n + 1 end
  end
  f:close()
  return n
end

t.eq(registry.verify{server = T, username = USER, password = PASSWORD, ca_file = CA},
     "accepted", "the token credential logs in fine (what xcsreg checked until now)")

local images = {
  B .. "/team/app:1.0",
  B .. "/team/app:2.0",
  B .. "/team/nothing:1",
  B .. "/team/multi:v1",
  B .. "/team/multi@" .. index.digest,
  B .. "/team/multi@" .. arches[2].digest,
  B .. "/team/multi:v1@" .. index.digest,
  B .. "/team/dockerlist:v2",
  B .. "/team/docker:2",
  T .. "/team/app:1.0",
  T .. "/team/app:1.1",
  T .. "/team/app",
  T .. "/restricted/app:1.0",
  T .. "/team/other:1",
  O .. "/team/app:1.0",
  env.CLOSED .. "/team/app:1.0",
  env.FAILING .. "/team/app:1.0",
  env.PROXIED .. "/team/app:1.0",
  env.UNTRUSTED .. "/team/app:1.0",
  "ghcr.io/org/app:1",
  "ubuntu",
  "Not/Valid",
  B .. "/team/app:1.0",
}
local results, stats = pull.check(images, credentials_for, {ca_file = CA, timeout = 10})
local want = {
  {"ok", "regcred", B .. " has team/app:1.0 (" .. OCI_MANIFEST .. "), readable by user " .. USER},
  {"not-found", "regcred", B .. " has no manifest team/app:2.0 (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)"},
  {"not-found", "regcred", B .. " has no manifest team/nothing:1 (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)"},
  {"ok", "regcred", B .. " has team/multi:v1 (" .. OCI_INDEX .. "), readable by user " .. USER},
  {"ok", "regcred", B .. " has team/multi@" .. index.digest .. " (" .. OCI_INDEX .. "), readable by user " .. USER},
  {"ok", "regcred", B .. " has team/multi@" .. arches[2].digest .. " (" .. OCI_MANIFEST .. "), readable by user " .. USER},
  {"ok", "regcred", B .. " has team/multi@" .. index.digest .. " (" .. OCI_INDEX .. "), readable by user " .. USER},
  {"ok", "regcred", B .. " has team/dockerlist:v2 (" .. DOCKER_LIST .. "), readable by user " .. USER},
  {"ok", "regcred", B .. " has team/docker:2 (" .. DOCKER_MANIFEST .. "), readable by user " .. USER},
  {"ok", "regcred", T .. " has team/app:1.0 (" .. OCI_MANIFEST .. "), readable by user " .. USER},
  {"ok", "regcred", T .. " has team/app:1.1 (" .. OCI_MANIFEST .. "), readable by user " .. USER},
  {"not-found", "regcred", T .. " has no manifest team/app:latest (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)"},
  {"denied", "regcred", T .. " denied user " .. USER .. " pull of restricted/app (HTTP 401, insufficient_scope: "
                        .. "UNAUTHORIZED: authentication required)"},
  -- the stale credential's longer key comes first and is refused a token; regcred's answer is the more telling
  {"not-found", "regcred", T .. " has no manifest team/other:1 (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)"},
  {"ok", "others", O .. " has team/app:1.0 (" .. OCI_MANIFEST .. "), readable by user " .. USER},
}
for i, w in ipairs(want) do
  local r = results[i]
  t.eq({r.image, r.state, r.secret, r.message}, {images[i], w[1], w[2], w[3]}, ("%s: %s"):format(images[i], w[1]))
end
t.eq(results[5].digest, index.digest, "the index by digest: the registry answers that digest")
t.eq(results[4].digest, index.digest, "the tag names the index")

local function like(i, state, secret, piece)
  local r = results[i]
  t.ok(r.state == state and r.secret == secret and r.message:find(piece, 1, true), ("%s: %s"):format(images[i], state),
       t.show(r))
end
like(16, "unreachable", "others", "https://" .. env.CLOSED .. "/v2/: ")
like(17, "unreachable", "others", ": the token service at " .. env.REALM .. " answered HTTP 500")
like(18, "unreachable", "others", ": the token service at " .. env.REALM .. " answered without a token")
like(19, "denied", "others", env.UNTRUSTED .. " denied user " .. USER .. " pull of team/app (HTTP 401")
t.eq({results[20].state, results[20].secret, results[20].registry}, {"uncovered", nil, "ghcr.io"}, "ghcr.io: uncovered")
t.eq({results[21].state, results[21].registry, results[21].repository}, {"uncovered", "docker.io", "library/ubuntu"},
     "ubuntu: Docker Hub, uncovered here (and nothing sent to the network)")
t.eq({results[22].state, results[22].message}, {"invalid",
     'invalid image reference "Not/Valid": repository name ("Valid") must be lowercase'}, "an invalid reference")
t.eq(results[23], results[1], "a repeated image gets the same answer")

t.eq(token_scope_requests("restricted/app"), 1, "one token for restricted/app")
-- tokens: the token registry's team/app, restricted/app, team/other (stale and
-- regcred), and one each for the failing, proxied and untrusted registries
t.eq({stats.images, stats.tokens, stats.challenges}, {#images, 7, 7},
     "one challenge per registry, one token per credential and repository scope")
t.eq(stats.states, {ok = 11, denied = 2, ["not-found"] = 4, unreachable = 3, uncovered = 2, invalid = 1},
     "the states counted")

-- the requests of one registry, over its kept-alive connection
local before = token_scope_requests("team/app")
results, stats = pull.check({T .. "/team/app:1.0", T .. "/team/app:1.1", T .. "/team/app:1.0", T .. "/team/app"},
                            credentials_for, {ca_file = CA})
t.eq({results[1].state, results[2].state, results[3].state, results[4].state}, {"ok", "ok", "ok", "not-found"},
     "three tags of one repository")
t.eq(token_scope_requests("team/app") - before, 1, "one token for team/app, however many of its tags are checked")
t.eq({stats.requests, stats.challenges, stats.tokens, stats.manifests}, {6, 1, 1, 3},
     "GET /v2/, a token, a HEAD per distinct image, a GET for the 404's reason")
t.ok(stats.connects <= 2, "at most one connection to the registry and one to its token service",
     "connects " .. stats.connects)

-- the stale credential: a longer key, tried first; the kubelet goes on to the next
results = pull.check({T .. "/team/other/app:1"}, credentials_for, {ca_file = CA})
t.eq({results[1].state, results[1].secret}, {"not-found", "regcred"},
     "a credential refused by the token service, then the next one (the kubelet's order)")
local only_stale = keyring.from_secret(secret_auths{{server = T, username = USER, password = WRONG_PASSWORD}}, "stale")
results = pull.check({T .. "/team/app:1.0"}, function(ref) return only_stale:lookup(ref.name) end, {ca_file = CA})
t.eq({results[1].state, results[1].secret, results[1].message}, {"denied", "stale",
     T .. ": the token service at " .. env.REALM .. " rejected user " .. USER .. " (HTTP 401)"},
     "a wrong password is denied at the token service")

-- TLS: a CA that did not sign the certificate
results = pull.check({B .. "/team/app:1.0"}, credentials_for, {ca_file = env.OTHER_CA})
t.ok(results[1].state == "unreachable" and results[1].message:find("certificate", 1, true),
     "a certificate the CA did not sign: unreachable", results[1].message)

for _, r in ipairs(results) do
  t.ok(not r.message:find(PASSWORD, 1, true) and not r.message:find(WRONG_PASSWORD, 1, true),
       "no password in: " .. r.image)
end
return t.done()
