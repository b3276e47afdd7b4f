-- setup.lua's flag parsing and site-file checks: every error names the entry and the field.
-- needs: none
local t = require "test"
local cli = require "xcsreg.cli"
local config = require "xcsreg.config"

local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

-- ---- cli.parse ----
local spec = {
  { long = "namespace", short = "n", arg = "NS", repeated = true, help = "" },
  { long = "secret-name", arg = "NAME", help = "" },
  { long = "adopt", help = "" },
  { long = "quiet", short = "q", help = "" },
}
local opts, rest = cli.parse(spec, { "-n", "a", "--namespace=b", "-nc", "-n=d", "--secret-name", "x", "--adopt", "pos" })
t.eq(opts, { namespace = { "a", "b", "c", "d" }, ["secret-name"] = "x", adopt = true }, "all value forms; repeated flag collects")
t.eq(rest, { "pos" }, "positional arguments are returned")
opts = cli.parse(spec, { "--secret-name=a", "--secret-name", "b", "--adopt=false" })
t.eq(opts, { ["secret-name"] = "b", adopt = false }, "last value wins; --flag=false")
opts = cli.parse(spec, { "--secret-name", "-x" })
t.eq(opts["secret-name"], "-x", "a value may start with '-'")
opts, rest = cli.parse(spec, { "-q", "--", "--adopt" })
t.eq({ opts, rest }, { { quiet = true }, { "--adopt" } }, "-- ends the flags")
t.fails("unknown flag: --nope", "unknown long flag", cli.parse, spec, { "--nope" })
t.fails("unknown flag: -x", "unknown short flag", cli.parse, spec, { "-x" })
t.fails("flag needs an argument: --secret-name", "missing value", cli.parse, spec, { "--secret-name" })
t.fails("flag needs an argument: -n", "missing short value", cli.parse, spec, { "-n" })
t.fails('invalid argument "yes" for "--adopt": want true or false', "bad boolean", cli.parse, spec, { "--adopt=yes" })
t.eq(cli.help { { long = "namespace", short = "n", arg = "NS", help = "where" }, { long = "adopt", help = "take over" } },
  "  -n, --namespace NS               where\n      --adopt                      take over", "help lines")

-- ---- names ----
t.eq(config.check_namespace("xnat-jobs"), nil, "a valid namespace")
t.eq(config.check_namespace(string.rep("a", 63)), nil, "63 characters is the limit")
for _, bad in ipairs { "", "Xnat", "-a", "a-", "a.b", "a_b", string.rep("a", 64) } do
  t.ok(config.check_namespace(bad), "namespace rejected: " .. bad:sub(1, 10))
end
t.eq(config.check_name("a.b-c.d", "Secret"), nil, "a valid subdomain")
for _, bad in ipairs { "", "a..b", ".a", "a.", "A", "a/b", "a_b", "-a.b", string.rep("a", 254) } do
  t.ok(config.check_name(bad, "Secret"), "name rejected: " .. bad:sub(1, 10))
end
t.eq(config.check_name("Harbor", "Secret"),
  '"Harbor" is not a valid Secret name: it must be a lowercase RFC 1123 subdomain (a-z, 0-9, \'-\' and \'.\', '
  .. "starting and ending with a letter or digit, at most 253 characters)", "name message")

-- ---- site files ----
local n = 0
local function site(text)
  n = n + 1
  local path = string.format("%s/site%d.lua", tmp, n)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function fails_with(text, want, name)
  local path = site(text)
  local plan, err = config.load_file(path)
  t.eq({ plan, err }, { nil, path .. ": " .. want }, name)
end

local token = site("fake-token-for-tests\n")
local ok_entry = 'secret = "ghcr", server = "ghcr.io", username = "bot", password_file = "' .. token .. '"'

-- What a plan asks for (leaving out its hooks, its entries as given and
-- the path of its file).
local function shape(p)
  if type(p) ~= "table" then return p end
  return { namespaces = p.namespaces, namespace_selector = p.namespace_selector, all_namespaces = p.all_namespaces,
           exclude_namespaces = p.exclude_namespaces, service_accounts = p.service_accounts, secrets = p.secrets }
end

local plan = config.load_file(site("return { registries = { { " .. ok_entry .. " } } }"))
t.eq({ shape(config.load_file(site("\239\187\191#!/usr/bin/env lua\nreturn { registries = { { " .. ok_entry .. " } } }"))) },
  { shape(plan) }, "a byte order mark and a first '#' line are skipped, as lua itself does")
