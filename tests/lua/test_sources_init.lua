-- needs: none
-- xcsreg.sources: dispatch on the entry's source key, settings checks, and
-- one mint per run per source (counted with the fake credential helper).
local t = require "test"
local sources = require "xcsreg.sources"

local fixtures = "tests/lib/fixtures-sources"
local ctx = { env = function(name)
  if name == "PATH" then return fixtures .. ":" .. os.getenv("PATH") end
  return os.getenv(name)
end }
local calls = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/docker-credential-xcsreg-test.log"
local function count_calls()
  local n = 0
  for _ in io.lines(calls) do n = n + 1 end
  return n
end
os.remove(calls)

local entry = { secret = "s", server = "registry.example.test", credential_helper = "xcsreg-test" }
local first = sources.get(entry, ctx)
t.eq(first and first.username, "helper-user", "get dispatches on the source key")
for _ = 1, 3 do -- three more namespaces, from a copy of the same settings
  local again = sources.get({ secret = "s", server = "registry.example.test", credential_helper = "xcsreg-test" }, ctx)
  t.ok(again == first, "the same source settings get the same credential")
end
t.eq(count_calls(), 1, "one mint serves every use in a run")
sources.get({ server = "docker.io", credential_helper = "xcsreg-test" }, ctx)
t.eq(count_calls(), 2, "another server is another credential")

local missing = { server = "missing.example.test", credential_helper = "xcsreg-test" }
local _, err1 = sources.get(missing, ctx)
local cred, err2 = sources.get(missing, ctx)
t.ok(cred == nil and err1 == err2 and err1:find("has no credentials", 1, true), "a failure is kept for the run too")
t.eq(count_calls(), 3, "a failed mint is not retried in the same run")
sources.reset()
sources.get(entry, ctx)
t.eq(count_calls(), 4, "reset starts a new run")

t.raises("the registry entry names no credential source", "an entry without a source is a caller's mistake",
  sources.get, { server = "x" })
t.raises("a registry entry names two credential sources: ecr and gcp", "two sources are a caller's mistake",
  sources.kind, { ecr = {}, gcp = {} })
t.eq(sources.kind { server = "x", password_env = "X" }, nil, "static sources are not ours")
t.eq(sources.kind { gcp = {} }, "gcp", "kind names the source")

local function check(want, name, e)
  local ok, err = sources.check(e)
  t.eq(ok and "ok" or err, want, name)
end
check("ok", "ecr with region and registry id", { ecr = { region = "eu-west-1", registry_id = "123456789012" } })
check("ok", "ecr with nothing (taken from the server)", { ecr = {} })
check("ok", "gcp", { gcp = {} })
check("ok", "no source at all", { password_env = "X" })
check("ecr.regoin: unknown setting", "a misspelt setting", { ecr = { regoin = "eu-west-1" } })
check("ecr.region: must be a non-empty string", "a setting of the wrong type", { ecr = { region = 1 } })
check("gcp: must be a table", "gcp = true", { gcp = true })
check("credential_helper: must be a non-empty string", "an empty helper name", { credential_helper = "" })
check("docker_config: must be a non-empty string", "docker_config = {}", { docker_config = {} })
check("give one credential source, not credential_helper and ecr", "two sources",
  { credential_helper = "x", ecr = {} })

return t.done()
