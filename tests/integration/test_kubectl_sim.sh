#!/usr/bin/env bash
# The real kubectl against apisim: proves the simulator answers the way
# kube-apiserver does where kubectl (and so users) can see it.
# Run: tests/apisim/with-sim tests/integration/test_kubectl_sim.sh
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../apisim/testlib.sh
. "$here/../apisim/testlib.sh"

if ! command -v kubectl >/dev/null 2>&1; then
	echo "## skipped: kubectl not installed"
	echo "$T_NAME: 0 passed, 0 failed"
	exit 0
fi

work=$(mktemp -d "${XCSREG_SIM_DIR}/kubectl.XXXXXX")
cache=$work/cache
# kc KUBECONFIG ARGS...: kubectl with its own discovery cache (tests never see a stale one)
kc() {
	local cfg=$1
	shift
	kubectl --kubeconfig "$XCSREG_SIM_DIR/$cfg.kubeconfig" --cache-dir "$cache-$cfg" "$@" 2>&1
}
k() { kc token "$@"; }
ipsecrets() { k get sa default -o jsonpath='{.imagePullSecrets}'; }

# --- reading with each kind of credential -----------------------------------
for cfg in token cert cert-file; do
	out=$(kc "$cfg" get sa default -o json)
	expect_eq "get sa default -o json ($cfg.kubeconfig)" "default/default" \
		"$(printf '%s' "$out" | jget 'd["metadata"]["namespace"] + "/" + d["metadata"]["name"]')"
done
who=$(ctl GET /log | jget '[e["user"] for e in d if e["path"].endswith("/serviceaccounts/default")]')
expect_eq "token and client certificates authenticate as admin" '["admin","admin","admin"]' "$who"
expect_eq "short name sa comes from discovery" "default" "$(k get sa -o name | sed 's#.*/##')"

# --- imagePullSecrets: strategic, merge and JSON patch -----------------------
expect_eq "strategic patch of imagePullSecrets" "serviceaccount/default patched" \
	"$(k patch serviceaccount default -p '{"imagePullSecrets":[{"name":"a"}]}')"
rv1=$(k get sa default -o jsonpath='{.metadata.resourceVersion}')
expect_eq "identical patch prints (no change)" "serviceaccount/default patched (no change)" \
	"$(k patch serviceaccount default -p '{"imagePullSecrets":[{"name":"a"}]}')"
expect_eq "no-op patch keeps resourceVersion" "$rv1" "$(k get sa default -o jsonpath='{.metadata.resourceVersion}')"
k patch serviceaccount default -p '{"imagePullSecrets":[{"name":"b"}]}' >/dev/null
expect_eq "strategic patch replaces the atomic imagePullSecrets list" '[{"name":"b"}]' "$(ipsecrets)"
expect_eq "merge patch of imagePullSecrets" "serviceaccount/default patched" \
	"$(k patch serviceaccount default --type=merge -p '{"imagePullSecrets":[{"name":"c"}]}')"
expect_eq "merge patch replaces the list" '[{"name":"c"}]' "$(ipsecrets)"
k patch serviceaccount default --type=json -p '[{"op":"add","path":"/imagePullSecrets/-","value":{"name":"d"}}]' >/dev/null
expect_eq "json patch add /imagePullSecrets/- appends" '[{"name":"c"},{"name":"d"}]' "$(ipsecrets)"

k create serviceaccount bare >/dev/null
expect_eq "json patch add to a missing list is a generic 422" \
	"The request is invalid: the server rejected our request due to an error in our request" \
	"$(k patch sa bare --type=json -p '[{"op":"add","path":"/imagePullSecrets/-","value":{"name":"x"}}]')"
k patch sa bare -p '{"secrets":[{"name":"tok-a"}]}' >/dev/null
k patch sa bare -p '{"secrets":[{"name":"tok-b"}]}' >/dev/null
expect_eq "strategic patch merges SA secrets by name, new first" '[{"name":"tok-b"},{"name":"tok-a"}]' \
	"$(k get sa bare -o jsonpath='{.secrets}')"