local bom_err = site("\239\187\191# site\n\nreturn { registries = {} ")
local _, line_err = config.load_file(bom_err)
t.eq(line_err, bom_err .. ":3: '}' expected near <eof>", "... keeping the line numbers")
t.eq(shape(plan), {
  service_accounts = { "default" },
  secrets = { { name = "ghcr", registries = { { server = "ghcr.io", username = "bot",
    password = "fake-token-for-tests", email = "" } } } },
}, "minimal file: default service account, no namespaces, trailing newline dropped")

plan = config.load_file(site(string.format([[
return {
  namespaces = { "a", "b" },
  service_accounts = { "default", "builder" },
  registries = {
    { %s },
    { secret = "ghcr", server = "ghcr.example.org", username = "u2", password_file = %q, email = "e@x" },
    { secret = "harbor", server = "harbor.example.org", username = "robot$x", password_file = %q },
  },
}]], ok_entry, token, token)))
t.eq(plan and plan.namespaces, { "a", "b" }, "namespaces")
t.eq(plan and plan.service_accounts, { "default", "builder" }, "service accounts")
t.eq(plan and #plan.secrets, 2, "entries sharing a secret name make one Secret")
t.eq(plan and #plan.secrets[1].registries, 2, "... with both registries")
t.eq(plan and plan.secrets[2].registries[1].username, "robot$x", "second Secret")

fails_with("return 1", "must return a table, not number", "not a table")
fails_with("return { registry = {} }",
  'unknown key "registry" (known: all_namespaces, clusters, exclude_namespaces, hooks, images, namespace_selector, namespaces, registries, '
  .. 'restart_owners, service_accounts, xnat)', "unknown top-level key")
fails_with("return { registries = {} }", "registries: must be a non-empty list of entries", "no registries")
fails_with("return { namespaces = { 'ok', 'Bad_NS' }, registries = { { " .. ok_entry .. " } } }",
  'namespaces[2]: "Bad_NS" is not a valid namespace name: it must be a lowercase RFC 1123 label '
  .. "(a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)", "bad namespace")
fails_with("return { service_accounts = {}, registries = { { " .. ok_entry .. " } } }",
  "service_accounts: must be a non-empty list of names", "empty service accounts")
fails_with("return { registries = { 'x' } }", "registries[1]: must be a table, not string", "entry not a table")
fails_with("return { registries = { { " .. ok_entry .. ", pasword_env = 'X' } } }",
  'registries[1] (secret "ghcr"): unknown key "pasword_env"', "unknown entry key")
fails_with("return { registries = { { server = 'a', username = 'u', password_env = 'X' } } }",
  "registries[1]: secret: missing", "missing secret")
fails_with("return { registries = { { secret = 'ghcr', username = 'u', password_env = 'X' } } }",
  'registries[1] (secret "ghcr"): server: missing', "missing server")
fails_with("return { registries = { { " .. ok_entry .. " }, { secret = 'h', server = 'h', password_env = 'X' } } }",
  'registries[2] (secret "h"): username: missing', "missing username names the second entry")
fails_with("return { registries = { { secret = 'Harbor', server = 'h', username = 'u', password_env = 'X' } } }",
  'registries[1] (secret "Harbor"): secret: "Harbor" is not a valid Secret name: it must be a lowercase RFC 1123 '
  .. "subdomain (a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
  "invalid secret name")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'a:b', password_env = 'X' } } }",
  'registries[1] (secret "s"): username: must not contain \':\' (the kubelet splits the auth field at the first \':\')',
  "username with a colon")
fails_with("return { registries = { { secret = 's', server = 'h', username = 7, password_env = 'X' } } }",
  'registries[1] (secret "s"): username: must be a string, not number', "username not a string")
fails_with("return { registries = { { secret = 's', server = '', username = 'u', password_env = 'X' } } }",
  'registries[1] (secret "s"): server: must not be empty', "empty server")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u' } } }",
  'registries[1] (secret "s"): missing password: give one of password_env, password_file, password_command, '
  .. "or a credential source: credential_helper, docker_config, ecr, gcp, or a password hook", "no password source")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u', password_env = 'X', password_file = 'f' } } }",
  'registries[1] (secret "s"): password_env and password_file both given: give only one', "two password sources")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u', password_command = 'pass show x' } } }",
  'registries[1] (secret "s"): password_command: must be a list of strings: the command and its arguments',
  "password_command must be a list")
local path = site("return { registries = { { " .. ok_entry .. " }, { " .. ok_entry .. " } } }")
t.eq({ config.load_file(path) }, { nil, path .. ': registries[2] (secret "ghcr"): server: "ghcr.io" is already given '
  .. "for this Secret by registries[1]" }, "same server twice in one Secret")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u', password_file = '/nonexistent/x' } } }",
  'registries[1] (secret "s"): password_file: cannot read /nonexistent/x: No such file or directory',
  "unreadable password file")
