-- needs: none
-- credential_helper: the docker credential-helper protocol, with a fake
-- helper (tests/lib/fixtures-sources/docker-credential-xcsreg-test).
local t = require "test"
local helper = require "xcsreg.sources.helper"
local log = require "log"

local fixtures = "tests/lib/fixtures-sources"
local function env_with_path(path)
  return function(name)
    if name == "PATH" then return path end
    return os.getenv(name)
  end
end
local ctx = { now = 1700000000, env = env_with_path(fixtures .. ":" .. os.getenv("PATH")) }
local calls = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/docker-credential-xcsreg-test.log"
local function called_with()
  local f = io.open(calls, "rb")
  local text = f and f:read("a") or ""
  if f then f:close() end
  os.remove(calls)
  return text
end
os.remove(calls)
local program = "docker-credential-xcsreg-test"

local cred = helper.get({ server = "registry.example.test", credential_helper = "xcsreg-test" }, ctx)
t.eq(cred and cred.username, "helper-user", "the helper's Username is the username")
t.ok(cred and cred.password == "fake-helper-secret", "the helper's Secret is the password")
t.eq(cred and cred.source, "credential_helper", "the credential says where it came from")
t.eq(cred and cred.expires_at, nil, "a helper's credential has no known expiry")
t.eq(log.redact("x fake-helper-secret x"), "x *** x", "the secret is registered before it is returned")
t.eq(called_with(), "registry.example.test\n", "the server is sent on stdin")
cred = helper.get({ server = "https://Registry.example.test/v2/", credential_helper = "xcsreg-test" }, ctx)
t.eq(cred and cred.username, "helper-user", "a server given as a URL")
t.eq(called_with(), "registry.example.test\n", "the helper is asked for the host, as docker asks")

cred = helper.get({ server = "docker.io", credential_helper = "xcsreg-test" }, ctx)
t.eq(cred and cred.username, "helper-user", "Docker Hub is found under any of its names")
t.eq(called_with(), "https://index.docker.io/v1/\n", "Docker Hub is asked for as docker does")

t.eq(helper.hostname("https://Registry.Example.test:5000/v2/"), "registry.example.test:5000",
  "hostname drops scheme and path, as docker does")
t.eq(helper.hostname("registry-1.docker.io"), "index.docker.io", "Docker Hub's aliases are one host")

local function fails(want, name, server, helper_name, c)
  t.fails(want, name, helper.get, { server = server, credential_helper = helper_name or "xcsreg-test" }, c or ctx)
end
fails("credential_helper: " .. program .. " has no credentials for missing.example.test: "
  .. "log in with `docker login missing.example.test` (or store them in the helper)",
  "'credentials not found in native keychain' is a clear error", "missing.example.test")
fails("credential_helper: " .. program .. " get failed (exit status 3): helper exploded on crash.example.test",
  "a crashing helper: exit status and its stderr", "crash.example.test")
fails("credential_helper: " .. program .. " printed no credentials for garbage.example.test",
  "output that is not the protocol's JSON", "garbage.example.test")
fails("credential_helper: " .. program .. " has an identity token for token.example.test, which Kubernetes "
  .. "cannot use: log in with a username and password", "an identity token is refused", "token.example.test")
t.eq(log.redact("fake-identity-token"), "***", "even a refused identity token is registered as secret")
fails("credential_helper: docker-credential-nosuch not found in PATH: install it, or fix the helper name",
  "a helper not in PATH", "registry.example.test", "nosuch")
fails("credential_helper: docker-credential-xcsreg-test not found in PATH",
  "PATH is where helpers are looked for", "registry.example.test", nil, { env = env_with_path("/nonexistent") })
fails('credential_helper: "../bin/sh" is not a helper name (docker-credential-NAME)',
  "a helper name cannot reach outside PATH", "registry.example.test", "../bin/sh")

return t.done()
