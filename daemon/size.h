/* SPDX-License-Identifier: MIT */
/*
 * Human-readable byte sizes for the command line: "64M", "1G", "4096".
 */
#ifndef ARENAD_SIZE_H
#define ARENAD_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a size: decimal digits, then an optional binary suffix K, M, G or
 * T (1K = 1024, any case), then an optional "B" (after a suffix also
 * "iB"): "4096", "64M", "64MiB", "1gb", "100B".  No sign, no spaces, no
 * fractions.  Returns 0 and sets *out; -EINVAL for NULL, empty, garbage
 * or zero; -ERANGE when the value does not fit 64 bits.  *out is left
 * untouched on error.
 */
int parse_size(const char *s, uint64_t *out);

#define SIZE_HUMAN_MAX 32

/* "512 B", "4.0 KiB", "1.5 GiB" for logs and messages; returns buf. */
const char *size_human(uint64_t v, char buf[SIZE_HUMAN_MAX]);

#endif
