-- needs: none
-- Hostile site files, password files and kubeconfigs: missing, wrong types
-- at every level, huge values, non-UTF-8, endless, readable by other
-- users. Each must end in a clear error naming the place (file, entry,
-- field) and, for setup.lua, exit status 2; none may crash.
local t = require "test"
local k8s = require "k8s"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/hostile-files"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "/dir'"))
local MiB = 1024 * 1024

local function write(name, text, mode)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute(("chmod %s '%s'"):format(mode or "600", path)))
  return path
end

-- `xcsreg run setup.lua ARGS` -> status, stdout, stderr (nil, message if it ran too long)
local function setup(args, timeout)
  local argv = { XCSREG, "run", "setup.lua" }
  table.move(args, 1, #args, #argv + 1, argv)
  return proc.run { argv = argv, env = { FAKE_PASSWORD = "fake-password-0", HOME = TMP }, timeout = timeout or 60,
                    max_output = 64 * 1024 * 1024 }
end

-- A site file through setup.lua --dry-run=client (no cluster needed).
local function site(name, text, timeout)
  local path = write(name .. ".lua", text)
  local status, out, err = setup({ "--config", path, "--dry-run=client" }, timeout)
  return path, status, out, err
end

local function entry(fields)
  local e = { 'secret = "s"', 'server = "r.example"', 'username = "u"' }
  for _, f in ipairs(fields or { 'password_env = "FAKE_PASSWORD"' }) do e[#e + 1] = f end
  return "return { registries = { { " .. table.concat(e, ", ") .. " } } }\n"
end

-- ---- site files: each error names the file and the field, exit 2 ----
local path, status, out, err = site("good", entry())
t.eq({ status, out }, { 0, "secret/s created (dry run)\nserviceaccount/default configured (dry run)\n" },
  "a good site file: the baseline")

status, out, err = setup { "--config", TMP .. "/missing.lua", "--dry-run=client" }
t.eq({ status, err }, { 2, "error: cannot read site file " .. TMP .. "/missing.lua: No such file or directory\n" },
  "site file: missing")
status, out, err = setup { "--config", TMP .. "/dir", "--dry-run=client" }
t.eq({ status, err and err:match("^[^\n]*") }, { 2, "error: cannot read " .. TMP .. "/dir: Is a directory" },
  "site file: a directory")

local cases = {
  { "syntax", "return {", ":1: unexpected symbol near <eof>" },
  { "not-table", 'return "x"', ": must return a table, not string" },
  { "unknown-top", "return { registry = {} }",
    ': unknown key "registry" (known: all_namespaces, clusters, exclude_namespaces, hooks, images, namespace_selector, namespaces, registries, restart_owners, service_accounts, xnat)' },
  { "ns-string", 'return { namespaces = "x", registries = {} }', ": namespaces: must be a non-empty list of names" },
  { "ns-number", "return { namespaces = { 1 }, registries = {} }", ": namespaces[1]: must be a string, not number" },
  { "ns-invalid", 'return { namespaces = { "Team_A" }, registries = {} }',
    ': namespaces[1]: "Team_A" is not a valid namespace name' },
  { "sa-table", "return { service_accounts = { {} }, registries = {} }",
    ": service_accounts[1]: must be a string, not table" },
  { "no-registries", "return { registries = {} }", ": registries: must be a non-empty list of entries" },
  { "entry-string", 'return { registries = { "ghcr.io" } }', ": registries[1]: must be a table, not string" },
  { "server-number", entry { "server2 = 1" }, ': registries[1] (secret "s"): unknown key "server2"' },
  { "server-type", 'return { registries = { { secret = "s", server = 5, username = "u", password_env = "X" } } }',
    ': registries[1] (secret "s"): server: must be a string, not number' },
  { "user-colon", 'return { registries = { { secret = "s", server = "r", username = "a:b", password_env = "X" } } }',
    ': registries[1] (secret "s"): username: must not contain' },
  { "command-string", entry { 'password_command = "pass show x"' },
    ': registries[1] (secret "s"): password_command: must be a list of strings' },
  { "command-mixed", entry { 'password_command = { "pass", 1 }' },
    ': registries[1] (secret "s"): password_command: must be a list of strings' },
  { "password-in-file", entry { 'password = "fake-in-file"' },
    ': registries[1] (secret "s"): unknown key "password"' },
  { "two-passwords", entry { 'password_env = "A"', 'password_file = "/x"' },
    ': registries[1] (secret "s"): password_env and password_file both given' },
  { "password-file-missing", entry { 'password_file = "' .. TMP .. '/nope"' },
    ': registries[1] (secret "s"): password_file: cannot read ' .. TMP .. "/nope: No such file or directory" },
  { "password-env-unset", entry { 'password_env = "XCSREG_TEST_UNSET_VARIABLE"' },
    ': registries[1] (secret "s"): password_env: environment variable XCSREG_TEST_UNSET_VARIABLE is not set' },
  { "secret-non-utf8", 'return { registries = { { secret = "\\255\\254", server = "r", username = "u", '
    .. 'password_env = "FAKE_PASSWORD" } } }', ': registries[1] (secret "\255\254"): secret: ' },
}
for _, c in ipairs(cases) do
  path, status, out, err = site(c[1], c[2])
  local first = err and err:match("^[^\n]*") or tostring(out)
  t.ok(status == 2 and first:find("error: " .. path .. c[3], 1, true) == 1,
    "site file " .. c[1] .. ": exit 2, the place and the problem", first)
end

-- a site file that raises something that is not a string, or a string without a place
path, status, out, err = site("raise-table", "error({})")
t.eq({ status, err }, { 2, "error: " .. path .. ": raised a table, not an error message\n" },
  "site file raising a table: exit 2, the file named")
path, status, out, err = site("raise-plain", "error('no place', 0)")
t.eq({ status, err }, { 2, "error: " .. path .. ": no place\n" }, "site file raising a message without a place: the file named")
path, status, out, err = site("raise-level2", "local function f() error('from the caller', 2) end\nf()\n")
t.eq({ status, err }, { 2, "error: " .. path .. ":2: from the caller\n" }, "site file raising at level 2: file and line")
-- a path longer than Lua's chunk names (60 bytes) is named whole
local long = ("d"):rep(100)
assert(os.execute("mkdir -p '" .. TMP .. "/" .. long .. "'"))
path, status, out, err = site(long .. "/nil-call", "return {\n  registries = undefined_function(),\n}\n")
t.eq({ status, err }, { 2, "error: " .. path .. ":2: attempt to call a nil value (global 'undefined_function')\n" },
  "site file with a long path: named whole, with the line")

-- huge: a 10 MB Secret name is refused, quoted in part with its size
local quoted = '"' .. ("a"):rep(64) .. '"... (10485760 bytes)'
path, status, out, err = site("huge-name", 'return { registries = { { secret = string.rep("a", 10 * 1024 * 1024), '
  .. 'server = "r", username = "u", password_env = "FAKE_PASSWORD" } } }')
t.eq({ status, err }, { 2, "error: " .. path .. ": registries[1] (secret " .. quoted .. "): secret: " .. quoted
  .. " is not a valid Secret name: it must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and "
  .. "ending with a letter or digit, at most 253 characters)\n" }, "site file, 10 MB secret name: exit 2, a bounded quote")
path, status, out, err = site("huge-key", 'return { [string.rep("k", 1000000)] = 1, registries = {} }')
t.eq({ status, err }, { 2, "error: " .. path .. ': unknown key "' .. ("k"):rep(64) .. '"... (1000000 bytes) (known: '
  .. "all_namespaces, clusters, exclude_namespaces, hooks, images, namespace_selector, namespaces, registries, restart_owners, service_accounts, xnat)\n" },
  "site file, a 1 MB key: a bounded quote")

-- endless: stopped after an instruction limit, naming the file and line
local started = os.time()
path, status, out, err = site("endless", "local n = 0\nwhile true do n = n + 1 end\n", 60)
t.eq({ status, out, err }, { 2, "", "error: " .. path .. ":2: stopped after 50000000 instructions (an endless loop?)\n" },
  "site file with an endless loop: stopped, the file and line named")
print(("# endless: stopped after %d s"):format(os.time() - started))
path, status, out, err = site("endless-gsub", 'string.gsub("x", "x", function() while true do end end)', 60)
t.eq({ status, err }, { 2, "error: " .. path .. ":1: stopped after 50000000 instructions (an endless loop?)\n" },
  "site file looping inside a callback from C: stopped too")
path, status, out, err = site("memory-hog", 'local t = {}\nfor i = 1, 100 do t[i] = string.rep("m", 1024 * 1024) .. i end\n', 60)
t.eq({ status, err }, { 2, "error: " .. path .. ": used more than 64 MiB of memory: stopped\n" },
  "site file taking 100 MiB: stopped at 64 MiB, the file named (#12 item 19)")
path, status, out, err = site("busy-but-finite", "local n = 0\nfor i = 1, 1000000 do n = n + i end\n" .. entry())
t.eq(status, 0, "a site file running a million-step loop: within the limit")

-- ---- password files ----
local function open_warning(what, file, mode)
  return ("warning: %s %s can be read by other users (mode %s): chmod 600 %s\n"):format(what, file, mode, file)
end
local pw = write("pw-open", "fake-password-1\n", "644")
path, status, out, err = site("pw-open", entry { 'password_file = "' .. pw .. '"' })
t.eq({ status, err }, { 0, open_warning("password file", pw, "0644") },
  "password file readable by others: used, with a warning naming it and chmod 600")
pw = write("pw-group", "fake-password-1\n", "640")
path, status, out, err = site("pw-group", entry { 'password_file = "' .. pw .. '"' })
t.eq({ status, err }, { 0, open_warning("password file", pw, "0640") }, "password file readable by its group: warned")
-- a Kubernetes Secret volume of mode 0440, group fsGroup, owned by root: the group lets us read it
local volume = write("pw-volume", "fake-password-1\n", "440")
if os.execute("chown 65534 '" .. volume .. "' 2>/dev/null") then
  path, status, out, err = site("pw-volume", entry { 'password_file = "' .. volume .. '"' })
  t.eq({ status, err }, { 0, "" }, "password file of someone else's, readable by its group: no warning (as ssh)")
else
  print("## skipped: a password file of someone else's (chown needs root)")
end
local closed = write("pw-closed", "fake-password-2\n", "600")
path, status, out, err = site("pw-closed", entry { 'password_file = "' .. closed .. '"' })
t.eq({ status, err }, { 0, "" }, "password file of mode 0600: no warning")
closed = write("pw-owner-only", "fake-password-2\n", "400")
path, status, out, err = site("pw-owner-only", entry { 'password_file = "' .. closed .. '"' })
t.eq({ status, err }, { 0, "" }, "password file of mode 0400: no warning")

local big = write("pw-big", string.rep("p", 10 * MiB))
path, status, out, err = site("pw-big", entry { 'password_file = "' .. big .. '"' })
t.eq({ status, err }, { 2, "error: " .. path .. ': registries[1] (secret "s"): password_file: ' .. big
  .. " is larger than 65536 bytes\n" }, "10 MB password file: refused, the file named")
local edge = write("pw-edge", string.rep("p", 65536))
path, status, out, err = site("pw-edge", entry { 'password_file = "' .. edge .. '"' })
t.eq({ status, err }, { 0, "" }, "a password file of exactly 64 KiB: taken")
edge = write("pw-edge1", string.rep("p", 65537))
path, status, out, err = site("pw-edge1", entry { 'password_file = "' .. edge .. '"' })
t.eq({ status, err }, { 2, "error: " .. path .. ': registries[1] (secret "s"): password_file: ' .. edge
  .. " is larger than 65536 bytes\n" }, "a password file of 64 KiB + 1: refused")
path, status, out, err = site("pw-dir", entry { 'password_file = "' .. TMP .. '/dir"' })
t.eq({ status, err }, { 2, "error: " .. path .. ': registries[1] (secret "s"): password_file: cannot read ' .. TMP
  .. "/dir: Is a directory\n" }, "a directory as password file: refused")
local argv = { XCSREG, "run", "setup.lua", "--config", write("pw-env-big.lua", entry { 'password_env = "BIG_PASSWORD"' }),
  "--dry-run=client" }
status, out, err = proc.run { argv = argv, env = { BIG_PASSWORD = string.rep("p", 65537) }, timeout = 60 }
t.eq({ status, err }, { 2, "error: " .. argv[5] .. ': registries[1] (secret "s"): password_env: environment variable '
  .. "BIG_PASSWORD is larger than 65536 bytes\n" }, "a password in the environment past 64 KiB: refused")
local cmd = write("pw-cmd-big.lua", entry { 'password_command = { "head", "-c", "100000", "/dev/zero" }' })
status, out, err = setup { "--config", cmd, "--dry-run=client" }
t.eq({ status, err }, { 2, "error: " .. cmd .. ': registries[1] (secret "s"): password_command: standard output of head '
  .. "exceeds 65536 bytes\n" }, "a password command printing past 64 KiB: refused")

-- ---- kubeconfigs: k8s.client gives nil, err naming the file, entry and field ----
local function kubeconfig(name, text, mode)
  return write(name .. ".kubeconfig", text, mode)
end
local function client_fails(name, text, want)
  local kc = kubeconfig(name, text)
  local ok, c, cerr = pcall(k8s.client, { kubeconfig = kc })
  local msg = ok and cerr and tostring(cerr) or tostring(c)
  t.ok(ok and c == nil and msg:find((want:gsub("FILE", kc)), 1, true) == 1,
    "kubeconfig " .. name .. ": nil, err with the place", msg:sub(1, 300))
end
local function doc(cluster, user, extra)
  return "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    .. "clusters: [{name: k, cluster: " .. (cluster or "{server: 'https://127.0.0.1:1'}") .. "}]\n"
    .. "users: [{name: u, user: " .. (user or "{token: fake-token}") .. "}]\n"
    .. "contexts: [{name: c, context: {cluster: k, user: u}}]\n" .. (extra or "")
end

local c, cerr = k8s.client { kubeconfig = TMP .. "/nope.kubeconfig" }
t.eq({ c, tostring(cerr) }, { nil, "kubeconfig " .. TMP .. "/nope.kubeconfig: No such file or directory" },
  "kubeconfig: missing")
c, cerr = k8s.client { kubeconfig = TMP .. "/dir" }
t.eq({ c, tostring(cerr) }, { nil, "kubeconfig " .. TMP .. "/dir: Is a directory" }, "kubeconfig: a directory")

client_fails("not-yaml", "a: b: c\n", "kubeconfig FILE: line 1, column 5: mapping values are not allowed")
client_fails("scalar", "just text\n", "kubeconfig FILE: not a kubeconfig (a YAML mapping was expected)")
client_fails("clusters-string", "clusters: x\n", "FILE: clusters must be a list")
client_fails("clusters-item", "clusters: [x]\n", "FILE: clusters[0] must be a mapping")
client_fails("clusters-noname", "clusters: [{cluster: {}}]\n", "FILE: clusters[0] has no name")
client_fails("cluster-string", "clusters: [{name: k, cluster: x}]\n", 'FILE: cluster "k": cluster must be a mapping')
client_fails("server-int", doc("{server: 5}"), 'FILE: cluster "k": server must be a string')
client_fails("server-scheme", doc("{server: 'ftp://x'}"), 'FILE: cluster "k": server ftp://x is not an https:// or http:// URL')
client_fails("insecure-word", doc("{server: 'https://a', insecure-skip-tls-verify: maybe}"),
  'FILE: cluster "k": insecure-skip-tls-verify must be true or false')
client_fails("ca-base64", doc("{server: 'https://a', certificate-authority-data: '!!!'}"),
  'FILE: cluster "k": certificate-authority-data is not valid base64 (at byte 0)')
client_fails("ca-missing", doc("{server: 'https://a', certificate-authority: nope.crt}"),
  "certificate-authority " .. TMP .. "/nope.crt: No such file or directory")
client_fails("token-list", doc(nil, "{token: [1]}"), 'FILE: user "u": token must be a string')
client_fails("exec-string", doc(nil, "{exec: run-me}"), 'FILE: user "u": exec must be a mapping')
client_fails("context-list", "current-context: [a]\n", "kubeconfig FILE: current-context must be a string")
client_fails("non-utf8", "current-context: \255\254\n", "kubeconfig FILE: line 1, column 18: invalid leading UTF-8 octet")
client_fails("huge-file", "current-context: c\n" .. string.rep("#", 17 * MiB), "kubeconfig FILE: File too large")
client_fails("huge-server", doc("{server: " .. string.rep("x", 10 * MiB) .. "}"), 'FILE: cluster "k": server xxxx')

-- a YAML sequence is not a kubeconfig either
local seq = kubeconfig("sequence", "- clusters: []\n")
c, cerr = k8s.client { kubeconfig = seq }
t.eq({ c, tostring(cerr) }, { nil, "kubeconfig " .. seq .. ": not a kubeconfig (a YAML mapping was expected)" },
  "kubeconfig that is a YAML sequence: not a kubeconfig")

-- an exec extension JSON cannot hold: must be nil, err, not a raise
local ext = kubeconfig("exec-inf", doc("{server: 'https://a', extensions: [{name: client.authentication.k8s.io/exec, "
  .. "extension: {n: .inf}}]}", "{exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
  .. "interactiveMode: Never, provideClusterInfo: true}}"))
local ok
ok, c, cerr = pcall(k8s.client, { kubeconfig = ext })
t.ok(ok and c == nil and tostring(cerr):find(ext .. ': cluster "k"', 1, true) == 1,
  "exec extension with .inf: nil, err naming the cluster", tostring(ok and cerr or c))

-- a huge token is taken as it is (it only has to fit the 16 MiB file cap)
c = k8s.client { kubeconfig = kubeconfig("huge-token", doc(nil, "{token: " .. string.rep("t", 10 * MiB) .. "}")) }
t.ok(c ~= nil, "kubeconfig with a 10 MB token: no crash")

-- setup.lua with a bad kubeconfig: exit 2, the message
status, out, err = setup { "--kubeconfig", TMP .. "/scalar.kubeconfig", "--config", TMP .. "/good.lua",
  "--lock", "none", "--no-verify" }
t.eq({ status, err and err:match("^[^\n]*") },
  { 2, "error: kubeconfig " .. TMP .. "/scalar.kubeconfig: not a kubeconfig (a YAML mapping was expected)" },
  "setup.lua with a bad kubeconfig: exit 2 and the message")

-- a kubeconfig holding credentials, readable by other users: used, with a warning
local function probe_client(name, kc)
  local p = write(name .. "-probe.lua", ("local c, err = require('k8s').client { kubeconfig = %q }\n"
    .. "print(c and 'client' or tostring(err))\n"):format(kc))
  local st, o, e = proc.run { argv = { XCSREG, "run", p }, timeout = 30 }
  return { st, o, e }
end
local open = kubeconfig("open", doc(), "644")
t.eq(probe_client("open", open), { 0, "client\n", open_warning("kubeconfig", open, "0644") },
  "kubeconfig with a token, readable by others: used, a warning names it and says chmod 600")
open = kubeconfig("open-password", doc(nil, "{username: u, password: fake-password-3}"), "604")
t.eq(probe_client("open-password", open), { 0, "client\n", open_warning("kubeconfig", open, "0604") },
  "kubeconfig with a password, readable by others: warned")
open = kubeconfig("open-exec", doc(nil, "{exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
  .. "interactiveMode: Never}}"), "644")
t.eq(probe_client("open-exec", open), { 0, "client\n", "" }, "kubeconfig readable by others but holding no secret: no warning")
local private = kubeconfig("private", doc(), "600")
t.eq(probe_client("private", private), { 0, "client\n", "" }, "kubeconfig of mode 0600: no warning")

return t.done()
