-- registry_push.lua: pushing test images to the registries of
-- tests/lib/with-registry over the registry API (distribution's
-- docs/spec/api.md: POST then PUT ?digest= for a blob, PUT for a manifest),
-- as the repositories' owner: Basic for the htpasswd registry, a pull,push
-- token from the token service (its owner account) for token auth, nothing
-- for the open one. For test_pull_check.lua and scripts/bench --pull.
--
--   push.image(host, repo, tag, arch [, docker]) -> descriptor of the manifest
--       (one layer and a config; tag nil: by digest only; docker: Docker's
--       media types instead of OCI's)
--   push.index(host, repo, tag [, docker]) -> descriptor of an amd64+arm64
--       index (or Docker manifest list), the list of its manifests' descriptors
--   push.manifest(host, repo, ref, media_type, body) -> descriptor
--   push.sha256(data) -> "sha256:..."
-- Every failure raises: a test that cannot push cannot check anything.
local http = require "http"
local json = require "json"
local proc = require "proc"

local push = {
  OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json",
  OCI_INDEX = "application/vnd.oci.image.index.v1+json",
  DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json",
  DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json",
}

local function env(name)
  return os.getenv("XCSREG_REG_" .. name) or error("XCSREG_REG_" .. name .. " is not set: run under tests/lib/with-registry")
end

function push.sha256(data)
  local status, out = proc.run{argv = {"sha256sum"}, stdin = data}
  assert(status == 0, "sha256sum failed")
  return "sha256:" .. out:match("^(%x+)")
end

local tokens = {}
local function owner_auth(host, repo)
  if host == env("BASIC") then return {basic_auth = {env("USER"), env("PASSWORD")}} end
  if host ~= env("TOKEN") then return {} end
  if not tokens[repo] then
    local status, _, body = http.request{url = env("REALM") .. "?service=xcsreg-test-registry&scope=repository:"
                                              .. repo .. ":pull,push", ca_file = env("CA"),
                                        basic_auth = {env("PUSHER_USER"), env("PUSHER_PASSWORD")}}
    assert(status == 200, "no push token for " .. repo .. ": " .. tostring(status))
    tokens[repo] = json.decode(body).token
  end
  return {headers = {Authorization = "Bearer " .. tokens[repo]}}
end

local function request(host, repo, req)
  local auth = owner_auth(host, repo)
  req.ca_file = env("CA")
  req.basic_auth = auth.basic_auth
  req.headers = req.headers or {}
  for k, v in pairs(auth.headers or {}) do req.headers[k] = v end
  return http.request(req)
end

local function blob(host, repo, data)
  local digest = push.sha256(data)
  local status, headers = request(host, repo, {method = "POST", url = ("https://%s/v2/%s/blobs/uploads/"):format(host, repo)})
  assert(status == 202, ("POST %s/%s uploads: %s"):format(host, repo, tostring(status)))
  local location = headers.location
  if location:sub(1, 1) == "/" then location = "https://" .. host .. location end
  status = request(host, repo, {method = "PUT", body = data,
                                url = location .. (location:find("?", 1, true) and "&" or "?") .. "digest=" .. digest,
                                headers = {["Content-Type"] = "application/octet-stream"}})
  assert(status == 201, ("PUT blob %s/%s: %s"):format(host, repo, tostring(status)))
  return {digest = digest, size = #data}
end

function push.manifest(host, repo, ref, media_type, body)
  local status = request(host, repo, {method = "PUT", url = ("https://%s/v2/%s/manifests/%s"):format(host, repo, ref),
                                      body = body, headers = {["Content-Type"] = media_type}})
  assert(status == 201, ("PUT manifest %s/%s:%s: %s"):format(host, repo, ref, tostring(status)))
  return {mediaType = media_type, digest = push.sha256(body), size = #body}
end

function push.image(host, repo, tag, arch, docker)
  local layer = blob(host, repo, ("layer of %s for %s"):format(repo, arch))
  local config_text = json.encode{architecture = arch, os = "linux", rootfs = {type = "layers", diff_ids = {layer.digest}}}
  local config = blob(host, repo, config_text)
  config.mediaType = docker and "application/vnd.docker.container.image.v1+json" or "application/vnd.oci.image.config.v1+json"
  layer.mediaType = docker and "application/vnd.docker.image.rootfs.diff.tar.gzip" or "application/vnd.oci.image.layer.v1.tar+gzip"
  local media_type = docker and push.DOCKER_MANIFEST or push.OCI_MANIFEST
  local body = json.encode{schemaVersion = 2, mediaType = media_type, config = config, layers = {layer}}
  return push.manifest(host, repo, tag or push.sha256(body), media_type, body), body
end

function push.index(host, repo, tag, docker)
  local manifests = {}
  for _, arch in ipairs{"amd64", "arm64"} do
    local m = push.image(host, repo, nil, arch, docker)
    m.platform = {architecture = arch, os = "linux"}
    manifests[#manifests + 1] = m
  end
  local media_type = docker and push.DOCKER_LIST or push.OCI_INDEX
  local body = json.encode{schemaVersion = 2, mediaType = media_type, manifests = manifests}
  return push.manifest(host, repo, tag, media_type, body), manifests
end

return push
