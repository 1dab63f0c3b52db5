// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arenad's command line, through its real entry point
 * opts_parse() (daemon/opts.c) and on to layout_compute()
 * (daemon/layout.c), as main() runs them.  The input is split at NUL
 * bytes into argv[1..]; opts_parse() never exits, it returns, so nothing
 * else is needed to run it in a loop.  oracle.c then checks that what it
 * accepted is a valid request and that the layout computed from it is
 * sound.
 *
 * --config is left to fuzz_config (inputs naming it are skipped here),
 * because a fuzzed path would read arbitrary files; the config_read()
 * that opts.c calls for it is a stub that must never run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int config_read(struct opts *o)
{
	fuzz_fail(__FILE__, __LINE__, "config_read without --config");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *av[FUZZ_MAX_ARGS + 1] = { "arenad" };
	struct opts o;
	int ac;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	ac = fuzz_split(s, size, av, 1);
	if (ac > 0)
		fuzz_opts_check(opts_parse(ac, av, &o), &o);
	free(s);
	return 0;
}
