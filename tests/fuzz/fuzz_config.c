// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the config file parser (daemon/config.c), run the
 * way arenad runs it: opts_parse() with "--config FILE", where FILE holds
 * the input, then layout_compute() and the checks of oracle.c.  So every
 * line goes through the same option table and handlers as the command
 * line, and the file loader sees the input's NUL bytes and length too.
 * Two NUL bytes in a row end the file: what follows is more command line
 * (split at NULs, as fuzz_opts does), which must win over the file.
 *
 * The file is a memfd named by /proc/self/fd/N, rewritten for each input.
 * config.c keeps the text it read for the life of the process (options
 * point into it) and reads only one file per process; this target reads
 * one per input, so it includes config.c to reach that buffer and free it
 * after each run, or LeakSanitizer would rightly report every one but
 * the last.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.c"
#include "oracle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cfg_fd = -1;
static char cfg_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	cfg_fd = memfd_create("arenad-fuzz.conf", MFD_CLOEXEC);
	FUZZ_CHECK(cfg_fd >= 0);
	snprintf(cfg_path, sizeof(cfg_path), "/proc/self/fd/%d", cfg_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *av[FUZZ_MAX_ARGS + 1] = { "arenad", "--config", cfg_path };
	const uint8_t *cut = memmem(data, size, "\0\0", 2);
	size_t flen = cut ? (size_t)(cut - data) : size;
	char *args = malloc(size + 1);
	struct opts o;
	int rc, ac = 3;

	if (!args)
		return 0;
	FUZZ_CHECK(!ftruncate(cfg_fd, 0));
	FUZZ_CHECK(pwrite(cfg_fd, data, flen, 0) == (ssize_t)flen);
	if (cut) {
		memcpy(args, cut + 2, size - flen - 2);
		args[size - flen - 2] = '\0';
		ac = fuzz_split(args, size - flen - 2, av, 3);
	}
	if (ac > 0) {
		rc = opts_parse(ac, av, &o);
		fuzz_opts_check(rc, &o);
	}
	free(text);
	text = NULL;
	free(args);
	return 0;
}
