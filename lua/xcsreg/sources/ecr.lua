-- xcsreg.sources.ecr: `ecr = { region = "...", registry_id = "..." }`, a
-- registry password from ECR GetAuthorizationToken (valid 12 hours), with
-- credentials from the AWS chain (see xcsreg.aws). Both settings may be left
-- out when the entry's server is ECR's (ID.dkr.ecr.REGION.amazonaws.com);
-- the region also comes from AWS_REGION or AWS_DEFAULT_REGION.
-- role_arn and role_annotation are for credential-provider.lua (KEP-4412):
-- given a pod's ServiceAccount token (ctx.web_identity = { role, token,
-- session }), the token is exchanged for that role's credentials instead of
-- using the AWS chain (xcsreg.credprovider chooses the role).
local aws = require "xcsreg.aws"
local base64 = require "base64"
local json = require "json"
local log = require "log"

local M = {}

local TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

function M.get(entry, ctx)
  local cfg = entry.ecr
  local id, host_region = (entry.server or ""):gsub("^%a+://", ""):match("^(%d+)%.dkr%.ecr%.([%w-]+)%.amazonaws%.com")
  local region = cfg.region or host_region or ctx.env("AWS_REGION") or ctx.env("AWS_DEFAULT_REGION")
  if not region or region == "" then
    return nil, "ecr: no region: set ecr.region in the site file (or AWS_REGION)"
  end
  local registry_id = cfg.registry_id or id
  local cred, err
  local wi = ctx.web_identity
  if not wi and (cfg.role_arn or cfg.role_annotation) then
    -- a workload's role, minted with another identity (setup.lua's), would
    -- hand that role's registries to every pod of the namespace
    return nil, "ecr: role_arn and role_annotation are for credential-provider.lua with the pod's "
      .. "ServiceAccount token (KEP-4412); without one this entry is not minted"
  end
  if wi then
    cred, err = aws.assume_role_with_web_identity(ctx, region, wi.role, wi.token, wi.session)
  else
    cred, err = aws.credentials(ctx, region)
  end
  if not cred then return nil, "ecr: " .. err end
  local reply
  reply, err = aws.json_call(cred, {
    url = aws.endpoint(ctx, "ecr", "api.ecr." .. region .. ".amazonaws.com") .. "/",
    service = "ecr", region = region, target = TARGET,
    body = registry_id and json.encode { registryIds = { registry_id } } or "{}",
  })
  if not reply then return nil, "ecr: " .. err end
  local data = type(reply.authorizationData) == "table" and reply.authorizationData[1]
  local token = type(data) == "table" and data.authorizationToken
  if type(token) ~= "string" then return nil, "ecr: GetAuthorizationToken answered no authorizationToken" end
  log.secret(token)
  local decoded = base64.decode(token)
  local username, password = (decoded or ""):match("^([^:]+):(.+)$")
  if not username then return nil, "ecr: the authorizationToken is not base64 of USER:PASSWORD" end
  log.secret(password)
  local expires = type(data.expiresAt) == "number" and math.floor(data.expiresAt) or nil
  return { username = username, password = password, expires_at = expires, source = "ecr" }
end

return M
