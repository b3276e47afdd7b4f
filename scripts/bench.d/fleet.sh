#!/usr/bin/env bash
# scripts/bench.d/fleet.sh XCSREG RUNS N M SIMS LATENCY_MS: the fleet figure of
# scripts/bench --fleet. SIMS API simulators, each with N namespaces; one
# setup.lua run over all of them (the site file's clusters) against each
# cluster's run alone, full rollouts from a fresh simulator, M registries.
# Prints the median over RUNS of the fleet's wall time, of the slowest
# single run, and their ratio (target <= 1.5). LATENCY_MS > 0 delays every
# API request that long (a network's round trip, which the simulators on
# loopback lack: without it, each run is bound by the CPU the simulators and
# xcsreg need, and five of them at once by the machine's cores). Also the
# CPU time of the fleet run's xcsreg processes, the parent's and its
# children's (GNU time), and the simulators' (/proc/PID/stat): their sum
# over the machine's cores is what the run cannot beat.
set -euo pipefail
xcsreg=$1 runs=$2 n=$3 m=$4 sims=$5 latency=$6
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/scripts/bench.d
tmp=$(mktemp -d /tmp/xcsreg-bench-fleet.XXXXXX)
pids=()
# shellcheck disable=SC2317  # called through trap
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$root/tests/apisim/mkcerts" "$tmp/certs" >/dev/null
ca=$(base64 -w0 "$tmp/certs/ca.crt")
controls=()
{
	echo "apiVersion: v1"
	echo "kind: Config"
	echo "users: [{name: admin, user: {token: admin-token}}]"
	echo "clusters:"
} >"$tmp/kubeconfig"
contexts=""
for i in $(seq "$sims"); do
	python3 -S "$root/tests/apisim/apisim.py" --certs "$tmp/certs" --ready-file "$tmp/ready-$i.json" \
		2>"$tmp/apisim-$i.log" &
	pids+=($!)
done
for i in $(seq "$sims"); do
	for _ in $(seq 200); do [ -s "$tmp/ready-$i.json" ] && break; sleep 0.05; done
	read -r api control < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["api"], d["control"])' \
		"$tmp/ready-$i.json")
	controls+=("$control")
	echo "- {name: c$i, cluster: {server: \"$api\", certificate-authority-data: $ca}}" >>"$tmp/kubeconfig"
	contexts="$contexts- {name: c$i, context: {cluster: c$i, user: admin, namespace: default}}"$'\n'
done
printf 'contexts:\n%scurrent-context: c1\n' "$contexts" >>"$tmp/kubeconfig"
chmod 600 "$tmp/kubeconfig"

{
	echo "return {"
	printf '  clusters = {'
	for i in $(seq "$sims"); do printf ' { context = "c%d" },' "$i"; done
	echo ' },'
	printf '  namespaces = {'
	for i in $(seq "$n"); do printf ' "ns-%d",' "$i"; done
	echo ' },'
	echo '  registries = {'
	for j in $(seq "$m"); do
		printf '    { secret = "reg-%d", server = "registry-%d.example.invalid", username = "bench", password_env = "BENCH_PASSWORD_%d" },\n' "$j" "$j" "$j"
	done
	echo '  },'
	echo '}'
} >"$tmp/site.lua"
for j in $(seq "$m"); do export "BENCH_PASSWORD_$j=fake-password-$j"; done

fresh() {
	for c in "${controls[@]}"; do
		XCSREG_SIM_CONTROL=$c python3 "$here/sim.py" setup "$n"
		[ "$latency" -gt 0 ] && curl -sf -o /dev/null -H 'Content-Type: application/json' \
			-d "{\"action\": \"delay\", \"latency_ms\": $latency, \"count\": 1000000}" "$c/faults"
	done
	return 0
}
now() { date +%s.%N; }
# The CPU seconds the simulators have used (user + system).
sims_cpu() {
	local ticks=0 p
	for p in "${pids[@]}"; do ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
setup() { "$xcsreg" run setup.lua --config "$tmp/site.lua" --kubeconfig "$tmp/kubeconfig" --no-verify --lock none -q "$@"; }

: >"$tmp/times"
for r in $(seq "$runs"); do
	fresh
	slowest=0
	for i in $(seq "$sims"); do
		t0=$(now)
		setup --context "c$i"
		t=$(since "$t0")
		slowest=$(awk -v a="$t" -v b="$slowest" 'BEGIN { print (a > b ? a : b) }')
	done
	fresh
	sims_cpu0=$(sims_cpu)
	t0=$(now)
	KUBECONFIG=$tmp/kubeconfig /usr/bin/time -q -f "%U %S" -o "$tmp/cpu" "$xcsreg" run setup.lua --config "$tmp/site.lua" \
		--no-verify --lock none -q </dev/null 2>>"$tmp/errors.log" ||
		{ echo "bench: the fleet run failed:" >&2; cat "$tmp/errors.log" >&2; exit 1; }
	fleet=$(since "$t0")
	sims_cpu=$(awk -v a="$(sims_cpu)" -v b="$sims_cpu0" 'BEGIN { printf "%.2f", a - b }')
	for c in "${controls[@]}"; do
		writes=$(XCSREG_SIM_CONTROL=$c python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import sim; print(sim.count()["writes"])' "$here")
		[ "$writes" -eq $((n * m + n)) ] || { echo "bench: a cluster got $writes writes, not $((n * m + n))" >&2; exit 1; }
	done
	read -r user sys <"$tmp/cpu"
	echo "$fleet $slowest $user $sys $sims_cpu" >>"$tmp/times"
	echo "bench: fleet run $r/$runs: ${fleet}s, slowest single cluster ${slowest}s" >&2
done
python3 - "$tmp/times" "$sims" "$n" "$m" "$latency" "$(nproc)" <<'PY'
import statistics, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
fleet, single = (statistics.median(r[i] for r in rows) for i in (0, 1))
cpu = statistics.median(r[2] + r[3] for r in rows)
sims_cpu = statistics.median(r[4] for r in rows)
print("fleet: %s simulators x %s namespaces x %s registries, %s ms per request, %s CPUs, full rollout: "
      "%.3f s in one run (CPU: xcsreg %.2f s, simulators %.2f s); slowest single cluster alone %.3f s; "
      "ratio %.2f (target <= 1.5)" % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], fleet, cpu,
                                      sims_cpu, single, fleet / single))
PY
