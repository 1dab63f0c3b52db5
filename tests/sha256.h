/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4), small and self-contained, for tests that compare
 * what was sent with what arrived.  Not constant-time, not for secrets.
 */
#ifndef ARENA_TESTS_SHA256_H
#define ARENA_TESTS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);

#endif
