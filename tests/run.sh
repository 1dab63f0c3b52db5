#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Test runner: tests/run.sh BUILD_DIR TEST_BINARY...
#
# Runs each test binary under a timeout, in a fresh temporary directory,
# with cmocka in TAP mode, and prints one line per test case with its
# time.  Exit status 77 skips the whole file; a timeout, a crash or a
# non-zero exit without a failed case fails the file.  A binary's stdout
# and stderr go to BUILD_DIR/test-logs/NAME.log, whose last 40 lines are
# printed when anything in the file fails.  A skipped case's reason is
# the line "skipped CASE: REASON" it wrote on stderr, if any (see
# SKIP_BECAUSE in tests/svc.h).  The last line is always
# "N passed, N failed, N skipped"; the exit status is non-zero when
# anything failed or nothing ran.
#
# ARENA_TEST_TIMEOUT sets the seconds per binary (default 300).  Each
# binary gets ARENA_BUILD and ARENA_SRCDIR (absolute paths), TMPDIR and
# XDG_RUNTIME_DIR in its own temporary directory (also its working
# directory), and no ARENA_SOCKET, so it cannot reach a daemon it did not
# start itself.

set -u

TAIL_LINES=40
limit=${ARENA_TEST_TIMEOUT:-300}
npass=0
nfail=0
nskip=0
tpid=""
tmp=""

usage() {
	echo "usage: $0 BUILD_DIR TEST_BINARY..." >&2
	echo "0 passed, 0 failed, 0 skipped"
	exit 2
}

# Microseconds since the epoch into $now, without a fork.
now_us() {
	local t=${EPOCHREALTIME/[.,]/}

	now=$((10#$t))
}

# report STATUS NAME MICROSECONDS [NOTE]
report() {
	local s=$(($3 / 1000000)) cs=$(($3 % 1000000 / 10000))

	printf '%-4s  %s  (%d.%02ds)%s\n' "$1" "$2" "$s" "$cs" "${4:+  $4}"
	case $1 in
	PASS) npass=$((npass + 1)) ;;
	FAIL) nfail=$((nfail + 1)) ;;
	SKIP) nskip=$((nskip + 1)) ;;
	esac
}

