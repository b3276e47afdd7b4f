-- needs: apisim xnat registry
-- status.lua's preflight of XNAT's commands (#16): the image of every
-- command the XNAT simulator lists (setup and wrapup types, disabled
-- wrappers, a private command, a wrapper's via-setup-command), checked
-- against real registries (tests/lib/with-registry) with the Secrets the
-- namespace's default ServiceAccount lists: ok, denied, not-found,
-- uncovered, unreachable, per command. XNAT down: the error names the
-- call, the Kubernetes report is still printed, exit 1.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"
local push = require "registry_push"
local x = require "xnatctl"

local function env(name) return assert(os.getenv("XCSREG_REG_" .. name), "run under with-registry") end
local B, T, CLOSED, CA = env("BASIC"), env("TOKEN"), env("CLOSED"), env("CA")
push.image(B, "team/app", "1.0", "amd64")
push.image(T, "team/app", "1.0", "amd64")
push.image(T, "restricted/app", "1.0", "amd64")

local function command(id, name, image, type_, wrappers, visibility)
  return { id = id, name = name, version = "1.0", image = image, type = type_, visibility = visibility,
           xnat = wrappers or json.array() }
end
local COMMANDS = {
  command(1, "dcm2niix-bids", B .. "/team/app:1.0", "docker",
    { { id = 11, name = "dcm2niix-session", contexts = { "xnat:imageSessionData" },
        ["external-inputs"] = { { name = "session", type = "Session", ["via-setup-command"] = "quay.example.test/setup/tool:3:prep" } } } }),
  command(2, "restricted-app", T .. "/restricted/app:1.0", "docker", { { id = 12, name = "restricted-scan" } }),
  command(3, "old-tag", B .. "/team/app:9.9", "docker", { { id = 13, name = "old-tag-scan" } }),
  command(4, "setup-tool", T .. "/team/app:1.0", "docker-setup"),
  command(5, "wrapup-tool", "quay.example.test/team/app:1", "docker-wrapup"),
  command(6, "private-app", CLOSED .. "/team/app:1", "docker", { { id = 16, name = "private-scan" } }, "private"),
}
x.seed {
  server = { id = 1, name = "k8s", backend = "kubernetes", ["swarm-mode"] = false },
  commands = COMMANDS,
  enabled = { ["11"] = true, ["13"] = true },
  projects = { ["11"] = { "P1", "P2" } },
}

lib.reset()
lib.namespace("xnat")
local function site_file(name, xnat_extra)
  return lib.write(name, string.format([[
return {
  namespaces = { "xnat" },
  registries = {
    { secret = "basic", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
    { secret = "token", server = %q, username = %q, password_env = "REG_PW", registry_ca_file = %q },
    { secret = "closed", server = %q, username = %q, password_env = "REG_PW" },
  },
  xnat = %s,
}]], B, env("USER"), CA, T, env("USER"), CA, CLOSED, env("USER"), x.site_table(xnat_extra)))
end
local site = site_file("xnat-status-site.lua")
t.eq(lib.setup({ "--config", site }, { env = { REG_PW = env("PASSWORD"), XNAT_PW = x.ADMIN_PASSWORD } }), 0,
  "setup.lua wrote the Secrets (hubs not managed: XNAT untouched)")
t.eq(x.requests("^[A-Z]+ /xapi"), {}, "setup.lua without xnat.hubs does not call XNAT")

local function run_status(xnat_pw, ...)
  local st, out, err = proc.run { argv = { lib.xcsreg, "run", "status.lua", ... },
    env = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp, XNAT_PW = xnat_pw }, timeout = 120 }
  assert(st, out)
  return st, out, err
end

x.reset_log()
local code, out, err = run_status(x.ADMIN_PASSWORD, "--config", site, "-o", "json")
local doc = json.decode(out) or {}
t.eq(code, 1, "-o json: commands whose images will not pull: exit 1", err)
local xn = doc.xnat or {}
t.eq({ xn.url, xn.backend, xn.ok }, { x.url, "kubernetes", false }, "xnat: its url and backend")
local got = {}
for i, c in ipairs(xn.commands or {}) do got[i] = { c.command, c.type, c.image, c.state, c.secret } end
t.eq(got, {
  { "dcm2niix-bids", "docker", COMMANDS[1].image, "ok", "basic" },
  { "restricted-app", "docker", COMMANDS[2].image, "denied", "token" },
  { "old-tag", "docker", COMMANDS[3].image, "not-found", "basic" },
  { "setup-tool", "docker-setup", COMMANDS[4].image, "ok", "token" },
  { "wrapup-tool", "docker-wrapup", COMMANDS[5].image, "uncovered", json.null },
  { "private-app", "docker", COMMANDS[6].image, "unreachable", "closed" },
  { "dcm2niix-bids", "setup/wrapup of dcm2niix-bids", "quay.example.test/setup/tool:3", "uncovered", json.null },
}, "every command's image, setup/wrapup and private ones included, and a wrapper's setup image: state and Secret")
local c1, c2 = (xn.commands or {})[1] or {}, (xn.commands or {})[2] or {}
t.eq({ c1.enabledForSite, c1.projects, c2.enabledForSite }, { true, { "P1", "P2" }, false },
  "enabled for the site and in which projects; a disabled one still checked")
t.eq({ c1.namespace, c1.serviceAccount, c1.registry, c1.commandId }, { "xnat", "default", B, 1 },
  "each row: namespace, ServiceAccount, registry, command id")
t.eq((xn.commands or {})[7] and xn.commands[7].setupOf, "dcm2niix-bids", "the setup image names its command")
local named = false
for _, p in ipairs(doc.problems or {}) do
  named = named or p:find("command restricted-app: image " .. COMMANDS[2].image .. ": denied", 1, true) ~= nil
end
t.ok(named, "problems: \"command NAME: image IMAGE: denied\"", json.encode(doc.problems or {}))
t.eq(x.count_auth("basic"), 1, "one Basic login for the whole check")
t.eq(x.requests("^POST /xapi"), {}, "status.lua writes nothing to XNAT")

code, out = run_status(x.ADMIN_PASSWORD, "--config", site)
t.eq(code, 1, "text: exit 1")
t.ok(out:find("XNAT " .. x.url .. ": backend kubernetes, 2 of 7 command image checks ok", 1, true) ~= nil,
  "text: XNAT's line", out)
t.ok(out:find("COMMAND  ", 1, true) ~= nil and out:find("\nrestricted-app ", 1, true) ~= nil, "text: a commands table", out)
t.ok(out:find("command old-tag: image " .. COMMANDS[3].image .. ": not-found", 1, true) ~= nil, "text: the problem line", out)
t.ok(out:find("yes (P1,P2)", 1, true) ~= nil, "text: enabled, with its projects", out)
code, out = run_status(x.ADMIN_PASSWORD, "--config", site, "-q")
t.eq(out:find("\nsetup-tool ", 1, true), nil, "-q: a command that pulls is not listed")

-- only commands that pull: exit 0
local PLAIN = command(7, "plain", B .. "/team/app:1.0", "docker")
x.seed { server = { id = 1, backend = "kubernetes" }, commands = { PLAIN, COMMANDS[4] } }
code, out = run_status(x.ADMIN_PASSWORD, "--config", site)
t.eq(code, 0, "commands that all pull: exit 0", out)
t.ok(out:find("backend kubernetes, 2 of 2 command image checks ok", 1, true) ~= nil, "... said", out)

-- a Swarm backend: each row names the hub of its registry, if any
x.seed { server = { id = 1, backend = "swarm", ["swarm-mode"] = true }, commands = { PLAIN, COMMANDS[5] },
         hubs = { { id = 1, name = "Docker Hub", url = "https://index.docker.io/v1/" },
                  { id = 2, name = "basic", url = B, username = "u", password = "old-hub-fake-pw-9" } } }
code, out = run_status(x.ADMIN_PASSWORD, "--config", site, "-o", "json")
doc = json.decode(out) or {}
local hubs = {}
for i, c in ipairs(doc.xnat and doc.xnat.commands or {}) do hubs[i] = c.hub end
t.eq({ doc.xnat and doc.xnat.backend, hubs }, { "swarm", { B, json.null } }, "swarm: the hub matching each image's registry")

-- XNAT down: the Kubernetes report still printed, the error names the call, exit 1
x.fail("down")
code, out, err = run_status(x.ADMIN_PASSWORD, "--config", site)
t.eq(code, 1, "XNAT down: exit 1")
t.ok(err:find("GET /xapi/docker/server", 1, true) and err:find("HTTP 503", 1, true), "... the call and status named", err)
t.ok(out:find("NAMESPACE  SECRET", 1, true) ~= nil, "... the Secrets' table still printed", out)
code, out = run_status(x.ADMIN_PASSWORD, "--config", site, "-o", "json")
x.fail("none")
t.ok(code == 1 and out:find('"error": "XNAT', 1, true) ~= nil, "-o json: xnat.error", out)

-- a wrong password: 401 and the user named, never the password
code, out, err = run_status("xnat-wrong-fake-pw", "--config", site)
t.eq(code, 1, "a wrong XNAT password: exit 1")
t.ok(err:find("HTTP 401", 1, true) and err:find("user admin", 1, true), "... 401, the user named", err)
t.eq((out .. err):find("xnat-wrong-fake-pw", 1, true), nil, "... never the password")
return t.done()
