// SPDX-License-Identifier: MIT
/*
 * bench/report.sh --from: a table in bench/run.sh's format becomes a
 * markdown report with the machine, every row with its ratios, the
 * targets, and (with gnuplot) SVG plots it links to.  The benchmarks
 * themselves take minutes and are not run here.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "svc.h"

#define CAP 65536

static const char table[] =
	"machine: 2 cpus, Test CPU, Linux 6.1.0 x86_64\n"
	"build:   cc 12.2.0, jemalloc 5.3.0-1, mimalloc 2.0.9+ds-2\n"
	"load:    0.10 (1-minute average before the run)\n"
	"fixed-slot alloc+free pairs, ns per pair per process, best of 5 x "
	"~300 ms;\n"
	"2 procs: mean of the two processes (min-max)\n"
	"\n"
	"name       pattern  size procs   ns/pair   min-max   /best(je,mi)"
	"   /glibc\n"
	"arena      pair       64     1      8.87                    1.47x"
	"    1.08x\n"
	"glibc      pair       64     1      8.20                    1.36x"
	"    1.00x\n"
	"jemalloc   pair       64     1      6.04                    1.00x"
	"    0.74x\n"
	"mimalloc   pair       64     1      8.67                    1.44x"
	"    1.06x\n"
	"arena      pair       64     2      8.86   8.8-8.9          1.45x"
	"    1.06x\n"
	"jemalloc   pair       64     2      6.12   6.1-6.2          1.00x"
	"    0.73x\n"
	"\n"
	"targets (issue 2), arena alloc+unref pairs:\n"
	"    64 B, 1 proc:    8.87 ns =  1.47x fastest of je/mi\n";

static char dir[256], out[CAP], err[CAP];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		fail_msg("cannot write %s", path);
}

static char *slurp(const char *path)
{
	static char buf[CAP];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		fail_msg("no %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static void report_from_table(void **state)
{
	const char *src = getenv("ARENA_SRCDIR");
	const char *tmp = getenv("TMPDIR");
	char script[PATH_MAX], in[PATH_MAX], path[PATH_MAX], *md;
	const char *argv[] = { "bash", script, "--from", in, dir, NULL };
	int status;

	snprintf(dir, sizeof(dir), "%s/report-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/bench/report.sh",
		 src && *src ? src : ".");
	snprintf(in, sizeof(in), "%s/table.txt", dir);
	write_file(in, table);
	assert_int_equal(
		harness_run(argv, &status, out, sizeof(out), err, sizeof(err)),
		0);
	if (status)
		fail_msg("report.sh: status %d\n%s", status, err);
	snprintf(path, sizeof(path), "%s/report.md", dir);
	md = slurp(path);
	contains(md, "- CPU: ");
	contains(md, "- kernel: ");
	contains(md, "machine: 2 cpus, Test CPU");
	contains(md, "| **arena** | pair | 64 | 1 | 8.87 |  | 1.47x | 1.08x |");
	contains(md, "| jemalloc | pair | 64 | 2 | 6.12 | 6.1-6.2 | 1.00x | "
		     "0.73x |");
	contains(md, "targets (issue 2)");
	if (system("command -v gnuplot >/dev/null 2>&1")) {
		contains(md, "gnuplot is not installed");
		SKIP_BECAUSE("gnuplot not found (package gnuplot-nox): "
			     "no plots to check");
	}
	contains(md, "![pair](pair.svg)");
	contains(md, "![ratio](ratio.svg)");
	snprintf(path, sizeof(path), "%s/pair.svg", dir);
	contains(slurp(path), "<svg");
	contains(slurp(path), "jemalloc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(report_from_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