# read_tap LOG RESULTS: copy the binary's stdout to LOG and write one line
# per plan ("PLAN N") and per case ("STATUS NAME MICROSECONDS") to
# RESULTS.  A case's time is the time since the previous result (or the
# start): cmocka runs cases one after another, and harness.c makes test
# binaries' stdout line-buffered so that results arrive as they happen.
# cmocka 1.1.5 reports a skip as "not ok N # SKIP name".
read_tap() {
	local last line rest status now

	now_us
	last=$now
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\n' "$line"
		case $line in
		1..[0-9]*)
			echo "PLAN ${line#1..}" >&3
			continue
			;;
		"not ok "*"# SKIP"* | "ok "*"# SKIP"*) status=SKIP ;;
		"ok "*) status=PASS ;;
		"not ok "*) status=FAIL ;;
		*) continue ;;
		esac
		rest=${line#*ok }
		rest=${rest#* }
		rest=${rest#- }
		rest=${rest#"# SKIP"}
		rest=${rest# }
		rest=${rest%% *}
		now_us
		echo "$status ${rest:-?} $((now - last))" >&3
		last=$now
	done >>"$1" 3>>"$2"
}

# read_err LOG LAST: copy the binary's stderr to LOG, its last non-empty
# line to LAST (the reason a skipped file gives).
read_err() {
	local line last=""

	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\n' "$line"
		[ -n "$line" ] && last=$line
	done >>"$1"
	printf '%s\n' "$last" >"$2"
}

print_tail() {
	echo "----- $1: last $TAIL_LINES lines of $2 -----"
	tail -n "$TAIL_LINES" "$2"
	echo "----- end of $1 -----"
}

# run_binary BIN LOG: run BIN in $tmp/work; sets rc and dt (microseconds).
run_binary() {
	local bin=$1 log=$2 rpid epid start now

	rc=1
	dt=0
	mkfifo "$tmp/out" "$tmp/err" || return
	: >"$tmp/res"
	read_tap "$log" "$tmp/res" <"$tmp/out" &
	rpid=$!
	read_err "$log" "$tmp/last" <"$tmp/err" &
	epid=$!
	now_us
	start=$now
	(
		cd "$tmp/work" || exit 1
		exec env TMPDIR="$tmp/work" XDG_RUNTIME_DIR="$tmp/work" \
			timeout -k 10 "$limit" "$bin"
	) >"$tmp/out" 2>"$tmp/err" </dev/null &
	tpid=$!
	wait "$tpid" 2>/dev/null
	rc=$?
	now_us
	dt=$((now - start))
	# timeout(1) leads its own process group: end whatever the test left
	# behind (workers, a daemon) so that the readers see end of file.
	kill -KILL -- "-$tpid" 2>/dev/null
	tpid=""
	wait "$rpid" "$epid"
	return 0
}

# judge_file NAME NCASES NFAILED NPLANNED: the file as a whole, after its
# cases were reported.  Returns 1 when the file failed.
judge_file() {
	local why

	if [ "$rc" -eq 77 ]; then
		why=$(cat "$tmp/last" 2>/dev/null)
		report SKIP "$1" "$dt" "${why:-exit status 77}"
		return 0
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
		[ "$dt" -ge $((limit * 1000000)) ]; then
		report FAIL "$1" "$dt" "TIMEOUT after ${limit}s"
		return 1
	fi
	if [ "$rc" -gt 128 ]; then
		why=$(kill -l $((rc - 128)) 2>/dev/null)
		report FAIL "$1" "$dt" "killed by signal SIG${why:-$((rc - 128))}"
		return 1
	fi
	if [ "$rc" -ne 0 ] && [ "$3" -eq 0 ]; then
		report FAIL "$1" "$dt" "exit status $rc"
		return 1
	fi
	if [ "$rc" -eq 0 ] && [ "$2" -lt "$4" ]; then
		report FAIL "$1" "$dt" "ran $2 of $4 planned cases"
		return 1
	fi
	[ "$2" -eq 0 ] && report PASS "$1" "$dt"
	[ "$3" -eq 0 ]
}

# skip_note LOG CASE: the reason CASE gave for its skip, if any.
skip_note() {
	sed -n "s/^skipped $2: //p" "$1" | head -n 1
}

run_file() {
	local bin=$1 name log st cname us note ncases=0 nfailed=0 nplan=0

	name=$(basename "$bin")
	log=$logdir/$name.log
	: >"$log"
	if [ ! -x "$bin" ] || [ -d "$bin" ]; then
		report FAIL "$name" 0 "not an executable file: $bin"
		return
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/arena-test.XXXXXX") || exit 2
	rc=1
	dt=0
	mkdir "$tmp/work" && run_binary "$bin" "$log"
	while read -r st cname us; do
		if [ "$st" = PLAN ]; then
			nplan=$((nplan + cname))
			continue
		fi
		note=""
		[ "$st" = SKIP ] && note=$(skip_note "$log" "$cname")
		report "$st" "$name/$cname" "$us" "$note"
		ncases=$((ncases + 1))
		[ "$st" = FAIL ] && nfailed=$((nfailed + 1))
	done <"$tmp/res"
	judge_file "$name" "$ncases" "$nfailed" "$nplan" ||
		print_tail "$name" "$log"
	rm -rf "$tmp"
	tmp=""
}

interrupted() {
	[ -n "$tpid" ] && kill -TERM -- "-$tpid" "$tpid" 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
	echo "interrupted"
	echo "$npass passed, $((nfail + 1)) failed, $nskip skipped"
	exit 130
}

[ $# -ge 1 ] || usage
build=$(cd "$1" 2>/dev/null && pwd) || {
	echo "run.sh: no build directory '$1'" >&2
	usage
}
shift
case $limit in
'' | *[!0-9]* | 0)
	echo "run.sh: ARENA_TEST_TIMEOUT must be a positive number" >&2
	usage
	;;
esac
logdir=$build/test-logs
mkdir -p "$logdir" || exit 2
ARENA_SRCDIR=$(pwd)
ARENA_BUILD=$build
CMOCKA_MESSAGE_OUTPUT=TAP
export ARENA_SRCDIR ARENA_BUILD CMOCKA_MESSAGE_OUTPUT
unset ARENA_SOCKET
trap interrupted INT TERM

for t in "$@"; do
	case $t in
	/*) run_file "$t" ;;
	*) run_file "$ARENA_SRCDIR/$t" ;;
	esac
done

echo "$npass passed, $nfail failed, $nskip skipped"
[ "$nfail" -eq 0 ] && [ $((npass + nskip)) -gt 0 ]