expect_eq "stale resourceVersion in a patch is a Conflict" \
	'Error from server (Conflict): Operation cannot be fulfilled on serviceaccounts "default": the object has been modified; please apply your changes to the latest version and try again' \
	"$(k patch sa default --type=merge -p '{"metadata":{"resourceVersion":"1"},"imagePullSecrets":[]}')"

# --- server-side apply ownership --------------------------------------------
sa_apply='{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"},"imagePullSecrets":[{"name":"zz"}]}'
out=$(printf '%s' "$sa_apply" | k apply --server-side -f -)
expect_contains "server-side apply conflicts with kubectl-patch's field" \
	'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .imagePullSecrets' "$out"
printf '%s' "$sa_apply" | k apply --server-side --force-conflicts -f - >/dev/null
expect_eq "apply --force-conflicts takes the whole list" '[{"name":"zz"}]' "$(ipsecrets)"

# --- docker-registry secrets -------------------------------------------------
dry=$(k create secret docker-registry x --docker-server=registry.example.com --docker-username=alice \
	--docker-password=s3cret --docker-email=alice@example.com --dry-run=client -o json)
want=$(printf '%s' "$dry" | jget 'd["data"][".dockerconfigjson"]')
expect_eq "create -f - of a dry-run docker-registry secret" "secret/x created" "$(printf '%s' "$dry" | k create -f -)"
expect_eq "stored .dockerconfigjson equals the dry-run data" "$want" \
	"$(k get secret x -o jsonpath='{.data.\.dockerconfigjson}')"
expect_eq "stored type" "kubernetes.io/dockerconfigjson" "$(k get secret x -o jsonpath='{.type}')"
expect_eq "AlreadyExists wording" 'Error from server (AlreadyExists): error when creating "STDIN": secrets "x" already exists' \
	"$(printf '%s' "$dry" | k create -f -)"
expect_eq "typed (protobuf) create secret docker-registry" "secret/y created" \
	"$(k create secret docker-registry y --docker-server=r.io --docker-username=u --docker-password=p)"
expect_eq "typed create of an existing secret" 'error: failed to create secret secrets "y" already exists' \
	"$(k create secret docker-registry y --docker-server=r.io --docker-username=u --docker-password=p)"
expect_eq "typed create into a missing namespace" 'error: failed to create secret namespaces "nope" not found' \
	"$(k create secret docker-registry y -n nope --docker-server=r.io --docker-username=u --docker-password=p)"
expect_eq "--dry-run=server reports creation" "secret/x2 created (server dry run)" \
	"$(k create secret docker-registry x2 --docker-server=r.io --docker-username=u --docker-password=p --dry-run=server)"
expect_eq "--dry-run=server creates nothing" 'Error from server (NotFound): secrets "x2" not found' "$(k get secret x2)"
expect_eq "dry run is sent as dryRun=All" '["All"]' \
	"$(ctl GET /log | jget '[e["query"].get("dryRun") for e in d if e["method"]=="POST"][-1][0:1]')"
expect_eq "NotFound wording" 'Error from server (NotFound): secrets "nope" not found' "$(k get secret nope)"

bad=$(k create secret docker-registry Bad_Name --docker-server=r.io --docker-username=u --docker-password=p \
	--dry-run=client -o json | k create -f -)
expect_eq "Invalid wording (one cause)" \
	"The Secret \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" \
	"$bad"
printf 'not json' >"$work/bad.json"
bad=$(k create secret docker-registry Bad_Two --from-file=.dockerconfigjson="$work/bad.json" --dry-run=client -o json |
	k create -f -)
expect_eq "Invalid wording (several causes)" \
	"The Secret \"Bad_Two\" is invalid: 
* metadata.name: Invalid value: \"Bad_Two\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')
* data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')" \
	"$bad"
expect_eq "strict field validation rejects unknown fields" \
	'Error from server (BadRequest): error when creating "STDIN": Secret in version "v1" cannot be handled as a Secret: strict decoding error: unknown field "bogus"' \
	"$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"strict"},"bogus":1}' | k create -f -)"
expect_eq "--validate=false drops unknown fields" "secret/lax created" \
	"$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"lax"},"bogus":1}' | k create --validate=false -f -)"
