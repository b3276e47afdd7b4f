-- xcsreg.pull: will these images pull with these credentials? Asked of each
-- registry the way a runtime asks it before pulling: containerd's
-- core/remotes/docker resolver (resolver.go's Resolve) sends
-- HEAD /v2/<repository>/manifests/<tag or digest> with
--   Accept: application/vnd.docker.distribution.manifest.v2+json,
--           application/vnd.docker.distribution.manifest.list.v2+json,
--           application/vnd.oci.image.manifest.v1+json,
--           application/vnd.oci.image.index.v1+json, */*
-- after getting, for a Bearer challenge, a token for repository:<name>:pull
-- from the realm (registry.fetch_token, the same login steps as
-- registry.verify), or with the credential itself for a Basic one.
--
--   pull.check(images, credentials_for [, opts]) -> results, stats
--
-- images: a list of references, as a pod spec gives them. credentials_for(ref)
-- is given each parsed reference (xcsreg.image_ref) and returns the list of
-- credentials the kubelet would try, in its order: {username, password,
-- source} each, source naming the Secret (keyring:lookup(ref.name) gives
-- exactly that). opts: ca_file, insecure, timeout (seconds a request, 30),
-- connect_timeout (10), concurrency (8), options_for: a function given a
-- reference's registry that returns {ca_file =, insecure =} (or nil) for
-- the requests to that registry and its token service, instead of
-- opts.ca_file and opts.insecure (a site file's registry_ca_file, so that
-- registries of different CAs are checked in one run).
--
-- results[i] is for images[i]: {image (as given), state, secret (the source
-- of the credential the state is for, or nil), registry (the reference's,
-- "docker.io" for Docker Hub, or nil when invalid), message, and when
-- parsed: repository, reference; when ok: media_type and digest as the
-- registry answered}. state is one of
--   ok           the registry has the manifest and lets the credential read it
--   denied       401 or 403 with the credential (at the registry or its token service)
--   not-found    404: no such repository, tag or digest
--   unreachable  DNS, connect, TLS, a timeout, or an answer that is none of
--                the above (5xx, a redirect, a missing challenge, a huge body)
--   uncovered    no credential matches the image's registry (the kubelet
--                would pull anonymously; nothing is asked)
--   invalid      the reference does not parse
-- When several credentials match, each is tried in order until one is ok,
-- as the kubelet does; otherwise the state reported is the most telling one
-- (not-found, then denied, then unreachable) with the Secret it came from.
--
-- stats: {images, requests, connects (new connections), challenges, tokens,
-- manifests, states = {ok = n, ...}}.
--
-- Bounds: one GET /v2/ per registry a run (its challenge, or its failure,
-- is kept), one token per registry, credential and repository scope, one
-- HEAD per image and credential (a repeated image is answered from the
-- first), at most one renewed challenge per HEAD (a 401 to an anonymous
-- request); no redirect is followed, so a credential only ever goes to the
-- registry's host and to the token service its challenge names (never over
-- plain HTTP from an HTTPS registry); every answer read is at most
-- registry.MAX_BODY bytes. Messages name registry, user, repository and
-- status, never a password or token. opts.concurrency: requests in flight
-- at most (8; see Concurrency).
--
-- Concurrency: each image is checked in a coroutine of its own, whose
-- requests yield to pull.check's loop; the loop sends every request the
-- coroutines are waiting on at once (http.request_all: at most
-- opts.concurrency, 8, in flight, multiplexed on one HTTP/2 connection per
-- registry where it speaks HTTP/2, else on at most that many kept-alive
-- HTTP/1.1 ones), then resumes them with their answers. So the checks go in
-- rounds, each as long as its slowest request: every registry's challenge,
-- then every token, then every HEAD, then the GETs of the refusals'
-- reasons; a run takes a few request times, not some per image. A
-- challenge, token or answer that another coroutine is already asking for
-- is waited for, not asked again: the bounds above hold. Results keep the
-- images' order.
local http = require "http"
local json = require "json"
local log = require "log"
local image_ref = require "xcsreg.image_ref"
local registry = require "xcsreg.registry"
local registry_host = require "xcsreg.registry_host"

local pull = {}

pull.STATES = {"ok", "denied", "not-found", "unreachable", "uncovered", "invalid"}
pull.ACCEPT = table.concat({
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "*/*",
}, ", ")