local empty = site("\n")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u', password_file = '" .. empty .. "' } } }",
  'registries[1] (secret "s"): password_file: ' .. empty .. " is empty", "a password file with only a newline")
fails_with("return { registries = { { secret = 's', server = 'h', username = 'u', password_env = 'XCSREG_TEST_UNSET_VAR' } } }",
  'registries[1] (secret "s"): password_env: environment variable XCSREG_TEST_UNSET_VAR is not set', "unset variable")

-- ---- credentials minted at run time, and the keys for verification and rotation ----
plan = config.load_file(site([[
return { registries = {
  { secret = "ecr", server = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", ecr = { region = "eu-west-1" },
    refresh_before = "1h30m" },
  { secret = "gcr", server = "europe-docker.pkg.dev", username = "oauth2accesstoken", gcp = {}, refresh_before = 600,
    email = "ops@example.org" },
} }]]))
local ecr_registry = plan and plan.secrets[1].registries[1]
t.eq(ecr_registry and { ecr_registry.server, ecr_registry.username, ecr_registry.password, ecr_registry.refresh_before,
  ecr_registry.source.ecr }, { "111122223333.dkr.ecr.eu-west-1.amazonaws.com", nil, nil, 5400, { region = "eu-west-1" } },
  "ecr: no username needed, nothing minted yet, the entry kept as the source, refresh_before in seconds")
local gcr = plan and plan.secrets[2].registries[1]
t.eq(gcr and { gcr.username, gcr.email, gcr.refresh_before, gcr.source.gcp }, { "oauth2accesstoken", "ops@example.org",
  600, {} }, "gcp: a username given is kept (the minted one must match it)")
plan = config.load_file(site(string.format([[
return { registries = { { %s, registry_ca_file = %q, insecure_registry = true } } }]], ok_entry, token)))
t.eq(plan and plan.secrets[1].registries[1], { server = "ghcr.io", username = "bot", password = "fake-token-for-tests",
  email = "", ca_file = token, insecure = true }, "registry_ca_file and insecure_registry")
fails_with("return { registries = { { secret = 's', server = 'h', ecr = {}, password_env = 'X' } } }",
  'registries[1] (secret "s"): ecr and password_env both given: give only one', "a minting source and a password")
fails_with("return { registries = { { secret = 's', server = 'h', ecr = {}, gcp = {} } } }",
  'registries[1] (secret "s"): ecr and gcp both given: give only one', "two minting sources")
fails_with("return { registries = { { secret = 's', server = 'h', ecr = { regoin = 'eu-west-1' } } } }",
  'registries[1] (secret "s"): ecr.regoin: unknown setting', "a misspelt source setting")
fails_with("return { registries = { { secret = 's', server = 'h', credential_helper = '' } } }",
  'registries[1] (secret "s"): credential_helper: must be a non-empty string', "an empty helper name")
fails_with("return { registries = { { secret = 's', server = 'h', gcp = {}, refresh_before = '2 hours' } } }",
  'registries[1] (secret "s"): refresh_before: must be a whole number of seconds, or a duration like "2h", "90m", '
  .. '"1h30m" or "3d"', "refresh_before that is no duration")
fails_with("return { registries = { { secret = 's', server = 'h', gcp = {}, refresh_before = 0 } } }",
  'registries[1] (secret "s"): refresh_before: must be a whole number of seconds, or a duration like "2h", "90m", '
  .. '"1h30m" or "3d"', "refresh_before = 0")
fails_with("return { registries = { { " .. ok_entry .. ", refresh_before = '2h' } } }",
  'registries[1] (secret "ghcr"): refresh_before: only for a credential minted by credential_helper, docker_config, '
  .. "ecr, gcp", "refresh_before on a static password")
fails_with("return { registries = { { " .. ok_entry .. ", registry_ca_file = '/nonexistent/ca.pem' } } }",
  'registries[1] (secret "ghcr"): registry_ca_file: cannot read /nonexistent/ca.pem: No such file or directory',
  "an unreadable registry_ca_file")
fails_with("return { registries = { { " .. ok_entry .. ", insecure_registry = 'yes' } } }",
  'registries[1] (secret "ghcr"): insecure_registry: must be true or false, not string', "insecure_registry = 'yes'")

local function command(argv)
  return string.format("return { registries = { { secret = 's', server = 'h', username = 'u', password_command = %s } } }",
    argv)
