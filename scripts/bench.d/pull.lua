-- scripts/bench.d/pull.lua RUNS: pull.check of 100 images on 3 local
-- registries (tests/lib/with-registry's htpasswd, token and open ones)
-- against two floors, the minimal requests the same answers need (a token
-- per repository of the token registry and a HEAD per image) over the same
-- kept-alive connections (3 registries and the token service):
--   sequential  sent one after another by http.request
--   concurrent  sent as pull.check sends them, by http.request_all, 8 in
--               flight: every token at once, then every HEAD
-- Run by scripts/bench --pull; prints one line per run and the medians.
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
local function parts(image) return image:match("^([^/]+)/(.+):(t%d)$") end
local function token_request(repo)
  return {url = REALM .. "?service=xcsreg-test-registry&scope=repository:" .. repo .. ":pull",
          ca_file = CA, basic_auth = {USER, PASSWORD}}
end
local function head_request(image, token)
  local host, repo, tag = parts(image)
  local headers, basic = {Accept = ACCEPT}, nil
  if host == hosts[1] then basic = {USER, PASSWORD}
  elseif host == hosts[2] then headers.Authorization = "Bearer " .. token end
  return {method = "HEAD", url = ("https://%s/v2/%s/manifests/%s"):format(host, repo, tag),
          headers = headers, basic_auth = basic, ca_file = CA}
end

local function sequential_floor()
  local tokens, requests = {}, 0
  for _, image in ipairs(images) do
    local host, repo = parts(image)
    if host == hosts[2] and not tokens[repo] then
      local status, _, body = http.request(token_request(repo))
      assert(status == 200)
      requests = requests + 1
      tokens[repo] = json.decode(body).token
    end
    local status = http.request(head_request(image, tokens[repo]))
    assert(status == 200, image .. ": " .. tostring(status))
    requests = requests + 1
  end
  return requests
end

local function concurrent_floor()
  local repos_of_token, list = {}, {}
  for _, image in ipairs(images) do
    local host, repo = parts(image)
    if host == hosts[2] and not repos_of_token[repo] then
      repos_of_token[repo] = true
      repos_of_token[#repos_of_token + 1] = repo
      list[#list + 1] = token_request(repo)
    end
  end
  local tokens = {}
  for i, r in ipairs(http.request_all(list)) do
    assert(r[1] == 200)
    tokens[repos_of_token[i]] = json.decode(r[3]).token
  end
  local heads = {}
  for i, image in ipairs(images) do
    local _, repo = parts(image)
    heads[i] = head_request(image, tokens[repo])
  end
  for i, r in ipairs(http.request_all(heads)) do assert(r[1] == 200, images[i] .. ": " .. tostring(r[1] or r[2])) end
  return #list + #heads
end

local function median(list)
  local sorted = table.move(list, 1, #list, 1, {})
  table.sort(sorted)
  return sorted[(#sorted + 1) // 2]
end

local WAYS = {"sequential", "concurrent", "xcsreg"}
local times, seq_ratios, conc_ratios = {sequential = {}, concurrent = {}, xcsreg = {}}, {}, {}
for run = 1, runs do
  -- rotate which goes first, so none always meets warm connections
  local measured = {}
  for k = 0, #WAYS - 1 do
    local which = WAYS[(run + k - 1) % #WAYS + 1]
    local start, requests = now(), nil
    if which == "sequential" then
      requests = sequential_floor()
    elseif which == "concurrent" then
      requests = concurrent_floor()
    else
      local results, stats = pull.check(images, function(ref) return kr:lookup(ref.name) end, {ca_file = CA})
      assert(stats.states.ok == 100, "not every image is ok: " .. results[1].message)
      requests = stats.requests
    end
    measured[which] = {time = now() - start, requests = requests}
    table.insert(times[which], measured[which].time)
  end
  seq_ratios[run] = measured.xcsreg.time / measured.sequential.time
  conc_ratios[run] = measured.xcsreg.time / measured.concurrent.time
  print(("run %d: sequential floor %.3f s (%d requests), concurrent floor %.3f s (%d requests), "
         .. "pull.check %.3f s (%d requests), ratios %.2f and %.2f"):format(
    run, measured.sequential.time, measured.sequential.requests, measured.concurrent.time,
    measured.concurrent.requests, measured.xcsreg.time, measured.xcsreg.requests, seq_ratios[run], conc_ratios[run]))
end
print(("pull check, 100 images on 3 registries, medians of %d runs: sequential floor %.3f s, concurrent floor %.3f s, "
       .. "pull.check %.3f s"):format(runs, median(times.sequential), median(times.concurrent), median(times.xcsreg)))
print(("median ratio to the sequential floor %.2f, to the concurrent floor %.2f (target <= 1.5)"):format(
  median(seq_ratios), median(conc_ratios)))
