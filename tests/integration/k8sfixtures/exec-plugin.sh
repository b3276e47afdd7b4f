#!/bin/sh
# A kubeconfig exec credential plugin for the k8s tests. It counts its runs in
# $PLUGIN_STATE/count, keeps its last KUBERNETES_EXEC_INFO in
# $PLUGIN_STATE/info and its arguments in $PLUGIN_STATE/args, and answers
# with apiVersion $PLUGIN_API according to $PLUGIN_MODE:
#   token       status.token admin-token
#   stale       wrong-token on the first run, admin-token after
#   wrong       wrong-token always
#   expiring    admin-token, expiring $PLUGIN_TTL seconds from now
#   cert        the admin client certificate from $PLUGIN_CERTS
#   half        a certificate without its key
#   wrongapi    the other apiVersion
#   fail        nothing, exit status 3
set -eu
state=${PLUGIN_STATE:?}
n=$(( $(cat "$state/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$state/count"
printf '%s\n' "${KUBERNETES_EXEC_INFO-unset}" >"$state/info"
printf '%s\n' "$*" >"$state/args"
api=${PLUGIN_API:-client.authentication.k8s.io/v1}

# A file's contents as a JSON string body (PEM: newlines only).
pem() { awk '{ printf "%s\\n", $0 }' "$1"; }

case ${PLUGIN_MODE:-token} in
token) status='"token":"admin-token"' ;;
wrong) status='"token":"wrong-token"' ;;
stale) if [ "$n" -eq 1 ]; then status='"token":"wrong-token"'; else status='"token":"admin-token"'; fi ;;
expiring)
	exp=$(date -u -d "+${PLUGIN_TTL:-2} seconds" +%Y-%m-%dT%H:%M:%SZ)
	status="\"token\":\"admin-token\",\"expirationTimestamp\":\"$exp\"" ;;
cert)
	status="\"clientCertificateData\":\"$(pem "$PLUGIN_CERTS/admin.crt")\",\"clientKeyData\":\"$(pem "$PLUGIN_CERTS/admin.key")\"" ;;
half) status="\"clientCertificateData\":\"$(pem "$PLUGIN_CERTS/admin.crt")\"" ;;
wrongapi)
	api=client.authentication.k8s.io/v1beta1
	[ "${PLUGIN_API:-}" = "$api" ] && api=client.authentication.k8s.io/v1
	status='"token":"admin-token"' ;;
fail) echo "exec-plugin: failing as asked" >&2; exit 3 ;;
esac
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{%s}}\n' "$api" "$status"