end
plan = config.load_file(site(command([[{ "sh", "-c", "printf 'fake-cmd-pw\n\n'" }]])))
t.eq(plan and plan.secrets[1].registries[1].password, "fake-cmd-pw", "password_command: stdout, newlines dropped")
fails_with(command([[{ "sh", "-c", "echo oops >&2; echo fake-cmd-pw; exit 3" }]]),
  'registries[1] (secret "s"): password_command: sh exited with status 3: oops', "password_command fails")
fails_with(command([[{ "true" }]]), 'registries[1] (secret "s"): password_command: true printed nothing',
  "password_command prints nothing")
fails_with(command([[{ "/nonexistent/helper" }]]),
  'registries[1] (secret "s"): password_command: executable not found: /nonexistent/helper', "password_command missing")

path = site("string.format = nil; return { registries = io.open('x') }")
t.eq({ config.load_file(path) }, { nil, path .. ":1: attempt to index a nil value (global 'io')" },
  "the file sees no io library")
t.eq(type(string.format), "function", "the file cannot change the string library xcsreg uses")
path = site("return { registries = os.getenv('HOME') }")
t.eq({ config.load_file(path) }, { nil, path .. ":1: attempt to index a nil value (global 'os')" },
  "the file sees no os library")
path = site("error('site says no')")
t.eq({ config.load_file(path) }, { nil, path .. ":1: site says no" }, "an error raised by the file")
path = site("return {")
local _, err = config.load_file(path)
t.ok(err and err:find(path .. ":1: ", 1, true) == 1, "a syntax error names the file and line", err)
t.eq({ config.load_file(tmp .. "/no-such-file.lua") },
  { nil, "cannot read site file " .. tmp .. "/no-such-file.lua: No such file or directory" }, "missing file")

-- ---- the one-registry form ----
plan = config.from_flags { ["secret-name"] = "reg", ["docker-username"] = "u", ["docker-password-file"] = token }
t.eq(shape(plan), { service_accounts = { "default" }, secrets = { { name = "reg", registries = { {
  server = "https://index.docker.io/v1/", username = "u", password = "fake-token-for-tests", email = "" } } } } },
  "flags: the default server is kubectl's")
t.fails("--secret-name: missing", "flags: no secret name", config.from_flags,
  { ["docker-username"] = "u", ["docker-password-file"] = token })
t.fails("--docker-username: missing", "flags: no username", config.from_flags,
  { ["secret-name"] = "r", ["docker-password-file"] = token })
t.fails("--docker-username: must not contain ':'", "flags: username with colon", config.from_flags,
  { ["secret-name"] = "r", ["docker-username"] = "a:b", ["docker-password-file"] = token })
t.fails("missing password: give --docker-password-stdin, --docker-password-file FILE or --docker-password-env VAR",
  "flags: no password", config.from_flags, { ["secret-name"] = "r", ["docker-username"] = "u" })
t.fails("--docker-password-env and --docker-password-file both given: give only one", "flags: two passwords",
  config.from_flags, { ["secret-name"] = "r", ["docker-username"] = "u", ["docker-password-file"] = token,
  ["docker-password-env"] = "X" })
t.fails("--docker-password: must not be empty", "flags: empty password", config.from_flags,
  { ["secret-name"] = "r", ["docker-username"] = "u", ["docker-password"] = "" })
t.fails("--docker-password-file: cannot read /nonexistent: No such file or directory", "flags: unreadable file",
  config.from_flags, { ["secret-name"] = "r", ["docker-username"] = "u", ["docker-password-file"] = "/nonexistent" })
t.fails('--secret-name: "R" is not a valid Secret name', "flags: bad name", config.from_flags,
  { ["secret-name"] = "R", ["docker-username"] = "u", ["docker-password-file"] = token })

-- ---- namespace selection ----
plan = config.load_file(site("return { namespace_selector = 'xnat=jobs', registries = { { " .. ok_entry .. " } } }"))
t.eq({ plan.namespace_selector, plan.namespaces, plan.all_namespaces }, { "xnat=jobs", nil, nil }, "namespace_selector")
plan = config.load_file(site("return { all_namespaces = true, exclude_namespaces = { 'kube-system', 'default' }, "
  .. "registries = { { " .. ok_entry .. " } } }"))
t.eq({ plan.all_namespaces, plan.exclude_namespaces }, { true, { "kube-system", "default" } },
  "all_namespaces with exclude_namespaces")
