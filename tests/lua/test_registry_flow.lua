-- needs: none
-- registry.verify's login steps against a scripted stand-in for http.request:
-- what it asks, in which order, with which credential, and how it reads the
-- answers a real registry gives only rarely (403, 5xx, odd challenges).
local t = require "test"
local log = require "log"

local PASSWORD = "not-a-real-password-flow"
local requests, routes = {}, {}
package.loaded.http = {request = function(req)
  requests[#requests + 1] = req
  -- whether the credential in this request was already a secret when it was sent
  local bearer_token = (req.headers and req.headers.Authorization or ""):match("^Bearer (.*)")
  req.secret_before = log.redact(bearer_token or PASSWORD) == "***"
  local answer = routes[req.url .. (req.headers and req.headers.Authorization and " bearer" or "")]
                 or routes[req.url] or error("unexpected request " .. req.url)
  return table.unpack(answer)
end}
local registry = require "xcsreg.registry"

local function run(name, server, scripted, changes)
  requests, routes = {}, scripted
  local opts = {server = server, username = "u@x", password = PASSWORD}
  for k, v in pairs(changes or {}) do opts[k] = v end
  local outcome, detail = registry.verify(opts)
  t.ok(not tostring(detail):find(PASSWORD, 1, true), name .. ": the detail has no password")
  return outcome, detail
end
local function challenge(value) return {401, {["www-authenticate"] = value}, ""} end
local OK = {200, {}, "{}"}

local V2 = "https://reg.example/v2/"
t.eq({run("basic", "reg.example", {[V2] = challenge('Basic realm="r"')})}, -- the same answer to both
     {"rejected", "reg.example rejected user u@x (HTTP 401)"}, "basic: 401 to the credential is rejected")
t.eq(#requests, 2, "basic: two requests")
t.ok(requests[1].secret_before, "the password was a secret before the first request")
t.eq({requests[1].basic_auth, requests[2].basic_auth}, {nil, {"u@x", PASSWORD}},
     "basic: the first request has no credential, the second has it")
t.eq({requests[2].ca_file, requests[2].insecure, requests[2].timeout, requests[2].max_body},
     {nil, nil, 30, 1048576}, "basic: default options: system CAs, verified, 30 s, 1 MiB")

t.eq({run("options", "reg.example", {[V2] = {403, {}, ""}}, {ca_file = "/ca.pem", insecure = true, timeout = 5})},
     {"unreachable", "reg.example answered HTTP 403"}, "403 before any credential is not a rejection")
t.eq({requests[1].ca_file, requests[1].insecure, requests[1].timeout}, {"/ca.pem", true, 5},
     "ca_file, insecure and timeout are passed on")

local REALM = "https://auth.example/token"
local TOKEN_URL = REALM .. "?service=reg.example&account=u%40x&scope=repository%3Ateam%2Fapp%3Apull"
                        .. "&scope=repository%3Aother%3Apush"
local bearer = challenge('Bearer realm="' .. REALM .. '",service="reg.example",'
                         .. 'scope="repository:team/app:pull repository:other:push"')
t.eq({run("bearer", "reg.example", {[V2] = bearer, [TOKEN_URL] = {200, {}, '{"token":"tok-1","access_token":"tok-2"}'},
                                     [V2 .. " bearer"] = OK})},
     {"accepted", "reg.example accepted user u@x"}, "bearer: accepted")
t.eq(#requests, 3, "bearer: three requests")
t.eq(requests[2].url, TOKEN_URL, "bearer: service, account and each scope escaped in the token request")
t.eq(requests[2].basic_auth, {"u@x", PASSWORD}, "bearer: the realm gets the credential")
t.eq({requests[3].headers, requests[3].basic_auth}, {{Authorization = "Bearer tok-1"}, nil},
     "bearer: /v2/ gets the token, not the password; 'token' wins over 'access_token'")
t.ok(requests[3].secret_before, "bearer: the token was a secret before it was sent")

t.eq({run("access_token", "reg.example", {[V2] = bearer, [TOKEN_URL] = {200, {}, '{"token":"","access_token":"tok-3"}'},
                                           [V2 .. " bearer"] = {403, {}, ""}})},
     {"rejected", "reg.example rejected user u@x (HTTP 403)"}, "bearer: 403 to the token is rejected")
t.eq(requests[3].headers, {Authorization = "Bearer tok-3"}, "bearer: an empty 'token' falls back to 'access_token'")

t.eq({run("realm 403", "reg.example", {[V2] = bearer, [TOKEN_URL] = {403, {}, ""}})},
     {"rejected", "reg.example: the token service at https://auth.example/token rejected user u@x (HTTP 403)"},
     "bearer: 403 at the realm is rejected")
t.eq({run("realm down", "reg.example", {[V2] = bearer, [TOKEN_URL] = {nil, "https://auth.example/...: Could not resolve host"}})},
     {"unreachable", "https://auth.example/...: Could not resolve host"}, "bearer: a realm that cannot be reached")
t.eq({run("down", "reg.example", {[V2] = {nil, "https://reg.example/v2/: Could not resolve host"}})},
     {"unreachable", "https://reg.example/v2/: Could not resolve host"}, "a registry that cannot be reached")
t.eq({run("no token", "reg.example", {[V2] = bearer, [TOKEN_URL] = {200, {}, '{"token":null,"expires_in":60}'}})},
     {"unreachable", "reg.example: the token service at https://auth.example/token answered without a token"},
     "bearer: an answer without a token")
t.eq({run("not json", "reg.example", {[V2] = bearer, [TOKEN_URL] = {200, {}, "[1,"}})},
     {"unreachable", "reg.example: the token service at https://auth.example/token answered without a token"},
     "bearer: an answer that is not JSON")

local minimal = challenge('Bearer realm="https://auth.example/t?x=1&y=2"')
t.eq({run("minimal", "reg.example", {[V2] = minimal, ["https://auth.example/t?x=1&y=2&account=u%40x"] = {200, {}, '{"token":"t"}'},
                                      [V2 .. " bearer"] = OK})},
     {"accepted", "reg.example accepted user u@x"},
     "bearer: no service or scope given, none sent; the realm's query kept")
t.eq({run("no realm", "reg.example", {[V2] = challenge('Bearer service="reg.example"')})},
     {"unreachable", "reg.example: Bearer challenge without an http(s) realm"}, "bearer: no realm")
t.eq({run("plain realm", "reg.example", {[V2] = challenge('Bearer realm="http://auth.example/token"')})},
     {"unreachable", "reg.example: refusing to send the credential over plain HTTP to http://auth.example/token"},
     "bearer: an HTTPS registry's plain-HTTP realm is refused")
t.eq(#requests, 1, "bearer: and nothing is sent there")

t.eq({run("first usable", "reg.example", {[V2] = challenge('Negotiate, Basic realm="r", Bearer realm="' .. REALM .. '"')})},
     {"rejected", "reg.example rejected user u@x (HTTP 401)"}, "the first Basic or Bearer challenge is used")
t.eq(requests[2].url, V2, "which here is Basic")
t.eq({run("no challenge", "reg.example", {[V2] = {401, {}, ""}})},
     {"unreachable", "reg.example answered HTTP 401 with no Basic or Bearer challenge"}, "401 without a challenge")
t.eq({run("only negotiate", "reg.example", {[V2] = challenge("Negotiate")})},
     {"unreachable", "reg.example answered HTTP 401 with no Basic or Bearer challenge"}, "401 with an unusable challenge")
t.eq({run("redirect", "reg.example", {[V2] = {301, {location = "https://elsewhere/"}, ""}})},
     {"unreachable", "reg.example answered HTTP 301"}, "a redirect is not followed")
t.eq({run("open", "reg.example", {[V2] = {200, {}, "{}"}})},
     {"accepted", "reg.example answers without credentials: it is open, so the credential of user u@x was not checked"},
     "an open registry")
t.eq(#requests, 1, "an open registry is asked once")

run("docker hub", "https://index.docker.io/v1/", {["https://registry-1.docker.io/v2/"] = OK})
t.eq(requests[1].url, "https://registry-1.docker.io/v2/", "Docker Hub's key means registry-1.docker.io")
run("http", "http://127.0.0.1:5000/ignored", {["http://127.0.0.1:5000/v2/"] = OK})
t.eq(requests[1].url, "http://127.0.0.1:5000/v2/", "a URL keeps its scheme and port")

-- plain HTTP (#12 item 11): the credential is sent only to an insecure_registry
local PLAIN = "http://127.0.0.1:5000/v2/"
t.eq({run("plain", "http://127.0.0.1:5000", {[PLAIN] = challenge('Basic realm="r"')})},
     {"unreachable", "127.0.0.1:5000: refusing to send the credential of user u@x over plain HTTP, where anyone on "
      .. "the path can read it; set insecure_registry = true for this registry to allow it"},
     "plain HTTP: the credential is not sent")
t.eq({#requests, requests[1].basic_auth}, {1, nil}, "plain HTTP: one request, without the credential")
t.eq({run("plain, insecure", "http://127.0.0.1:5000", {[PLAIN] = challenge('Basic realm="r"'), [PLAIN .. " x"] = OK},
          {insecure = true})},
     {"rejected", "127.0.0.1:5000 rejected user u@x (HTTP 401)"}, "plain HTTP with insecure: the credential is sent")
t.eq(requests[2] and requests[2].basic_auth, {"u@x", PASSWORD}, "... with Basic auth")

return t.done()
