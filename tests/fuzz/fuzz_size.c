// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: parse_size() (daemon/size.c), which reads --size and
 * the slot sizes of --fixed from the command line and the config file.
 * It was written by hand, without strtoull(), precisely so that it could
 * be checked against an independent oracle; this is that oracle.  The
 * reference below accepts the grammar of size.h by enumerating it
 * ("" "B" and, after K/M/G/T in any case, "" "B" "iB") and computes the
 * value in 128 bits, so it shares neither code nor overflow tricks with
 * the parser.  Results, error codes and "*out untouched on error" must
 * match exactly; size_human() must then format the value into its
 * buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ref_shift(char c)
{
	static const char letters[] = "kmgt";
	const char *p = strchr(letters, c | 0x20);

	return c && p ? 10 * (int)(p - letters + 1) : -1;
}

static int is_b(char c)
{
	return c == 'b' || c == 'B';
}

/* The suffix grammar: 0 and the shift, or -1. */
static int ref_suffix(const char *s)
{
	int shift;

	if (!*s)
		return 0;
	if (is_b(s[0]) && !s[1])
		return 0;
	shift = ref_shift(s[0]);
	if (shift < 0)
		return -1;
	if (!s[1] || (is_b(s[1]) && !s[2]))
		return shift;
	if ((s[1] == 'i' || s[1] == 'I') && is_b(s[2]) && !s[3])
		return shift;
	return -1;
}

static int ref_parse(const char *s, uint64_t *out)
{
	unsigned __int128 v = 0, lim = (unsigned __int128)UINT64_MAX;
	int shift, big = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > lim) {
			big = 1;
			v = lim + 1; /* stays above the limit, never wraps */
		}
	}
	shift = ref_suffix(s);
	if (shift < 0)
		return -EINVAL;
	if (big)
		return -ERANGE;
	if (v == 0)
		return -EINVAL;
	v <<= shift;
	if (v > lim)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint64_t untouched = 0x5a5a5a5a5a5a5a5aULL;
	uint64_t got = untouched, want = untouched;
	char *s = malloc(size + 1), buf[SIZE_HUMAN_MAX];
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = parse_size(s, &got);
	FUZZ_CHECK(rc == ref_parse(s, &want));
	FUZZ_CHECK(got == want);
	if (!rc) {
		FUZZ_CHECK(size_human(got, buf) == buf);
		FUZZ_CHECK(strlen(buf) < sizeof(buf));
	}
	free(s);
	return 0;
}
