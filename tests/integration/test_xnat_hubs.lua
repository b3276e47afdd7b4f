-- needs: apisim xnat
-- setup.lua's XNAT step (#16): image hubs upserted after the Secrets, on the
-- XNAT simulator (tests/xnatsim): created, updated in place (same id and
-- name, matched on url, bare host), unchanged (no write), the default hub
-- kept, one Basic login a run; on Kubernetes hubs are left alone; XNAT down,
-- a wrong password or a missing role: a clear error, exit 1, the Secrets
-- still written and no hub's password blanked.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local lib = require "setuplib"
local x = require "xnatctl"
local json = require "json"
local json_null = json.null

local GHCR, HARBOR, HUB = "ghcr.example.test", "https://harbor.example.test:8443", "https://index.docker.io/v1/"
local PW = { GHCR_PW = "ghcr-fake-hub-pw-1", HARBOR_PW = "harbor-fake-hub-pw", HUB_PW = "dockerhub-fake-hub-pw",
             XNAT_PW = x.ADMIN_PASSWORD }
local state_file = lib.tmp .. "/xnat-hubs-test.json"
os.remove(state_file)

local function site(xnat_extra, name)
  return lib.write(name or "xnat-hubs-site.lua", string.format([[
return {
  namespaces = { "xnat" },
  registries = {
    { secret = "ghcr", server = %q, username = "xnat-bot", password_env = "GHCR_PW" },
    { secret = "harbor", server = %q, username = "robot$xnat", password_env = "HARBOR_PW" },
    { secret = "hub", server = %q, username = "hubuser", password_env = "HUB_PW", email = "ops@example.org" },
  },
  xnat = %s,
}]], GHCR, HARBOR, HUB, x.site_table(xnat_extra or string.format("hubs = true, state_file = %q", state_file))))
end

local function env(over)
  local e = {}
  for k, v in pairs(PW) do e[k] = v end
  for k, v in pairs(over or {}) do e[k] = v end
  return e
end

local function seed(backend, users)
  x.seed {
    server = { id = 1, name = "swarm", host = "tcp://swarm:2376", backend = backend, ["swarm-mode"] = backend == "swarm" },
    hubs = {
      { id = 1, name = "Docker Hub", url = HUB, username = json_null, password = json_null, email = json_null, token = json_null },
      { id = 5, name = "GHCR", url = GHCR, username = "old-user", password = "old-hub-fake-pw-9", email = json_null,
        token = json_null },
    },
    next_hub = 6,
    users = users,
  }
  x.reset_log()
end

lib.reset()
lib.namespace("xnat")
seed("swarm")
local file = site()
local code, out, err = lib.setup({ "--config", file }, { env = env() })
t.eq(code, 0, "swarm: exit 0", err)
t.ok(out:find("secret/ghcr created", 1, true) and out:find("serviceaccount/default configured", 1, true),
  "the Secrets first", out)
t.ok(out:find("xnat hub/ghcr.example.test configured\n", 1, true) ~= nil, "an existing hub of the url: configured", out)
t.ok(out:find("xnat hub/harbor.example.test:8443 created\n", 1, true) ~= nil,
  "a new hub, its url the bare host Swarm matches", out)
t.ok(out:find("xnat hub/https://index.docker.io/v1/ configured\n", 1, true) ~= nil, "Docker Hub's default hub", out)
local st = x.state()
local ghcr, harbor, hub = x.hub(GHCR), x.hub("harbor.example.test:8443"), x.hub(HUB)
t.eq({ ghcr.id, ghcr.name, ghcr.username, ghcr.password == PW.GHCR_PW, ghcr.token },
  { 5, "GHCR", "xnat-bot", true, json_null }, "updated in place: same id and name, new user and password, no token")
t.eq({ harbor and harbor.username, harbor and harbor.password == PW.HARBOR_PW }, { "robot$xnat", true },
  "created with its user and password")
t.eq({ hub.id, st.default_hub, hub.username, hub.password == PW.HUB_PW, hub.email }, { 1, 1, "hubuser", true,
  "ops@example.org" }, "the default hub is updated, still id 1 and the default")
