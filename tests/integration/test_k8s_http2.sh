#!/bin/bash
# needs: none
# Where the API server speaks HTTP/2, the requests of a client:map are
# multiplexed on one TLS connection: nghttpd (an HTTP/2-only server) on
# 127.0.0.1 serves a namespace object, and 16 concurrent GETs must arrive
# as 16 streams of one connection.
set -u
xcsreg=${XCSREG:-./xcsreg}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/http2.XXXXXX")
if ! command -v nghttpd >/dev/null; then
	echo "not ok - nghttpd is installed (scripts/install-deps: nghttp2-server)"
	exit 1
fi
"$root/tests/apisim/mkcerts" "$work/pki" >/dev/null
mkdir -p "$work/htdocs/api/v1/namespaces"
echo '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}' >"$work/htdocs/api/v1/namespaces/default"

server=
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	nghttpd --address=127.0.0.1 --htdocs="$work/htdocs" -v "$port" \
		"$work/pki/server.key" "$work/pki/server.crt" >"$work/nghttpd.log" 2>&1 &
	server=$!
	for _ in $(seq 50); do
		grep -q "listen 127.0.0.1:$port" "$work/nghttpd.log" 2>/dev/null && break 2
		kill -0 "$server" 2>/dev/null || break
		sleep 0.1
	done
	kill "$server" 2>/dev/null
	wait "$server" 2>/dev/null
	server=
done
trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT
if [ -z "$server" ]; then
	echo "not ok - nghttpd listens on 127.0.0.1"
	sed 's/^/#   /' "$work/nghttpd.log"
	exit 1
fi

cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: h2
contexts: [{name: h2, context: {cluster: h2, user: u}}]
clusters: [{name: h2, cluster: {server: "https://127.0.0.1:$port", certificate-authority: $work/pki/ca.crt}}]
users: [{name: u, user: {}}]
KC
cat >"$work/map.lua" <<'LUA'
local k8s = require "k8s"
local c = assert(k8s.client { kubeconfig = arg[1] })
local items = {}
for i = 1, 16 do items[i] = i end
local got = c:map(items, function(i)
  local status = c:request { method = "GET", path = "/api/v1/namespaces/default" }
  return status == 200 and i or nil
end)
print(#got, c:stats().requests, c:stats().connections)
LUA
out=$("$xcsreg" run "$work/map.lua" "$work/kubeconfig" 2>&1)
if [ "$out" = "16	16	1" ]; then
	echo "ok - 16 concurrent requests of a map, all answered, over 1 connection"
else
	echo "not ok - 16 concurrent requests of a map, all answered, over 1 connection: got '$out' (results, requests, connections)"
fi
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
server=
# nghttpd -v numbers each connection's session ([id=N]) and each stream
connections=$(grep -o '\[id=[0-9]*\]' "$work/nghttpd.log" | sort -u | wc -l)
streams=$(grep -c 'recv HEADERS frame <length=[0-9]*, flags=0x0[45], stream_id=[0-9]*>' "$work/nghttpd.log")
if [ "$connections" -eq 1 ] && [ "$streams" -eq 16 ]; then
	echo "ok - the server saw 16 request streams on 1 HTTP/2 connection"
else
	echo "not ok - the server saw 16 request streams on 1 HTTP/2 connection: $streams streams, $connections connections"
fi
