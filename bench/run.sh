#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Benchmark runner: bench/run.sh BUILD_DIR
#
# Starts a fresh arenad (--size 1G, socket and log in a temporary
# directory), times fixed-slot alloc+free pairs of 64 B and 4 KiB through
# libarena and through glibc malloc, jemalloc and mimalloc (the same
# bench_fixed binary, the last two by LD_PRELOAD; the binary checks which
# library really serves malloc), with 1 and with 2 processes at once, and
# prints a table and the targets of issue 2 with PASS or MISS; then
# bench_buddy (buddy-arena pairs, issue 3), bench_bump (64 B bump
# allocations, issue 4), bench_zero (zeroed vs uninitialised 4 KiB,
# issue 10), bench_zc, bench_chan, bench_wait (wake-up of a waiting
# allocation, issue 10) and bench_reclaim (a SIGKILLed client's reclaim,
# issue 5), which start daemons of their own.
#
# A missed target is a result, not an error: the exit status is non-zero
# only when something failed to run (a crash, a dead daemon, a missing
# allocator).  The output is also kept in bench/results/.
#
# BENCH_MS (default 300) milliseconds per repetition, BENCH_REPS (5)
# repetitions (the best counts), BENCH_WINDOW (32, a power of two) live
# blocks in the window pattern, 0 to leave that pattern out, BENCH_ROUNDS
# (1) times the whole set is run, the best round of each row counting (on
# a machine with other work, more rounds give steadier numbers).

set -u

ms=${BENCH_MS:-300}
reps=${BENCH_REPS:-5}
window=${BENCH_WINDOW:-32}
rounds=${BENCH_ROUNDS:-1}
sizes="64 4096"
procs_list="1 2"
tmp=""
dpid=""
failed=0

usage() {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [ -n "$dpid" ]; then
		kill -TERM "$dpid" 2>/dev/null
		wait "$dpid" 2>/dev/null
	fi
	[ -n "$tmp" ] && rm -rf "$tmp"
}

fail() {
	echo "bench: $*" >&2
	failed=1
}

# alive PID: running, not a zombie waiting to be reaped.
alive() {
	local st

	st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st#Z}" = "$st" ]
}

[ $# -eq 1 ] || usage
build=$(cd "$1" 2>/dev/null && pwd) || usage
for v in "$ms" "$reps" "$window" "$rounds"; do
	case $v in
	'' | *[!0-9]*) usage ;;
	esac
done
bin=$build/bench/bench_fixed
[ -x "$bin" ] || {
	echo "bench: no $bin; run make bench" >&2
	exit 1
}
[ -x "$build/arenad" ] || {
	echo "bench: no $build/arenad; run make" >&2
	exit 1
}

trap cleanup EXIT
trap 'exit 130' INT TERM
read -r load _ </proc/loadavg
tmp=$(mktemp -d "${TMPDIR:-/tmp}/arena-bench.XXXXXX") || exit 1
sock=$tmp/arenad.sock
log=$tmp/arenad.log

# The daemon: fresh, its own socket, ready when arenactl gets an answer.
"$build/arenad" --size 1G --socket "$sock" 2>"$log" &
dpid=$!
ready=0
for _ in $(seq 100); do
	alive "$dpid" || break
	if [ -S "$sock" ] && { [ ! -x "$build/arenactl" ] ||
		"$build/arenactl" --socket "$sock" stats >/dev/null 2>&1; }
	then
		ready=1
		break
	fi
	sleep 0.1
done
if [ "$ready" -ne 1 ]; then
	echo "bench: arenad did not come up; its log:" >&2
	cat "$log" >&2
	exit 1
fi

# run LABEL [LD_PRELOAD] -- ARGS: one measurement, its result line kept.
run() {
	local label=$1 pre=$2 out rc

	shift 3
	out=$(env ${pre:+LD_PRELOAD=$pre} timeout -k 5 300 "$bin" \
		--label "$label" --reps "$reps" --ms "$ms" "$@" 2>"$tmp/err")
	rc=$?
	if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
		fail "$label $* failed (exit status $rc):" \
			"$(tail -n 3 "$tmp/err")"
		return
	fi
	echo "$out" >>"$tmp/results"
	printf '  %-10s %s\n' "$label" "$(echo "$out" | cut -d' ' -f4-10)" >&2
}

: >"$tmp/results"
echo "bench: fixed-slot alloc+free pairs, best of $reps x ~$ms ms" >&2
pats=pair
[ "$window" -gt 0 ] && pats="pair window"
# run_set: every measurement once.
run_set() {
	local pat size np a

	for pat in $pats; do
		for size in $sizes; do
			for np in $procs_list; do
				a=(--size "$size" --procs "$np")
				[ "$pat" = window ] && a+=(--window "$window")
				measure "$pat" "${a[@]}"
			done
		done
	done
}

