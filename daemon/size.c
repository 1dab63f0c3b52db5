// SPDX-License-Identifier: MIT
/*
 * Size parsing.  Written by hand rather than on strtoull() because
 * strtoull() accepts leading spaces, a sign ("-1" wraps to 2^64-1) and
 * saturates silently; here every character is accounted for and overflow
 * is reported, so the function can be fuzzed against a simple oracle.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "size.h"

/* log2 of the multiplier for a suffix letter, or -1. */
static int suffix_shift(char c)
{
	switch (c) {
	case 'k':
	case 'K':
		return 10;
	case 'm':
	case 'M':
		return 20;
	case 'g':
	case 'G':
		return 30;
	case 't':
	case 'T':
		return 40;
	default:
		return -1;
	}
}

/* Consume digits; syntax first, so "99999999999999999999x" is -EINVAL. */
static int parse_digits(const char **sp, uint64_t *v)
{
	const char *s = *sp;
	uint64_t n = 0;
	int rc = 0;

	for (; *s >= '0' && *s <= '9'; s++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n))
			rc = -ERANGE;
	}
	*sp = s;
	*v = n;
	return rc;
}

/* What may follow the digits: "", "B", or a suffix with "", "B", "iB". */
static int parse_suffix(const char *s, int *shift)
{
	*shift = suffix_shift(*s);
	if (*shift < 0) {
		*shift = 0;
		if (*s == 'b' || *s == 'B')
			s++;
		return *s ? -EINVAL : 0;
	}
	s++;
	if (*s == 'i' || *s == 'I')
		s++;
	else if (!*s)
		return 0;
	if (*s == 'b' || *s == 'B')
		s++;
	else
		return -EINVAL;
	return *s ? -EINVAL : 0;
}

int parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	int shift, rc;

	if (!s || !out)
		return -EINVAL;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	rc = parse_digits(&s, &v);
	if (parse_suffix(s, &shift))
		return -EINVAL;
	if (rc)
		return rc;
	if (v == 0)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

const char *size_human(uint64_t v, char buf[SIZE_HUMAN_MAX])
{
	static const char *const unit[] = { "KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB" };
	unsigned i = 0;

	if (v < 1024) {
		snprintf(buf, SIZE_HUMAN_MAX, "%llu B", (unsigned long long)v);
		return buf;
	}
	while (i < 5 && v >= (1024ull << (10 * (i + 1))))
		i++;
	snprintf(buf, SIZE_HUMAN_MAX, "%.1f %s",
		 (double)v / (double)(1ull << (10 * (i + 1))), unit[i]);
	return buf;
}
