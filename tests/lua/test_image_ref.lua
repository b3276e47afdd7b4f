-- needs: none
-- xcsreg.image_ref.parse against the docker reference grammar
-- (github.com/distribution/reference: normalize.go, reference.go, regexp.go;
-- many cases are from its normalize_test.go and reference_test.go).
local t = require "test"
local image_ref = require "xcsreg.image_ref"

local D = "sha256:" .. ("0123456789abcdef"):rep(4)
local D512 = "sha512:" .. ("0123456789abcdef"):rep(8)

-- reference -> registry, repository, tag, digest, reference
local valid = {
  {"ubuntu", "docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", nil, "22.04"},
  {"library/ubuntu", "docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"index.docker.io/library/debian:12", "docker.io", "library/debian", "12", nil, "12"},
  {"docker.io/library/foo/bar", "docker.io", "library/foo/bar", "latest", nil, "latest"},
  {"fooo/bar", "docker.io", "fooo/bar", "latest", nil, "latest"},
  {"store/foo/bar", "docker.io", "store/foo/bar", "latest", nil, "latest"},
  {"test_com/foo", "docker.io", "test_com/foo", "latest", nil, "latest"},
  {"docker/migrator", "docker.io", "docker/migrator", "latest", nil, "latest"},
  {"ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", "latest", nil, "latest"},
  {"registry-1.docker.io/library/ubuntu", "registry-1.docker.io", "library/ubuntu", "latest", nil, "latest"},
  {"ghcr.io/org/app:v1.2.3", "ghcr.io", "org/app", "v1.2.3", nil, "v1.2.3"},
  {"ghcr.io/app", "ghcr.io", "app", "latest", nil, "latest"}, -- no library/ outside Docker Hub
  {"example.com/privatebase", "example.com", "privatebase", "latest", nil, "latest"},
  {"example.com:8000/private/moonbase", "example.com:8000", "private/moonbase", "latest", nil, "latest"},
  {"test-com:8080/foo", "test-com:8080", "foo", "latest", nil, "latest"},
  {"xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", nil, "latest"},
  {"localhost/app", "localhost", "app", "latest", nil, "latest"},
  {"localhost:5000/app:dev", "localhost:5000", "app", "dev", nil, "dev"},
  {"localhost", "docker.io", "library/localhost", "latest", nil, "latest"}, -- upstream's FIXME
  {"127.0.0.1:5000/private/moonbase", "127.0.0.1:5000", "private/moonbase", "latest", nil, "latest"},
  {"192.168.0.1", "docker.io", "library/192.168.0.1", "latest", nil, "latest"},
  {"192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", nil, "80"},
  {"192.168.0.1:8/debian", "192.168.0.1:8", "debian", "latest", nil, "latest"},
  {"[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "latest", nil, "latest"},
  {"[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "latest", nil, "latest"},
  {"[::1]/app:1", "[::1]", "app", "1", nil, "1"},
  {"Docker/docker", "Docker", "docker", "latest", nil, "latest"}, -- an upper-case first component is a domain
  {"FOO/bar", "FOO", "bar", "latest", nil, "latest"},
  {"docker-rules/docker", "docker.io", "docker-rules/docker", "latest", nil, "latest"},
  {"docker---rules/docker", "docker.io", "docker---rules/docker", "latest", nil, "latest"},
  {"dock__er/docker", "docker.io", "dock__er/docker", "latest", nil, "latest"},
  {"d/docker", "docker.io", "d/docker", "latest", nil, "latest"},
  {"thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io",
   "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "latest", nil, "latest"},
  {"docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker.io",
   "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "latest", nil, "latest"},
  {"app:Latest_TAG-1.x", "docker.io", "library/app", "Latest_TAG-1.x", nil, "Latest_TAG-1.x"},
  {"app:" .. ("t"):rep(128), "docker.io", "library/app", ("t"):rep(128), nil, ("t"):rep(128)},
  {"busybox@" .. D, "docker.io", "library/busybox", nil, D, D},
  {"busybox:latest@" .. D, "docker.io", "library/busybox", "latest", D, D}, -- the digest is what is pulled
  {"ghcr.io/org/app:1@" .. D512, "ghcr.io", "org/app", "1", D512, D512},
  {"127.0.0.1:5000/multi@" .. D, "127.0.0.1:5000", "multi", nil, D, D},
}

for _, c in ipairs(valid) do
  local ref, err = image_ref.parse(c[1])
  local got = ref and {ref.registry, ref.repository, ref.tag, ref.digest, ref.reference} or {err}
  t.eq(got, {c[2], c[3], c[4], c[5], c[6]}, "parse " .. c[1])
  if ref then
    t.ok(ref.image == c[1] and ref.name == c[2] .. "/" .. c[3], "image and name of " .. c[1],
         t.show({ref.image, ref.name}))
  end
end

local ubuntu = image_ref.parse("ubuntu")
t.eq(ubuntu, {image = "ubuntu", registry = "docker.io", repository = "library/ubuntu", name = "docker.io/library/ubuntu",
              tag = "latest", reference = "latest", canonical = "docker.io/library/ubuntu:latest"},
     "the whole result of a familiar name")
t.eq(image_ref.parse("busybox:1@" .. D).canonical, "docker.io/library/busybox:1@" .. D, "canonical keeps tag and digest")

-- reference -> the reason (after 'invalid image reference "REF": ')
local FORMAT = "invalid reference format"
local invalid = {
  {"", FORMAT},
  {"https://github.com/docker/docker", FORMAT},
  {"docker/Docker", 'repository name ("docker/Docker") must be lowercase'},
  {"Ubuntu", 'repository name ("library/Ubuntu") must be lowercase'},
  {"docker.io/docker/Docker", 'repository name ("docker/Docker") must be lowercase'},
  {"-docker", FORMAT},
  {"-docker/docker", FORMAT},
  {"-docker.io/docker/docker", FORMAT},
  {"docker///docker", FORMAT},
  {"docker.io/docker///docker", FORMAT},
  {"docker/", FORMAT},
  {"docker-/docker", FORMAT},
  {"-docker-/docker", FORMAT},
  {"____/____", FORMAT},
  {"_docker/_docker", FORMAT},
  {"dock..er/docker", FORMAT},
  {"dock_.er/docker", FORMAT},
  {"dock-.er/docker", FORMAT},
  {"dock___er/docker", FORMAT},
  {"[fc00::1]", FORMAT},
  {"[fc00::1]:5000", FORMAT},
  {"fc00::1:5000/debian", FORMAT},
  {"[fe80::1%eth0]:5000/debian", FORMAT},
  {"[2001:db8:3:4::192.0.2.33]:5000/debian", FORMAT},
  {"my_host.example/app", FORMAT},
  {"-host.example/app", FORMAT},
  {"host-.example/app", FORMAT},
  {"host.example:port/app", FORMAT},
  {"host.example:/app", FORMAT},
  {"ubuntu:", FORMAT},
  {"ubuntu:-tag", FORMAT},
  {"ubuntu:.tag", FORMAT},
  {"ubuntu:a:b", FORMAT},
  {"app:" .. ("t"):rep(129), FORMAT},
  {"ubuntu@", FORMAT},
  {"ubuntu@sha256:abc", FORMAT},
  {"ubuntu@sha256", FORMAT},
  {"ubuntu@" .. D .. "@" .. D, FORMAT},
  {"ubuntu@md5:" .. ("0"):rep(32), "unsupported digest algorithm"},
  {"ubuntu@sha256:" .. ("0"):rep(63) .. "a0", "invalid checksum digest length"},
  {"ubuntu@sha256:" .. ("A"):rep(64), "invalid checksum digest format"},
  {"ubuntu@256:" .. ("0"):rep(64), FORMAT},
  {" ubuntu", FORMAT},
  {"ubuntu ", FORMAT},
  {"ubuntu\n", FORMAT},
  {"1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "cannot specify 64-byte hexadecimal strings"},
  {"a/" .. ("b"):rep(254), "repository name must not be more than 255 characters"},
}
for _, c in ipairs(invalid) do
  local quoted = #c[1] > 64 and ("%q... (%d bytes)"):format(c[1]:sub(1, 64), #c[1]) or ("%q"):format(c[1])
  t.eq({image_ref.parse(c[1])}, {nil, "invalid image reference " .. quoted .. ": " .. c[2]},
       ("refuses %q"):format(#c[1] > 70 and c[1]:sub(1, 70) .. "..." or c[1]))
end
t.ok(image_ref.parse("a/" .. ("b"):rep(253)), "a path of exactly 255 characters is fine")

t.raises("image_ref.parse: expected a string, got nil", "parse raises on a non-string", image_ref.parse)
t.raises("image_ref.parse: expected a string, got table", "parse raises on a table", image_ref.parse, {})

return t.done()
