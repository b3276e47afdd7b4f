-- needs: none
-- What a run leaves to other processes (issue 12): no core dump holding its
-- secrets (item 5).
local t = require "test"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
-- a directory other users can enter (the test directory is root's only)
local mktemp = io.popen("mktemp -d /tmp/xcsreg-harden-process.XXXXXX")
local TMP = mktemp:read("l")
mktemp:close()
assert(os.execute("chmod 755 '" .. TMP .. "'"))

local function write(name, text)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute("chmod 644 '" .. path .. "'"))
  return path
end

-- ---- item 5: no core dumps ----
-- A script that asks a child about its parent, the xcsreg run: the parent's
-- core size limit, and the owner of its /proc directory (root when the
-- process is not dumpable, whoever runs it otherwise).
local probe = write("core-probe.lua", [[
local proc = require "proc"
local status, out = proc.run { argv = { "sh", "-c",
  "grep '^Max core file size' /proc/$PPID/limits | tr -s ' ' | sed 's/ $//'; stat -c 'owner %u' /proc/$PPID/status" } }
io.write(out)
]])
local function core_probe(env)
  -- as user 65534, so that the owner of /proc/PID tells dumpable from not;
  -- from an unlimited core size (this test's own xcsreg has made it 0)
  return proc.run { argv = { "prlimit", "--core=unlimited:", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", XCSREG, "run", probe },
                    env = env }
end
local status, out, err = core_probe { XCSREG_ALLOW_CORE = "" }
t.eq({ status, out, err }, { 0, "Max core file size 0 unlimited bytes\nowner 0\n", "" },
  "core dumps: RLIMIT_CORE is 0 and the process is not dumpable (its /proc files are root's)")
status, out, err = core_probe { XCSREG_ALLOW_CORE = "1" }
t.ok(status == 0 and not out:find("Max core file size 0 0 ", 1, true) and out:find("owner 65534\n", 1, true),
  "core dumps: XCSREG_ALLOW_CORE=1 keeps the limit and the dumpable flag", out .. err)

-- ---- item 6: children do not inherit other registries' passwords ----
-- Each child writes the names of the variables it got (never their values)
-- to a file: a password_command (entry 2), a credential helper (entry 4),
-- an exec plugin. Entry 3's password is in HARDEN_PW_B (not yet read when
-- entry 2's command runs); XCSREG_HARDEN_COPY holds entry 1's file password.
t.secret("fake-harden-pw-a", "harden-pw-a")
t.secret("fake-harden-helper-secret", "harden-helper-secret")
t.secret("fake-harden-exec-token", "harden-exec-token")
local names_of = "env | cut -d= -f1 | grep -E '^(HARDEN_|XCSREG_HARDEN|PATH$)' | sort | tr '\\n' ' '"
local bin = TMP .. "/bin"
assert(os.execute("mkdir -p '" .. bin .. "'"))
write("bin/docker-credential-names", "#!/bin/sh\n" .. names_of .. " > '" .. TMP .. "/helper.names'\n"
  .. [[echo '{"Username": "u", "Secret": "fake-harden-helper-secret"}']] .. "\n")
write("bin/exec-plugin", "#!/bin/sh\n" .. names_of .. " > '" .. TMP .. "/exec.names'\n"
  .. [[echo '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": "fake-harden-exec-token"}}']] .. "\n")
assert(os.execute("chmod 755 '" .. bin .. "/docker-credential-names' '" .. bin .. "/exec-plugin'"))
local pw_file = write("pw-d", t.secret("fake-harden-pw-d", "harden-pw-d") .. "\n")
assert(os.execute("chmod 600 '" .. pw_file .. "'"))
local site = write("site.lua", [[
return { registries = {
  { secret = "d", server = "d.example", username = "u", password_file = "]] .. pw_file .. [[" },
  { secret = "a", server = "a.example", username = "u",
    password_command = { "sh", "-c", "]] .. names_of:gsub('"', '\\"') .. [[ > ]] .. TMP .. [[/cmd.names; echo fake-harden-pw-a" } },
  { secret = "b", server = "b.example", username = "u", password_env = "HARDEN_PW_B" },
  { secret = "c", server = "c.example", credential_helper = "names" },
} }
]])
local kubeconfig = write("exec.kubeconfig", "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
  .. "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
  .. "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
  .. "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: '" .. bin
  .. "/exec-plugin', interactiveMode: Never, env: [{name: HARDEN_EXPLICIT, value: x}]}}}]\n")
local script = write("children.lua", [[
local config = require "xcsreg.config"
local rotation = require "xcsreg.rotation"
local k8s = require "k8s"
local plan = assert(config.load_file(...))
for _, s in ipairs(plan.secrets) do assert(rotation.credentials(s, false, os.time())) end
local c = assert(k8s.client { kubeconfig = select(2, ...), request_timeout = 2, retries = 0 })
c:get("/api/v1/namespaces")
]])
local status, out, err = proc.run { argv = { XCSREG, "run", script, site, kubeconfig }, env = {
  PATH = bin .. ":" .. os.getenv("PATH"), HARDEN_PW_B = t.secret("fake-harden-pw-b", "harden-pw-b"),
  XCSREG_HARDEN_COPY = "fake-harden-pw-d", HARDEN_OTHER = "not a secret" }, timeout = 60 }
local function names(file)
  local f = io.open(TMP .. "/" .. file)
  local s = f and f:read("a")
  if f then f:close() end
  return s
end
t.eq({ status, names("cmd.names") }, { 0, "HARDEN_OTHER PATH " },
  "children: a password_command does not get another entry's password_env, nor an XCSREG_* secret")
t.eq(names("helper.names"), "HARDEN_OTHER PATH ", "children: nor does a credential helper")
t.eq(names("exec.names"), "HARDEN_EXPLICIT HARDEN_OTHER PATH ",
  "children: nor an exec plugin (which gets its kubeconfig env, as client-go gives it)")

os.execute("rm -rf '" .. TMP .. "'")
return t.done()