# measure PATTERN ARGS: one row of each allocator.
measure() {
	local pat=$1 arena=(--alloc arena --socket "$sock")

	shift
	run arena "" -- "${arena[@]}" --pattern "$pat" "$@"
	[ "$pat" = pair ] &&
		run arena+ptr "" -- "${arena[@]}" --pattern ptr "$@"
	run glibc "" -- --alloc malloc --expect libc.so --pattern "$pat" "$@"
	run jemalloc libjemalloc.so.2 -- --alloc malloc --expect jemalloc \
		--pattern "$pat" "$@"
	run mimalloc libmimalloc.so.2 -- --alloc malloc --expect mimalloc \
		--pattern "$pat" "$@"
}

for round in $(seq "$rounds"); do
	[ "$rounds" -gt 1 ] && echo "bench: round $round of $rounds" >&2
	run_set
done

if ! alive "$dpid"; then
	fail "arenad died during the run; its log:"
	cat "$log" >&2
else
	kill -TERM "$dpid"
	for _ in $(seq 50); do
		alive "$dpid" || break
		sleep 0.1
	done
	if alive "$dpid"; then
		kill -KILL "$dpid"
		fail "arenad did not stop within 5 s of SIGTERM"
	fi
	wait "$dpid"
	rc=$?
	dpid=""
	[ "$rc" -eq 0 ] || fail "arenad exited with status $rc on SIGTERM"
fi

machine() {
	local model

	model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo |
		head -n 1)
	echo "machine: $(nproc) cpus, ${model:-unknown cpu}," \
		"$(uname -s) $(uname -r) $(uname -m)"
	echo "build:   $(${CC:-cc} --version 2>/dev/null | head -n 1)," \
		"jemalloc $(dpkg-query -W -f='${Version}' libjemalloc2 \
			2>/dev/null || echo '?')," \
		"mimalloc $(dpkg-query -W -f='${Version}' libmimalloc2.0 \
			2>/dev/null || echo '?')"
	echo "load:    $load (1-minute average before the run)"
	awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }' &&
		echo "warning: other work is running; expect noisy numbers," \
			"2-process ones most"
}

# table: the results as a table, then the targets.
table() {
	awk '
	{
		delete kv
		for (i = 2; i <= NF; i++) {
			eq = index($i, "=")
			kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
		}
		pat = kv["pattern"] == "ptr" ? "pair" : kv["pattern"]
		k = pat SUBSEP kv["size"] SUBSEP kv["procs"]
		r = kv["name"] SUBSEP k
		if (!(r in at))
			at[r] = ++n
		else if (ns[r] + 0 <= kv["ns"] + 0)
			next		# an earlier round did better
		row[at[r]] = r SUBSEP kv["ns"] SUBSEP kv["min"] SUBSEP kv["max"]
		ns[r] = kv["ns"]
	}
	function best(k,  j, m) {
		j = ns["jemalloc", k]; m = ns["mimalloc", k]
		if (j == "" || (m != "" && m + 0 < j + 0))
			return m
		return j
	}
	function ratio(a, b) {
		return b == "" || b + 0 == 0 ? "-" : sprintf("%.2fx", a / b)
	}
	function verdict(r, lim) {
		return r == "" ? "n/a" : (r + 0 <= lim ? "PASS" : "MISS")
	}
	END {
		printf "%-10s %-7s %5s %5s %9s %9s %14s %8s\n", "name", \
			"pattern", "size", "procs", "ns/pair", "min-max", \
			"/best(je,mi)", "/glibc"
		for (i = 1; i <= n; i++) {
			split(row[i], f, SUBSEP)
			k = f[2] SUBSEP f[3] SUBSEP f[4]
			printf "%-10s %-7s %5s %5s %9.2f %9s %14s %8s\n", \
				f[1], f[2], f[3], f[4], f[5], \
				(f[4] > 1 ? sprintf("%.1f-%.1f", f[6], f[7]) \
					  : ""), \
				ratio(f[5], best(k)), \
				ratio(f[5], ns["glibc", k])
		}
		print ""
		print "targets (issue 2), arena alloc+unref pairs:"
		split("64 4096", sz, " ")
		for (i = 1; i <= 2; i++) {
			k1 = "pair" SUBSEP sz[i] SUBSEP 1
			k2 = "pair" SUBSEP sz[i] SUBSEP 2
			a1 = ns["arena", k1]; a2 = ns["arena", k2]
			b = best(k1)
			r = a1 == "" || b == "" ? "" : a1 / b
			printf "  %4s B, 1 proc:  %6.2f ns = %5.2fx fastest " \
				"of je/mi (%.2f ns)  <= 1.0x %s   stretch " \
				"<= 0.7x %s\n", sz[i], a1, r, b, \
				verdict(r, 1.0), verdict(r, 0.7)
			r = a1 == "" || a2 == "" ? "" : a2 / a1
			printf "  %4s B, 2 procs: %6.2f ns = %5.2fx 1 proc" \
				"                       <= 1.2x %s\n", \
				sz[i], a2, r, verdict(r, 1.2)
		}
	}' "$tmp/results"
}

report() {
	echo
	machine
	echo "fixed-slot alloc+free pairs, ns per pair per process, best of" \
		"$reps x ~$ms ms;"
	echo "2 procs: mean of the two processes (min-max)"
	[ "$window" -gt 0 ] && echo "window: $window live blocks;" \
		"free the oldest, allocate a new one"
	echo
	table
}

