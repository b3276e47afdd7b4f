-- http.request against tests/lib/httpd.py: methods, bodies and headers round
-- trip, status codes as results, keep-alive, TLS, auth, limits, redirects.
-- needs: httpd
local t = require "test"
local http = require "http"
local json = require "json"
local proc = require "proc"

local base = assert(os.getenv("XCSREG_TEST_HTTP"), "run under tests/lib/with-httpd")
local tls_base = assert(os.getenv("XCSREG_TEST_HTTPS"))
local ca_file = assert(os.getenv("XCSREG_TEST_HTTPS_CA"))
local port = base:match(":(%d+)$")
local fake_password = "fake-pass-0000"

-- /echo's JSON document; its body is the request body read as Latin-1
local function echo(text) return assert(json.decode(text)) end
local function latin1_bytes(s)
  local out = {}
  for _, c in utf8.codes(s) do out[#out + 1] = string.char(c) end
  return table.concat(out)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function encode(s)
  return (s:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- GET
local status, headers, body, info = http.request { url = base .. "/echo?a=1&b=2" }
t.eq(status, 200, "GET /echo: 200")
t.eq(headers["content-type"], "application/json", "response header names are lower-cased")
t.eq(headers["content-length"], tostring(#body), "content-length matches the body")
local doc = echo(body)
t.eq({ doc.method, doc.path, doc.query, doc.body }, { "GET", "/echo", "a=1&b=2", "" }, "method, path, query, no body")
t.eq(doc.headers["user-agent"], "xcsreg/0.1.0", "default User-Agent")
t.eq(doc.headers["content-type"], nil, "no Content-Type without a body")
t.eq(math.type(info.connects), "integer", "info.connects is an integer")
t.ok(type(info.time) == "number" and info.time >= 0, "info.time is a number of seconds")
t.eq(info.effective_url, base .. "/echo?a=1&b=2", "info.effective_url")

-- methods with bodies and headers
for _, method in ipairs { "POST", "PUT", "PATCH", "DELETE" } do
  local payload = "payload for " .. method
  status, headers, body = http.request {
    method = method, url = base .. "/echo", body = payload,
    headers = { ["X-Test"] = method:lower(), ["Content-Type"] = "text/plain" },
  }
  doc = echo(body)
  t.eq(status, 200, method .. ": 200")
  t.eq(doc.method, method, method .. ": method sent")
  t.eq(doc.body, payload, method .. ": body sent")
  t.eq(doc.headers["x-test"], method:lower(), method .. ": header sent")
  t.eq(doc.headers["content-type"], "text/plain", method .. ": Content-Type as given")
  t.eq(doc.headers["content-length"], tostring(#payload), method .. ": Content-Length")
end
status, headers, body = http.request { method = "POST", url = base .. "/echo", body = "a\0b\255\n" }
doc = echo(body)
t.eq(latin1_bytes(doc.body), "a\0b\255\n", "a binary body is sent whole")
t.eq(doc.headers["content-type"], nil, "a body without Content-Type is not labelled a form")
status, headers, body = http.request { method = "POST", url = base .. "/echo", body = string.rep("z", 2 << 20) }
doc = echo(body)
t.ok(doc.body == string.rep("z", 2 << 20), "a 2 MiB body is sent whole")
t.eq(doc.headers["expect"], nil, "no Expect: 100-continue for a large body")
status, headers, body = http.request { method = "POST", url = base .. "/echo" }
doc = echo(body)
t.eq({ doc.method, doc.headers["content-length"] }, { "POST", "0" },
  "POST without a body sends Content-Length: 0")
status, headers, body = http.request { method = "HEAD", url = base .. "/echo" }
t.eq({ status, body }, { 200, "" }, "HEAD: 200, no body")
t.ok(tonumber(headers["content-length"]) > 0, "HEAD: headers of the GET")
status, headers, body = http.request {
  url = base .. "/echo", headers = { ["User-Agent"] = "custom/1", ["X-Empty"] = "", ["X-Spaces"] = "a  b" },
}
doc = echo(body)
t.eq(doc.headers["user-agent"], "custom/1", "User-Agent can be replaced")
t.eq(doc.headers["x-empty"], "", "a header with an empty value is sent")
t.eq(doc.headers["x-spaces"], "a  b", "header values are sent verbatim")

-- status codes are results
t.eq(http.request { url = base .. "/status/404" }, 404, "404 is a result")
status, headers, body = http.request { url = base .. "/status/503?retry_after=7" }
t.eq({ status, headers["retry-after"], body }, { 503, "7", "status 503\n" }, "503 with Retry-After and body")
t.eq(http.request { url = base .. "/status/500", method = "DELETE" }, 500, "500 is a result")
t.eq(select(3, http.request { url = base .. "/status/204" }), "", "204: empty body")
status, headers = http.request { url = base .. "/headers?X-Rep=a&X-Rep=b%2Cc&X-Mixed-Case=v&X-Pad=%20p%20" }
t.eq(headers["x-rep"], "a, b,c", "repeated response headers joined with ', '")
t.eq(headers["x-mixed-case"], "v", "mixed-case header names lower-cased")
t.eq(headers["x-pad"], "p", "header values trimmed")

-- keep-alive: one connection for consecutive requests to one host
local _, _, first = http.request { url = base .. "/echo" }
local _, _, second, info2 = http.request { url = base .. "/echo" }
t.eq(info2.connects, 0, "second request to the same host opens no connection")
t.eq(echo(second).conn, echo(first).conn, "and the server saw the same connection")
http.request { url = base .. "/status/404" }
local _, _, third, info3 = http.request { url = base .. "/echo", method = "PUT", body = "x" }
t.eq({ info3.connects, echo(third).conn }, { 0, echo(first).conn },
  "the connection survives a 404 and a change of method")

-- TLS
status, headers, body, info = http.request { url = tls_base .. "/echo", ca_file = ca_file }
t.eq({ status, echo(body).path }, { 200, "/echo" }, "https with ca_file")
_, _, second, info2 = http.request { url = tls_base .. "/echo", ca_file = ca_file }
t.eq({ info2.connects, echo(second).conn }, { 0, echo(body).conn }, "https keep-alive")
status = http.request { url = tls_base .. "/echo", ca_pem = read_file(ca_file) }
t.eq(status, 200, "https with ca_pem")
status = http.request { url = tls_base .. "/echo", insecure = true }
t.eq(status, 200, "https with insecure = true")
local wrong_dir = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/http-wrong-ca"
proc.run { argv = { "mkdir", "-p", wrong_dir } }
local st = proc.run { argv = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
  "-nodes", "-keyout", wrong_dir .. "/ca.key", "-out", wrong_dir .. "/ca.pem", "-days", "1", "-subj", "/CN=wrong CA" } }
assert(st == 0, "openssl made the wrong CA")
local cert_problem = tls_base .. "/echo: SSL certificate problem: unable to get local issuer certificate"
t.eq({ http.request { url = tls_base .. "/echo", ca_file = wrong_dir .. "/ca.pem" } }, { nil, cert_problem },
  "a wrong ca_file fails with the certificate problem")
t.eq({ http.request { url = tls_base .. "/echo", ca_pem = read_file(wrong_dir .. "/ca.pem") } }, { nil, cert_problem },
  "a wrong ca_pem fails with the certificate problem")
t.eq({ http.request { url = tls_base .. "/echo" } }, { nil, cert_problem },
  "the system CAs do not trust the test CA")
t.eq({ http.request { url = tls_base .. "/echo", ca_pem = "not a certificate" } },
  { nil, tls_base .. "/echo: error importing CA certificate blob" }, "a ca_pem that is not PEM fails")

-- basic auth
local basic_url = base .. "/basic?user=robot&password=" .. fake_password
status, headers, body = http.request { url = basic_url, basic_auth = { "robot", fake_password } }
t.eq({ status, body }, { 200, '{"user": "robot"}' }, "basic auth accepted")
status, headers = http.request { url = basic_url, basic_auth = { "robot", "fake-wrong" } }
t.eq({ status, headers["www-authenticate"] }, { 401, 'Basic realm="xcsreg-test"' }, "wrong password: 401 result")
t.eq(http.request { url = basic_url }, 401, "no credentials: 401")

-- AWS SigV4 signing by libcurl
status, headers, body = http.request {
  url = base .. "/echo", aws_sigv4 = "aws:amz:us-east-1:ecr", basic_auth = { "AKIDFAKE", fake_password },
  headers = { ["X-Amz-Security-Token"] = "fake-session-token" },
}
doc = echo(body)
local authz = doc.headers["authorization"] or ""
t.ok(authz:match("^AWS4%-HMAC%-SHA256 Credential=AKIDFAKE/%d+/us%-east%-1/ecr/aws4_request, SignedHeaders=.*Signature=%x+$"),
  "aws_sigv4 signs with the access key, region and service", "got: " .. authz)
t.ok(doc.headers["x-amz-date"] and doc.headers["x-amz-security-token"] == "fake-session-token",
  "X-Amz-Date added, the session token header sent")
t.ok(not body:find(fake_password, 1, true), "the secret key is not sent")

-- timeouts
local t0 = os.time()
local v, msg = http.request { url = base .. "/slow?ms=3000", timeout = 0.3 }
t.eq(v, nil, "timeout on /slow: nil")
t.ok(msg:find(base .. "/slow?ms=3000: Operation timed out after", 1, true) == 1,
  "timeout message names the URL", msg)
t.ok(os.time() - t0 <= 2, "the timeout fires quickly")
v, msg = http.request { url = base .. "/drip?bytes=10", timeout = 0.5 }
t.ok(v == nil and msg:find("out of 10 bytes received", 1, true),
  "the total timeout fires while a body trickles in", msg)
status, _, body = http.request { url = base .. "/slow?ms=100", timeout = 5 }
t.eq({ status, body }, { 200, "slow\n" }, "a slow answer within its timeout")

-- size limit
status, _, body = http.request { url = base .. "/big?bytes=1000", max_body = 1000 }
t.eq({ status, #body }, { 200, 1000 }, "a body of exactly max_body bytes")
t.eq({ http.request { url = base .. "/big?bytes=1001", max_body = 1000 } },
  { nil, "response from " .. base .. "/big?bytes=1001 exceeds 1000 bytes" }, "one byte over max_body")
t.eq({ http.request { url = base .. "/headers?X-Long=" .. string.rep("h", 600), max_body = 500 } },
  { nil, "response from " .. base .. "/headers?X-Long=" .. string.rep("h", 600) .. " exceeds 500 bytes" },
  "the header block is capped by max_body too")
status, _, body = http.request { url = base .. "/big?bytes=" .. (3 << 20) }
t.eq({ status, #body }, { 200, 3 << 20 }, "3 MiB under the default cap")
t.eq(http.request { url = base .. "/echo" }, 200, "the handle works after an aborted transfer")

-- transport failures are nil, message
t.eq({ http.request { url = base .. "/drop" } }, { nil, base .. "/drop: Empty reply from server" },
  "/drop: nil, curl's message after the URL")
v, msg = http.request { url = "http://127.0.0.1:1/x", basic_auth = { "robot", fake_password } }
t.ok(v == nil and msg:find("http://127.0.0.1:1/x: Failed to connect to 127.0.0.1 port 1", 1, true) == 1,
  "connection refused: nil, message naming the URL", msg)
t.ok(not msg:find(fake_password, 1, true), "the password is not in the message")
t.eq({ http.request { url = "file:///etc/hostname" } },
  { nil, 'file:///etc/hostname: Protocol "file" not supported or disabled in libcurl' },
  "only http and https")

-- redirects
status, headers, body = http.request { url = base .. "/redirect?to=/echo" }
t.eq({ status, headers.location, body }, { 302, "/echo", "" }, "redirects are not followed by default")
status, _, body, info = http.request { url = base .. "/redirect?to=/echo%3Fr=1", follow_redirects = true }
t.eq({ status, echo(body).query, info.effective_url }, { 200, "r=1", base .. "/echo?r=1" },
  "followed when asked")
local function chain(n)
  local to = "/echo"
  for _ = 1, n do to = "/redirect?to=" .. encode(to) end
  return base .. to
end
t.eq(http.request { url = chain(5), follow_redirects = true }, 200, "5 redirects are followed")
t.eq({ http.request { url = chain(6), follow_redirects = true } },
  { nil, chain(6) .. ": Maximum (5) redirects followed" }, "a sixth is an error")
local same_host = base .. "/redirect?to=" .. encode(base .. "/echo")
local other_host = base .. "/redirect?to=" .. encode("http://localhost:" .. port .. "/echo")
_, _, body = http.request { url = same_host, follow_redirects = true, basic_auth = { "robot", fake_password } }
t.ok((echo(body).headers["authorization"] or ""):find("^Basic "), "credentials follow a redirect to the same host")
status, _, body = http.request { url = other_host, follow_redirects = true, basic_auth = { "robot", fake_password } }
doc = echo(body)
t.eq({ status, doc.headers["host"], doc.headers["authorization"] }, { 200, "localhost:" .. port, nil },
  "basic_auth is not sent to another host")
_, _, body = http.request { url = other_host, follow_redirects = true,
  headers = { Authorization = "Bearer fake-token" } }
t.eq(echo(body).headers["authorization"], nil, "an Authorization header is not sent to another host")
v, msg = http.request { url = base .. "/redirect?to=" .. encode("file:///etc/hostname"), follow_redirects = true }
t.ok(v == nil and msg:find('Protocol "file" not supported', 1, true), "a redirect to file:// is refused", msg)

-- misuse raises
local function raises(want, opts, name) t.raises(want, name or want, http.request, opts) end
t.raises("bad argument #1 to 'http.request' (table expected, got string)", "argument must be a table",
  http.request, base)
raises("unknown option 'uri'", { uri = base })
raises("option 'url' is required", {})
raises("option 'url' must be a string, not number", { url = 5 })
raises("option 'url' contains a NUL byte", { url = base .. "\0x" })
raises("bad method 'GE T'", { url = base, method = "GE T" })
raises("option 'method' must be a string, not boolean", { url = base, method = true })
raises("option 'headers' must be a table, not string", { url = base, headers = "X: y" })
raises("headers: names must be strings, got number", { url = base, headers = { "X: y" } })
raises("headers: bad header name 'Bad Name'", { url = base, headers = { ["Bad Name"] = "x" } })
raises("headers.X-A must be a string, got number", { url = base, headers = { ["X-A"] = 1 } })
raises("headers.X-A contains a line break or NUL byte", { url = base, headers = { ["X-A"] = "a\r\nX-B: b" } })
raises("option 'body' must be a string, not table", { url = base, body = {} })
raises("option 'timeout' must be a positive number of seconds", { url = base, timeout = -1 })
raises("option 'timeout' must be a number, not string", { url = base, timeout = "5" })
raises("option 'connect_timeout' must be a positive number of seconds", { url = base, connect_timeout = 0 })
raises("option 'max_body' must be a positive integer", { url = base, max_body = 0 })
raises("option 'max_body' must be a positive integer", { url = base, max_body = 10.5 }, "max_body must be whole")
raises("option 'insecure' must be a boolean, not string", { url = base, insecure = "yes" })
raises("option 'follow_redirects' must be a boolean, not number", { url = base, follow_redirects = 1 })
raises("option 'ca_pem' must be a string, not boolean", { url = base, ca_pem = true })
raises("give ca_file or ca_pem, not both", { url = base, ca_file = ca_file, ca_pem = "x" })
raises("option 'basic_auth' must be a table, not string", { url = base, basic_auth = "robot" })
raises("basic_auth[2] must be a string, got nil", { url = base, basic_auth = { "robot" } })
raises("aws_sigv4 needs basic_auth = {access_key, secret_key}", { url = base, aws_sigv4 = "aws:amz:x:y" })
t.eq(http.request { url = base .. "/echo" }, 200, "the handle works after misuse")

return t.done()
