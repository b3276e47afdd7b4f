#!/usr/bin/env bash
# Exact wire behaviour of apisim, checked with curl: status codes, byte-exact
# Status bodies, headers, and the control API (faults, throttle, request log).
# Run: tests/apisim/with-sim tests/integration/test_kubectl_sim_api.sh
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../apisim/testlib.sh
. "$here/../apisim/testlib.sh"

work=$(mktemp -d "${XCSREG_SIM_DIR}/api.XXXXXX")
# A User-Agent starting with "curl" makes the apiserver pretty-print; -A keeps bodies compact.
CURL=(curl -sS --cacert "$XCSREG_SIM_CERTS/ca.crt" -A xcsreg-test)
AUTH=(-H "Authorization: Bearer admin-token")
NS=/api/v1/namespaces/default

# req METHOD PATH [CONTENT_TYPE BODY]: sets CODE, BODY (exact, trailing newline kept), HDRS
req() {
	local m=$1 p=$2
	shift 2
	local args=(-X "$m" -o "$work/body" -D "$work/hdrs" -w '%{http_code}')
	[ $# -ge 2 ] && args+=(-H "Content-Type: $1" --data-binary "$2")
	CODE=$("${CURL[@]}" "${AUTH[@]}" "${args[@]}" "$XCSREG_SIM_API$p")
	BODY=$(
		cat "$work/body"
		printf x
	)
	BODY=${BODY%x}
	HDRS=$(tr -d '\r' <"$work/hdrs")
}
header() { printf '%s\n' "$HDRS" | sed -n "s/^$1: //Ip" | tail -1; }
# expect_body DESC CODE JSON-LINE: status code and the compact body (+ "\n") byte for byte
expect_body() {
	if [ "$CODE" == "$2" ] && [ "$BODY" == "$3"$'\n' ]; then
		ok "$1"
	else
		not_ok "$1" "want: $2 $3" "got:  $CODE $BODY"
	fi
}
rv_of() { req GET "$1" && printf '%s' "$BODY" | jget 'd["metadata"]["resourceVersion"]'; }

S='{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
DCJ='{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}'
DCJ64=$(printf '%s' "$DCJ" | base64 -w0)

# --- authentication, authorization, encoding ---------------------------------
req GET "$NS/secrets/nope"
expect_body "404 NotFound body" 404 "$S"'"message":"secrets \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"secrets"},"code":404}'
expect_eq "Content-Type is application/json" "application/json" "$(header Content-Type)"
req GET "$NS/secrets/a%3Cb%26c"
expect_body "HTML characters are escaped like Go" 404 "$S"'"message":"secrets \"a\u003cb\u0026c\" not found","reason":"NotFound","details":{"name":"a\u003cb\u0026c","kind":"secrets"},"code":404}'
out=$(curl -sS --cacert "$XCSREG_SIM_CERTS/ca.crt" "${AUTH[@]}" "$XCSREG_SIM_API$NS/secrets/nope"; printf x)
expect_eq "User-Agent curl gets MarshalIndent output without newline" '{
  "kind": "Status",
  "apiVersion": "v1",
  "metadata": {},
  "status": "Failure",
  "message": "secrets \"nope\" not found",
  "reason": "NotFound",
  "details": {
    "name": "nope",
    "kind": "secrets"
  },
  "code": 404
}x' "$out"
req GET "$NS/secrets/nope?pretty=false"
expect_eq "?pretty=false wins" 1 "$(printf '%s' "$BODY" | wc -l)"

