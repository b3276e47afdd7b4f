#!/bin/bash
# needs: none
# Where a server speaks HTTP/2, http.request_all multiplexes its transfers on
# one TLS connection, several streams in flight at once; and pull.check of
# many images on one such registry uses that one connection. nghttpd (an
# HTTP/2-only server) on 127.0.0.1 serves static files: /v2/ (an open
# registry's answer), manifests /v2/app/manifests/tN and 1 MiB files
# /big/N, whose answers take long enough to show streams overlapping.
set -u
xcsreg=${XCSREG:-./xcsreg}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/http2batch.XXXXXX")
if ! command -v nghttpd >/dev/null; then
	echo "not ok - nghttpd is installed (scripts/install-deps: nghttp2-server)"
	exit 1
fi
"$root/tests/apisim/mkcerts" "$work/pki" >/dev/null
mkdir -p "$work/htdocs/v2/app/manifests"
echo '{}' >"$work/htdocs/v2/index.html"
mkdir -p "$work/htdocs/big"
for i in $(seq 16); do
	echo "manifest $i" >"$work/htdocs/v2/app/manifests/t$i"
	head -c 1048576 /dev/zero | tr '\0' "$((i % 10))" >"$work/htdocs/big/$i"
done

server=
start_server() {
	server=
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 20000))
		nghttpd --address=127.0.0.1 --htdocs="$work/htdocs" -v "$port" \
			"$work/pki/server.key" "$work/pki/server.crt" >"$work/nghttpd.log" 2>&1 &
		server=$!
		for _ in $(seq 50); do
			grep -q "listen 127.0.0.1:$port" "$work/nghttpd.log" 2>/dev/null && return 0
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		kill "$server" 2>/dev/null
		wait "$server" 2>/dev/null
		server=
	done
	echo "not ok - nghttpd listens on 127.0.0.1"
	sed 's/^/#   /' "$work/nghttpd.log"
	exit 1
}
stop_server() {
	kill "$server" 2>/dev/null
	wait "$server" 2>/dev/null
	server=
}
trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT

# What nghttpd -v saw: connections (each numbered [id=N]), request streams,
# and the most streams open at once (a request's HEADERS received, its
# answer's last frame, END_STREAM, not yet sent).
seen() {
	local connections streams most
	connections=$(grep -o '^\[id=[0-9]*\]' "$work/nghttpd.log" | sort -u | wc -l)
	streams=$(grep -c 'recv HEADERS frame <length=[0-9]*, flags=0x0[45], stream_id=[0-9]*>' "$work/nghttpd.log")
	most=$(awk '
		/recv HEADERS frame <length=[0-9]*, flags=0x0[45]/ { open++; if (open > most) most = open }
		/send (DATA|HEADERS) frame <length=[0-9]*, flags=0x0[15],/ { open-- }
		END { print most + 0 }' "$work/nghttpd.log")
	echo "$connections $streams $most"
}

start_server
cat >"$work/batch.lua" <<'LUA'
local http = require "http"
local list = {}
for i = 1, 16 do
  list[i] = { url = ("https://127.0.0.1:%s/big/%d"):format(arg[1], i), ca_file = arg[2],
              method = i % 4 == 0 and "HEAD" or "GET" }
end
local right, connects = 0, 0
for i, r in ipairs(http.request_all(list, { concurrency = 8 })) do
  connects = connects + r[4].connects
  if r[1] == 200 and r[3] == (i % 4 == 0 and "" or tostring(i % 10):rep(1048576)) then right = right + 1 end
end
print(right, connects)
LUA
out=$("$xcsreg" run "$work/batch.lua" "$port" "$work/pki/ca.crt" 2>&1)
if [ "$out" = "16	1" ]; then
	echo "ok - 16 requests of a batch, 1 MiB GETs and HEADs, answered in order, over 1 new connection"
else
	echo "not ok - 16 requests of a batch, 1 MiB GETs and HEADs, answered in order, over 1 new connection: got '$out' (right, connections)"
fi
stop_server
read -r connections streams most <<<"$(seen)"
if [ "$connections" -eq 1 ] && [ "$streams" -eq 16 ]; then
	echo "ok - the server saw 16 request streams on 1 HTTP/2 connection"
else
	echo "not ok - the server saw 16 request streams on 1 HTTP/2 connection: $streams streams, $connections connections"
fi
if [ "$most" -gt 1 ] && [ "$most" -le 8 ]; then
	echo "ok - several streams in flight at once, at most 8 (concurrency = 8): $most"
else
	echo "not ok - several streams in flight at once, at most 8 (concurrency = 8): $most"
fi

start_server
cat >"$work/pull.lua" <<'LUA'
local keyring = require "xcsreg.keyring"
local pull = require "xcsreg.pull"
local host = "127.0.0.1:" .. arg[1]
local kr = assert(keyring.from_secret({ [host] = { username = "u", password = "fake-h2-password" } }, "h2"))
local images = {}
for i = 1, 16 do images[i] = ("%s/app:t%d"):format(host, i) end
local results, stats = pull.check(images, function(ref) return kr:lookup(ref.name) end, { ca_file = arg[2] })
local ok = 0
for i, r in ipairs(results) do
  if r.state == "ok" and r.image == images[i] then ok = ok + 1 end
end
print(ok, stats.requests, stats.connects)
LUA
out=$("$xcsreg" run "$work/pull.lua" "$port" "$work/pki/ca.crt" 2>&1)
if [ "$out" = "16	17	1" ]; then
	echo "ok - pull.check: 16 images on an HTTP/2 registry, ok in order, 17 requests over 1 connection"
else
	echo "not ok - pull.check: 16 images on an HTTP/2 registry, ok in order, 17 requests over 1 connection: got '$out' (ok, requests, connections)"
fi
stop_server
read -r connections streams most <<<"$(seen)"
# the challenge phase: /v2/'s answer (stream 1) over before the first HEAD (stream 3) came
alone=$(sed -n '/recv HEADERS frame <length=[0-9]*, flags=0x0[45], stream_id=3>/q; /send DATA frame <length=[0-9]*, flags=0x01, stream_id=1>/p' \
	"$work/nghttpd.log" | wc -l)
if [ "$connections" -eq 1 ] && [ "$streams" -eq 17 ] && [ "$alone" -eq 1 ]; then
	echo "ok - the registry saw /v2/ alone, then the 16 HEADs, on 1 connection"
else
	echo "not ok - the registry saw /v2/ alone, then the 16 HEADs, on 1 connection: $streams streams, $connections connections, /v2/ alone: $alone"
fi
