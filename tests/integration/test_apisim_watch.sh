#!/usr/bin/env bash
# apisim's watch (and Lease objects) against the real kubectl and raw curl:
# chunked JSON events, bookmarks, 410 after compaction, the server-side
# watch timeout, restarts, and kubectl's view of Leases.
# Run: tests/apisim/with-sim tests/integration/test_apisim_watch.sh
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../apisim/testlib.sh
. "$here/../apisim/testlib.sh"

work=$(mktemp -d "${XCSREG_SIM_DIR}/watch.XXXXXX")
cache=$work/cache
have_kubectl=1
command -v kubectl >/dev/null 2>&1 || have_kubectl=0
k() { kubectl --kubeconfig "$XCSREG_SIM_DIR/token.kubeconfig" --cache-dir "$cache" "$@" 2>&1; }
# api METHOD PATH [BODY [CONTENT-TYPE]]: compact body (no curl User-Agent pretty printing)
api() {
	local args=(-sS -A apisim-test --cacert "$XCSREG_SIM_CERTS/ca.crt" -H 'Authorization: Bearer admin-token' -X "$1")
	[ $# -ge 3 ] && args+=(-H "Content-Type: ${4:-application/json}" --data-binary "$3")
	curl "${args[@]}" "$XCSREG_SIM_API$2"
}
# watch_raw OUT PATH_AND_QUERY: curl's raw (still chunked) response, headers included
watch_raw() {
	curl -sS -N -i --raw -A apisim-test --cacert "$XCSREG_SIM_CERTS/ca.crt" -H 'Authorization: Bearer admin-token' \
		"$XCSREG_SIM_API$2" >"$1" 2>"$1.err"
}
# wait_open N: until N watches are open (5 s at most). A watch just over may
# count for a moment after its client has the end: wait for 0 before the next.
wait_open() {
	local i
	for i in $(seq 100); do
		[ "$(ctl GET /watch | jget 'd["open"]')" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
# events FILE: the JSON lines of a (raw) watch response
events() { grep -a '^{' "$1" | tr -d '\r'; }
rv_of() { jget 'd["metadata"]["resourceVersion"]'; }

# --- raw watch: chunked events, exact lines, bookmark shape -------------------
# A watch without timeoutSeconds ends after 0.5 s (the default is 1800 s * [1, 2));
# bookmarks every second (the default is a minute).
ctl POST /watch '{"min_request_timeout":0.5,"randomize":false,"bookmark_seconds":1}' >/dev/null
start=$(api GET /api/v1/namespaces/default/serviceaccounts | rv_of)
watch_raw "$work/w1" "/api/v1/namespaces/default/serviceaccounts?watch=true&allowWatchBookmarks=true&resourceVersion=$start&timeoutSeconds=3" &
wpid=$!
wait_open 1 || not_ok "watch opened"
created=$(api POST /api/v1/namespaces/default/serviceaccounts '{"metadata":{"name":"w1"}}')
patched=$(api PATCH /api/v1/namespaces/default/serviceaccounts/w1 '{"metadata":{"labels":{"a":"b"}}}' application/merge-patch+json)
deleted=$(api DELETE /api/v1/namespaces/default/serviceaccounts/w1)
after=$(api GET /api/v1/namespaces/default/serviceaccounts | rv_of)
wait "$wpid"
raw=$(tr -d '\r' <"$work/w1")
expect_contains "watch: 200" "HTTP/1.1 200 OK" "$raw"
expect_contains "watch: chunked" "Transfer-Encoding: chunked" "$raw"
expect_contains "watch: application/json" "Content-Type: application/json" "$raw"
expect_eq "watch: the stream ends with the terminating chunk" "$(printf '0\r\n\r\n' | od -c)" "$(tail -c 5 "$work/w1" | od -c)"
want_deleted=$(printf '%s' "$deleted" | python3 -S -c '
import json, sys
d = json.load(sys.stdin)
d["metadata"]["resourceVersion"] = sys.argv[1]
print(json.dumps(d, separators=(",", ":")))' "$after")
# timeoutSeconds=3: one bookmark, after 1 s (= 2 s before the deadline), none after.
expect_eq "watch: ADDED, MODIFIED, DELETED (with the deletion's resourceVersion), then one BOOKMARK" \
	"{\"type\":\"ADDED\",\"object\":$created}
{\"type\":\"MODIFIED\",\"object\":$patched}
{\"type\":\"DELETED\",\"object\":$want_deleted}
{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ServiceAccount\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"$after\",\"creationTimestamp\":null}}}" \
	"$(events "$work/w1")"
expect_eq "watch: one event per chunk" "4" "$(grep -acE '^[1-9a-f][0-9a-f]*'$'\r''$' "$work/w1")"

# resourceVersion "" and "0": the current state as ADDED events first
out=$(api GET "/api/v1/namespaces?watch=1&resourceVersion=0")
expect_eq "watch=1 from resourceVersion 0: the namespaces as ADDED" "ADDED default
ADDED kube-system" "$(printf '%s\n' "$out" | python3 -S -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l); print(e["type"], e["object"]["metadata"]["name"])')"
# WatchList: sendInitialEvents=true, then the initial-events-end bookmark
out=$(api GET "/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
nsrv=$(api GET /api/v1/namespaces | rv_of)
expect_eq "sendInitialEvents=true: ADDED each, then BOOKMARK k8s.io/initial-events-end" "ADDED default
ADDED kube-system
BOOKMARK {\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"$nsrv\",\"creationTimestamp\":null,\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}},\"spec\":{},\"status\":{}}" \
	"$(printf '%s\n' "$out" | python3 -S -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    print(e["type"], e["object"]["metadata"]["name"] if e["type"] == "ADDED" else json.dumps(e["object"], separators=(",", ":")))')"
out=$(api GET "/api/v1/namespaces?watch=true&sendInitialEvents=true")
expect_eq "sendInitialEvents without resourceVersionMatch: 422 ListOptions" \
	'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan' \
	"$(printf '%s' "$out" | jget 'd["message"]')"
out=$(api GET "/api/v1/namespaces?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan")
expect_eq "sendInitialEvents=false from resourceVersion \"\": no initial state" "" "$out"

out=$(api GET "/api/v1/secrets?watch=true&labelSelector=x%3Dy")
expect_eq "watch with a label selector that matches nothing: no events" "" "$out"

# selectors: an object that stops matching is DELETED for the watcher
api POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"s1","labels":{"app":"x"}}}' >/dev/null
from=$(api GET /api/v1/namespaces/default/secrets | rv_of)
watch_raw "$work/w2" "/api/v1/namespaces/default/secrets?watch=true&labelSelector=app%3Dx&resourceVersion=$from&timeoutSeconds=20" &
wpid=$!
wait_open 1
api PATCH /api/v1/namespaces/default/secrets/s1 '{"metadata":{"labels":{"app":"y"}}}' application/merge-patch+json >/dev/null
api PATCH /api/v1/namespaces/default/secrets/s1 '{"metadata":{"labels":{"app":"x"}}}' application/merge-patch+json >/dev/null
api POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"s2","labels":{"app":"z"}}}' >/dev/null
expect_eq "POST /watch/end ends the open watch" '{"ended":1}' "$(ctl POST /watch/end | tr -d ' \n')"
wait "$wpid"
wait_open 0
expect_eq "... cleanly, with the terminating chunk" "$(printf '0\r\n\r\n' | od -c)" "$(tail -c 5 "$work/w2" | od -c)"
expect_eq "label selector: leaving is DELETED, coming back ADDED, others unseen" "DELETED s1 y
ADDED s1 x" "$(events "$work/w2" | python3 -S -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["type"] != "BOOKMARK": print(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["labels"]["app"])')"

# pods too, cluster-wide, with the object as admission made it
from=$(api GET /api/v1/pods | rv_of)
watch_raw "$work/wp" "/api/v1/pods?watch=true&resourceVersion=$from&timeoutSeconds=20" &
wpid=$!
wait_open 1
pod=$(api POST /api/v1/namespaces/default/pods '{"metadata":{"name":"p1"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}')
api DELETE /api/v1/namespaces/default/pods/p1 >/dev/null
ctl POST /watch/end >/dev/null
wait "$wpid"
wait_open 0
expect_eq "cluster-wide pod watch: ADDED as POST answered, then DELETED" \
	"{\"type\":\"ADDED\",\"object\":$pod}
DELETED" "$(events "$work/wp" | sed 's/^{"type":"DELETED".*/DELETED/')$(grep -q '^{' "$work/wp" || { cat "$work/wp" "$work/wp.err"; echo "from=$from"; ctl GET /log | tail -c 1500; })"

# --- 410 after compaction ------------------------------------------------------
old=$from
compacted=$(ctl POST /compact | jget 'd["compacted"]')
t0=$(date +%s%N)
watch_raw "$work/w3" "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$old"
t1=$(date +%s%N)
expect_contains "410: answered 200 (the error is an event)" "HTTP/1.1 200 OK" "$(tr -d '\r' <"$work/w3")"
expect_eq "410: a single ERROR event with the Expired Status" \
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: $old ($compacted)\",\"reason\":\"Expired\",\"code\":410}}" \
	"$(events "$work/w3")"
expect_eq "410: the stream then ends at once" "1" "$(((t1 - t0) < 1000000000))"
out=$(api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$compacted")
expect_eq "a watch from the compacted revision itself is fine" "" "$out"

# --- server-side timeout, restart ---------------------------------------------
t0=$(date +%s%N)
out=$(api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$compacted")
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -ge 450 ] && [ "$ms" -lt 1500 ]; then ok "min-request-timeout ends a watch without timeoutSeconds"; else not_ok "min-request-timeout ends a watch without timeoutSeconds" "took $ms ms"; fi

last=$(api GET /api/v1/namespaces/default/secrets | rv_of)
wait_open 0
watch_raw "$work/w4" "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$last&timeoutSeconds=30" &
wpid=$!
wait_open 1
rst=$(ctl POST /restart '{"down_ms":200}' | jget 'd["resourceVersion"]')
wait "$wpid"
expect_eq "restart drops open watches (no terminating chunk: curl 18)" "18" "$(grep -o 'curl: ([0-9]*)' "$work/w4.err" | tr -dc 0-9)"
wait_open 0
sleep 0.25
expect_eq "the resourceVersion counter survives a restart" "$rst" "$(api GET /api/v1/namespaces/default/secrets | rv_of)"
out=$(api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$last")
expect_eq "a watch resumed from the last resourceVersion seen works after a restart" "" "$out"
out=$(api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$old")
expect_contains "an older one gets 410 Expired" "\"too old resource version: $old ($rst)\",\"reason\":\"Expired\",\"code\":410" "$out"

# --- a fault aimed at watches only ----------------------------------------------
ctl POST /faults '{"verb":"watch","status":500}' >/dev/null
out=$(api GET "/api/v1/namespaces/default/secrets?resourceVersion=0")
expect_contains "a fault with verb watch spares the list" '"kind":"SecretList"' "$out"
out=$(api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=0")
expect_contains "... and hits the watch" '"code":500' "$out"
ctl DELETE /faults >/dev/null

# --- many concurrent watches, no blocking ----------------------------------------
for i in $(seq 20); do
	api GET "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=$rst&timeoutSeconds=20" >"$work/c$i" &
done
wait_open 20 || not_ok "20 watches open" "$(ctl GET /watch)"
t0=$(date +%s%N)
api POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"many"}}' >/dev/null
t1=$(date +%s%N)
expect_eq "a write is not slowed by 20 open watches" "1" "$(((t1 - t0) < 500000000))"
ctl POST /watch/end >/dev/null
wait
wait_open 0
n=0
for i in $(seq 20); do grep -q '"ADDED".*"name":"many"' "$work/c$i" && n=$((n + 1)); done
expect_eq "all 20 watches saw the event" "20" "$n"

# --- the real kubectl ---------------------------------------------------------
ctl POST /watch '{"min_request_timeout":1800}' >/dev/null
if [ "$have_kubectl" = 1 ]; then
	ctl DELETE /log >/dev/null
	timeout 10 kubectl --kubeconfig "$XCSREG_SIM_DIR/token.kubeconfig" --cache-dir "$cache" \
		get sa -n default -w --output-watch-events -o json >"$work/k1" 2>&1 &
	kpid=$!
	wait_open 1
	k create sa kw >/dev/null
	k patch sa kw -p '{"metadata":{"labels":{"a":"b"}}}' >/dev/null
	k delete sa kw >/dev/null
	sleep 0.3
	kill "$kpid" 2>/dev/null
	wait "$kpid" 2>/dev/null
	wait_open 0
	got=$(python3 -S -c '
import json, sys
dec, s, i = json.JSONDecoder(), open(sys.argv[1]).read(), 0
while True:
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    e, i = dec.raw_decode(s, i)
    print(e["type"], e["object"]["metadata"]["name"])' "$work/k1")
	expect_eq "kubectl get sa -w --output-watch-events -o json" "ADDED default
ADDED kw
MODIFIED kw
DELETED kw" "$got"
	verbs=$(ctl GET /log | jget '[e["verb"] for e in d if e["path"] == "/api/v1/namespaces/default/serviceaccounts" and e["method"] == "GET"]')
	expect_eq "kubectl lists once, then watches (no polling)" '["list","watch"]' "$verbs"

	timeout 10 kubectl --kubeconfig "$XCSREG_SIM_DIR/token.kubeconfig" --cache-dir "$cache" \
		get ns -w -o json >"$work/k2" 2>&1 &
	kpid=$!
	wait_open 1
	k create ns wns >/dev/null
	k delete ns wns >/dev/null
	sleep 0.3
	kill "$kpid" 2>/dev/null
	wait "$kpid" 2>/dev/null
	got=$(python3 -S -c '
import json, sys
dec, s, i = json.JSONDecoder(), open(sys.argv[1]).read(), 0
while True:
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    o, i = dec.raw_decode(s, i)
    print(o["metadata"]["name"], "deleted" if o["metadata"].get("deletionTimestamp") else "")' "$work/k2" | sed 's/ $//')
	expect_eq "kubectl get ns --watch -o json: created, Terminating, gone" "default
kube-system
wns
wns deleted
wns deleted" "$got"

	# The server's timeout ends kubectl's watch: kubectl exits, at once.
	ctl POST /watch '{"min_request_timeout":1,"randomize":false}' >/dev/null
	t0=$(date +%s%N)
	out=$(timeout 10 kubectl --kubeconfig "$XCSREG_SIM_DIR/token.kubeconfig" --cache-dir "$cache" \
		get sa -n default -w --request-timeout=8s 2>&1)
	rc=$?
	t1=$(date +%s%N)
	ctl POST /watch '{"min_request_timeout":1800}' >/dev/null
	ms=$(((t1 - t0) / 1000000))
	if [ "$ms" -lt 4000 ]; then ok "kubectl get -w ends when the server ends the watch (rc $rc)"; else not_ok "kubectl get -w ends when the server ends the watch" "took $ms ms, rc $rc" "$out"; fi
	expect_contains "kubectl get -w printed the list first" "default" "$out"

	# --- Leases (coordination.k8s.io/v1) ---------------------------------------
	expect_eq "kubectl get leases (discovery finds them)" "No resources found in default namespace." "$(k get leases)"
	cat >"$work/lease.yaml" <<-'EOF'
		apiVersion: coordination.k8s.io/v1
		kind: Lease
		metadata:
		  name: xcsreg
		spec:
		  holderIdentity: pod-a
		  leaseDurationSeconds: 15
		  acquireTime: "2026-12-06T21:00:00.123456Z"
		  renewTime: "2026-12-06T22:00:00.654321+01:00"
		  leaseTransitions: 0
	EOF
	expect_eq "kubectl create -f lease.yaml" "lease.coordination.k8s.io/xcsreg created" "$(k create -f "$work/lease.yaml")"
	expect_eq "GET: LeaseSpec in Go field order, MicroTime in UTC with 6 digits" \
		'{"holderIdentity":"pod-a","leaseDurationSeconds":15,"acquireTime":"2026-12-06T21:00:00.123456Z","renewTime":"2026-12-06T21:00:00.654321Z","leaseTransitions":0}' \
		"$(api GET /apis/coordination.k8s.io/v1/namespaces/default/leases/xcsreg | jget 'd["spec"]')"
	k get lease xcsreg -o json >"$work/lease.json"
	k patch lease xcsreg --type=merge -p '{"spec":{"holderIdentity":"pod-b"}}' >/dev/null
	expect_eq "kubectl replace with a stale resourceVersion: Conflict" \
		"Error from server (Conflict): error when replacing \"$work/lease.json\": Operation cannot be fulfilled on leases.coordination.k8s.io \"xcsreg\": the object has been modified; please apply your changes to the latest version and try again" \
		"$(k replace -f "$work/lease.json")"
	expect_eq "validation: leaseDurationSeconds > 0, leaseTransitions >= 0" \
		'The Lease "xcsreg" is invalid: 
* spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0
* spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0' \
		"$(k patch lease xcsreg --type=merge -p '{"spec":{"leaseDurationSeconds":0,"leaseTransitions":-1}}')"
	expect_contains "a MicroTime needs 6 fractional digits" \
		'": parsing time "2026-12-06T22:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"' \
		"$(k patch lease xcsreg --type=merge -p '{"spec":{"renewTime":"2026-12-06T22:00:00Z"}}')"
	expect_eq "kubectl get lease -A" "default     xcsreg" "$(k get lease -A --no-headers | awk '{print $1 "     " $2}')"

	a() { kubectl --kubeconfig "$XCSREG_SIM_DIR/alice.kubeconfig" --cache-dir "$cache-alice" "$@" 2>&1; }
	expect_eq "alice may not read leases until granted" \
		'Error from server (Forbidden): leases.coordination.k8s.io "xcsreg" is forbidden: User "alice" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "default"' \
		"$(a get lease xcsreg -o name)"
	ctl POST /grant '{"user":"alice","verbs":["get","create","update"],"resources":["leases"],"namespaces":["default"]}' >/dev/null
	expect_eq "get, create, update granted: alice reads" "lease.coordination.k8s.io/xcsreg" "$(a get lease xcsreg -o name)"
	k get lease xcsreg -o json >"$work/lease.json"
	expect_eq "... and replaces" "lease.coordination.k8s.io/xcsreg replaced" "$(a replace -f "$work/lease.json")"
	expect_contains "... but may not list" 'cannot list resource "leases" in API group "coordination.k8s.io"' "$(a get leases)"
	expect_eq "kubectl delete lease" 'lease.coordination.k8s.io "xcsreg" deleted' "$(k delete lease xcsreg)"
else
	echo "## skipped kubectl part: kubectl not installed"
fi

t_done