AUTH=(-H "Authorization: Bearer wrong")
req GET "$NS/secrets"
expect_body "401 for an unknown token" 401 "$S"'"message":"Unauthorized","reason":"Unauthorized","code":401}'
AUTH=()
req GET "$NS/secrets"
expect_body "401 without credentials" 401 "$S"'"message":"Unauthorized","reason":"Unauthorized","code":401}'
req GET /version
expect_eq "/version is public" "200 v1.32.0" "$CODE $(printf '%s' "$BODY" | jget 'd["gitVersion"]')"
AUTH=(-H "Authorization: Bearer alice-token")
req POST "$NS/secrets" application/json '{"metadata":{"name":"z"}}'
expect_body "403 without a name (create)" 403 "$S"'"message":"secrets is forbidden: User \"alice\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"secrets"},"code":403}'
req GET /api/v1/secrets
expect_body "403 at the cluster scope" 403 "$S"'"message":"secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"secrets"},"code":403}'
AUTH=(--cert "$XCSREG_SIM_CERTS/alice.crt" --key "$XCSREG_SIM_CERTS/alice.key")
req GET "$NS/serviceaccounts/default"
expect_body "client certificate CN is the user" 403 "$S"'"message":"serviceaccounts \"default\" is forbidden: User \"alice\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"default","kind":"serviceaccounts"},"code":403}'
AUTH=(-H "Authorization: Bearer admin-token")

