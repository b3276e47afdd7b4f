#!/bin/bash
# needs: none
# Builds the libFuzzer harnesses (scripts/fuzz) and runs each for a short
# fixed time (FUZZ_SECONDS, default 10) over its seed corpus, as many at
# once as there are CPUs: about a minute on 2 cores. Prints one "ok" line
# per target that found no crash, with its number of executions.
set -u
cd "$(dirname "$0")/../.." || exit 1
seconds=${FUZZ_SECONDS:-10}
if ! command -v clang >/dev/null; then
	echo "ok - fuzz: skipped: clang is not installed # SKIP"
	exit 0
fi
start=$SECONDS
out=$(FUZZ_SEED=${FUZZ_SEED:-1} scripts/fuzz "$seconds" 2>&1)
status=$?
total=0
while IFS= read -r line; do
	case "$line" in
	"fuzz "*": "*" executions in "*", no crash")
		name=${line#fuzz }
		name=${name%%:*}
		execs=${line#*: }
		execs=${execs%% *}
		total=$((total + execs))
		echo "ok - fuzz $name: $execs executions, no crash"
		;;
	"fuzz "*": CRASH "*)
		echo "not ok - ${line}"
		;;
	"# GAP: "*)
		echo "$line"
		;;
	*)
		echo "# $line"
		;;
	esac
done <<<"$out"
echo "## $total fuzz executions in $((SECONDS - start)) s (build included)"
if [ "$status" -ne 0 ] && ! grep -q '^fuzz .*: CRASH ' <<<"$out"; then
	echo "not ok - scripts/fuzz failed (status $status)"
fi
exit "$status"
