#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Benchmark report: bench/report.sh BUILD_DIR
#               or: bench/report.sh --from TABLE OUT_DIR
#
# The first form (make bench-report) runs bench/run.sh BUILD_DIR, which
# keeps its table in bench/results/ as always, and turns that table into
# bench/results/report.md: the machine (CPU model, cores, kernel), the
# date, the table with the baselines (glibc, jemalloc, mimalloc) and the
# ratios, and the targets; and into SVG plots next to it, drawn by
# gnuplot: ns per operation for each pattern, and arena's ratio to the
# fastest of jemalloc and mimalloc.  The second form only redraws the
# report from a table run.sh wrote before, into OUT_DIR, and never
# installs anything.
#
# gnuplot is installed on demand by the first form (gnuplot-nox, with apt,
# as root or through sudo); without it the report is written without
# plots and says why.  The exit status is that of run.sh: a benchmark
# that failed to run still gets its report, marked incomplete.

set -u

tmp=""
run_rc=0

usage() {
	echo "usage: $0 BUILD_DIR | $0 --from TABLE OUT_DIR" >&2
	exit 2
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	[ -n "$tmp" ] && rm -rf "$tmp"
}

gnuplot_install() {
	local sudo=""

	command -v gnuplot >/dev/null && return 0
	command -v apt-get >/dev/null || return 1
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	echo "bench-report: installing gnuplot-nox for the plots" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		--no-install-recommends gnuplot-nox >/dev/null || return 1
}

# rows TABLE: "name pattern size procs ns min max vsbest vsglibc" per
# row of run.sh's table; min and max are "-" for one process.
rows() {
	awk '/^name +pattern +size +procs/ { on = 1; next }
	on && NF == 0 { exit }
	on && NF == 8 {
		split($6, m, "-")
		print $1, $2, $3, $4, $5, m[1], m[2], $7, $8
	}
	on && NF == 7 { print $1, $2, $3, $4, $5, "-", "-", $6, $7 }' "$1"
}

machine() {
	local model

	model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo |
		head -n 1)
	echo "- CPU: ${model:-unknown}"
	echo "- cores: $(nproc) online"
	echo "- kernel: $(uname -s) $(uname -r) $(uname -m)"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- commit: $(git -C "${0%/*}" describe --always --dirty \
		2>/dev/null || echo unknown)"
}

table_md() {
	echo "| allocator | pattern | size (B) | procs | ns/op |" \
		"min-max (2 procs) | / fastest of je, mi | / glibc |"
	echo "|---|---|--:|--:|--:|--:|--:|--:|"
	rows "$1" | awk '{
		mm = $6 == "-" ? "" : $6 "-" $7
		n = $1 == "arena" || $1 == "arena+ptr" ? "**" $1 "**" : $1
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", \
			n, $2, $3, $4, $5, mm, $8, $9
	}'
}

# plot_data TABLE PATTERN: one row per size and procs, a column per name.
plot_data() {
	rows "$1" | awk -v pat="$2" '
	$2 == pat {
		k = $3 " B, " $4 (($4 == 1) ? " proc" : " procs")
		if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
		if (!($1 in hasn)) { hasn[$1] = 1; names[++nn] = $1 }
		v[k, $1] = $5
	}
	END {
		if (!nk)
			exit 1
		printf "config"
		for (j = 1; j <= nn; j++)
			printf " %s", names[j]
		print ""
		for (i = 1; i <= nk; i++) {
			printf "\"%s\"", keys[i]
			for (j = 1; j <= nn; j++)
				printf " %s", ((keys[i], names[j]) in v) ? \
					v[keys[i], names[j]] : "?"
			print ""
		}
	}'
}

# ratio_data TABLE: arena / fastest of je and mi, a column per pattern.
ratio_data() {
	rows "$1" | awk '
	$1 == "arena" {
		k = $3 " B, " $4 (($4 == 1) ? " proc" : " procs")
		if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
		if (!($2 in hasp)) { hasp[$2] = 1; pats[++np] = $2 }
		r = $8; sub(/x$/, "", r); v[k, $2] = r
	}
	END {
		if (!nk)
			exit 1
		printf "config"
		for (j = 1; j <= np; j++)
			printf " %s", pats[j]
		print ""
		for (i = 1; i <= nk; i++) {
			printf "\"%s\"", keys[i]
			for (j = 1; j <= np; j++)
				printf " %s", ((keys[i], pats[j]) in v) ? \
					v[keys[i], pats[j]] : "?"
			print ""
		}
	}'
}