local ERROR_BODY_BYTES = 64 * 1024 -- of an error answer read for its message
local MAX_MESSAGE = 200            -- bytes of a registry's own message quoted
local RANK = {["not-found"] = 3, denied = 2, unreachable = 1}
local OPTIONS = {ca_file = "string", insecure = "boolean", timeout = "number", connect_timeout = "number",
                 concurrency = "number", options_for = "function"}

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("pull.check: opts must be a table", 3) end
  for key, value in pairs(opts) do
    if not OPTIONS[key] then error(("pull.check: unknown option '%s'"):format(tostring(key)), 3) end
    if type(value) ~= OPTIONS[key] then
      error(("pull.check: option '%s' must be a %s"):format(key, OPTIONS[key]), 3)
    end
  end
  return opts
end

-- What a check's coroutine yields to the loop (pull.check's drive).
local SEND, WAIT = {}, {}

-- One run's requests and what they taught: challenges by endpoint, tokens
-- by endpoint, credential and scope, HEAD answers by credential and image,
-- each an entry of once() below; the TLS options of each endpoint.
local function new_run(opts)
  local run = {opts = opts, challenges = {}, tokens = {}, answers = {}, tls = {},
               stats = {requests = 0, connects = 0, challenges = 0, tokens = 0, manifests = 0}}
  function run.use_tls(registry_name, endpoint)
    if run.tls[endpoint] then return end
    local tls = opts
    if opts.options_for then
      tls = opts.options_for(registry_name) or opts
      if type(tls) ~= "table" then error("pull.check: options_for must return a table or nil", 0) end
    end
    run.tls[endpoint] = {ca_file = tls.ca_file, insecure = tls.insecure}
  end
  -- req to endpoint's registry (or its token service). Only ever called in
  -- a check's coroutine: the loop sends req and resumes it with what
  -- http.request would have returned.
  function run.request(req, endpoint)
    local tls = run.tls[endpoint]
    req.ca_file, req.insecure = tls.ca_file, tls.insecure
    req.timeout, req.connect_timeout = opts.timeout or 30, opts.connect_timeout or 10
    req.max_body = req.max_body or registry.MAX_BODY
    log.debug("pull: %s %s", req.method or "GET", req.url)
    run.stats.requests = run.stats.requests + 1
    local answer = coroutine.yield(SEND, req)
    local status, headers, body, info = table.unpack(answer, 1, answer.n)
    if info then run.stats.connects = run.stats.connects + info.connects end
    return status, headers, body
  end
  return run
end

-- The values fn() returns, asked once a run for key in cache: a coroutine
-- that needs them while another is asking waits for its answer.
local function once(cache, key, fn)
  local entry = cache[key]
  if not entry then
    entry = {}
    cache[key] = entry
    entry.values = table.pack(fn())
  end
  while not entry.values do coroutine.yield(WAIT) end
  return table.unpack(entry.values, 1, entry.values.n)
end
local function known(...) return {values = table.pack(...)} end

local function host_of(endpoint) return endpoint:match("//(.*)") end

-- What a non-2xx answer that is not a result says: "answered HTTP 302 (to URL)".
local function odd_answer(who, status, headers)
  local to = (status >= 300 and status < 400 and headers.location) and (", a redirect to %s, not followed"):format(
    headers.location:sub(1, MAX_MESSAGE)) or ""
  return ("%s answered HTTP %d%s"):format(who, status, to)
end

-- The registry's challenge: {scheme = "open"|"basic"|"bearer", params}, or
-- nil, message (kept for the run either way).
local function challenge(run, endpoint)
  return once(run.challenges, endpoint, function()
    run.stats.challenges = run.stats.challenges + 1
    local host = host_of(endpoint)
    local status, headers = run.request({url = endpoint .. "/v2/"}, endpoint)
    if not status then return nil, headers end
    if status >= 200 and status < 300 then return {scheme = "open", params = {}} end
    if status == 401 then
      local c = registry.usable_challenge(headers)
      if c then return c end
      return nil, ("%s answered HTTP 401 with no Basic or Bearer challenge"):format(host)
    end
    return nil, odd_answer(host, status, headers)
  end)
end

local function credential_id(cred) return cred.username .. "\0" .. cred.password end

