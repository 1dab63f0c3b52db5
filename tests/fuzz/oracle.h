/* SPDX-License-Identifier: MIT */
/*
 * What the option fuzzers check after each parse: that a successful
 * opts_parse() left only values its documentation allows, and that the
 * layout computed from them places everything inside the region without
 * overlap.  A violation ends the run with a trap, which libFuzzer reports
 * as a crash and saves as an artifact.
 */
#ifndef ARENA_FUZZ_ORACLE_H
#define ARENA_FUZZ_ORACLE_H

#include <stdio.h>

#include "opts.h"

/* Trap (a libFuzzer crash) when cond is false, naming it on stderr. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__FILE__, __LINE__, #cond);                  \
	} while (0)

void fuzz_fail(const char *file, int line, const char *what)
	__attribute__((noreturn));

/*
 * Send the daemon code's stdout and stderr (usage lines, --help) to
 * /dev/null.  Only the FILE pointers change: sanitizer reports and
 * libFuzzer's own output still reach file descriptor 2.
 */
void fuzz_quiet(void);

#define FUZZ_MAX_ARGS 160 /* room for more than the 64 --fixed allowed */

/*
 * Split s (len bytes and a NUL) at NUL bytes into av[n..], after the n
 * arguments already there, and NULL-terminate; returns the new count, or
 * -1 when an argument is --config (only fuzz_config makes config files).
 * av has room for FUZZ_MAX_ARGS + 1 entries.
 */
int fuzz_split(char *s, size_t len, char **av, int n);

/* Check the outcome rc of opts_parse() into o, then the layout of o. */
void fuzz_opts_check(int rc, const struct opts *o);

#endif
