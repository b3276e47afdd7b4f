-- scripts/bench.d/pull.lua RUNS: pull.check of 100 images on 3 local
-- registries (tests/lib/with-registry's htpasswd, token and open ones)
-- against a floor: the minimal requests the same answers need, a token per
-- repository of the token registry and a HEAD per image, sent one after
-- another by http.request over the same kept-alive connections (libcurl's
-- cache of one easy handle: 3 registries and the token service). Run by
-- scripts/bench --pull; prints one line per run and the median ratio.
local http = require "http"
local json = require "json"
local keyring = require "xcsreg.keyring"
local proc = require "proc"
local pull = require "xcsreg.pull"
local push = require "registry_push" -- tests/lib

local runs = tonumber(arg[1] or "3") or error("RUNS must be a number")
local function env(name) return (assert(os.getenv("XCSREG_REG_" .. name), "run under tests/lib/with-registry")) end
local USER, PASSWORD, CA, REALM = env("USER"), env("PASSWORD"), env("CA"), env("REALM")
local hosts = {env("BASIC"), env("TOKEN"), env("OPEN")}

-- 100 images: 11 repositories a registry, 3 tags each (one repository has 4)
local images, repos = {}, {}
for r, host in ipairs(hosts) do
  for i = 1, 11 do
    local repo = ("bench/app%d"):format(i)
    local _, body = push.image(host, repo, "t1", "amd64")
    for tag = 2, (r == 1 and i == 1) and 4 or 3 do push.manifest(host, repo, "t" .. tag, push.OCI_MANIFEST, body) end
    repos[#repos + 1] = {host = host, repo = repo}
    for tag = 1, (r == 1 and i == 1) and 4 or 3 do images[#images + 1] = ("%s/%s:t%d"):format(host, repo, tag) end
  end
end
assert(#images == 100, #images)

local kr = keyring.new()
for _, host in ipairs(hosts) do assert(kr:add({[host] = {username = USER, password = PASSWORD}}, "bench")) end

local function now()
  local _, out = proc.run{argv = {"date", "+%s.%N"}}
  return tonumber(out)
end

local ACCEPT = pull.ACCEPT
local function floor()
  local tokens, requests = {}, 0
  for _, image in ipairs(images) do
    local host, repo, tag = image:match("^([^/]+)/(.+):(t%d)$")
    local headers, basic = {Accept = ACCEPT}, nil
    if host == hosts[1] then basic = {USER, PASSWORD}
    elseif host == hosts[2] then
      if not tokens[repo] then
        local status, _, body = http.request{url = REALM .. "?service=xcsreg-test-registry&scope=repository:" .. repo .. ":pull",
                                            ca_file = CA, basic_auth = {USER, PASSWORD}}
        assert(status == 200)
        requests = requests + 1
        tokens[repo] = json.decode(body).token
      end
      headers.Authorization = "Bearer " .. tokens[repo]
    end
    local status = http.request{method = "HEAD", url = ("https://%s/v2/%s/manifests/%s"):format(host, repo, tag),
                                headers = headers, basic_auth = basic, ca_file = CA}
    assert(status == 200, image .. ": " .. tostring(status))
    requests = requests + 1
  end
  return requests
end

local ratios = {}
for run = 1, runs do
  -- alternate which goes first, so neither always meets warm connections
  local measured = {}
  for _, which in ipairs(run % 2 == 1 and {"floor", "xcsreg"} or {"xcsreg", "floor"}) do
    local start, requests = now(), nil
    if which == "floor" then
      requests = floor()
    else
      local results, stats = pull.check(images, function(ref) return kr:lookup(ref.name) end, {ca_file = CA})
      assert(stats.states.ok == 100, "not every image is ok: " .. results[1].message)
      requests = stats.requests
    end
    measured[which] = {time = now() - start, requests = requests}
  end
  ratios[run] = measured.xcsreg.time / measured.floor.time
  print(("run %d: floor %.3f s (%d requests), pull.check %.3f s (%d requests), ratio %.2f"):format(
    run, measured.floor.time, measured.floor.requests, measured.xcsreg.time, measured.xcsreg.requests, ratios[run]))
end
table.sort(ratios)
print(("pull check, 100 images on 3 registries: median ratio to the floor %.2f (target <= 1.5)"):format(
  ratios[(#ratios + 1) // 2]))
