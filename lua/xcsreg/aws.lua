-- xcsreg.aws: AWS credentials from the standard chain, and signed JSON calls.
--
-- The chain, first match wins, as the AWS SDKs have it:
--   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
--   2. web identity (IRSA on EKS): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
--      [+ AWS_ROLE_SESSION_NAME], exchanged with STS AssumeRoleWithWebIdentity
--   3. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE or
--      ~/.aws/credentials, profile AWS_PROFILE or "default"
--   4. EC2 instance metadata, IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true)
-- Endpoints, as the SDKs name their settings: AWS_ENDPOINT_URL_<SERVICE>
-- (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS), else AWS_ENDPOINT_URL, else
-- AWS's; AWS_EC2_METADATA_SERVICE_ENDPOINT for instance metadata.
-- Signing is libcurl's SigV4 (http.request's aws_sigv4).
local http = require "http"
local json = require "json"
local log = require "log"

local aws = {}

-- Registers the values that are strings (a session token may be absent).
local function register(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" then log.secret(v) end
  end
end

-- The endpoint of service in region, without a trailing slash.
-- host: AWS's host name for the service ("api.ecr.eu-west-1.amazonaws.com").
function aws.endpoint(ctx, service, host)
  local url = ctx.env("AWS_ENDPOINT_URL_" .. service:upper()) or ctx.env("AWS_ENDPOINT_URL")
  if url == nil or url == "" then url = "https://" .. host end
  return (url:gsub("/+$", ""))
end

local function from_environment(ctx)
  local id, secret = ctx.env("AWS_ACCESS_KEY_ID"), ctx.env("AWS_SECRET_ACCESS_KEY")
  if not id or id == "" then return false end
  if not secret or secret == "" then
    return nil, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
  end
  local token = ctx.env("AWS_SESSION_TOKEN")
  return { access_key_id = id, secret_access_key = secret,
           session_token = token ~= "" and token or nil, from = "the environment" }
end

local function form_encode(params)
  local parts = {}
  for _, kv in ipairs(params) do
    parts[#parts + 1] = kv[1] .. "=" .. kv[2]:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", c:byte())
    end)
  end
  return table.concat(parts, "&")
end

local entities = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }
local function xml_field(xml, name)
  local v = xml:match("<" .. name .. ">([^<]*)</" .. name .. ">")
  return v and (v:gsub("&(%a+);", entities))
end

local function from_web_identity(ctx, region)
  local token_file = ctx.env("AWS_WEB_IDENTITY_TOKEN_FILE")
  if not token_file or token_file == "" then return false end
  local role = ctx.env("AWS_ROLE_ARN")
  if not role or role == "" then
    return nil, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"
  end
  local f, err = io.open(token_file, "rb")
  if not f then return nil, "cannot read the web identity token: " .. err end
  local text = f:read("a")
  f:close()
  local token = (text or ""):gsub("%s+$", "")
  if token == "" then return nil, "the web identity token file " .. token_file .. " is empty or unreadable" end
  log.secret(token)
  local session = ctx.env("AWS_ROLE_SESSION_NAME")
  if not session or session == "" then session = "xcsreg-" .. ctx.now end
  return aws.assume_role_with_web_identity(ctx, region, role, token, session)
end

-- STS AssumeRoleWithWebIdentity: the role's temporary credentials for a web
-- identity token (an IRSA token file's, or a pod's ServiceAccount token that
-- the kubelet gives a credential provider, KEP-4412), as aws.credentials
-- returns them, or nil and a message. The token is registered as a secret.
function aws.assume_role_with_web_identity(ctx, region, role, token, session)
  log.secret(token)
  local url = aws.endpoint(ctx, "sts", "sts." .. region .. ".amazonaws.com") .. "/"
  local status, failure, body = http.request {
    method = "POST", url = url, timeout = 30,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = form_encode { { "Action", "AssumeRoleWithWebIdentity" }, { "Version", "2011-06-15" },
                         { "RoleArn", role }, { "RoleSessionName", session },
                         { "WebIdentityToken", token } },
  }
  local what = "STS AssumeRoleWithWebIdentity for " .. role
  if not status then return nil, what .. " failed: " .. failure end
  if status ~= 200 then
    return nil, string.format("%s failed (%s, HTTP %d): %s", what,
      xml_field(body, "Code") or "no error code", status, xml_field(body, "Message") or "")
  end
  local cred = { access_key_id = xml_field(body, "AccessKeyId"),
                 secret_access_key = xml_field(body, "SecretAccessKey"),
                 session_token = xml_field(body, "SessionToken"), from = "web identity (" .. role .. ")" }
  if not (cred.access_key_id and cred.secret_access_key and cred.session_token) then
    return nil, what .. ": no credentials in the answer"
  end
  register(cred.secret_access_key, cred.session_token)
  return cred
end

-- The [profile] section of an INI file: key = value pairs, or nil.
local function ini_section(text, profile)
  local values, current
  for line in text:gmatch("[^\r\n]+") do
    local name = line:match("^%s*%[%s*(.-)%s*%]")
    if name then
      current = name == profile
      if current then values = values or {} end
    elseif current then
      local k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
      if k then values[k] = v end
    end
  end
  return values
