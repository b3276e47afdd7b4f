-- needs: apisim
-- API errors as Lua sees them (code, reason, message, details, tostring like
-- kubectl), and what reaches the server: path escaping, query encoding,
-- patch content types, dry_run, field managers, client:request.
local t = require "test"
local k8s = require "k8s"
local json = require "json"
local simctl = require "simctl"

local c = assert(k8s.client { kubeconfig = simctl.dir .. "/token.kubeconfig" })
local SECRETS = "/api/v1/namespaces/default/secrets"
local SA = "/api/v1/namespaces/default/serviceaccounts/default"

local function last()
  local log = simctl.log()
  return log[#log]
end

-- ---- errors ----
local obj, err = c:get(k8s.path(SECRETS .. "/%s", "nope"))
t.eq(obj, nil, "NotFound: nil")
t.eq({ err.code, err.reason, err.message }, { 404, "NotFound", 'secrets "nope" not found' }, "NotFound: fields")
t.eq(err.details, { name = "nope", kind = "secrets" }, "NotFound: details")
t.eq(err.status.kind, "Status", "NotFound: the Status table")
t.eq(err.retries, 0, "NotFound: retries")
t.eq(tostring(err), 'Error from server (NotFound): secrets "nope" not found', "NotFound: tostring")

local secret = { apiVersion = "v1", kind = "Secret", metadata = { name = "one" }, stringData = { k = "v" } }
local created = assert(c:create(SECRETS, secret))
t.eq(created.metadata.name, "one", "create returns the object")
obj, err = c:create(SECRETS, secret)
t.eq({ err.code, err.reason }, { 409, "AlreadyExists" }, "AlreadyExists")
t.eq(tostring(err), 'Error from server (AlreadyExists): secrets "one" already exists', "AlreadyExists: tostring")

local stale = assert(c:get(SECRETS .. "/one"))
assert(c:patch(SECRETS .. "/one", { metadata = { labels = { a = "b" } } }, "merge"))
stale.data = { k = "dg==" }
obj, err = c:replace(SECRETS .. "/one", stale)
t.eq({ err and err.code, err and err.reason }, { 409, "Conflict" }, "Conflict on a stale resourceVersion")
t.eq(tostring(err), 'Error from server (Conflict): Operation cannot be fulfilled on secrets "one": the object has been '
  .. "modified; please apply your changes to the latest version and try again", "Conflict: tostring")

local alice = assert(k8s.client { kubeconfig = simctl.dir .. "/alice.kubeconfig" })
obj, err = alice:get(SECRETS .. "/one")
t.eq({ err.code, err.reason }, { 403, "Forbidden" }, "Forbidden (alice)")
t.eq(tostring(err), 'Error from server (Forbidden): secrets "one" is forbidden: User "alice" cannot get resource '
  .. '"secrets" in API group "" in the namespace "default"', "Forbidden: tostring")
t.ok(not tostring(err):find("alice-token", 1, true), "Forbidden: the token is not in the message")
simctl.grant { user = "alice", verbs = { "get" }, resources = { "secrets" }, namespaces = { "default" } }
t.ok(alice:get(SECRETS .. "/one"), "granted: alice can get it")

obj, err = c:create(SECRETS, { metadata = { name = "Bad_Name" }, type = "kubernetes.io/dockerconfigjson" })
t.eq({ err.code, err.reason }, { 422, "Invalid" }, "Invalid")
t.ok(err.message:find('Secret "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": ', 1, true) == 1,
  "Invalid: message", err.message)
t.eq(err.details.kind, "Secret", "Invalid: details.kind is the Kind")
t.eq(err.details.causes[1].field, "metadata.name", "Invalid: first cause")
t.eq(err.details.causes[2].field, "data[.dockerconfigjson]", "Invalid: second cause")
t.ok(tostring(err):find('Error from server (Invalid): Secret "Bad_Name" is invalid', 1, true) == 1,
  "Invalid: tostring")

-- a non-Status error body: reason from the code, the body's first line
simctl.fault { method = "GET", status = 500, body = "  upstream exploded\nsecond line\n", content_type = "text/plain" }
obj, err = c:get(SECRETS)
t.eq({ err.code, err.reason, err.message, err.details, err.status },
  { 500, "InternalError", "upstream exploded", nil, nil }, "text/plain 500")
simctl.fault { method = "GET", status = 418, body = "" }
obj, err = c:get(SECRETS)
t.eq({ err.code, err.reason, err.message }, { 418, "Unknown", "the server responded with HTTP status 418" },
  "an empty error body")
-- an error body labelled JSON that does not decode (a truncated Status): why, not a bare code
simctl.fault { method = "GET", status = 500, body = '{"kind":"Status","mess', content_type = "application/json" }
obj, err = c:get(SECRETS)
t.eq({ err.code, err.reason, err.message }, { 500, "InternalError",
  "HTTP 500 from " .. c.server .. ": invalid JSON at line 1, column 19 (byte 18)" }, "a truncated JSON 500")
-- client:request leaves a non-2xx answer to its caller, decoded or not
simctl.fault { method = "GET", status = 503, body = "{oops", content_type = "application/json" }
local code, raw = c:request { method = "GET", path = SECRETS }
t.eq({ code, raw }, { 503, "{oops" }, "request: a 503 labelled JSON that is not: status and the raw body")

-- ---- what reaches the server ----
simctl.clear_log()
obj, err = c:get(k8s.path(SECRETS .. "/%s", "with space+plus"))
t.eq(err.message, 'secrets "with space+plus" not found', "path escaping: the server decodes one segment")
t.eq(last().path, SECRETS .. "/with space+plus", "path escaping: the decoded path")

simctl.clear_log()
local list = assert(c:list(SECRETS, { labelSelector = "a=b,c notin (x, y)", limit = 5, pretty = false }))
t.eq(list.kind, "SecretList", "list returns the list")
t.eq(#list.items, 1, "list: the labelled secret")
t.eq(last().query, { labelSelector = { "a=b,c notin (x, y)" }, limit = { "5" }, pretty = { "false" } },
  "query: values encoded and decoded intact")

local function patched(ptype, patch, want_ct, opts)
  simctl.clear_log()
  local o, e = c:patch(SA, patch, ptype, opts)
  t.ok(o and o.kind == "ServiceAccount", "patch " .. ptype .. ": returns the object", tostring(e))
  local entry = last()
  t.eq(entry.content_type, want_ct, "patch " .. ptype .. ": content type")
  return entry
end
patched("merge", { metadata = { labels = { m = "1" } } }, "application/merge-patch+json")
patched("strategic", '{"metadata":{"labels":{"s":"1"}}}', "application/strategic-merge-patch+json")
patched("json", { { op = "add", path = "/metadata/labels/j", value = "1" } }, "application/json-patch+json")
local entry = patched("apply", { apiVersion = "v1", kind = "ServiceAccount", metadata = { name = "default",
  namespace = "default", labels = { ap = "1" } } }, "application/apply-patch+yaml", { force = true })
t.eq(entry.query, { fieldManager = { "xcsreg" }, force = { "true" } }, "apply: fieldManager and force")
local sa = assert(c:get(SA))
t.eq(sa.metadata.labels, { m = "1", s = "1", j = "1", ap = "1" }, "all four patches applied")

simctl.clear_log()
obj, err = c:create(SECRETS, { metadata = { name = "dry" }, stringData = { k = "v" } }, { dry_run = true })
t.ok(obj and obj.metadata.name == "dry", "dry_run create: returns the would-be object", tostring(err))
t.eq(last().query, { dryRun = { "All" }, fieldManager = { "xcsreg" } }, "dry_run: dryRun=All and fieldManager")
t.eq(#simctl.objects("Secret", "default"), 1, "dry_run: nothing stored")

simctl.clear_log()
assert(c:replace(SECRETS .. "/one", assert(c:get(SECRETS .. "/one")), { field_manager = "site tool" }))
t.eq(last().query, { fieldManager = { "site tool" } }, "field_manager option, escaped")
t.eq(last().content_type, "application/json", "PUT: application/json")

simctl.clear_log()
obj = assert(c:delete(SECRETS .. "/one", { dry_run = true }))
t.eq(last().query, { dryRun = { "All" } }, "dry_run delete: dryRun only")
obj = assert(c:delete(SECRETS .. "/one"))
t.eq({ obj.kind, obj.status }, { "Status", "Success" }, "delete: the Success Status")
t.eq(last().method, "DELETE", "delete: DELETE")

-- ---- client:request ----
local status, body, headers = c:request { method = "GET", path = "/version" }
t.eq(status, 200, "request: status")
t.eq(body.gitVersion, "v1.32.0", "request: JSON body decoded")
t.eq(headers["content-type"], "application/json", "request: headers, lower-case names")
status, body = c:request { method = "GET", path = "/healthz" }
t.eq({ status, body }, { 200, "ok" }, "request: a non-JSON body is a string")
status, body = c:request { method = "GET", path = SECRETS .. "/gone" }
t.eq({ status, body.reason }, { 404, "NotFound" }, "request: an HTTP error is a result, not nil, err")
simctl.clear_log()
status, body = c:request { method = "POST", path = SECRETS, query = { dryRun = "All" },
  body = { metadata = { name = "via-request" }, stringData = { k = "v" } } }
t.eq(status, 201, "request: POST with a table body")
t.eq({ last().content_type, last().query }, { "application/json", { dryRun = { "All" } } },
  "request: default content type; query")
t.eq(json.decode(last().body).metadata.name, "via-request", "request: the body sent is the JSON of the table")
status = c:request { method = "HEAD", path = "/version" }
t.eq(status, 200, "request: HEAD")

return t.done()