-- The request options that carry cred for challenge c to the registry, or
-- nil, state, message.
local function authorization(run, endpoint, c, cred, scope)
  if c.scheme == "open" then return {} end
  if c.scheme == "basic" then return {basic_auth = {cred.username, cred.password}} end
  local key = table.concat({endpoint, c.params.realm or "", c.params.service or "", scope, credential_id(cred)}, "\0")
  local token, outcome, detail = once(run.tokens, key, function()
    run.stats.tokens = run.stats.tokens + 1
    local auth = (cred.username ~= "" or cred.password ~= "") and {basic_auth = {cred.username, cred.password}} or {}
    local function get(url, how) -- registry.fetch_token's request function
      return run.request({url = url, headers = how.headers, basic_auth = how.basic_auth}, endpoint)
    end
    return registry.fetch_token(get, endpoint, cred.username, auth, c.params, scope)
  end)
  if not token then return nil, outcome == "rejected" and "denied" or "unreachable", detail end
  return {headers = {Authorization = "Bearer " .. token}}
end

-- " (NAME_UNKNOWN: repository name not known to registry)" from a
-- registry's error body, or "".
local function registry_says(body)
  local doc = json.decode(body or "")
  local e = type(doc) == "table" and type(doc.errors) == "table" and doc.errors[1]
  if type(e) ~= "table" then return "" end
  local parts = {}
  if type(e.code) == "string" then parts[#parts + 1] = e.code end
  if type(e.message) == "string" then parts[#parts + 1] = e.message end
  if #parts == 0 then return "" end
  local said = log.redact(table.concat(parts, ": ")):gsub("[%c]", " ")
  if #said > MAX_MESSAGE then said = said:sub(1, MAX_MESSAGE) .. "..." end
  return ": " .. said
end

-- One HEAD of ref's manifest with cred: state, message, media_type, digest.
local function ask(run, endpoint, ref, cred)
  local host, user = host_of(endpoint), cred.username
  local c, problem = challenge(run, endpoint)
  if not c then return "unreachable", problem end
  local scope = "repository:" .. ref.repository .. ":pull"
  local url = ("%s/v2/%s/manifests/%s"):format(endpoint, ref.repository, ref.reference)
  local what = ("%s:%s"):format(ref.repository, ref.reference)
  if ref.digest then what = ref.repository .. "@" .. ref.digest end
  local status, headers, auth
  for attempt = 1, 2 do
    local state, message
    auth, state, message = authorization(run, endpoint, c, cred, scope)
    if not auth then return state, message end
    local request_headers = {Accept = pull.ACCEPT}
    for k, v in pairs(auth.headers or {}) do request_headers[k] = v end
    run.stats.manifests = run.stats.manifests + 1
    status, headers = run.request({method = "HEAD", url = url, headers = request_headers, basic_auth = auth.basic_auth},
                                  endpoint)
    if not status then return "unreachable", headers end
    -- an anonymous request refused: the registry names its challenge now (once)
    local renewed = status == 401 and c.scheme == "open" and attempt == 1 and registry.usable_challenge(headers)
    if not renewed then break end
    c = renewed
    run.challenges[endpoint] = known(c)
  end
  if status >= 200 and status < 300 then
    local digest = headers["docker-content-digest"]
    if ref.digest and digest and digest ~= ref.digest then
      return "unreachable", ("%s answered for %s with the manifest %s"):format(host, what, digest:sub(1, MAX_MESSAGE))
    end
    local media_type = (headers["content-type"] or ""):match("^[^;%s]*")
    return "ok", ("%s has %s (%s), readable by user %s"):format(host, what, media_type, user), media_type, digest
  end
  if status == 401 or status == 403 or status == 404 then
    -- a HEAD answer has no body: the same GET says why, within bounds
    local request_headers = {Accept = pull.ACCEPT}
    for k, v in pairs(auth.headers or {}) do request_headers[k] = v end
    local _, _, body = run.request({url = url, headers = request_headers, basic_auth = auth.basic_auth,
                                    max_body = ERROR_BODY_BYTES}, endpoint)
    local says = registry_says(body)
    if status == 404 then
      return "not-found", ("%s has no manifest %s (HTTP 404%s)"):format(host, what, says)
    end
    local why = ""
    local refusal = registry.usable_challenge(headers)
    if refusal and refusal.params.error then why = ", " .. refusal.params.error:sub(1, MAX_MESSAGE) end
    return "denied", ("%s denied user %s pull of %s (HTTP %d%s%s)"):format(host, user, ref.repository, status, why, says)
  end
  return "unreachable", odd_answer(host, status, headers)
end

local function check_image(run, image, credentials_for)
  local ref, invalid = image_ref.parse(image)
  if not ref then return {image = image, state = "invalid", message = invalid} end
  local creds = credentials_for(ref)
  if type(creds) ~= "table" then error("pull.check: credentials_for must return a list of credentials", 3) end
  local result = {image = image, registry = ref.registry, repository = ref.repository, reference = ref.reference}
  if #creds == 0 then
    result.state = "uncovered"
    result.message = ("no pull secret covers %s (for %s)"):format(ref.registry, ref.name)
    return result
  end
  local endpoint = registry_host.endpoint(ref.registry)
  run.use_tls(ref.registry, endpoint)
  local best
  for _, cred in ipairs(creds) do
    if type(cred.username) ~= "string" or type(cred.password) ~= "string" then
      error("pull.check: a credential needs a username and a password (strings)", 3)
    end
    if cred.password ~= "" then log.secret(cred.password) end
    local key = table.concat({endpoint, ref.repository, ref.reference, credential_id(cred)}, "\0")
    local answer = table.pack(once(run.answers, key, function() return ask(run, endpoint, ref, cred) end))
    local state = answer[1]
    if state == "ok" or not best or RANK[state] > RANK[best[1]] then best = answer; result.secret = cred.source end
    if state == "ok" then break end
  end
  result.state, result.message, result.media_type, result.digest = best[1], best[2], best[3], best[4]
  return result
end

-- Runs check(i) for i = 1..n, each in a coroutine, until all are over.
-- Every round resumes the coroutines whose answers came (and those waiting
-- on another's once(), again while any of them moves on: the one they wait
-- for may have finished), then sends every request they now wait on in one
-- http.request_all. A check that raises ends the run with its error at
-- once: between rounds nothing is in flight.
local function drive(n, check, concurrency)
  local tasks, ready = {}, {}
  for i = 1, n do
    tasks[i] = coroutine.create(check)
    ready[i] = {i, n = 1}
  end
  while next(ready) do
    local sends, senders, waiting, moved = {}, {}, {}, true
    while moved do
      moved = false
      for i = 1, n do
        local args = ready[i]
        if args then
          ready[i] = nil
          local ok, what, req = coroutine.resume(tasks[i], table.unpack(args, 1, args.n))
          if not ok then error(what, 0) end
          if coroutine.status(tasks[i]) == "dead" then
            moved = true
          elseif what == SEND then
            sends[#sends + 1], senders[#sends + 1], moved = req, i, true
          elseif what == WAIT then
            waiting[i], moved = true, moved or not args.waited
          else
            error("pull.check: a credentials_for function must not yield", 0)
          end
        end
      end
      if moved then
        for i in pairs(waiting) do ready[i] = {n = 0, waited = true} end
        waiting = {}
      end
    end
    if #sends == 0 and next(waiting) then
      error("pull.check: checks wait on each other", 0) -- cannot happen: once() asks before it waits
    end
    for i in pairs(waiting) do ready[i] = {n = 0, waited = true} end
    if #sends > 0 then
      for j, answer in ipairs(http.request_all(sends, {concurrency = concurrency})) do
        ready[senders[j]] = {answer, n = 1}
      end
    end
  end
end

function pull.check(images, credentials_for, opts)
  if type(images) ~= "table" then error("pull.check: images must be a list of image references", 2) end
  if type(credentials_for) ~= "function" then error("pull.check: credentials_for must be a function", 2) end
  for i, image in ipairs(images) do
    if type(image) ~= "string" then error(("pull.check: images[%d] is not a string"):format(i), 2) end
  end
  opts = check_options(opts)
  local concurrency = opts.concurrency or 8
  if math.type(concurrency) ~= "integer" or concurrency < 1 or concurrency > 64 then
    error("pull.check: option 'concurrency' must be an integer from 1 to 64", 2)
  end
  local run = new_run(opts)
  local results, states = {}, {}
  for _, state in ipairs(pull.STATES) do states[state] = 0 end
  drive(#images, function(i) results[i] = check_image(run, images[i], credentials_for) end, concurrency)
  for _, r in ipairs(results) do states[r.state] = states[r.state] + 1 end
  local stats = run.stats
  stats.images, stats.states = #images, states
  return results, stats
end

return pull