end

local function from_profile(ctx)
  local file = ctx.env("AWS_SHARED_CREDENTIALS_FILE")
  if not file or file == "" then file = (ctx.env("HOME") or "") .. "/.aws/credentials" end
  local explicit = ctx.env("AWS_PROFILE")
  local profile = (explicit and explicit ~= "") and explicit or "default"
  local f = io.open(file, "rb")
  local section = f and ini_section(f:read("a") or "", profile)
  if f then f:close() end
  if not section then
    if profile == explicit then return nil, "no profile '" .. profile .. "' in " .. file end
    return false
  end
  local id, secret = section.aws_access_key_id, section.aws_secret_access_key
  if not id or not secret then
    return nil, "profile '" .. profile .. "' in " .. file .. " has no aws_access_key_id and "
      .. "aws_secret_access_key (role and SSO profiles are not supported)"
  end
  register(secret, section.aws_session_token)
  return { access_key_id = id, secret_access_key = secret, session_token = section.aws_session_token,
           from = "profile '" .. profile .. "' in " .. file }
end

local function from_instance_metadata(ctx)
  if (ctx.env("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then return false end
  local base = (ctx.env("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254"):gsub("/+$", "")
  local function call(method, path, headers)
    -- never through a proxy (http_proxy): it would see the role's keys in cleartext
    local status, failure, body = http.request { method = method, url = base .. path, headers = headers,
                                                 connect_timeout = 1, timeout = 5, no_proxy = true }
    if not status then return nil, failure end
    if status ~= 200 then return nil, string.format("%s %s: HTTP %d", method, path, status) end
    return body
  end
  local token, err = call("PUT", "/latest/api/token", { ["X-aws-ec2-metadata-token-ttl-seconds"] = "300" })
  if not token then return nil, err end
  log.secret(token)
  local auth = { ["X-aws-ec2-metadata-token"] = token }
  local prefix = "/latest/meta-data/iam/security-credentials/"
  local roles
  roles, err = call("GET", prefix, auth)
  if not roles then return nil, err end
  local role = roles:match("[^%s]+")
  if not role then return nil, "the instance has no IAM role" end
  local text
  text, err = call("GET", prefix .. role, auth)
  if not text then return nil, err end
  local doc = json.decode(text)
  if type(doc) ~= "table" or doc.Code ~= "Success" or type(doc.SecretAccessKey) ~= "string" then
    return nil, "no usable credentials for role " .. role
  end
  register(doc.SecretAccessKey, doc.Token)
  return { access_key_id = doc.AccessKeyId, secret_access_key = doc.SecretAccessKey,
           session_token = doc.Token, from = "instance metadata (role " .. role .. ")" }
end

-- Returns {access_key_id, secret_access_key, session_token (or nil), from}
-- where `from` says where they were found, or nil and a message.
function aws.credentials(ctx, region)
  local steps = {
    { "environment", from_environment }, { "web identity", from_web_identity },
    { "shared credentials file", from_profile },
  }
  for _, step in ipairs(steps) do
    local cred, err = step[2](ctx, region)
    if cred then return cred end
    if cred == nil then return nil, "AWS credentials (" .. step[1] .. "): " .. err end
  end
  local cred, err = from_instance_metadata(ctx)
  if cred then return cred end
  return nil, "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    .. "or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or AWS_PROFILE with a credentials file"
    .. (cred == false and "" or ", or run on EC2 with an instance role (instance metadata: " .. err .. ")")
end

-- What an AWS error type means for the one who has to fix it.
local explain = {
  InvalidSignatureException = "AWS rejected the request signature",
  IncompleteSignatureException = "AWS found the request signature incomplete",
  UnrecognizedClientException = "AWS does not know the access key or session token",
  ExpiredTokenException = "the AWS session token has expired",
  AccessDeniedException = "AWS denied access",
}

-- A JSON 1.1 protocol call: POST to url with X-Amz-Target target, signed for
-- service in region with cred. Returns the decoded answer, or nil and a message.
function aws.json_call(cred, req)
  local headers = { ["X-Amz-Target"] = req.target, ["Content-Type"] = "application/x-amz-json-1.1" }
  headers["X-Amz-Security-Token"] = cred.session_token
  local status, failure, body = http.request {
    method = "POST", url = req.url, headers = headers, body = req.body, timeout = 30,
    aws_sigv4 = "aws:amz:" .. req.region .. ":" .. req.service,
    basic_auth = { cred.access_key_id, cred.secret_access_key },
  }
  if not status then return nil, "cannot reach AWS: " .. failure end
  local doc = json.decode(body)
  if status == 200 and type(doc) == "table" then return doc end
  local kind = type(doc) == "table" and type(doc.__type) == "string" and doc.__type:match("[^#]*$")
  if not kind then
    return nil, string.format("%s answered HTTP %d: %s", req.url, status, log.redact(body, 200)) -- redacted, then cut
  end
  local message = type(doc.message) == "string" and doc.message or doc.Message or ""
  return nil, string.format("%s (%s): %s", explain[kind] or "AWS error", kind, message)
    .. " [credentials from " .. cred.from .. "]"
end

return aws
