-- needs: none
-- xcsreg.keyring against the cases of Kubernetes' pkg/credentialprovider/keyring_test.go
-- (TestURLsMatch, TestDockerKeyringForGlob, TestKeyringMiss, the Docker Hub
-- tests, TestIsDefaultRegistryMatch), plus the order of several pull secrets,
-- the keys kubectl writes, and how entries are decoded.
local t = require "test"
local base64 = require "base64"
local log = require "log"
local keyring = require "xcsreg.keyring"

local PASSWORD = "fake-keyring-pass"
local function entry(user) return {email = "foo@bar.baz", auth = base64.encode((user or "foo") .. ":" .. PASSWORD)} end

-- TestURLsMatch: key, target, match
local urls = {
  {"*.kubernetes.io", "prefix.kubernetes.io", true},
  {"prefix.*.io", "prefix.kubernetes.io", true},
  {"prefix.kubernetes.*", "prefix.kubernetes.io", true},
  {"*-good.kubernetes.io", "prefix-good.kubernetes.io", true},
  {"*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true},
  {"prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true},
  {"*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", true},
  {"prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", true},
  {"*.kubernetes.io", "kubernetes.io", false},
  {"*.*.kubernetes.io", "prefix.kubernetes.io", false},
  {"*.*.kubernetes.io", "kubernetes.io", false},
  {"kubernetes.io", "kubernetes.com", false},
  {"k*.io", "quay.io", false},
  {"*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", false},
  {"prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", false},
  -- more of filepath.Match, and hosts the grammar allows
  {"reg?.example", "reg1.example", false}, -- url.Parse reads "?" as the start of a query: host "reg"
  {"reg[0-9].example", "reg7.example", true},
  {"reg[^0-9].example", "reg7.example", false},
  {"reg[0-9.example", "reg7.example", false}, -- a malformed pattern matches nothing
  {"reg[a-].example", "rega.example", false},
  {"reg\\*.example", "reg*.example", false}, -- url.Parse refuses a backslash in a host
  {"*", "localhost", true},
  {"*", "docker.io", false},
  {"Quay.io", "quay.io", false}, -- compared case-sensitively, as the kubelet does
  {"127.0.0.1:5000", "127.0.0.1:5000/app", true},
  {"127.0.0.1", "127.0.0.1:5000/app", false},
  {"[::1]:5000", "[::1]:5000/app", true},
  {"[::1]", "[::1]/app", false}, -- no port: the label "[::1]" is a glob character class
  {"[::1]:5000", "[::1]:5001/app", false},
  {"quay.io/coreos", "quay.io/coreos/etcd", true},
  {"quay.io/coreos", "quay.io/coreosx/etcd", true}, -- a prefix of the path, not of its components
  {"quay.io/coreos/", "quay.io/coreos", false},
  {"registry-1.docker.io", "docker.io/library/ubuntu", false},
}
for _, c in ipairs(urls) do
  t.eq(keyring.matches(c[1], c[2]), c[3], ("matches(%q, %q)"):format(c[1], c[2]))
end

-- docker config key -> index key (BasicDockerKeyring.Add)
local keys = {
  {"https://index.docker.io/v1/", "index.docker.io"},
  {"index.docker.io", "index.docker.io"},
  {"docker.io", "docker.io"},
  {"https://ghcr.io", "ghcr.io"},
  {"http://127.0.0.1:5000/v2/", "127.0.0.1:5000"},
  {"https://*.docker.io/v2/", "*.docker.io"},
  {"quay.io/coreos", "quay.io/coreos"},
  {"https://quay.io/coreos/", "quay.io/coreos/"},
  {"https://quay.io/v1/coreos", "quay.io/coreos"},
  {"https://quay.io/v1", "quay.io/v1"},
  {"https://user@reg.example/", "reg.example"},
  {"reg.example?x=1#y", "reg.example"},
  {"reg.example/a%20b", "reg.example/a b"},
  {"[::1]:5000", "[::1]:5000"},
  {"HTTPS://Quay.io", "HTTPS://Quay.io"}, -- not "https://", so "https://HTTPS://Quay.io": host "HTTPS:", path "//Quay.io"
}
for _, c in ipairs(keys) do
  t.eq(keyring.key(c[1]), c[2], ("key(%q)"):format(c[1]))
end
for _, bad in ipairs{"reg.example:port", "[::1", "reg example", "reg.example/%zz", "reg.example\n"} do
  t.eq(select("#", keyring.key(bad)) == 2 and keyring.key(bad), nil, ("key(%s) is refused"):format(bad:gsub("\n", "\\n")))
end
t.eq({keyring.key("reg.example:port")}, {nil, 'invalid registry key "reg.example:port": invalid port ":port" after host'},
     "a refused key says why")

-- TestDockerKeyringForGlob: key, image host (looked up as HOST/foo/bar)
local globs = {
  {"https://hello.kubernetes.io", "hello.kubernetes.io"},
  {"https://*.docker.io", "prefix.docker.io"},
  {"https://prefix.*.io", "prefix.docker.io"},
  {"https://prefix.docker.*", "prefix.docker.io"},
  {"https://*.docker.io/path", "prefix.docker.io/path"},
  {"https://prefix.*.io/path", "prefix.docker.io/path/subpath"},
  {"https://prefix.docker.*/path", "prefix.docker.io/path"},
  {"https://*.docker.io:8888", "prefix.docker.io:8888"},
  {"https://prefix.*.io:8888", "prefix.docker.io:8888"},
  {"https://prefix.docker.*:8888", "prefix.docker.io:8888"},
  {"https://*.docker.io/path:1111", "prefix.docker.io/path:1111"},
  {"https://*.docker.io/v1/", "prefix.docker.io/path:1111"},
  {"https://*.docker.io/v2/", "prefix.docker.io/path:1111"},
  {"https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"},
  {"prefix.docker.io:1111", "prefix.docker.io:1111/path"},
  {"*.docker.io:1111", "prefix.docker.io:1111/path"},
}
for _, c in ipairs(globs) do
  local kr = assert(keyring.from_secret({[c[1]] = entry()}, "glob"))
  local creds = kr:lookup(c[2] .. "/foo/bar")
  t.ok(#creds == 1 and creds[1].username == "foo" and creds[1].password == PASSWORD and creds[1].email == "foo@bar.baz",
       ("key %q covers %s/foo/bar"):format(c[1], c[2]), "got " .. #creds .. " credentials")
end

-- TestKeyringMiss
local misses = {
  {"https://hello.kubernetes.io", "world.mesos.org/foo/bar"},
  {"https://*.docker.com", "prefix.docker.io"},
  {"https://suffix.*.io", "prefix.docker.io"},
  {"https://prefix.docker.c*", "prefix.docker.io"},
  {"https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111"},
  {"suffix.*.io", "prefix.docker.io"},
  {"https://index.docker.io/v1/", "world.mesos.org"}, -- TestKeyringMissWithDockerHubCredentials
}
for _, c in ipairs(misses) do
  local kr = assert(keyring.from_secret({[c[1]] = entry()}, "miss"))
  t.eq(#kr:lookup(c[2] .. "/foo/bar"), 0, ("key %q does not cover %s/foo/bar"):format(c[1], c[2]))
end

-- TestIsDefaultRegistryMatch
for name, want in pairs{["foo/bar"] = true, ["docker.io/foo/bar"] = true, ["index.docker.io/foo/bar"] = true,
                        foo = true, [""] = false, ["registry.tld/foo/bar"] = false, ["registry:5000/foo/bar"] = false,
                        ["myhostdocker.io/foo/bar"] = false, ["/foo"] = false} do
  t.eq(keyring.is_default_registry_match(name), want, ("is_default_registry_match(%q)"):format(name))
end

-- Docker Hub: the key kubectl writes by default, and the names images give
local hub = assert(keyring.from_secret({["https://index.docker.io/v1/"] = entry()}, "hub"))
for _, name in ipairs{"google/docker-registry", "jenkins", "docker.io/library/ubuntu", "docker.io/org/app",
                      "index.docker.io/v1//google/docker-registry"} do
  local creds = hub:lookup(name)
  t.ok(#creds == 1 and creds[1].source == "hub" and creds[1].server == "https://index.docker.io/v1/",
       "https://index.docker.io/v1/ covers " .. name, "got " .. #creds)
end
t.eq(#hub:lookup("ghcr.io/org/app"), 0, "https://index.docker.io/v1/ does not cover ghcr.io")
t.eq(#hub:lookup("localhost:5000/app"), 0, "nor a registry with a port")
local docker_io = assert(keyring.from_secret({["docker.io"] = entry()}, "docker-io"))
t.eq(#docker_io:lookup("docker.io/library/ubuntu"), 1, "a key docker.io covers docker.io/library/ubuntu directly")
local registry1 = assert(keyring.from_secret({["registry-1.docker.io"] = entry()}, "registry-1"))
t.eq(#registry1:lookup("docker.io/library/ubuntu"), 0,
     "a key registry-1.docker.io does not cover Docker Hub images (the kubelet matches names, not endpoints)")

-- The fallback is only for when nothing matched
local both = assert(keyring.from_secret({["https://index.docker.io/v1/"] = entry("hub-user"),
                                         ["docker.io/org"] = entry("org-user")}, "both"))
local creds = both:lookup("docker.io/org/app")
t.eq(#creds == 1 and creds[1].username, "org-user", "a matching key wins; the Docker Hub fallback is not added")
creds = both:lookup("docker.io/library/ubuntu")
t.eq(#creds == 1 and creds[1].username, "hub-user", "the fallback when nothing else matches")

-- Several pull secrets: one keyring, keys in reverse order, each key's
-- credentials in the order of the secrets
local kr = keyring.new()
assert(kr:add({["quay.io"] = entry("a-quay")}, "secret-a"))
assert(kr:add({["quay.io/coreos"] = entry("b-coreos"), ["https://quay.io/v2/"] = entry("b-quay"),
               ["*.quay.io"] = entry("b-star")}, "secret-b"))
local order = {}
for _, c in ipairs(kr:lookup("quay.io/coreos/etcd")) do order[#order + 1] = c.source .. ":" .. c.username .. "@" .. c.key end
t.eq(order, {"secret-b:b-coreos@quay.io/coreos", "secret-a:a-quay@quay.io", "secret-b:b-quay@quay.io"},
     "all matching credentials, longer keys first, then in the order the secrets came")
order = {}
for _, c in ipairs(kr:lookup("eu.quay.io/x")) do order[#order + 1] = c.username end
t.eq(order, {"b-star"}, "a wildcard key")
t.eq(kr:lookup("ghcr.io/x"), {}, "an empty list when nothing matches")

-- Decoding entries, as the kubelet's DockerConfigEntry.UnmarshalJSON does
local decoded = assert(keyring.from_secret({
  ["a.example"] = {username = "plain", password = PASSWORD},
  ["b.example"] = {username = "ignored", password = "ignored-pass", auth = base64.encode("from-auth:" .. PASSWORD)},
  ["c.example"] = {auth = base64.encode("unpadded:" .. PASSWORD .. "x"):gsub("=+$", "")},
  ["d.example"] = {auth = base64.encode("colon:" .. PASSWORD .. ":x")},
  ["e.example"] = {username = "u", password = PASSWORD, auth = ""},
}, "decoding"))
local function first(name) local c = decoded:lookup(name)[1]; return c and {c.username, c.password} end
t.eq(first("a.example/x"), {"plain", PASSWORD}, "username and password")
t.eq(first("b.example/x"), {"from-auth", PASSWORD}, "auth wins over username and password")
t.eq(first("c.example/x"), {"unpadded", PASSWORD .. "x"}, "an auth without padding")
t.eq(first("d.example/x"), {"colon", PASSWORD .. ":x"}, "the password keeps its colons")
t.eq(first("e.example/x"), {"u", PASSWORD}, "an empty auth is no auth")
t.eq(log.redact("x " .. PASSWORD .. "x y"), "x *** y", "a password decoded from auth is a registered secret")

t.eq({keyring.from_secret({["a.example"] = {auth = base64.encode("no-colon")}}, "bad")},
     {nil, 'bad: entry "a.example": auth is not base64 of USER:PASSWORD'}, "an auth without a colon fails the secret")
t.eq({keyring.from_secret({["a.example"] = {auth = "%%%"}}, "bad")},
     {nil, 'bad: entry "a.example": auth is not base64 of USER:PASSWORD'}, "an auth that is not base64 fails the secret")
t.eq({keyring.from_secret({["a.example"] = "user:pass"}, "bad")},
     {nil, 'bad: entry "a.example" is not a JSON object'}, "an entry that is not an object fails the secret")
t.eq({keyring.from_secret({["a.example"] = {username = 7}}, "bad")},
     {nil, 'bad: entry "a.example": username is not a string'}, "a field that is not a string fails the secret")
local skipped = assert(keyring.from_secret({["reg.example:port"] = entry(), ["ok.example"] = entry()}, "skip"))
t.eq({#skipped:lookup("ok.example/x"), skipped.index}, {1, {"ok.example"}}, "a key that is not a URL is skipped")

t.raises("keyring:add: expected the auths table of a docker config", "add raises without a table",
         function() return keyring.new():add("x") end)
t.raises("keyring:lookup: expected an image name, got nil", "lookup raises without a name",
         function() return keyring.new():lookup() end)
t.raises("keyring.key: expected a string, got number", "key raises on a number", keyring.key, 1)

return t.done()
