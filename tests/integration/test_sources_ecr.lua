-- needs: aws
-- ecr: GetAuthorizationToken against tests/lib/awssim.py, which checks the
-- SigV4 signature itself, with credentials from each link of the AWS chain.
local t = require "test"
local sources = require "xcsreg.sources"
local http = require "http"
local json = require "json"
local log = require "log"

local sim = os.getenv("AWSSIM_URL")
local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"
-- The simulator's keys (tests/lib/awssim.py); fake.
local ENV_KEY, ENV_SECRET = "AKIAXCSREGENVTEST001", "fake-env-secret-key/for+tests"
local PROFILE_KEY, PROFILE_SECRET = "AKIAXCSREGPROFILE001", "fake-profile-secret-key"
local ROLE_ARN = "arn:aws:iam::123456789012:role/xcsreg-test"

local function control(path, body)
  local status, _, reply = http.request { method = body and "POST" or "GET", url = sim .. path, body = body }
  assert(status == 200, "simulator control " .. path)
  return json.decode(reply)
end
local function fresh() control("/_reset", "{}") end
-- A new run each time (the per-run cache is tested on its own, below).
local function get(e, ctx)
  sources.reset()
  return sources.get(e, ctx)
end
local function ops() -- "op:ok" of each request since the last reset
  local list = {}
  for _, r in ipairs(control("/_log")) do list[#list + 1] = r.op .. (r.ok and "" or ":refused") end
  return table.concat(list, " ")
end
local function last(op)
  local found
  for _, r in ipairs(control("/_log")) do if r.op == op then found = r end end
  return found or {}
end
local function write(name, text)
  local path = tmp .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end
-- An environment of vars, with the simulator's endpoints from ours.
local function env(vars)
  return function(name)
    if vars[name] ~= nil then return vars[name] or nil end
    if name:match("^AWS_ENDPOINT_URL") or name == "AWS_EC2_METADATA_SERVICE_ENDPOINT" then
      return os.getenv(name)
    end
    return nil
  end
end
local no_imds = { AWS_EC2_METADATA_DISABLED = "true" }
local function with(a, b)
  local r = {}
  for k, v in pairs(a) do r[k] = v end
  for k, v in pairs(b or {}) do r[k] = v end
  return r
end
local env_keys = with(no_imds, { AWS_ACCESS_KEY_ID = ENV_KEY, AWS_SECRET_ACCESS_KEY = ENV_SECRET })
local entry = { secret = "ecr", server = "111122223333.dkr.ecr.eu-west-1.amazonaws.com", ecr = {} }
local now = os.time()

local function minted(name, cred, err)
  t.ok(cred and cred.username == "AWS" and cred.password:match("^fake%-ecr%-password%-%d+$")
    and cred.source == "ecr", name, err or "not the simulator's credential")
  return cred
end

-- 1. environment keys
fresh()
local cred, err = get(entry, { now = now, env = env(env_keys) })
minted("environment keys: a token", cred, err)
t.ok(cred and math.type(cred.expires_at) == "integer" and math.abs(cred.expires_at - (now + 43200)) < 60,
  "expiresAt (a float, 12 hours away) is kept as integer epoch seconds", cred and tostring(cred.expires_at))
t.eq(log.redact(cred and cred.password or "?"), "***", "the password is registered as secret")
local r = last("ecr")
t.eq({ r.ok, r.access_key, r.region, r.registry_ids }, { true, ENV_KEY, "eu-west-1", { "111122223333" } },
  "region and registry id come from the server; signed with the environment's key")
t.eq(r.signed_headers, { "content-type", "host", "x-amz-date", "x-amz-target" },
  "the operation and content type are signed, not only host and date")

fresh()
cred, err = get({ server = "registry.example.test", ecr = { region = "us-east-2" } },
  { now = now, env = env(env_keys) })
minted("explicit region, no registry id", cred, err)
r = last("ecr")
t.eq({ r.region, r.registry_ids }, { "us-east-2", json.null }, "no registryIds sent when none is known")
fresh()
cred, err = get({ server = "registry.example.test", ecr = {} },
  { now = now, env = env(with(env_keys, { AWS_REGION = "ap-south-1" })) })
minted("the region from AWS_REGION", cred, err)
t.eq(last("ecr").region, "ap-south-1", "AWS_REGION is the region")
t.fails("ecr: no region: set ecr.region in the site file (or AWS_REGION)", "no region anywhere",
  get, { server = "registry.example.test", ecr = {} }, { env = env(env_keys) })

-- 2. a signature the simulator rejects, and other AWS errors
fresh()
local bad = with(env_keys, { AWS_SECRET_ACCESS_KEY = "fake-wrong-secret" })
cred, err = get(entry, { env = env(bad) })
t.eq(err, "ecr: AWS rejected the request signature (InvalidSignatureException): The request signature we "
  .. "calculated does not match the signature you provided. Check your AWS Secret Access Key and signing "
  .. "method. Consult the service documentation for details. [credentials from the environment]",
  "a bad signature is reported with AWS's error type and message")
t.eq(ops(), "ecr:refused", "the simulator refused it")
fresh()
cred, err = get(entry, { env = env(with(bad, { AWS_ACCESS_KEY_ID = "AKIAUNKNOWN" })) })
t.eq(err, "ecr: AWS does not know the access key or session token (UnrecognizedClientException): "
  .. "The security token included in the request is invalid. [credentials from the environment]",
  "an unknown access key")
fresh()
control("/_fail", json.encode { op = "ecr", status = 500, type = "ServerException", message = "simulated outage" })
cred, err = get(entry, { env = env(env_keys) })
t.eq(err, "ecr: AWS error (ServerException): simulated outage [credentials from the environment]",
  "a server error")
t.fails("ecr: AWS credentials (environment): AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
  "half an environment key", get, entry, { env = env(with(no_imds, { AWS_ACCESS_KEY_ID = ENV_KEY })) })

cred, err = get(entry, { env = env(with(env_keys, { AWS_ENDPOINT_URL_ECR = "http://127.0.0.1:1" })) })
t.ok(err and err:find("^ecr: cannot reach AWS: http://127%.0%.0%.1:1/: .+"), "an unreachable endpoint", err)

-- 3. one mint serves every namespace
fresh()
sources.reset()
for _ = 1, 3 do
  minted("the same entry in another namespace", sources.get(entry, { env = env(env_keys) }))
end
t.eq(ops(), "ecr", "three namespaces, one GetAuthorizationToken")

-- 4. web identity (IRSA)
local token_file = write("web-identity-token", "fake-web-identity-token.for-tests\n")
local irsa = with(no_imds, { AWS_WEB_IDENTITY_TOKEN_FILE = token_file, AWS_ROLE_ARN = ROLE_ARN,
                             AWS_ROLE_SESSION_NAME = "xcsreg-test-session" })
fresh()
cred, err = get(entry, { env = env(irsa) })
minted("web identity: a token", cred, err)
t.eq(ops(), "sts ecr", "STS first, then ECR")
t.eq(last("sts").session_name, "xcsreg-test-session", "AWS_ROLE_SESSION_NAME is the session name")
r = last("ecr")
t.ok(r.access_key and r.access_key:match("^ASIAXCSREGSTS"), "ECR is signed with the role's temporary key",
  tostring(r.access_key))
t.eq(r.signed_headers, { "content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target" },
  "the session token is sent, and signed")
t.eq(log.redact("fake-web-identity-token.for-tests"), "***", "the web identity token is registered as secret")
fresh()
cred, err = get(entry, { env = env(with(irsa, { AWS_WEB_IDENTITY_TOKEN_FILE = write("wrong-token", "fake-wrong") })) })
t.eq(err, "ecr: AWS credentials (web identity): STS AssumeRoleWithWebIdentity for " .. ROLE_ARN
  .. " failed (InvalidIdentityToken, HTTP 400): Couldn't retrieve verification key from your identity provider",
  "a token STS refuses")
t.fails("ecr: AWS credentials (web identity): AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
  "a token file without a role", get, entry, { env = env(with(irsa, { AWS_ROLE_ARN = false })) })
t.fails("ecr: AWS credentials (web identity): cannot read the web identity token: " .. tmp
  .. "/nosuch: No such file or directory", "a missing token file", get, entry,
  { env = env(with(irsa, { AWS_WEB_IDENTITY_TOKEN_FILE = tmp .. "/nosuch" })) })

local empty = write("empty-token", "\n")
t.fails("ecr: AWS credentials (web identity): the web identity token file " .. empty .. " is empty or unreadable",
  "an empty token file", get, entry, { env = env(with(irsa, { AWS_WEB_IDENTITY_TOKEN_FILE = empty })) })

-- 5. the shared credentials file
local credentials = write("aws-credentials", "[default]\naws_access_key_id = AKIAOTHER\n"
  .. "aws_secret_access_key = fake-other\n\n[xcsreg]\naws_access_key_id=" .. PROFILE_KEY
  .. "\naws_secret_access_key = " .. PROFILE_SECRET .. "\n[role]\nrole_arn = " .. ROLE_ARN .. "\n")
local profile = with(no_imds, { AWS_SHARED_CREDENTIALS_FILE = credentials, AWS_PROFILE = "xcsreg" })
fresh()
cred, err = get(entry, { env = env(profile) })
minted("profile: a token", cred, err)
t.eq(last("ecr").access_key, PROFILE_KEY, "signed with the profile's key")
t.fails("ecr: AWS credentials (shared credentials file): no profile 'nosuch' in " .. credentials,
  "a profile that is not there", get, entry, { env = env(with(profile, { AWS_PROFILE = "nosuch" })) })
t.fails("ecr: AWS credentials (shared credentials file): profile 'role' in " .. credentials
  .. " has no aws_access_key_id and aws_secret_access_key (role and SSO profiles are not supported)",
  "a role profile", get, entry, { env = env(with(profile, { AWS_PROFILE = "role" })) })
local home = tmp .. "/home"
os.execute("mkdir -p " .. home .. "/.aws && cp " .. credentials .. " " .. home .. "/.aws/credentials")
fresh()
cred, err = get(entry, { env = env(with(no_imds, { HOME = home })) })
t.eq(err, "ecr: AWS does not know the access key or session token (UnrecognizedClientException): The security "
  .. "token included in the request is invalid. [credentials from profile 'default' in " .. home
  .. "/.aws/credentials]", "~/.aws/credentials and profile default (a key the simulator does not know)")

-- 6. EC2 instance metadata (IMDSv2)
fresh()
cred, err = get(entry, { env = env {} })
minted("instance metadata: a token", cred, err)
t.eq(ops(), "imds imds imds ecr", "token, role name, role credentials, then ECR")
t.ok((last("ecr").access_key or ""):match("^ASIAXCSREGIMDS"), "signed with the instance role's key")
t.fails("ecr: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
  .. "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or AWS_PROFILE with a credentials file",
  "nothing in the chain", get, entry, { env = env(no_imds) })
local closed = "http://127.0.0.1:1"
cred, err = get(entry, { env = env { AWS_EC2_METADATA_SERVICE_ENDPOINT = closed } })
t.ok(err and err:find(", or run on EC2 with an instance role (instance metadata: ", 1, true),
  "an unreachable metadata service is named in the message", err)

return t.done()
