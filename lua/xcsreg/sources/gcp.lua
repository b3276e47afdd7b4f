-- xcsreg.sources.gcp: `gcp = { service_account = "default" }`, an OAuth2
-- access token (valid about an hour) of the GCE/GKE instance's service
-- account, from the metadata server; registries take it as the password of
-- user "oauth2accesstoken". GCE_METADATA_HOST (host[:port]), the variable of
-- Google's SDKs, points elsewhere than metadata.google.internal.
local http = require "http"
local json = require "json"
local log = require "log"

local M = {}

function M.get(entry, ctx)
  local host = ctx.env("GCE_METADATA_HOST")
  if not host or host == "" then host = "metadata.google.internal" end
  local url = string.format("http://%s/computeMetadata/v1/instance/service-accounts/%s/token",
    host, entry.gcp.service_account or "default")
  -- never through a proxy (http_proxy): it would see the token in cleartext
  local status, failure, body = http.request { url = url, headers = { ["Metadata-Flavor"] = "Google" },
                                               connect_timeout = 2, timeout = 10, no_proxy = true }
  if not status then
    return nil, "gcp: cannot reach the metadata server (" .. failure
      .. "): run on GCE or GKE with a service account, or set GCE_METADATA_HOST"
  end
  local doc = status == 200 and json.decode(body)
  if type(doc) ~= "table" or type(doc.access_token) ~= "string" then
    return nil, string.format("gcp: the metadata server answered HTTP %d without an access token: %s",
      status, log.redact(body:match("[^\r\n]*"), 200)) -- redacted, then cut
  end
  log.secret(doc.access_token)
  local expires = math.type(doc.expires_in) and ctx.now + math.floor(doc.expires_in) or nil
  return { username = "oauth2accesstoken", password = doc.access_token, expires_at = expires, source = "gcp" }
end

return M