# bars DATA SVG TITLE YLABEL [EXTRA]: a clustered bar chart.
bars() {
	local ncol

	ncol=$(head -n 1 "$1" | wc -w)
	gnuplot <<-EOF
		set terminal svg size 860,460 dynamic font "sans,11" \
			background "white"
		set output "$2"
		set title "$3"
		set ylabel "$4"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.85 border -1
		set boxwidth 0.9
		set datafile missing "?"
		set key outside right top autotitle columnheader noenhanced
		set grid ytics
		set yrange [0:*]
		set xtics noenhanced
		${5:-}
		plot for [i=2:$ncol] "$1" using i:xtic(1)
	EOF
}

# plots TABLE OUT: one SVG per pattern and the ratios; their names.
plots() {
	local pat

	for pat in $(rows "$1" | awk '{ print $2 }' | awk '!s[$0]++'); do
		plot_data "$1" "$pat" >"$tmp/$pat.dat" || continue
		bars "$tmp/$pat.dat" "$2/$pat.svg" \
			"fixed-slot alloc+free, pattern $pat (lower is better)" \
			"ns per operation per process" && echo "$pat.svg"
	done
	ratio_data "$1" >"$tmp/ratio.dat" || return 0
	bars "$tmp/ratio.dat" "$2/ratio.svg" \
		"arena / fastest of jemalloc and mimalloc (below 1: arena faster)" \
		"ratio" "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2" &&
		echo "ratio.svg"
}

# report TABLE OUT: report.md and the plots.
report() {
	local svgs="" svg

	if command -v gnuplot >/dev/null; then
		svgs=$(plots "$1" "$2")
	fi
	{
		echo "# arenad benchmark report"
		echo
		[ "$run_rc" -ne 0 ] &&
			echo "**Incomplete: a benchmark failed to run" \
				"(bench/run.sh exited with $run_rc).**" && echo
		echo "## Machine"
		echo
		machine
		echo
		echo "As bench/run.sh saw it ($(basename "$1")):"
		echo
		echo '```'
		grep -E '^(machine|build|load|warning):' "$1"
		echo '```'
		echo
		echo "## Results"
		echo
		sed -n '/^fixed-slot/,/^$/p' "$1" | sed '/^$/d'
		echo
		table_md "$1"
		echo
		echo '```'
		sed -n '/^targets/,$p' "$1"
		echo '```'
		echo
		echo "## Plots"
		echo
		if [ -z "$svgs" ]; then
			echo "None: gnuplot is not installed" \
				"(apt-get install gnuplot-nox)."
		fi
		for svg in $svgs; do
			echo "![${svg%.svg}]($svg)"
			echo
		done
	} >"$2/report.md"
	echo "bench-report: wrote $2/report.md${svgs:+ and ${svgs//$'\n'/ }}" >&2
}

main() {
	local build table out

	trap cleanup EXIT
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/arena-report.XXXXXX") || exit 1
	if [ "${1:-}" = --from ]; then
		if [ $# -ne 3 ] || [ ! -f "$2" ]; then
			usage
		fi
		table=$2
		out=$3
	else
		[ $# -eq 1 ] || usage
		build=$1
		out=${0%/*}/results
		gnuplot_install ||
			echo "bench-report: no gnuplot; no plots" >&2
		"${0%/*}/run.sh" "$build" | tee "$tmp/table"
		run_rc=${PIPESTATUS[0]}
		table=$tmp/table
	fi
	mkdir -p "$out" || exit 1
	if [ -z "$(rows "$table")" ]; then
		echo "bench-report: no results table in $table" >&2
		exit 1
	fi
	report "$table" "$out"
	exit "$run_rc"
}

main "$@"
