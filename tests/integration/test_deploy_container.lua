-- scripts/k8s/Containerfile without a container engine: its stages, that its Debian packages exist, that its build context builds, and that the runtime packages are exactly what the binary links.
-- needs: none
local t = require "test"
local proc = require "proc"
local yaml = require "yaml"

local root = (arg[0]:match("^(.*)/tests/integration/[^/]*$")) or "."
local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

local function read(path) return assert(io.open(root .. "/" .. path)):read("a") end
local function run(argv, opts)
  opts = opts or {}
  local code, out, err = proc.run { argv = argv, timeout = opts.timeout or 120, env = { LC_ALL = "C" } }
  assert(code, out)
  return code, out, err
end
local function words(s)
  local list = {}
  for w in s:gmatch("%S+") do list[#list + 1] = w end
  return list
end
local function sorted(list)
  local copy = table.move(list, 1, #list, 1, {})
  table.sort(copy)
  return copy
end

-- ---- the Containerfile's instructions, by stage ----
local text = read("scripts/k8s/Containerfile"):gsub("\\\n", " ")
local stages = {}
for line in text:gmatch("[^\n]+") do
  local op, rest = line:match("^(%u+)%s+(.*)$")
  if op == "FROM" then
    stages[#stages + 1] = { from = rest, ops = {} }
  elseif op then
    table.insert(stages[#stages].ops, { op = op, arg = rest })
  end
end
t.eq({ #stages, stages[1] and stages[1].from, stages[2] and stages[2].from },
  { 2, "debian:bookworm-slim AS build", "debian:bookworm-slim" }, "two stages, both Debian 12 slim")

local function installed(stage)
  for _, o in ipairs(stage.ops) do
    local pkgs = o.op == "RUN" and o.arg:match("apt%-get install %-y %-%-no%-install%-recommends ([^&]-)%s*&&")
    if pkgs then
      t.ok(o.arg:find("apt-get update", 1, true) and o.arg:find("rm -rf /var/lib/apt/lists/*", 1, true),
        stage.from .. ": one RUN updates, installs without recommends, and drops the lists")
      return words(pkgs)
    end
  end
  return {}
end
local build_pkgs, runtime_pkgs = installed(stages[1]), installed(stages[2])
local RUNTIME = { "ca-certificates", "libcjson1", "libcurl4", "liblua5.4-0", "libyaml-0-2" }
t.eq(sorted(runtime_pkgs), RUNTIME, "runtime stage: liblua5.4-0 libcurl4 libcjson1 libyaml-0-2 ca-certificates")
local have = {}
for _, p in ipairs(build_pkgs) do have[p] = true end
local missing = {}
for _, p in ipairs(words(read("scripts/install-deps"):match('build_pkgs="([^"]*)"'))) do
  if not have[p] then missing[#missing + 1] = p end
end
t.eq(missing, {}, "build stage: every build package of scripts/install-deps")
t.ok(have["libc6-dev"], "build stage: libc6-dev (only recommended by gcc, and recommends are off)")

-- ---- every package exists in Debian ----
local all_pkgs = sorted(table.move(runtime_pkgs, 1, #runtime_pkgs, #build_pkgs + 1,
  table.move(build_pkgs, 1, #build_pkgs, 1, {})))
local _, shown = run { "apt-cache", "show", "--no-all-versions", table.unpack(all_pkgs) }
for _, p in ipairs(all_pkgs) do
  t.ok(shown:find("Package: " .. p .. "\n", 1, true) ~= nil, "apt-cache show " .. p)
end

-- ---- the runtime stage: a non-root user, the binary, its entry point ----
local runtime = {}
for _, o in ipairs(stages[2].ops) do runtime[o.op] = runtime[o.op] or o.arg end
local cronjob = yaml.decode(read("scripts/k8s/cronjob.yaml"))
local pod_security = cronjob.spec.jobTemplate.spec.template.spec.securityContext
t.eq(runtime.USER, string.format("%d:%d", pod_security.runAsUser, pod_security.runAsGroup),
  "USER is numeric and the CronJob's runAsUser:runAsGroup")
local useradd = stages[2].ops[2] and stages[2].ops[2].arg or ""
t.ok(useradd:find("useradd --system --uid " .. pod_security.runAsUser, 1, true)
  and useradd:find("groupadd --system --gid " .. pod_security.runAsGroup, 1, true), "the user exists in the image")
t.eq(runtime.COPY, "--from=build /src/xcsreg /usr/local/bin/xcsreg", "the one binary is all that is copied")
t.eq(runtime.ENTRYPOINT, '["/usr/local/bin/xcsreg"]', "ENTRYPOINT xcsreg")

-- ---- the build context: only what the build stage copies, then `make` ----
local ctx = tmp .. "/container-build"
run { "rm", "-rf", ctx }
run { "mkdir", "-p", ctx }
local workdir, make_line
for _, o in ipairs(stages[1].ops) do
  if o.op == "WORKDIR" then workdir = o.arg end
  if o.op == "COPY" then
    -- as COPY does: a directory's contents into dest; a file into dest/ or as dest
    local src, dest = o.arg:match("^(%S+)%s+(%S+)$")
    local into = dest:find("/$")
    src, dest = root .. "/" .. src:gsub("/$", ""), ctx .. "/" .. dest:gsub("/$", "")
    if run { "test", "-d", src } == 0 or not into then
      run { "mkdir", "-p", dest:match("^(.*)/[^/]*$") }
      run { "cp", "-r", src, dest }
    else
      run { "mkdir", "-p", dest }
      run { "cp", src, dest .. "/" }
    end
  end
  if o.op == "RUN" and o.arg:find("^make") then make_line = o.arg end
end
t.eq({ workdir, make_line }, { "/src", "make && ./xcsreg version" }, "build stage: make in /src, then a smoke test")
local code, out, err = run({ "make", "-C", ctx }, { timeout = 600 })
t.ok(code == 0, "make builds from the copied context alone", err)
code, out = run { ctx .. "/xcsreg", "scripts" }
t.ok(code == 0 and out:find("setup.lua", 1, true) and out:find("status.lua", 1, true),
  "the image's binary has setup.lua and status.lua compiled in", out)

-- ---- the libraries it links come from exactly the runtime packages ----
-- The package owning each library (dpkg knows some by their /usr/lib path only).
local function packages_of(libs)
  local argv = { "dpkg", "-S" }
  for _, lib in ipairs(libs) do argv[#argv + 1], argv[#argv + 2] = lib, (lib:gsub("^/lib/", "/usr/lib/")) end
  local _, o = run(argv)
  local owner = {}
  for pkg, path in o:gmatch("([^\n:,]+)[^\n]*: (/[^\n]+)") do owner[path] = pkg end
  local result = {}
  for i, lib in ipairs(libs) do
    result[i] = owner[lib] or owner[(lib:gsub("^/lib/", "/usr/lib/"))] or "(no package owns " .. lib .. ")"
  end
  return result
end
local _, ldd = run { "ldd", ctx .. "/xcsreg" }
local path_of, all_libs = {}, {}
for name, path in ldd:gmatch("\n?%s*(%S+) => (%S+)") do
  path_of[name] = path
  all_libs[#all_libs + 1] = path
end
local _, dynamic = run { "readelf", "-d", ctx .. "/xcsreg" }
local needed = {}
for name in dynamic:gmatch("%(NEEDED%)%s+Shared library: %[([^%]]+)%]") do needed[#needed + 1] = path_of[name] or name end
-- libcurl.so.4 explicitly: a binary that loads it with dlopen, to start
-- faster, has no NEEDED entry for it, yet cannot work without it.
local _, cache = run { "ldconfig", "-p" }
local curl = cache:match("\n%s*libcurl%.so%.4 %([^)]*%) => (%S+)")
t.ok(curl ~= nil, "ldconfig knows libcurl.so.4", cache:match("[^\n]*libcurl[^\n]*"))
needed[#needed + 1] = curl
all_libs[#all_libs + 1] = curl
local _, curl_ldd = run { "ldd", curl }
for path in curl_ldd:gmatch("=> (%S+)") do all_libs[#all_libs + 1] = path end
local direct, direct_pkgs = {}, {}
for _, p in ipairs(packages_of(needed)) do
  if not direct[p] then direct_pkgs[#direct_pkgs + 1] = p end
  direct[p] = true
end
t.eq(sorted(direct_pkgs), { "libc6", "libcjson1", "libcurl4", "liblua5.4-0", "libyaml-0-2" },
  "the libraries xcsreg names (NEEDED, and libcurl.so.4) belong to the runtime packages and libc6, which every image has")
local _, deps = run { "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
  "--no-breaks", "--no-replaces", "--no-enhances", table.unpack(RUNTIME) }
local closure = {}
for p in deps:gmatch("([^%s<>]+)\n") do closure[p] = true end
local outside = {}
for i, p in ipairs(packages_of(all_libs)) do
  if not closure[p] then outside[#outside + 1] = all_libs[i] .. " (" .. p .. ")" end
end
t.eq({ #all_libs > 10, outside }, { true, {} },
  "every library xcsreg and libcurl load comes with the runtime packages' dependencies")
run { "rm", "-rf", ctx }

return t.done()