# --- create -------------------------------------------------------------------
sec() { printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s"%s},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"%s"}}' "$1" "${3:-}" "${2:-$DCJ64}"; }
req POST "$NS/secrets" application/json "$(sec s1)"
expect_eq "POST creates (201)" "201 kubernetes.io/dockerconfigjson" "$CODE $(printf '%s' "$BODY" | jget 'd["type"]')"
expect_eq "stored object is in Go field order" '["kind","apiVersion","metadata","data","type"] ["name","namespace","uid","resourceVersion","creationTimestamp"]' \
	"$(printf '%s' "$BODY" | jget 'list(d)') $(printf '%s' "$BODY" | jget 'list(d["metadata"])')"
req POST "$NS/secrets" application/json "$(sec s1)"
expect_body "409 AlreadyExists" 409 "$S"'"message":"secrets \"s1\" already exists","reason":"AlreadyExists","details":{"name":"s1","kind":"secrets"},"code":409}'
req POST "$NS/secrets" application/json "$(sec s2 "$DCJ64" ',"resourceVersion":"5"')"
expect_body "500 when resourceVersion is set" 500 "$S"'"message":"resourceVersion should not be set on objects to be created","code":500}'
req POST "$NS/secrets" application/json "$(sec s2 "$DCJ64" ',"namespace":"other"')"
expect_body "400 on namespace mismatch" 400 "$S"'"message":"the namespace of the provided object does not match the namespace sent on the request","reason":"BadRequest","code":400}'
req POST /api/v1/namespaces/nope/secrets application/json "$(sec s2)"
expect_body "404 for a missing namespace" 404 "$S"'"message":"namespaces \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"namespaces"},"code":404}'
req POST "$NS/secrets" application/json "$(sec s2 'abc!')"
expect_body "400 on illegal base64" 400 "$S"'"message":"Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3","reason":"BadRequest","code":400}'
req POST "$NS/secrets" application/json '{"metadata":{"name":"s2"'
expect_body "400 on broken JSON" 400 "$S"'"message":"the object provided is unrecognized (must be of type Secret): couldn'"'"'t get version/kind; json parse error: unexpected end of JSON input ({\"metadata\":{\"name\":\"s2\")","reason":"BadRequest","code":400}'
req POST "$NS/secrets?fieldValidation=Strict" application/json '{"metadata":{"name":"s2","colour":"red"},"x":1}'
expect_body "400 strict decoding (metadata and top level)" 400 "$S"'"message":"Secret in version \"v1\" cannot be handled as a Secret: strict decoding error: unknown field \"metadata.colour\", unknown field \"x\"","reason":"BadRequest","code":400}'
req POST "$NS/secrets" application/json '{"metadata":{"name":"s2"},"x":1,"stringData":{"k":"v"}}'
expect_eq "default fieldValidation is Warn" '201 299 - "unknown field \"x\""' "$CODE $(header Warning)"
expect_eq "stringData is merged into data, type defaults to Opaque" '{"k":"dg=="} Opaque false' \
	"$(printf '%s' "$BODY" | jget 'd["data"]') $(printf '%s' "$BODY" | jget 'd["type"]') $(printf '%s' "$BODY" | jget '"stringData" in d')"

want=$(
	cat <<'EOF'
{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Secret \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), data[.dockerconfigjson]: Required value]","reason":"Invalid","details":{"name":"Bad_Name","kind":"Secret","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","field":"metadata.name"},{"reason":"FieldValueRequired","message":"Required value","field":"data[.dockerconfigjson]"}]},"code":422}
EOF
)
req POST "$NS/secrets" application/json '{"metadata":{"name":"Bad_Name"},"type":"kubernetes.io/dockerconfigjson"}'
expect_body "422 with two causes (reference §4.2 body)" 422 "$want"
req POST "$NS/secrets" application/json "$(sec s3 "$(printf '[]' | base64)")"
expect_body "422 dockerconfigjson must be a JSON object" 422 "$S"'"message":"Secret \"s3\" is invalid: data[.dockerconfigjson]: Invalid value: \"\u003csecret contents redacted\u003e\": json: cannot unmarshal array into Go value of type map[string]interface {}","reason":"Invalid","details":{"name":"s3","kind":"Secret","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"\u003csecret contents redacted\u003e\": json: cannot unmarshal array into Go value of type map[string]interface {}","field":"data[.dockerconfigjson]"}]},"code":422}'
req POST "$NS/secrets" application/json '{"metadata":{"name":"s4"},"data":{"bad key":"","..x":""}}'
expect_eq "422 data keys, all causes in order" '["data[..x]","data[bad key]"]' "$(printf '%s' "$BODY" | jget '[c["field"] for c in d["details"]["causes"]]')"
big=$(head -c 1048577 /dev/zero | base64 -w0)
printf '{"metadata":{"name":"s5"},"data":{"a":"%s"}}' "$big" >"$work/big.json"
CODE=$("${CURL[@]}" "${AUTH[@]}" -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$work/big.json" "$XCSREG_SIM_API$NS/secrets")
expect_eq "422 when data exceeds 1 MiB" "422 data: Too long: may not be more than 1048576 bytes" \
	"$CODE $(jget 'd["message"].split(": ", 1)[1]' <"$work/body")"

req POST "$NS/secrets?dryRun=All" application/json "$(sec dry1)"
expect_eq "dryRun=All create: 201 with uid, without resourceVersion" "201 true false" \
	"$CODE $(printf '%s' "$BODY" | jget '"uid" in d["metadata"]') $(printf '%s' "$BODY" | jget '"resourceVersion" in d["metadata"]')"
expect_contains "dryRun=All stores nothing" '"error": "not found"' "$(ctl GET '/object?kind=Secret&namespace=default&name=dry1')"
req POST "$NS/secrets?dryRun=All" application/json "$(sec s1)"
expect_eq "dryRun=All still reports AlreadyExists" 409 "$CODE"
req POST "$NS/secrets?dryRun=Yes" application/json "$(sec dry2)"
expect_body "422 for another dryRun value" 422 "$S"'"message":"CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Yes\"}: supported values: \"All\"","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"CreateOptions","causes":[{"reason":"FieldValueNotSupported","message":"Unsupported value: []string{\"Yes\"}: supported values: \"All\"","field":"dryRun"}]},"code":422}'

# --- update (PUT) -------------------------------------------------------------
req GET "$NS/serviceaccounts/default"
sa=$BODY
rv=$(printf '%s' "$sa" | jget 'd["metadata"]["resourceVersion"]')
req PUT "$NS/serviceaccounts/default" application/json "$sa"
expect_eq "identical PUT: 200, resourceVersion not bumped" "200 $rv" "$CODE $(printf '%s' "$BODY" | jget 'd["metadata"]["resourceVersion"]')"
changed=$(printf '%s' "$sa" | jget 'dict(d, imagePullSecrets=[{"name":"a"}])')
req PUT "$NS/serviceaccounts/default" application/json "$changed"
rv2=$(printf '%s' "$BODY" | jget 'd["metadata"]["resourceVersion"]')
expect_eq "changing PUT bumps resourceVersion" "200 yes" "$CODE $([ "$rv2" != "$rv" ] && echo yes)"
req PUT "$NS/serviceaccounts/default" application/json "$changed"
expect_body "409 Conflict on a stale resourceVersion" 409 "$S"'"message":"Operation cannot be fulfilled on serviceaccounts \"default\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"default","kind":"serviceaccounts"},"code":409}'
req PUT "$NS/serviceaccounts/default" application/json '{"metadata":{"name":"default"},"imagePullSecrets":[{"name":"b"}]}'
expect_eq "PUT without resourceVersion is unconditional" '200 [{"name":"b"}]' "$CODE $(printf '%s' "$BODY" | jget 'd["imagePullSecrets"]')"
req PUT "$NS/serviceaccounts/default" application/json '{"metadata":{"name":"other"}}'
expect_body "400 on name mismatch" 400 "$S"'"message":"the name of the object (other) does not match the name on the URL (default)","reason":"BadRequest","code":400}'
req PUT "$NS/serviceaccounts/ghost" application/json '{"metadata":{"name":"ghost"}}'
expect_body "404 PUT of a missing object" 404 "$S"'"message":"serviceaccounts \"ghost\" not found","reason":"NotFound","details":{"name":"ghost","kind":"serviceaccounts"},"code":404}'
req PUT "$NS/secrets/s1" application/json '{"metadata":{"name":"s1"},"type":"Opaque","data":{}}'
expect_body "422 Secret type is immutable" 422 "$S"'"message":"Secret \"s1\" is invalid: type: Invalid value: \"Opaque\": field is immutable","reason":"Invalid","details":{"name":"s1","kind":"Secret","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Opaque\": field is immutable","field":"type"}]},"code":422}'

# --- patch --------------------------------------------------------------------
SA=$NS/serviceaccounts/default
req PATCH "$SA" application/json '{"imagePullSecrets":[]}'
expect_body "415 for application/json" 415 "$S"'"message":"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml","reason":"UnsupportedMediaType","code":415}'
req PATCH "$SA" 'application/merge-patch+json; charset=utf-8' '{"imagePullSecrets":[{"name":"m"}]}'
expect_eq "charset parameter is ignored" '200 [{"name":"m"}]' "$CODE $(printf '%s' "$BODY" | jget 'd["imagePullSecrets"]')"
rv=$(printf '%s' "$BODY" | jget 'd["metadata"]["resourceVersion"]')
req PATCH "$SA" application/strategic-merge-patch+json '{"imagePullSecrets":[{"name":"m"}]}'
expect_eq "no-op strategic patch keeps resourceVersion" "200 $rv" "$CODE $(printf '%s' "$BODY" | jget 'd["metadata"]["resourceVersion"]')"
req PATCH "$SA" application/merge-patch+json '{"metadata":{"resourceVersion":"2"},"imagePullSecrets":[]}'
expect_eq "merge patch with a stale resourceVersion is 409 Conflict" "409 Conflict" "$CODE $(printf '%s' "$BODY" | jget 'd["reason"]')"
req PATCH "$SA" application/json-patch+json '[{"op":"test","path":"/metadata/resourceVersion","value":"2"},{"op":"add","path":"/imagePullSecrets/-","value":{"name":"n"}}]'
expect_body "failed JSON patch test is a generic 422" 422 "$S"'"message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422}'
req PATCH "$SA" application/json-patch+json "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"$rv\"},{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\",\"value\":{\"name\":\"n\"}}]"
expect_eq "JSON patch with a passing test applies" '200 [{"name":"m"},{"name":"n"}]' "$CODE $(printf '%s' "$BODY" | jget 'd["imagePullSecrets"]')"
req PATCH "$SA" application/json-patch+json '{"op":"add"}'
expect_body "400 for a malformed JSON patch" 400 "$S"'"message":"error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp","reason":"BadRequest","code":400}'
req PATCH "$NS/serviceaccounts/ghost" application/merge-patch+json '{}'
expect_eq "PATCH of a missing object is 404" 404 "$CODE"
req PATCH "$SA?force=true" application/merge-patch+json '{}'
expect_body "422 force on a non-apply patch" 422 "$S"'"message":"PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[{"reason":"FieldValueForbidden","message":"Forbidden: may not be specified for non-apply patch","field":"force"}]},"code":422}'
apply_sa='{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"applied"},"imagePullSecrets":[{"name":"p"}]}'
req PATCH "$NS/serviceaccounts/applied" application/apply-patch+yaml "$apply_sa"
expect_body "422 apply without fieldManager" 422 "$S"'"message":"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[{"reason":"FieldValueRequired","message":"Required value: is required for apply patch","field":"fieldManager"}]},"code":422}'
req PATCH "$NS/serviceaccounts/applied?fieldManager=tool" application/apply-patch+yaml "$apply_sa"
expect_eq "apply creates a missing object (201)" 201 "$CODE"
req PATCH "$NS/serviceaccounts/applied?fieldManager=tool" application/apply-patch+yaml "$apply_sa"
expect_eq "re-apply of the same config is 200" 200 "$CODE"
req PATCH "$NS/serviceaccounts/applied?fieldManager=other" application/apply-patch+yaml "${apply_sa/\"p\"/\"q\"}"
expect_body "409 apply conflict between managers" 409 "$S"'"message":"Apply failed with 1 conflict: conflict with \"tool\": .imagePullSecrets","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"tool\"","field":".imagePullSecrets"}]},"code":409}'
req PATCH "$SA?dryRun=All" application/merge-patch+json '{"imagePullSecrets":[{"name":"dry"}]}'
expect_eq "dryRun=All patch returns the would-be object" '200 [{"name":"dry"}]' "$CODE $(printf '%s' "$BODY" | jget 'd["imagePullSecrets"]')"
expect_eq "dryRun=All patch writes nothing" '[{"name":"m"},{"name":"n"}]' \
	"$(ctl GET '/object?kind=ServiceAccount&namespace=default&name=default' | jget 'd["imagePullSecrets"]')"

# --- delete -------------------------------------------------------------------
uid=$(ctl GET '/object?kind=Secret&namespace=default&name=s2' | jget 'd["metadata"]["uid"]')
req DELETE "$NS/secrets/s2"
expect_body "DELETE Secret returns a Success Status" 200 '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"s2","kind":"secrets","uid":"'"$uid"'"}}'
req DELETE "$NS/serviceaccounts/applied"
expect_eq "DELETE ServiceAccount returns the object" "200 ServiceAccount applied" \
	"$CODE $(printf '%s' "$BODY" | jget 'd["kind"] + " " + d["metadata"]["name"]')"
req DELETE "$NS/secrets/s1" application/json '{"preconditions":{"uid":"nope"}}'
expect_eq "DELETE with a failed UID precondition is 409" "409 Conflict" "$CODE $(printf '%s' "$BODY" | jget 'd["reason"]')"

# --- list and selectors -----------------------------------------------------------
for n in web1:web web2:web db1:db; do
	ctl POST /objects "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"${n%%:*}\",\"namespace\":\"default\",\"labels\":{\"app\":\"${n#*:}\"}}}" >/dev/null
done
names() { printf '%s' "$BODY" | jget '" ".join(i["metadata"]["name"] for i in d["items"])'; }
req GET "$NS/secrets?labelSelector=app%3Dweb"
expect_eq "labelSelector =" "SecretList web1 web2" "$(printf '%s' "$BODY" | jget 'd["kind"]') $(names)"
req GET "$NS/secrets?labelSelector=app%21%3Dweb"
expect_eq "labelSelector != (also matches unlabelled)" "db1 s1" "$(names)"
req GET "$NS/secrets?labelSelector=app%20notin%20(web),app"
expect_eq "labelSelector notin + exists" "db1" "$(names)"
req GET "$NS/secrets?labelSelector=%21app"
expect_eq "labelSelector !key" "s1" "$(names)"
req GET "$NS/secrets?fieldSelector=metadata.name%3Dweb2"
expect_eq "fieldSelector metadata.name" "web2" "$(names)"
req GET "/api/v1/serviceaccounts?fieldSelector=metadata.namespace%3Dkube-system"
expect_eq "cluster-wide list with fieldSelector metadata.namespace" "ServiceAccountList default" \
	"$(printf '%s' "$BODY" | jget 'd["kind"]') $(names)"
req GET "$NS/secrets?fieldSelector=spec.foo%3Dx"
expect_body "400 unsupported field selector" 400 "$S"'"message":"field label not supported: spec.foo","reason":"BadRequest","code":400}'

# --- faults ---------------------------------------------------------------------
ctl POST /faults '{"method":"GET","path_regex":"/secrets/web1$","count":1,"status":503,"retry_after":2}' >/dev/null
req GET "$NS/secrets/web1"
expect_eq "status fault: 503 with Retry-After" "503 2 ServiceUnavailable" "$CODE $(header Retry-After) $(printf '%s' "$BODY" | jget 'd["reason"]')"
req GET "$NS/secrets/web1"
expect_eq "fault count is honoured" 200 "$CODE"
ctl POST /faults '{"path_regex":"/secrets/web1$","status":429}' >/dev/null
req GET "$NS/secrets/web1"
expect_eq "429 fault is APF-style text/plain" "429|text/plain; charset=utf-8|1|Too many requests, please try again later."$'\n' \
	"$CODE|$(header Content-Type)|$(header Retry-After)|$BODY"
ctl POST /faults '{"path_regex":"/secrets/web1$","action":"conflict"}' >/dev/null
req PATCH "$NS/secrets/web1" application/merge-patch+json '{}'
expect_body "conflict fault answers the object's 409" 409 "$S"'"message":"Operation cannot be fulfilled on secrets \"web1\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"web1","kind":"secrets"},"code":409}'
ctl POST /faults '{"path_regex":"/secrets/web1$","action":"drop"}' >/dev/null
CODE=$("${CURL[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' "$XCSREG_SIM_API$NS/secrets/web1" 2>/dev/null)
rc=$?
expect_eq "drop fault closes the connection without an answer" "000 yes" "$CODE $([ $rc -ne 0 ] && echo yes)"
ctl POST /faults '{"path_regex":"/secrets/web1$","action":"delay","latency_ms":600}' >/dev/null
t=$("${CURL[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code} %{time_total}' "$XCSREG_SIM_API$NS/secrets/web1")
expect_eq "delay fault delays, then answers normally" "200 slow" "${t% *} $(awk -v t="${t#* }" 'BEGIN{print (t >= 0.6) ? "slow" : "fast(" t ")"}')"
rv=$(rv_of "$SA")
ctl POST /faults '{"method":"PATCH","path_regex":"/serviceaccounts/default$","action":"none","mutate":{"metadata":{"labels":{"touched":"yes"}}}}' >/dev/null
req PATCH "$SA" application/merge-patch+json "{\"metadata\":{\"resourceVersion\":\"$rv\"},\"imagePullSecrets\":[]}"
expect_eq "mutate fault: a concurrent write makes the client's RV stale" "409 Conflict" "$CODE $(printf '%s' "$BODY" | jget 'd["reason"]')"
expect_eq "mutate fault changed the stored object" "yes bumped" \
	"$(ctl GET '/object?kind=ServiceAccount&namespace=default&name=default' | jget 'd["metadata"]["labels"]["touched"] + (" bumped" if d["metadata"]["resourceVersion"] != "'"$rv"'" else " same")')"

# --- throttle ---------------------------------------------------------------------
ctl POST /throttle '{"max_inflight":1,"retry_after":3}' >/dev/null
ctl POST /faults '{"path_regex":"/secrets/db1$","action":"delay","latency_ms":1500}' >/dev/null
"${CURL[@]}" "${AUTH[@]}" -o /dev/null "$XCSREG_SIM_API$NS/secrets/db1" &
bg=$!
for _ in $(seq 100); do # until the slow request is in flight (logged, not yet answered)
	[ "$(ctl GET /log | jget '[e["status"] for e in d if e["path"].endswith("/secrets/db1")]')" = "[null]" ] && break
	sleep 0.05
done
req GET "$NS/secrets/web2"
expect_eq "over max_inflight: 429 text/plain with Retry-After" "429|3|Too many requests, please try again later."$'\n' \
	"$CODE|$(header Retry-After)|$BODY"
wait "$bg"
ctl DELETE /throttle >/dev/null
req GET "$NS/secrets/web2"
expect_eq "throttle removed" 200 "$CODE"

# --- request log and connection ids ---------------------------------------------
ctl DELETE /log >/dev/null
"${CURL[@]}" "${AUTH[@]}" -o /dev/null -o /dev/null "$XCSREG_SIM_API$NS/secrets/web1" "$XCSREG_SIM_API$NS/secrets/web2"
"${CURL[@]}" "${AUTH[@]}" -o /dev/null "$XCSREG_SIM_API$NS/secrets/db1"
log=$(ctl GET /log)
expect_eq "log: one entry per request, in order" "GET $NS/secrets/web1,GET $NS/secrets/web2,GET $NS/secrets/db1" \
	"$(printf '%s' "$log" | jget '",".join(e["method"] + " " + e["path"] for e in d)')"
expect_eq "keep-alive: two URLs in one curl share a connection id, the next curl gets a new one" "same new" \
	"$(printf '%s' "$log" | jget '("same" if d[0]["conn"] == d[1]["conn"] else "diff") + " " + ("new" if d[2]["conn"] != d[1]["conn"] else "reused")')"
expect_eq "log records user and status" "admin 200" "$(printf '%s' "$log" | jget 'd[0]["user"] + " " + str(d[0]["status"])')"
req PATCH "$SA?fieldManager=t" application/merge-patch+json '{"imagePullSecrets":[]}'
expect_eq "log records query, content type and body" 't|application/merge-patch+json|{"imagePullSecrets":[]}' \
	"$(ctl GET /log | jget 'd[-1]["query"]["fieldManager"][0] + "|" + d[-1]["content_type"] + "|" + d[-1]["body"]')"

# --- control API ------------------------------------------------------------------
ctl POST /namespaces '{"name":"fresh","default_sa":false}' >/dev/null
req GET /api/v1/namespaces/fresh/serviceaccounts/default
expect_eq "namespace without its default SA yet (controller window)" 404 "$CODE"
ctl POST /users '{"name":"bob","token":"bob-token"}' >/dev/null
ctl POST /grant '{"user":"bob","verbs":["list"],"resources":["secrets"],"namespaces":["*"]}' >/dev/null
AUTH=(-H "Authorization: Bearer bob-token")
req GET /api/v1/secrets
expect_eq "added user with a cluster-wide grant" "200 SecretList" "$CODE $(printf '%s' "$BODY" | jget 'd["kind"]')"
req GET "$NS/secrets/web1"
expect_eq "grant is verb-specific" 403 "$CODE"
ctl POST /reset >/dev/null
req GET /api/v1/secrets
expect_eq "reset removes added users" 401 "$CODE"

t_done
