-- needs: gcp aws
-- Where a run's requests go (issue 12): cloud metadata endpoints never
-- through a proxy (item 10).
local t = require "test"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/harden-network"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "'"))

local function write(name, text)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end
local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A proxy on 127.0.0.1 that writes down the first line of every request it
-- gets and answers 502: had a metadata request gone through it, it would
-- both fail and be in its log.
local proxy_py = write("proxy.py", [[
import http.server, sys
log = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def handle_one_request(self):
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        log.write(self.raw_requestline.decode("latin-1"))
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
]])
local proxy_log, port_file, pid_file = TMP .. "/proxy.log", TMP .. "/proxy.port", TMP .. "/proxy.pid"
assert(os.execute(string.format("python3 '%s' '%s' '%s' >/dev/null 2>&1 & echo $! > '%s'",
  proxy_py, proxy_log, port_file, pid_file)))
local port
for _ = 1, 100 do
  port = read(port_file)
  if port and port ~= "" then break end
  os.execute("sleep 0.05")
end
assert(port and port ~= "", "the proxy did not start")
local proxy = "http://127.0.0.1:" .. port

-- ---- item 10: metadata requests never through a proxy ----
local script = write("metadata.lua", [[
local sources = require "xcsreg.sources"
local aws = require "xcsreg.aws"
local cred, err = sources.get({ secret = "gar", server = "europe-docker.pkg.dev", gcp = {} })
print("gcp", cred and cred.username or err)
local env = function(name)
  if name == "AWS_EC2_METADATA_SERVICE_ENDPOINT" then return os.getenv(name) end
end
local c, aerr = aws.credentials({ now = os.time(), env = env }, "eu-west-1")
print("aws", c and c.from or aerr)
]])
local status, out, err = proc.run { argv = { XCSREG, "run", script },
  env = { http_proxy = proxy, HTTP_PROXY = proxy, all_proxy = proxy, ALL_PROXY = proxy, no_proxy = "", NO_PROXY = "" } }
t.eq({ status, out, err }, { 0, "gcp\toauth2accesstoken\naws\tinstance metadata (role xcsreg-test-instance-role)\n", "" },
  "metadata: the GCP token and the IMDS credentials are fetched with http_proxy set")
t.eq(read(proxy_log) or "", "", "metadata: the proxy saw none of those requests")

-- the proxy does work for other requests (the test would prove nothing otherwise)
script = write("other.lua", [[
local http = require "http"
print(http.request { url = "http://127.0.0.1:1/elsewhere" })
]])
status, out, err = proc.run { argv = { XCSREG, "run", script }, env = { http_proxy = proxy, no_proxy = "", NO_PROXY = "" } }
t.ok((read(proxy_log) or ""):find("GET http://127.0.0.1:1/elsewhere HTTP/1.1", 1, true),
  "metadata: other plain-http requests do go through the proxy", read(proxy_log))

os.execute("kill $(cat '" .. pid_file .. "') 2>/dev/null")
return t.done()
