#!/usr/bin/env bash
# needs: apisim
# The simulator's tools for the fault-injection suite (tests/apisim/README.md):
# faults aimed at the k-th request (skip), the timeout action, the object
# history, and saving and restoring the store.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../apisim/testlib.sh
. "$here/../apisim/testlib.sh"

CURL=(curl -sS --cacert "$XCSREG_SIM_CERTS/ca.crt" -A xcsreg-test -H "Authorization: Bearer admin-token")
NS=/api/v1/namespaces/default
# code METHOD PATH [JSON]: the HTTP status of an API request ("000": no answer)
code() {
	local args=(-X "$1" -o /dev/null -w '%{http_code}')
	[ $# -ge 3 ] && args+=(-H "Content-Type: application/json" --data-binary "$3")
	"${CURL[@]}" "${args[@]}" "$XCSREG_SIM_API$2" 2>/dev/null
}
statuses() { ctl GET /log | jget '" ".join(str(e["status"]) for e in d)'; }

ctl POST /reset >/dev/null

# --- skip: a fault aimed at a position --------------------------------------------
ctl DELETE /log >/dev/null
ctl POST /faults '{"skip":2,"status":500}' >/dev/null
got="$(code GET "$NS/serviceaccounts/default") $(code GET "$NS/secrets/none") $(code GET "$NS/serviceaccounts/default") $(code GET "$NS/serviceaccounts/default")"
expect_eq "skip 2: the third API request fails, the others do not" "200 404 500 200" "$got"
expect_eq "the log shows it, and marks the request the fault applied to" "200 404 500 200|- - status -" \
	"$(statuses)|$(ctl GET /log | jget '" ".join(e.get("fault", "-") for e in d)')"
ctl POST /faults '{"method":"POST","skip":1,"count":2,"status":503,"retry_after":1}' >/dev/null
s='{"metadata":{"name":"NAME"},"stringData":{"k":"v"}}'
got="$(code GET "$NS/secrets/s1") $(code POST "$NS/secrets" "${s/NAME/s1}") $(code GET "$NS/secrets/s1") $(code POST "$NS/secrets" "${s/NAME/s2}") $(code POST "$NS/secrets" "${s/NAME/s3}") $(code POST "$NS/secrets" "${s/NAME/s4}")"
expect_eq "skip counts only the requests the fault matches, then count applies" "404 201 200 503 503 201" "$got"
expect_eq "faults spent: none left to apply" "[]" "$(ctl GET /faults | jget '[f for f in d["faults"] if f["remaining"] > 0]')"

# --- timeout: carried out, never answered -------------------------------------------
ctl POST /faults '{"method":"POST","action":"timeout","hold_ms":800}' >/dev/null
got=$("${CURL[@]}" -m 0.3 -X POST -o /dev/null -w '%{http_code}' -H "Content-Type: application/json" \
	--data-binary "${s/NAME/late}" "$XCSREG_SIM_API$NS/secrets" 2>/dev/null)
rc=$?
expect_eq "timeout: the client times out without an answer" "000 28" "$got $rc"
expect_eq "timeout: the write was carried out all the same" "200 late" \
	"$(code GET "$NS/secrets/late") $(ctl GET '/object?kind=Secret&namespace=default&name=late' | jget 'd["metadata"]["name"]')"
expect_eq "timeout: the log records the status the server decided" "201" \
	"$(ctl GET /log | jget '[e["status"] for e in d if e["method"] == "POST"][-1]')"
ctl POST /faults '{"path_regex":"/secrets/late$","action":"timeout","hold_ms":300}' >/dev/null
start=$(date +%s%N)
got=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$XCSREG_SIM_API$NS/secrets/late" 2>/dev/null)
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "timeout: after hold_ms the connection is closed unanswered" "000 52 held" \
	"$got $rc $([ "$ms" -ge 300 ] && echo held || echo "after ${ms}ms")"

# --- history ----------------------------------------------------------------------
ctl DELETE /history >/dev/null
expect_eq "DELETE /history empties it" "[]" "$(ctl GET /history | jget 'd')"
rv=$(ctl GET '/object?kind=ServiceAccount&namespace=default&name=default' | jget 'd["metadata"]["resourceVersion"]')
code PATCH "$NS/serviceaccounts/default" '{"imagePullSecrets":[{"name":"a"}]}' >/dev/null # refused (415): no version
"${CURL[@]}" -o /dev/null -X PATCH -H "Content-Type: application/merge-patch+json" \
	--data-binary '{"imagePullSecrets":[{"name":"a"}]}' "$XCSREG_SIM_API$NS/serviceaccounts/default"
"${CURL[@]}" -o /dev/null -X PATCH -H "Content-Type: application/merge-patch+json" \
	--data-binary '{"imagePullSecrets":[{"name":"a"}]}' "$XCSREG_SIM_API$NS/serviceaccounts/default"
"${CURL[@]}" -o /dev/null -X PATCH -H "Content-Type: application/merge-patch+json" \
	--data-binary '{"imagePullSecrets":[{"name":"a"}]}' "$XCSREG_SIM_API$NS/serviceaccounts/default?dryRun=All"
"${CURL[@]}" -o /dev/null -X DELETE "$XCSREG_SIM_API$NS/serviceaccounts/default"
"${CURL[@]}" -o /dev/null -X DELETE "$XCSREG_SIM_API$NS/secrets/s1"
expect_eq "history: one put per change (no-op and dry-run writes store nothing), deletes, the recreated default SA" \
	"1:put:ServiceAccount:default:default:a 2:delete:ServiceAccount:default:default:a 3:put:ServiceAccount:default:default:- 4:delete:Secret:default:s1:-" \
	"$(ctl GET /history | jget '" ".join("%d:%s:%s:%s:%s:%s" % (h["seq"], h["op"], h["kind"], h["namespace"], h["name"], ",".join(r["name"] for r in h["object"].get("imagePullSecrets", [])) or "-") for h in d)')"
expect_eq "history: each version with its own resourceVersion" "yes" \
	"$(ctl GET /history | jget '"yes" if int(d[0]["object"]["metadata"]["resourceVersion"]) > '"$rv"' and int(d[2]["object"]["metadata"]["resourceVersion"]) > int(d[0]["object"]["metadata"]["resourceVersion"]) else d')"
expect_eq "history filtered by kind and name" "4" "$(ctl GET '/history?kind=Secret&name=s1' | jget '",".join(str(h["seq"]) for h in d)')"

# --- save and restore ---------------------------------------------------------------
ctl POST /save '{"name":"before"}' >/dev/null
before=$(ctl GET /objects | jget '[(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in d]')
code POST "$NS/secrets" "${s/NAME/after}" >/dev/null
"${CURL[@]}" -o /dev/null -X DELETE "$XCSREG_SIM_API$NS/secrets/s2"
ctl POST /restore '{"name":"before"}' >/dev/null
expect_eq "restore: the objects as saved, resourceVersions included" "$before" \
	"$(ctl GET /objects | jget '[(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in d]')"
expect_eq "restore: the history starts anew" "[]" "$(ctl GET /history | jget 'd')"
expect_eq "restore: the resourceVersion counter too (the next write gets the same RV again)" "same" \
	"$(a=$(code POST "$NS/secrets" "${s/NAME/again}" >/dev/null; ctl GET '/object?kind=Secret&namespace=default&name=again' | jget 'd["metadata"]["resourceVersion"]')
	ctl POST /restore '{"name":"before"}' >/dev/null
	b=$(code POST "$NS/secrets" "${s/NAME/again}" >/dev/null; ctl GET '/object?kind=Secret&namespace=default&name=again' | jget 'd["metadata"]["resourceVersion"]')
	[ "$a" = "$b" ] && echo same || echo "$a $b")"
got=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"name":"nope"}' "$XCSREG_SIM_CONTROL/restore")
expect_eq "restore of an unknown name: 404" "404" "$got"
ctl POST /reset >/dev/null
got=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"name":"before"}' "$XCSREG_SIM_CONTROL/restore")
expect_eq "reset forgets saved states" "404" "$got"

t_done