t.eq(#st.hubs, 3, "no hub deleted nor duplicated")
t.eq(x.requests("^DELETE /xapi"), {}, "no DELETE")
t.eq(x.count_auth("basic"), 1, "one Basic login a run; the rest with XNAT's session")
t.eq(x.requests("^DELETE /data/JSESSION"), { "DELETE /data/JSESSION" }, "the session ended")
t.eq(x.requests("^POST /xapi"), { "POST /xapi/docker/hubs/5", "POST /xapi/docker/hubs", "POST /xapi/docker/hubs/1" },
  "updates by id, a create, no ?default")
t.eq(x.requests("/ping$"), { "GET /xapi/docker/hubs/5/ping", "GET /xapi/docker/hubs/6/ping", "GET /xapi/docker/hubs/1/ping" },
  "each hub written is verified with its ping")

-- again: nothing changed, nothing written
x.reset_log()
code, out = lib.setup({ "--config", file }, { env = env() })
t.eq(code, 0, "again: exit 0")
t.ok(out:find("xnat hub/ghcr.example.test unchanged\n", 1, true) and out:find("xnat hub/harbor.example.test:8443 "
  .. "unchanged\n", 1, true) and out:find("xnat hub/https://index.docker.io/v1/ unchanged", 1, true), "all unchanged", out)
t.eq(x.requests("^POST /xapi"), {}, "unchanged: no write to XNAT")

-- a hub changed behind xcsreg's back (what can be read differs): updated again
local h5 = x.hub(GHCR)
x.seed((function()
  local s = x.state()
  for _, h in ipairs(s.hubs) do if h.id == 5 then h.username, h.password = "someone", json_null end end
  return s
end)())
x.reset_log()
code, out = lib.setup({ "--config", file }, { env = env() })
t.ok(code == 0 and out:find("xnat hub/ghcr.example.test configured\n", 1, true) ~= nil, "a hub changed in XNAT: configured", out)
t.eq({ x.hub(GHCR).username, x.hub(GHCR).password == PW.GHCR_PW, x.hub(GHCR).id }, { "xnat-bot", true, h5.id },
  "... back to the wanted user and password")

-- a new static password: the Secret is configured, the hub too, in the same run
x.reset_log()
code, out = lib.setup({ "--config", file }, { env = env { GHCR_PW = "ghcr-fake-hub-pw-2" } })
t.ok(code == 0 and out:find("secret/ghcr configured", 1, true) and out:find("xnat hub/ghcr.example.test configured", 1, true),
  "a changed password: Secret and hub configured in the same run", out)
t.ok(x.hub(GHCR).password == "ghcr-fake-hub-pw-2", "... the hub has the new password")

-- a user without the ContainerManager role: 403 names the role; the
-- Secrets are done; no hub loses its password
seed("swarm", { admin = { password = x.ADMIN_PASSWORD, roles = {} } })
lib.reset()
lib.namespace("xnat")
os.remove(state_file)
code, out, err = lib.setup({ "--config", file }, { env = env() })
t.eq(code, 1, "no ContainerManager role: exit 1")
t.ok(err:find("HTTP 403", 1, true) and err:find("ContainerManager", 1, true) and err:find("POST /xapi/docker/hubs/5", 1, true),
  "... the call, the status and the role named", err)
t.ok(lib.get("Secret", "xnat", "ghcr") ~= nil and out:find("secret/ghcr created", 1, true) ~= nil,
  "... the Secrets are written", out)
t.eq(x.hub(GHCR).password, "old-hub-fake-pw-9", "... the hub keeps its password")

-- XNAT down: the Kubernetes work is done, the error says which call
seed("swarm")
x.fail("down")
lib.reset()
lib.namespace("xnat")
code, out, err = lib.setup({ "--config", file }, { env = env() })
x.fail("none")
t.eq(code, 1, "XNAT down: exit 1")
t.ok(err:find("GET /xapi/docker/server", 1, true) and err:find("HTTP 503", 1, true) and err:find(x.url, 1, true),
  "... the error names XNAT, the call and the status", err)
t.ok(lib.get("Secret", "xnat", "ghcr") ~= nil, "... the Secrets are written anyway")

-- a wrong XNAT password: 401, the user named, no password shown
x.reset_log()
code, out, err = lib.setup({ "--config", file }, { env = env { XNAT_PW = "xnat-wrong-fake-pw" } })
t.eq(code, 1, "a wrong XNAT password: exit 1")
t.ok(err:find("HTTP 401", 1, true) and err:find("user admin", 1, true), "... 401 and the user named", err)
t.eq(err:find("xnat-wrong-fake-pw", 1, true), nil, "... never the password")

-- Kubernetes backend: hubs are not used, so not written
seed("kubernetes")
code, out = lib.setup({ "--config", file }, { env = env() })
t.eq(code, 0, "kubernetes: exit 0")
t.ok(out:find("xnat: backend kubernetes: image hubs are not used there, not managed", 1, true) ~= nil, "... said", out)
t.eq(x.requests("^POST /xapi"), {}, "... no hub written")
t.eq(x.hub(GHCR).password, "old-hub-fake-pw-9", "... the hub as it was")

-- hubs = "always": managed on Kubernetes too; a list: only those registries
x.reset_log()
code, out = lib.setup({ "--config", site(string.format('hubs = { %q }, state_file = %q', GHCR, state_file), "xnat-hubs-list.lua") },
  { env = env() })
t.eq(code, 0, "hubs = { server }: exit 0")
t.eq(x.requests("^POST /xapi"), {}, "... on Kubernetes, a list does not force hubs")
code, out = lib.setup({ "--config", site(string.format('hubs = "always", state_file = %q', state_file), "xnat-hubs-always.lua") },
  { env = env() })
t.ok(code == 0 and out:find("xnat hub/ghcr.example.test configured", 1, true) ~= nil, "hubs = \"always\": managed on Kubernetes", out)

-- site file checks: exit 2 before anything is contacted
local bad = lib.write("xnat-bad.lua", 'return { namespaces = { "xnat" }, registries = { { secret = "s", server = "r.example", '
  .. 'username = "u", password_env = "X" } }, xnat = { url = "http://xnat.example", username = "u", password_env = "P" } }')
code, _, err = lib.setup({ "--config", bad })
t.ok(code == 2 and err:find("xnat.url: must be an https:// URL", 1, true) ~= nil, "an http:// XNAT url: exit 2", err)
bad = lib.write("xnat-bad2.lua", 'return { namespaces = { "xnat" }, registries = { { secret = "s", server = "r.example", '
  .. 'username = "u", password_env = "X" } }, xnat = { url = "https://xnat.example", username = "u", password_env = "P", '
  .. 'hubs = { "other.example" } } }')
code, _, err = lib.setup({ "--config", bad })
t.ok(code == 2 and err:find('xnat.hubs[1]: "other.example" is no registry\'s server', 1, true) ~= nil,
  "a hub for no registry: exit 2", err)
return t.done()