out=$(k get secret y -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("type"); print(json.dumps(d))' | k replace -f -)
expect_eq "PUT without type is defaulted to Opaque and hits type immutability" \
	'The Secret "y" is invalid: type: Invalid value: "Opaque": field is immutable' "$out"

k label secret x app=web >/dev/null
k label secret y app=db >/dev/null
expect_eq "label selector" "secret/x" "$(k get secrets -l 'app in (web,api)' -o name)"
expect_eq "field selector" "secret/y" "$(k get secrets --field-selector metadata.name=y -o name)"
expect_eq "delete secret" 'secret "x" deleted' "$(k delete secret x)"
expect_eq "deleted secret is gone" 'Error from server (NotFound): secrets "x" not found' "$(k get secret x)"

# --- authorization and authentication failures ------------------------------
expect_eq "Forbidden wording (get)" \
	'Error from server (Forbidden): secrets "y" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "default"' \
	"$(kc alice get secret y)"
expect_eq "Forbidden wording (typed create, no name)" \
	'error: failed to create secret secrets is forbidden: User "alice" cannot create resource "secrets" in API group "" in the namespace "default"' \
	"$(kc alice create secret generic z --from-literal=a=b)"
ctl POST /grant '{"user":"alice","verbs":["get"],"resources":["secrets"],"namespaces":["default"]}' >/dev/null
expect_eq "granted rights take effect" "kubernetes.io/dockerconfigjson" "$(kc alice get secret y -o jsonpath='{.type}')"
out=$(kubectl --kubeconfig "$XCSREG_SIM_DIR/token.kubeconfig" --cache-dir "$work/fresh" --token=bad get sa 2>&1)
expect_contains "bad token during discovery" \
	"error: You must be logged in to the server (the server has asked for the client to provide credentials)" "$out"
out=$(kc token --token=bad get sa)
expect_eq "bad token with cached discovery" "error: You must be logged in to the server (Unauthorized)" "$out"
out=$(kc wrong-ca get sa)
expect_contains "wrong CA fails certificate verification" "x509: certificate signed by unknown authority" "$out"

# --- pods and ServiceAccount admission ----------------------------------------
k patch sa default --type=merge -p '{"imagePullSecrets":[{"name":"c"},{"name":"d"}]}' >/dev/null
k run p1 --image=nginx --dry-run=client -o json | k create -f - >/dev/null
expect_eq "pod gets the SA's imagePullSecrets" '[{"name":"c"},{"name":"d"}]' \
	"$(k get pod p1 -o jsonpath='{.spec.imagePullSecrets}')"
expect_eq "pod gets serviceAccountName default" "default" "$(k get pod p1 -o jsonpath='{.spec.serviceAccountName}')"
k run p2 --image=nginx --dry-run=client -o json |
	python3 -c 'import json,sys; d=json.load(sys.stdin); d["spec"]["imagePullSecrets"]=[{"name":"own"}]; print(json.dumps(d))' |
	k create -f - >/dev/null
expect_eq "a pod's own imagePullSecrets are kept" '[{"name":"own"}]' "$(k get pod p2 -o jsonpath='{.spec.imagePullSecrets}')"
out=$(k run p3 --image=nginx --dry-run=client -o json |
	python3 -c 'import json,sys; d=json.load(sys.stdin); d["spec"]["serviceAccountName"]="nosuch"; print(json.dumps(d))' |
	k create -f -)
expect_eq "pod with a missing SA is forbidden" \
	'Error from server (Forbidden): error when creating "STDIN": pods "p3" is forbidden: error looking up service account default/nosuch: serviceaccount "nosuch" not found' \
	"$out"

# --- namespaces and the default ServiceAccount -------------------------------
expect_eq "typed create namespace" "namespace/team-a created" "$(k create namespace team-a)"
expect_eq "new namespace has a default SA" "default" "$(k get sa default -n team-a -o jsonpath='{.metadata.name}')"
k delete sa default >/dev/null
expect_eq "deleted default SA is recreated empty" "default:" \
	"$(k get sa default -o jsonpath='{.metadata.name}:{.imagePullSecrets}')"
expect_eq "default namespace is immortal" \
	'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted' \
	"$(k delete namespace default)"

t_done
