#!/usr/bin/env bash
# kubectl-workflow.sh MODE N M SCENARIO: what a site would script with kubectl
# for namespaces ns-1..ns-N and registries reg-1..reg-M (scripts/bench).
#
# Per namespace and registry, the Secret:
#   kubectl create secret docker-registry ... --dry-run=client -o json | kubectl apply -f -
# then per namespace, the ServiceAccount `default`:
#   MODE merge: kubectl get sa (resourceVersion and pull secrets), and when a
#               name is missing, kubectl patch sa with the merged list and the
#               resourceVersion (keeps the entries already there)
#   MODE naive: kubectl patch sa -p '{"imagePullSecrets": [...]}' (the guide's
#               command: replaces the list)
# KUBECONFIG and KUBECTL_CACHE_DIR come from the environment; the passwords
# are fake and the same as the xcsreg site file's (rotated: reg-1 changed).
set -eu
mode=$1 n=$2 m=$3 scenario=$4
kubectl=(kubectl --cache-dir "$KUBECTL_CACHE_DIR")

for i in $(seq "$n"); do
	ns=ns-$i
	for j in $(seq "$m"); do
		password=fake-password-$j
		[ "$scenario" = rotated ] && [ "$j" = 1 ] && password=fake-rotated-1
		"${kubectl[@]}" create secret docker-registry "reg-$j" -n "$ns" \
			--docker-server="registry-$j.example.invalid" --docker-username=bench \
			--docker-password="$password" --dry-run=client -o json |
			"${kubectl[@]}" apply -f - >/dev/null
	done
	if [ "$mode" = naive ]; then
		list=''
		for j in $(seq "$m"); do list="$list${list:+,}{\"name\":\"reg-$j\"}"; done
		"${kubectl[@]}" patch sa default -n "$ns" -p "{\"imagePullSecrets\":[$list]}" >/dev/null
		continue
	fi
	read -r rv names < <("${kubectl[@]}" get sa default -n "$ns" \
		-o jsonpath='{.metadata.resourceVersion} {.imagePullSecrets[*].name}{"\n"}')
	list='' missing=0
	for name in $names; do list="$list${list:+,}{\"name\":\"$name\"}"; done
	for j in $(seq "$m"); do
		case " $names " in
		*" reg-$j "*) ;;
		*) list="$list${list:+,}{\"name\":\"reg-$j\"}" missing=1 ;;
		esac
	done
	if [ "$missing" = 1 ]; then
		"${kubectl[@]}" patch sa default -n "$ns" --type=merge \
			-p "{\"metadata\":{\"resourceVersion\":\"$rv\"},\"imagePullSecrets\":[$list]}" >/dev/null
	fi
done
