-- needs: none
-- docker_config: a docker config.json's credential for a server, found as docker finds it.
local t = require "test"
local dockerconfig = require "xcsreg.sources.docker_config"
local base64 = require "base64"
local json = require "json"
local log = require "log"

local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"
local fixtures = "tests/lib/fixtures-sources"
local ctx = { now = 1700000000, env = function(name)
  if name == "PATH" then return fixtures .. ":" .. os.getenv("PATH") end
  if name == "HOME" then return tmp end
  return os.getenv(name)
end }
local n = 0
local function config(doc)
  n = n + 1
  local path = string.format("%s/docker-config-%d.json", tmp, n)
  local f = assert(io.open(path, "wb"))
  f:write(type(doc) == "string" and doc or json.encode(doc))
  f:close()
  return path
end
local function get(path, server) return dockerconfig.get({ server = server, docker_config = path }, ctx) end
local function check(name, path, server, user, password)
  local cred, err = get(path, server)
  t.ok(cred and cred.username == user and cred.password == password and cred.source == "docker_config",
    name, err or "wrong username or password")
end

local auth = base64.encode("auth-user:fake-auth-pass:with colon")
local plain = config { auths = {
  ["registry.example.test"] = { auth = auth },
  ["https://other.example.test/v2/"] = { username = "plain-user", password = "fake-plain-pass" },
  ["https://index.docker.io/v1/"] = { auth = base64.encode("hub-user:fake-hub-pass") },
  ["exact.example.test"] = { auth = base64.encode("exact-user:fake-exact-pass") },
  ["https://exact.example.test"] = { auth = base64.encode("wrong-user:fake-wrong-pass") },
  ["bad.example.test"] = { auth = "not base64!" },
  ["token.example.test"] = { identitytoken = "fake-identity-token" },
} }
check("auth: base64 of USER:PASSWORD, split at the first colon", plain, "registry.example.test",
  "auth-user", "fake-auth-pass:with colon")
t.eq(log.redact(auth .. " fake-auth-pass:with colon"), "*** ***", "the auth field and the password are secrets")
check("username and password fields; a key with scheme and path matches the host", plain,
  "other.example.test", "plain-user", "fake-plain-pass")
check("a server with scheme and path matches a plain key", plain, "https://registry.example.test/v1/",
  "auth-user", "fake-auth-pass:with colon")
check("Docker Hub's aliases find https://index.docker.io/v1/", plain, "docker.io", "hub-user", "fake-hub-pass")
check("an exact key wins over a key of the same host", plain, "exact.example.test", "exact-user", "fake-exact-pass")
t.fails("docker_config: " .. plain .. " has no entry for nowhere.example.test in auths",
  "a server the file does not have", get, plain, "nowhere.example.test")
t.fails("docker_config: the auth of bad.example.test in " .. plain .. " is not base64 of USER:PASSWORD",
  "an auth field that does not decode", get, plain, "bad.example.test")
t.fails("docker_config: the entry for token.example.test in " .. plain
  .. " has no password (only an identity token, which Kubernetes cannot use)",
  "an identity token alone is refused", get, plain, "token.example.test")

local helpers = config { auths = { ["registry.example.test"] = {} },
  credHelpers = { ["registry.example.test"] = "xcsreg-test", ["broken.example.test"] = "nosuch" } }
check("credHelpers: the host's helper is asked", helpers, "https://registry.example.test", "helper-user",
  "fake-helper-secret")
t.fails("docker_config: " .. helpers .. " names credHelpers 'nosuch': credential_helper: "
  .. "docker-credential-nosuch not found in PATH", "a credHelpers helper that is missing", get, helpers,
  "broken.example.test")
t.fails("docker_config: " .. helpers .. " has no entry for other.example.test in auths",
  "credHelpers applies to its hosts only", get, helpers, "other.example.test")

local store = config { auths = { ["registry.example.test"] = {} }, credsStore = "xcsreg-test" }
check("credsStore: the store's helper is asked", store, "registry.example.test", "helper-user", "fake-helper-secret")
t.fails("docker_config: " .. store .. " uses credsStore 'xcsreg-test': credential_helper: "
  .. "docker-credential-xcsreg-test has no credentials for missing.example.test",
  "what the store does not have", get, store, "missing.example.test")
local both = config { credsStore = "nosuch", credHelpers = { ["registry.example.test"] = "xcsreg-test" } }
check("credHelpers wins over credsStore", both, "registry.example.test", "helper-user", "fake-helper-secret")

local home = config { auths = { ["registry.example.test"] = { username = "home-user", password = "fake-home" } } }
check("~/ is the home directory", "~/" .. home:match("[^/]+$"), "registry.example.test", "home-user", "fake-home")
t.fails("docker_config: cannot read " .. tmp .. "/nosuch.json: No such file or directory",
  "a missing file", get, tmp .. "/nosuch.json", "registry.example.test")
local broken = config("{not json")
t.fails("docker_config: " .. broken .. " is not a JSON object", "a file that is not JSON", get, broken,
  "registry.example.test")

return t.done()
