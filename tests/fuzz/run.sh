#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fuzz runner: tests/fuzz/run.sh SECONDS FUZZER...   (make fuzz runs it)
#
# Runs each libFuzzer binary (BUILD/fuzz_NAME) for SECONDS seconds, one
# after another, starting from the committed seed corpus
# tests/fuzz/corpus/NAME plus what earlier runs found (kept under the
# binary's directory in corpus/NAME, never in the source tree), with the
# dictionary tests/fuzz/NAME.dict when there is one.  Each run is bounded
# in memory (-rss_limit_mb) and per input (-timeout).  A crash, a leak, a
# sanitizer report, a timeout or running out of memory fails that target;
# its log (logs/NAME.log) ends up on stdout, and the input that did it is
# saved as artifacts/NAME-crash-... (replay: BUILD/fuzz_NAME FILE).
#
# One line per target gives what the report needs: executions, their
# rate, coverage (libFuzzer's "cov:" edges and "ft:" features) and the
# corpus size.  The exit status is non-zero when any target failed.

set -u

RSS_MB=2048
UNIT_TIMEOUT=10
TAIL_LINES=60

usage() {
	echo "usage: $0 SECONDS FUZZER..." >&2
	exit 2
}

[ $# -ge 2 ] || usage
secs=$1
shift
case $secs in
'' | *[!0-9]* | 0) usage ;;
esac
src=$(cd "$(dirname "$0")" && pwd)

# Options that only some targets need.
extra_args() {
	case $1 in
	wire) echo "-max_len=8400" ;; # a whole STATS message and more
	*) echo "-max_len=1024" ;;
	esac
}

# last_field LOG KEY: the number after the last "KEY: " in LOG.
last_field() {
	grep -o "$2: *[0-9]*" "$1" | tail -n 1 | grep -o '[0-9]*$'
}

stat_field() {
	sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

nfail=0
printf '%-7s %12s %9s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus \
	result
for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	dir=$(cd "$(dirname "$bin")" && pwd)
	work=$dir/corpus/$name
	log=$dir/logs/$name.log
	mkdir -p "$work" "$dir/logs" "$dir/artifacts"
	dict=()
	[ -f "$src/$name.dict" ] && dict=(-dict="$src/$name.dict")
	# shellcheck disable=SC2046
	"$bin" -max_total_time="$secs" -rss_limit_mb=$RSS_MB \
		-timeout=$UNIT_TIMEOUT -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$name-" "${dict[@]}" \
		$(extra_args "$name") "$work" "$src/corpus/$name" >"$log" 2>&1
	rc=$?
	result=ok
	if [ $rc -ne 0 ]; then
		result="FAILED (status $rc)"
		nfail=$((nfail + 1))
	fi
	printf '%-7s %12s %9s %7s %7s %7s  %s\n' "$name" \
		"$(stat_field "$log" number_of_executed_units)" \
		"$(stat_field "$log" average_exec_per_sec)" \
		"$(last_field "$log" cov)" "$(last_field "$log" ft)" \
		"$(find "$work" -type f | wc -l)" "$result"
	if [ $rc -ne 0 ]; then
		echo "----- $name: last $TAIL_LINES lines of $log -----"
		tail -n $TAIL_LINES "$log"
		echo "----- end of $name -----"
	fi
done
[ $nfail -eq 0 ]
