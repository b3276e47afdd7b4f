-- No secret in any process's argv while setup.lua runs (what `ps` shows every
-- user), whatever the password's source; and none in an environment but an
-- env-sourced one. A sampler reads /proc/*/cmdline and environ all along.
-- needs: apisim
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"

local fixtures = dir .. "/../lib/secret-ps"
local work = lib.tmp .. "/secret-ps"
assert(proc.run { argv = { "rm", "-rf", work } } == 0 and proc.run { argv = { "mkdir", "-p", work } } == 0)

-- One secret per source, registered for tests/run's scan and for the sampler.
local secrets = {
  command = t.secret("fake-ps-command-Pc7", "ps-command"),
  helper = t.secret("fake-ps-helper-Hh4", "ps-helper"),
  stdin = t.secret("fake-ps-stdin-Si2", "ps-stdin"),
  env = t.secret("fake-ps-env-Ev9", "ps-env"),
  file = t.secret("fake-ps-file-Fl3", "ps-file"),
  flag = t.secret("fake-ps-flag-Fg5", "ps-flag"),
}
local registry = lib.write("secret-ps/registry.txt", (function()
  local lines = {}
  for name, value in pairs(secrets) do lines[#lines + 1] = "ps-" .. name .. " " .. value .. "\n" end
  return table.concat(lines)
end)())
local command_pw = lib.write("secret-ps/command.pw", secrets.command .. "\n")
local helper_pw = lib.write("secret-ps/helper.pw", secrets.helper)
local file_pw = lib.write("secret-ps/file.pw", secrets.file .. "\n")
local site = lib.write("secret-ps/site.lua", string.format([[
return {
  namespaces = { "ps" },
  registries = {
    { secret = "command", server = "command.example.test", username = "u", password_command = { %q, %q } },
    { secret = "helper", server = "helper.example.test", credential_helper = "xcsreg-ps" },
    { secret = "env", server = "env.example.test", username = "u", password_env = "PS_ENV_PW" },
    { secret = "file", server = "file.example.test", username = "u", password_file = %q },
  },
}]], fixtures .. "/password-command", command_pw, file_pw))
local env = { PS_ENV_PW = secrets.env, XCSREG_PS_HELPER_SECRET = helper_pw,
  PATH = fixtures .. ":" .. os.getenv("PATH") }

-- Runs fn while the sampler watches -> the processes it saw.
local function watched(label, fn)
  local files = {}
  for _, f in ipairs { "ready", "stop", "out" } do files[f] = work .. "/" .. label .. "." .. f end
  local started = proc.run { argv = { "sh", "-c", 'python3 "$@" >/dev/null 2>&1 &', "sh", fixtures .. "/sampler.py",
    "--registry", registry, "--ready", files.ready, "--stop", files.stop, "--out", files.out } }
  local wait = 'for _ in $(seq 400); do [ -e "$1" ] && exit 0; sleep 0.05; done; exit 1'
  assert(started == 0 and proc.run { argv = { "sh", "-c", wait, "sh", files.ready } } == 0, "the sampler did not start")
  local results = table.pack(fn())
  assert(io.open(files.stop, "w")):close()
  assert(proc.run { argv = { "sh", "-c", wait, "sh", files.out } } == 0, "the sampler did not finish")
  return json.decode(assert(io.open(files.out)):read("a")), table.unpack(results, 1, results.n)
end

-- The programs seen (a script's too, which runs as "sh SCRIPT"), and
-- "program: NAMES" once for each program whose argv holds a registered secret.
local function summary(seen)
  local programs, hits, listed = {}, {}, {}
  for _, p in ipairs(seen) do
    programs[p.program] = true
    if p.args[2] then programs[p.args[2]:match("[^/]*$")] = true end
    local hit = p.program .. ": " .. table.concat(p.argv_secrets, ",")
    if #p.argv_secrets > 0 and not listed[hit] then
      listed[hit] = true
      hits[#hits + 1] = hit
    end
  end
  table.sort(hits)
  return programs, hits
end
local function saw_setup(seen)
  for _, p in ipairs(seen) do
    if table.concat(p.args, " "):find("run setup.lua", 1, true) then return true end
  end
  return false
end

-- The processes whose environment holds a secret of this test other than
-- the env-sourced one (xcsreg got it in its environment, and its children
-- inherit that, as with any program).
local function environ_leaks(seen)
  local leaks = {}
  for _, p in ipairs(seen) do
    for _, name in ipairs(p.environ_secrets) do
      if name:find("^ps%-") and name ~= "ps-env" then leaks[#leaks + 1] = p.program .. ": " .. name end
    end
  end
  table.sort(leaks)
  return leaks
end

lib.reset()
lib.namespace("ps")

-- (a) password_command, a credential helper, (c) env, (d) file, in one run
local seen, status, out, err = watched("site", function()
  return lib.setup({ "--config", site }, { env = env })
end)
t.eq({ status, err }, { 0, "" }, "setup.lua with the four sources succeeds")
t.ok(out:find("secret/helper created", 1, true) ~= nil, "the credential helper's Secret is written", out)
local programs, argv_hits = summary(seen)
t.ok(saw_setup(seen), "the sampler saw xcsreg run setup.lua")
t.ok(programs["password-command"] and programs["docker-credential-xcsreg-ps"],
  "the sampler saw the password_command and the credential helper run")
t.eq(argv_hits, {}, "no secret in any argv: password_command, credential helper, env, file")
t.eq(environ_leaks(seen), {}, "no environment holds a secret but the env-sourced one")

-- (b) stdin
seen, status, out, err = watched("stdin", function()
  return lib.setup({ "-n", "ps", "--secret-name", "stdin", "--docker-server", "stdin.example.test",
    "--docker-username", "u", "--docker-password-stdin" }, { env = env, stdin = secrets.stdin .. "\n" })
end)
t.eq({ status, out, err }, { 0, "secret/stdin created\nserviceaccount/default configured\n", "" },
  "setup.lua with --docker-password-stdin succeeds")
_, argv_hits = summary(seen)
t.ok(saw_setup(seen), "the sampler saw xcsreg run setup.lua with stdin")
t.eq(argv_hits, {}, "no secret in any argv: stdin")
t.eq(environ_leaks(seen), {}, "no environment holds the stdin password")

-- The sampler can fail: --docker-password puts the password in xcsreg's own
-- argv, as its warning says.
-- argv, as its warning says. A slow API keeps it in the process list a while.
lib.fault { method = "GET", path_regex = "/secrets/flag$", action = "delay", latency_ms = 500 }
seen, status = watched("flag", function()
  return lib.setup { "-n", "ps", "--secret-name", "flag", "--docker-server", "flag.example.test",
    "--docker-username", "u", "--docker-password", secrets.flag }
end)
t.eq(status, 0, "setup.lua with --docker-password succeeds")
_, argv_hits = summary(seen)
t.eq(argv_hits, { "xcsreg: ps-flag" }, "--docker-password: the sampler sees it in xcsreg's argv, redacted")

return t.done()
