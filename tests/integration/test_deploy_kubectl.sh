#!/usr/bin/env bash
# needs: none
# kubectl accepts every manifest of scripts/k8s/ (`kubectl create
# --dry-run=client --validate=false -f FILE -o name`). Even a client dry run
# needs API discovery to map kinds to resources, and kubectl has no offline
# mode, so deployfixtures/discovery.py serves discovery (only) on loopback.
set -u
cd "$(dirname "$0")/../.." || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; shift; printf '#   %s\n' "$@"; }
expect_eq() { if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "want: $2" "got:  $3"; fi; }

if ! command -v kubectl >/dev/null 2>&1; then
	not_ok "kubectl is installed (scripts/install-deps installs kubernetes-client)"
	exit 1
fi
work=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/deploy-kubectl.XXXXXX")
python3 -S tests/integration/deployfixtures/discovery.py "$work/ready" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: d, cluster: {server: "http://127.0.0.1:$(cat "$work/ready")"}}]
users: [{name: d, user: {}}]
contexts: [{name: d, context: {cluster: d, user: d, namespace: default}}]
current-context: d
KC
dry_run() { KUBECONFIG=$work/kubeconfig kubectl --cache-dir "$work/cache" create --dry-run=client --validate=false -f "$1" -o name 2>&1; }

declare -A want=(
	[clusterrole-optional.yaml]="clusterrole.rbac.authorization.k8s.io/xcsreg-namespaces
clusterrolebinding.rbac.authorization.k8s.io/xcsreg-namespaces
clusterrole.rbac.authorization.k8s.io/xcsreg-cluster
clusterrolebinding.rbac.authorization.k8s.io/xcsreg-cluster
clusterrole.rbac.authorization.k8s.io/xcsreg-watch-cluster
clusterrolebinding.rbac.authorization.k8s.io/xcsreg-watch-cluster"
	[configmap-site.yaml]="configmap/xcsreg-site"
	[cronjob.yaml]="cronjob.batch/xcsreg"
	[deployment.yaml]="deployment.apps/xcsreg"
	[irsa-serviceaccount.yaml]="serviceaccount/xcsreg"
	[rbac-restart.yaml]="role.rbac.authorization.k8s.io/xcsreg-restart
rolebinding.rbac.authorization.k8s.io/xcsreg-restart"
	[rbac-status-workloads.yaml]="role.rbac.authorization.k8s.io/xcsreg-status-workloads
rolebinding.rbac.authorization.k8s.io/xcsreg-status-workloads"
	[rbac-status.yaml]="role.rbac.authorization.k8s.io/xcsreg-status
rolebinding.rbac.authorization.k8s.io/xcsreg-status"
	[rbac-watch.yaml]="role.rbac.authorization.k8s.io/xcsreg-watch
rolebinding.rbac.authorization.k8s.io/xcsreg-watch"
	[rbac.yaml]="serviceaccount/xcsreg
role.rbac.authorization.k8s.io/xcsreg
rolebinding.rbac.authorization.k8s.io/xcsreg"
	[secret-passwords.yaml]="secret/xcsreg-registry-passwords"
)
for f in scripts/k8s/*.yaml; do
	name=${f##*/}
	out=$(dry_run "$f")
	expect_eq "kubectl create --dry-run=client accepts $name" "${want[$name]:-(a manifest this test does not know)}" "$out"
done
manifests=(scripts/k8s/*.yaml)
expect_eq "every manifest is checked" "${#want[@]}" "${#manifests[@]}"

# The check can fail: a kind the API does not have, and a document without one.
sed 's/^kind: CronJob$/kind: CronJobs/' scripts/k8s/cronjob.yaml >"$work/bad-kind.yaml"
out=$(dry_run "$work/bad-kind.yaml")
expect_eq "a wrong kind is rejected" \
	'error: resource mapping not found for name: "xcsreg" namespace: "xnat-jobs" from "'"$work"'/bad-kind.yaml": no matches for kind "CronJobs" in version "batch/v1"' \
	"$(printf '%s\n' "$out" | head -n 1)"
grep -v '^kind:' scripts/k8s/configmap-site.yaml >"$work/no-kind.yaml"
out=$(dry_run "$work/no-kind.yaml")
expect_eq "a document without kind is rejected" 'error: unable to decode "'"$work"'/no-kind.yaml": Object '"'Kind'"' is missing in' \
	"$(printf '%s\n' "$out" | head -n 1 | sed 's/ in .{.*$/ in/')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
