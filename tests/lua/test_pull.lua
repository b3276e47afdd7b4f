-- needs: none
-- xcsreg.pull.check against a scripted stand-in for http.request: which
-- requests it makes (and how few), with which credential, and how it reads
-- every answer, hostile ones included. The real registries are in
-- tests/integration/test_pull_check.lua.
local t = require "test"
local log = require "log"

local PASSWORD = "fake-pull-password"
local TOKEN = "fake-pull-bearer-token"
local requests, server = {}, nil
local batches = {} -- the size of each http.request_all
local function request(req)
  requests[#requests + 1] = req
  return server(req)
end
package.loaded.http = {request = request, request_all = function(list, opts)
  batches[#batches + 1] = #list
  local out = {}
  for i, req in ipairs(list) do out[i] = table.pack(request(req)) end
  return out
end}
local pull = require "xcsreg.pull"
local keyring = require "xcsreg.keyring"

local DIGEST = "sha256:" .. ("ab"):rep(32)
local OCI_INDEX = "application/vnd.oci.image.index.v1+json"
local ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, "
  .. "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"

local function bearer(realm, extra)
  return {["www-authenticate"] = ('Bearer realm="%s",service="reg"%s'):format(realm, extra or "")}
end
local function query(url, name) return url:match("[?&]" .. name .. "=([^&]*)") end
local function unescape(s) return s and (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

-- A registry at https://reg.example with token auth at https://auth.example/token.
-- grants: repository -> true (the user may pull it); manifests: "repo:ref" -> media type
local function token_registry(grants, manifests)
  return function(req)
    local url, auth = req.url, req.headers and req.headers.Authorization
    if url == "https://reg.example/v2/" then return 401, bearer("https://auth.example/token"), "" end
    if url:match("^https://auth.example/token%?") then
      if not (req.basic_auth and req.basic_auth[2] == PASSWORD) then return 401, {}, "" end
      local scope = unescape(query(url, "scope"))
      return 200, {}, ('{"token":"%s|%s"}'):format(TOKEN, scope or "")
    end
    local repo, ref = url:match("^https://reg.example/v2/(.+)/manifests/(.+)$")
    if repo then
      local scope = auth and auth:match("^Bearer " .. TOKEN:gsub("%-", "%%-") .. "|(.*)$")
      if scope ~= "repository:" .. repo .. ":pull" or not grants[repo] then
        return 401, bearer("https://auth.example/token", (',scope="repository:%s:pull",error="insufficient_scope"'):format(repo)),
               '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
      end
      local media = manifests[repo .. ":" .. ref]
      if not media then
        return 404, {["content-type"] = "application/json"},
               '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"' .. ref .. '"}}]}'
      end
      return 200, {["content-type"] = media, ["docker-content-digest"] = DIGEST}, ""
    end
    error("unexpected request " .. url)
  end
end

local kr = assert(keyring.from_secret({["reg.example"] = {username = "u", password = PASSWORD}}, "reg-secret"))
local function by_keyring(ref) return kr:lookup(ref.name) end
local function urls(from)
  local list = {}
  for i = from or 1, #requests do list[#list + 1] = (requests[i].method or "GET") .. " " .. requests[i].url end
  return list
end
-- the request "METHOD URL" (the order of a phase's requests is the images')
local function find(what)
  for _, req in ipairs(requests) do
    if (req.method or "GET") .. " " .. req.url == what then return req end
  end
end

-- ok, with the fewest requests: one challenge, one token per repository, one HEAD per image
requests, batches, server = {}, {}, token_registry({["team/app"] = true, ["team/tool"] = true},
  {["team/app:1"] = OCI_INDEX, ["team/app:2"] = "application/vnd.docker.distribution.manifest.v2+json",
   ["team/tool:latest"] = "application/vnd.oci.image.manifest.v1+json"})
local results, stats = pull.check({"reg.example/team/app:1", "reg.example/team/app:2", "reg.example/team/tool",
                                   "reg.example/team/app:1"}, by_keyring)
t.eq(results[1], {image = "reg.example/team/app:1", state = "ok", secret = "reg-secret", registry = "reg.example",
                  repository = "team/app", reference = "1", media_type = OCI_INDEX, digest = DIGEST,
                  message = "reg.example has team/app:1 (" .. OCI_INDEX .. "), readable by user u"},
     "ok: the whole result")
t.eq({results[2].state, results[3].state, results[4].state}, {"ok", "ok", "ok"}, "ok: every image")
t.eq(urls(), {"GET https://reg.example/v2/",
              "GET https://auth.example/token?service=reg&account=u&scope=repository%3Ateam%2Fapp%3Apull",
              "GET https://auth.example/token?service=reg&account=u&scope=repository%3Ateam%2Ftool%3Apull",
              "HEAD https://reg.example/v2/team/app/manifests/1",
              "HEAD https://reg.example/v2/team/app/manifests/2",
              "HEAD https://reg.example/v2/team/tool/manifests/latest"},
     "one challenge, one token per repository scope, one HEAD per distinct image")
t.eq(batches, {1, 2, 3}, "in phases, each sent at once: the challenge, the tokens, the HEADs")
local head = find("HEAD https://reg.example/v2/team/app/manifests/1")
t.eq(head.headers, {Accept = ACCEPT, Authorization = "Bearer " .. TOKEN .. "|repository:team/app:pull"},
     "the HEAD carries containerd's Accept and the token")
t.eq({requests[1].basic_auth, requests[1].headers, head.basic_auth}, {nil, nil, nil},
     "no credential to /v2/ nor with the token")
t.eq(requests[2].basic_auth, {"u", PASSWORD}, "the token service gets the credential")
t.eq({head.timeout, head.max_body, head.follow_redirects}, {30, 1048576, nil},
     "30 s a request, answers bounded, redirects not followed")
t.eq({stats.images, stats.requests, stats.challenges, stats.tokens, stats.manifests, stats.states.ok},
     {4, 6, 1, 2, 3, 4}, "stats count images and requests")
t.eq(log.redact(TOKEN .. "|repository:team/app:pull"), "***", "the token is a registered secret")

-- denied by scope, not found, uncovered, invalid, in one run
requests, server = {}, token_registry({["team/app"] = true}, {})
results = pull.check({"reg.example/team/secret:1", "reg.example/team/app:gone", "ghcr.io/org/app", "Bad:Ref",
                      "reg.example/team/app@" .. DIGEST}, by_keyring)
t.eq({results[1].state, results[1].secret, results[1].message}, {"denied", "reg-secret",
     "reg.example denied user u pull of team/secret (HTTP 401, insufficient_scope: UNAUTHORIZED: authentication required)"},
     "denied: a token without the scope (the credential logs in fine)")
t.eq({results[2].state, results[2].message}, {"not-found",
     "reg.example has no manifest team/app:gone (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)"},
     "not-found: the registry's own words, from a GET of the same URL")
t.eq(results[3], {image = "ghcr.io/org/app", state = "uncovered", registry = "ghcr.io", repository = "org/app",
                  reference = "latest", message = "no pull secret covers ghcr.io (for ghcr.io/org/app)"},
     "uncovered: nothing asked")
t.eq({results[4].state, results[4].registry, results[4].secret, results[4].message}, {"invalid", nil, nil,
     'invalid image reference "Bad:Ref": repository name ("library/Bad") must be lowercase'}, "invalid")
t.eq({results[5].state, results[5].reference}, {"not-found", DIGEST}, "a digest is what is asked for")
t.eq(urls()[#urls()], "GET https://reg.example/v2/team/app/manifests/" .. DIGEST, "by digest")
for _, r in ipairs(results) do
  t.ok(not r.message:find(PASSWORD, 1, true) and not r.message:find(TOKEN, 1, true), "no secret in: " .. r.message)
end

-- a wrong password is denied at the token service, once per scope
local wrong = assert(keyring.from_secret({["reg.example"] = {username = "u", password = "fake-wrong-pull"}}, "wrong"))
requests = {}
results = pull.check({"reg.example/team/app:1", "reg.example/team/app:2"}, function(ref) return wrong:lookup(ref.name) end)
t.eq({results[1].state, results[1].secret, results[1].message}, {"denied", "wrong",
     "reg.example: the token service at https://auth.example/token rejected user u (HTTP 401)"},
     "denied at the token service")
t.eq(#requests, 2, "a refused token is not asked for again for the same scope (/v2/, one token request)")

-- several credentials: tried in order until one is ok; else the most telling
local two = keyring.new()
assert(two:add({["reg.example"] = {username = "bad", password = "fake-wrong-pull"}}, "first"))
assert(two:add({["reg.example"] = {username = "u", password = PASSWORD}}, "second"))
requests, server = {}, token_registry({["team/app"] = true}, {["team/app:1"] = OCI_INDEX})
results = pull.check({"reg.example/team/app:1", "reg.example/team/app:9"}, function(ref) return two:lookup(ref.name) end)
t.eq({results[1].state, results[1].secret}, {"ok", "second"}, "the second credential pulls when the first is refused")
t.eq({results[2].state, results[2].secret}, {"not-found", "second"}, "not-found wins over denied when none pulls")

-- a check waiting on a token that a later image's check asks for goes on
-- in the round that token came: no round is lost to the images' order
local good_only = keyring.new()
assert(good_only:add({["reg.example"] = {username = "u", password = PASSWORD}}, "second"))
requests, batches, server = {}, {}, token_registry({["team/app"] = true}, {["team/app:1"] = OCI_INDEX, ["team/app:2"] = OCI_INDEX})
results = pull.check({"reg.example/team/app:1", "reg.example/team/app:2"},
                     function(ref) return (ref.reference == "1" and two or good_only):lookup(ref.name) end)
t.eq({results[1].state, results[1].secret, results[2].state, batches}, {"ok", "second", "ok", {1, 2, 2}},
     "the first image's second credential's token, asked by the second image: both HEADs in one round")

-- Basic auth and open registries; Docker Hub's endpoint
server = function(req)
  if req.url == "https://basic.example/v2/" then return 401, {["www-authenticate"] = 'Basic realm="r"'}, "" end
  if req.url:match("^https://basic.example/v2/") then
    if req.basic_auth and req.basic_auth[2] == PASSWORD then return 200, {["content-type"] = OCI_INDEX}, "" end
    return 401, {["www-authenticate"] = 'Basic realm="r"'}, ""
  end
  if req.url == "https://registry-1.docker.io/v2/" then return 200, {}, "" end
  if req.url == "https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04" then
    return 200, {["content-type"] = OCI_INDEX .. "; charset=utf-8"}, ""
  end
  error("unexpected request " .. req.url)
end
local many = keyring.new()
assert(many:add({["basic.example"] = {username = "u", password = PASSWORD},
                 ["https://index.docker.io/v1/"] = {username = "hub", password = PASSWORD}}, "many"))
requests = {}
results = pull.check({"basic.example/app", "ubuntu:22.04"}, function(ref) return many:lookup(ref.name) end)
t.eq({results[1].state, find("HEAD https://basic.example/v2/app/manifests/latest").basic_auth},
     {"ok", {"u", PASSWORD}}, "basic: the HEAD carries the credential")
t.eq({results[2].state, results[2].registry, results[2].media_type, requests[4].url},
     {"ok", "docker.io", OCI_INDEX, "https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04"},
     "Docker Hub: registry-1.docker.io, library/, the key kubectl writes")
t.eq({requests[4].basic_auth, requests[4].headers.Authorization}, {nil, nil}, "open: no credential sent")

-- hostile and broken answers
local function run_one(name, handler, image)
  requests, server = {}, handler
  local r = pull.check({image or "reg.example/team/app:1"}, by_keyring, {timeout = 5})
  t.ok(not r[1].message:find(PASSWORD, 1, true) and not r[1].message:find(TOKEN, 1, true), name .. ": no secret in the message")
  return r[1]
end
local r = run_one("down", function(req) return nil, req.url .. ": Could not resolve host: reg.example" end)
t.eq({r.state, r.message}, {"unreachable", "https://reg.example/v2/: Could not resolve host: reg.example"}, "DNS: unreachable")
requests, server = {}, function(req) return nil, req.url .. ": Connection refused" end
results = pull.check({"reg.example/a", "reg.example/b", "reg.example/c"}, by_keyring)
t.eq({#requests, results[3].state}, {1, "unreachable"}, "a registry that cannot be reached is asked once a run")

r = run_one("huge", function(req) return nil, "response from " .. req.url .. " exceeds 1048576 bytes" end)
t.eq({r.state, r.message}, {"unreachable", "response from https://reg.example/v2/ exceeds 1048576 bytes"}, "a huge answer")

r = run_one("redirect", function(req)
  if req.url == "https://reg.example/v2/" then return 401, bearer("https://auth.example/token"), "" end
  if req.url:match("^https://auth") then return 200, {}, '{"token":"' .. TOKEN .. '"}' end
  return 307, {location = "https://evil.example/steal"}, ""
end)
t.eq({r.state, r.message}, {"unreachable",
     "reg.example answered HTTP 307, a redirect to https://evil.example/steal, not followed"}, "a redirected HEAD")
for _, req in ipairs(requests) do t.ok(not req.url:find("evil", 1, true), "nothing sent to the redirect's host: " .. req.url) end

r = run_one("token redirect", function(req)
  if req.url == "https://reg.example/v2/" then return 401, bearer("https://auth.example/token"), "" end
  return 302, {location = "https://evil.example/"}, ""
end)
t.eq({r.state, r.message}, {"unreachable", "reg.example: the token service at https://auth.example/token answered HTTP 302"},
     "a token service redirecting is not followed")
t.eq(#requests, 2, "and not asked again")

r = run_one("plain realm", function(req)
  if req.url == "https://reg.example/v2/" then return 401, bearer("http://auth.example/token"), "" end
  error("unexpected request " .. req.url)
end)
t.eq({r.state, r.message}, {"unreachable",
     "reg.example: refusing to send the credential over plain HTTP to http://auth.example/token"}, "no credential over plain HTTP")

r = run_one("no challenge", function() return 401, {}, "" end)
t.eq({r.state, r.message}, {"unreachable", "reg.example answered HTTP 401 with no Basic or Bearer challenge"}, "401 without a challenge")

r = run_one("5xx", function(req)
  if req.url == "https://reg.example/v2/" then return 401, bearer("https://auth.example/token"), "" end
  if req.url:match("^https://auth") then return 200, {}, '{"token":"' .. TOKEN .. '"}' end
  return 503, {}, ""
end)
t.eq({r.state, r.message}, {"unreachable", "reg.example answered HTTP 503"}, "a 503")

-- an open /v2/ whose repositories need a token: one renewed challenge; a
-- registry that refuses every token stays bounded
local function open_then_bearer(grant)
  return function(req)
    if req.url == "https://reg.example/v2/" then return 200, {}, "" end
    if req.url:match("^https://auth") then return 200, {}, '{"token":"' .. TOKEN .. '"}' end
    if grant and req.headers.Authorization then return 200, {["content-type"] = OCI_INDEX}, "" end
    return 401, bearer("https://auth.example/token", ',error="invalid_token"'), ""
  end
end
r = run_one("renewed", open_then_bearer(true))
t.eq({r.state, urls()}, {"ok", {"GET https://reg.example/v2/", "HEAD https://reg.example/v2/team/app/manifests/1",
     "GET https://auth.example/token?service=reg&account=u&scope=repository%3Ateam%2Fapp%3Apull",
     "HEAD https://reg.example/v2/team/app/manifests/1"}}, "a 401 to an anonymous HEAD: its challenge, then the token")
r = run_one("endless", open_then_bearer(false))
t.eq({r.state, r.message, #requests}, {"denied",
     "reg.example denied user u pull of team/app (HTTP 401, invalid_token)", 5},
     "a challenge that never ends: denied after one renewal")

r = run_one("digest lie", function(req)
  if req.url == "https://reg.example/v2/" then return 200, {}, "" end
  return 200, {["docker-content-digest"] = "sha256:" .. ("cd"):rep(32)}, ""
end, "reg.example/team/app@" .. DIGEST)
t.eq({r.state, r.message}, {"unreachable", "reg.example answered for team/app@" .. DIGEST
     .. " with the manifest sha256:" .. ("cd"):rep(32)}, "a manifest of another digest")

r = run_one("huge error", function(req)
  if req.url == "https://reg.example/v2/" then return 200, {}, "" end
  if req.method == "HEAD" then return 404, {}, "" end
  t.eq(req.max_body, 65536, "the error body read is bounded")
  return nil, "response exceeds 65536 bytes"
end)
t.eq({r.state, r.message}, {"not-found", "reg.example has no manifest team/app:1 (HTTP 404)"}, "an error body too big to read")

-- options_for: each registry's own TLS options, its token service's too, in one run
local two_regs = keyring.new()
assert(two_regs:add({["reg.example"] = {username = "u", password = PASSWORD},
                     ["basic.example"] = {username = "u", password = PASSWORD}}, "two"))
local token_reg = token_registry({["team/app"] = true}, {["team/app:1"] = OCI_INDEX})
requests, batches, server = {}, {}, function(req)
  if req.url:match("^https://basic.example/") then
    if req.url == "https://basic.example/v2/" then return 200, {}, "" end
    return 200, {["content-type"] = OCI_INDEX}, ""
  end
  return token_reg(req)
end
local asked = {}
results = pull.check({"reg.example/team/app:1", "basic.example/app:1", "reg.example/team/app:1"},
  function(ref) return two_regs:lookup(ref.name) end,
  {ca_file = "/run.pem", options_for = function(name)
    asked[#asked + 1] = name
    if name == "reg.example" then return {ca_file = "/reg.pem", insecure = false} end
  end})
local tls = {}
for _, req in ipairs(requests) do tls[#tls + 1] = req.url:match("//([^/?]*)") .. " " .. tostring(req.ca_file) end
t.eq({results[1].state, results[2].state, tls, asked}, {"ok", "ok",
      {"reg.example /reg.pem", "basic.example /run.pem", "auth.example /reg.pem", "basic.example /run.pem",
       "reg.example /reg.pem"}, {"reg.example", "basic.example"}},
     "options_for: a registry's CA for it and its token service, opts' for the others; asked once a registry")
t.eq(batches, {2, 2, 1}, "both registries' challenges at once, then the token beside Basic's HEAD, then the HEAD it lets")
t.raises("pull.check: options_for must return a table or nil", "options_for returning a string", pull.check,
         {"reg.example/a"}, by_keyring, {options_for = function() return "x" end})

-- misuse raises
t.raises("pull.check: unknown option 'retries'", "an unknown option", pull.check, {}, by_keyring, {retries = 3})
t.raises("pull.check: option 'timeout' must be a number", "a mistyped option", pull.check, {}, by_keyring, {timeout = "5"})
t.raises("pull.check: credentials_for must be a function", "credentials_for", pull.check, {}, {})
t.raises("pull.check: images[2] is not a string", "an image that is not a string", pull.check, {"a", 2}, by_keyring)
t.raises("pull.check: credentials_for must return a list of credentials", "credentials_for returning nothing",
         pull.check, {"a"}, function() end)

return t.done()