plan = config.load_file(site("return { all_namespaces = true, exclude_namespaces = {}, registries = { { " .. ok_entry .. " } } }"))
t.eq({ plan.all_namespaces, plan.exclude_namespaces }, { true, nil }, "exclude_namespaces may be empty")
plan = config.load_file(site("return { namespaces = { 'a' }, all_namespaces = false, registries = { { " .. ok_entry .. " } } }"))
t.eq({ plan.namespaces, plan.all_namespaces }, { { "a" }, nil }, "all_namespaces = false is as good as absent")
fails_with("return { namespaces = { 'a' }, namespace_selector = 'x=y', registries = { { " .. ok_entry .. " } } }",
  "namespaces and namespace_selector both given: give only one of namespaces, namespace_selector, all_namespaces",
  "namespaces and namespace_selector")
fails_with("return { namespace_selector = 'x=y', all_namespaces = true, registries = { { " .. ok_entry .. " } } }",
  "namespace_selector and all_namespaces both given: give only one of namespaces, namespace_selector, all_namespaces",
  "namespace_selector and all_namespaces")
fails_with("return { all_namespaces = 'yes', registries = { { " .. ok_entry .. " } } }",
  "all_namespaces: must be true or false, not string", "all_namespaces not a boolean")
fails_with("return { namespaces = { 'a' }, exclude_namespaces = { 'b' }, registries = { { " .. ok_entry .. " } } }",
  "exclude_namespaces: only with all_namespaces = true", "exclude_namespaces without all_namespaces")
fails_with("return { all_namespaces = true, exclude_namespaces = { 'Kube' }, registries = { { " .. ok_entry .. " } } }",
  'exclude_namespaces[1]: "Kube" is not a valid namespace name: it must be a lowercase RFC 1123 label '
  .. "(a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)", "bad excluded name")
fails_with("return { namespace_selector = '', registries = { { " .. ok_entry .. " } } }",
  "namespace_selector: must not be empty", "empty selector")
fails_with("return { namespace_selector = { 'x=y' }, registries = { { " .. ok_entry .. " } } }",
  "namespace_selector: must be a string, not table", "selector not a string")
fails_with("return { namespace_selector = 'team in a', registries = { { " .. ok_entry .. " } } }",
  'namespace_selector: "team in a" is not a valid label selector: want key=value, key!=value, key in (v1,v2), '
  .. 'key notin (v1,v2), key or !key, joined by "," (keys and values as in labels)', "bad selector")
fails_with("return { namespace_selector = 'xnat=jobs,tier=a b', registries = { { " .. ok_entry .. " } } }",
  'namespace_selector: "xnat=jobs,tier=a b" is not a valid label selector: want key=value, key!=value, '
  .. 'key in (v1,v2), key notin (v1,v2), key or !key, joined by "," (keys and values as in labels); '
  .. '"tier=a b" is none of these', "bad requirement named")
for _, good in ipairs { "a=b", "a==b", "a!=b", "a", "!a", "! a", "a in (x, y)", "a notin (x,y),b=c", "a=",
                        "kubernetes.io/metadata.name=team-a", "xcsreg.io/pull-secrets in (yes)", "A_b.c=D-e",
                        " a = b , c " } do
  t.eq(config.check_selector(good), nil, "selector accepted: " .. good)
end
for _, bad in ipairs { "a=b c", "a in x", "=b", "a in ()", "a b", "a,", ",a", "!a=b", "a=b=c", "-a=b", "a!b",
                       "a=-b", "Bad_/x=y", string.rep("k", 64) .. "=v", "a=" .. string.rep("v", 64), "a=b\n" } do
  t.ok(config.check_selector(bad), "selector rejected: " .. bad:sub(1, 12):gsub("\n", "\\n"))
end

-- ---- overrides ----
plan = config.override({ namespaces = { "a" }, service_accounts = { "default" } }, { "b", "c" }, { "sa" })
t.eq(plan, { namespaces = { "b", "c" }, service_accounts = { "sa" } }, "-n and --service-account override the file")
plan = config.override({ all_namespaces = true, exclude_namespaces = { "x" }, service_accounts = { "default" } }, { "b" })
t.eq(plan, { namespaces = { "b" }, service_accounts = { "default" } }, "-n overrides all_namespaces")
plan = config.override({ namespace_selector = "a=b", service_accounts = { "default" } }, { "b" })
t.eq(plan, { namespaces = { "b" }, service_accounts = { "default" } }, "-n overrides namespace_selector")
t.fails('--namespace[2]: "B" is not a valid namespace name', "bad -n", config.override, {}, { "a", "B" })
t.fails('--service-account[1]: "S A" is not a valid ServiceAccount name', "bad --service-account",
  config.override, {}, nil, { "S A" })

return t.done()