if [ -s "$tmp/results" ]; then
	results=$(dirname "$0")/results
	mkdir -p "$results"
	report | tee "$results/fixed-$(date +%Y%m%d-%H%M%S).txt"
fi
# Buddy arena (issue 3): bench_buddy starts a daemon of its own and runs
# its malloc baselines itself (LD_PRELOAD, checked as here).
if [ -x "$build/bench/bench_buddy" ]; then
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_buddy" --arenad "$build/arenad" --ms "$ms" \
		--reps "$reps" --rounds "$rounds" >"$tmp/buddy.txt" ||
		fail "bench_buddy failed (exit status $?)"
	[ -s "$tmp/buddy.txt" ] && { echo; machine; cat "$tmp/buddy.txt"; } |
		tee "$results/buddy-$(date +%Y%m%d-%H%M%S).txt"
fi
# Bump arena (issue 4): bench_bump starts a daemon of its own and runs
# its malloc baselines itself (LD_PRELOAD, checked as here).
if [ -x "$build/bench/bench_bump" ]; then
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_bump" --arenad "$build/arenad" --ms "$ms" \
		--reps "$reps" --rounds "$rounds" >"$tmp/bump.txt" ||
		fail "bench_bump failed (exit status $?)"
	[ -s "$tmp/bump.txt" ] && { echo; machine; cat "$tmp/bump.txt"; } |
		tee "$results/bump-$(date +%Y%m%d-%H%M%S).txt"
fi
# Zeroed allocation (issue 10): bench_zero starts two daemons of its own
# (one with --init zero) and runs malloc, calloc and malloc+memset
# baselines in the same run.
if [ -x "$build/bench/bench_zero" ]; then
	echo "bench: zeroed vs uninitialised 4 KiB allocation (bench_zero)" >&2
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_zero" --arenad "$build/arenad" --ms "$ms" \
		--reps "$reps" >"$tmp/zero.txt" ||
		fail "bench_zero failed (exit status $?)"
	[ -s "$tmp/zero.txt" ] && { echo; machine; cat "$tmp/zero.txt"; } |
		tee "$results/zero-$(date +%Y%m%d-%H%M%S).txt"
fi
# Zero-copy sends (issue 7): bench_zc starts a daemon of its own.
if [ -x "$build/bench/bench_zc" ]; then
	echo "bench: zero-copy sends against send() (bench_zc)" >&2
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_zc" --arenad "$build/arenad" >"$tmp/zc.txt" ||
		fail "bench_zc failed (exit status $?)"
	[ -s "$tmp/zc.txt" ] && { echo; machine; cat "$tmp/zc.txt"; } |
		tee "$results/zc-$(date +%Y%m%d-%H%M%S).txt"
fi
# Zero-copy channels (issue 6): bench_chan starts a daemon of its own
# and runs its Unix-socket and pipe baselines in the same run.
if [ -x "$build/bench/bench_chan" ]; then
	echo "bench: channels against a Unix socket and a pipe (bench_chan)" >&2
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_chan" --arenad "$build/arenad" >"$tmp/chan.txt" ||
		fail "bench_chan failed (exit status $?)"
	[ -s "$tmp/chan.txt" ] && { echo; machine; cat "$tmp/chan.txt"; } |
		tee "$results/chan-$(date +%Y%m%d-%H%M%S).txt"
fi
# Waiting allocation (issue 10): bench_wait starts a daemon of its own
# and runs its futex and pipe baselines in the same run.
if [ -x "$build/bench/bench_wait" ]; then
	echo "bench: waiting allocation wake-up against a futex and a pipe" \
		"(bench_wait)" >&2
	results=$(dirname "$0")/results
	mkdir -p "$results"
	"$build/bench/bench_wait" --arenad "$build/arenad" >"$tmp/wait.txt" ||
		fail "bench_wait failed (exit status $?)"
	[ -s "$tmp/wait.txt" ] && { echo; machine; cat "$tmp/wait.txt"; } |
		tee "$results/wait-$(date +%Y%m%d-%H%M%S).txt"
fi
# Reclaim of a SIGKILLed client (issue 5): bench_reclaim starts a daemon
# of its own (tests/harness.c, which finds arenad through ARENA_BUILD).
if [ -x "$build/bench/bench_reclaim" ]; then
	echo "bench: reclaim of a killed client (bench_reclaim)" >&2
	results=$(dirname "$0")/results
	mkdir -p "$results"
	ARENA_BUILD=$build "$build/bench/bench_reclaim" --reps "$reps" \
		>"$tmp/reclaim.txt" ||
		fail "bench_reclaim failed (exit status $?)"
	[ -s "$tmp/reclaim.txt" ] && { echo; machine; cat "$tmp/reclaim.txt"; } |
		tee "$results/reclaim-$(date +%Y%m%d-%H%M%S).txt"
fi
if [ "$failed" -ne 0 ]; then
	echo "bench: something failed to run (see above)" >&2
	exit 1
fi
exit 0
