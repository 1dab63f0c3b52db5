/* SPDX-License-Identifier: MIT */
/*
 * Statistics for the tests, read from a daemon two ways: by a STATS_REQ on
 * the control socket (cheap enough to poll), and by running arenactl
 * stats --json (what a user sees).  Both fill the same struct, so a test
 * can check one against the other.
 */
#ifndef ARENA_TESTS_TSTAT_H
#define ARENA_TESTS_TSTAT_H

#include <stdint.h>

#include "layout.h"

struct tstat_arena {
	uint32_t kind;
	uint32_t index;
	uint64_t block_size;
	uint64_t capacity;
	uint64_t in_use;
	uint64_t cached; /* -1 when the source does not report it */
	uint64_t allocs;
	uint64_t frees;
	uint64_t failures;    /* fail_full + fail_big */
	uint64_t chunks_free; /* bump: in_use, cached in chunks too */
	uint64_t bytes;	      /* bump: bytes of live allocations */
};

/* What the buddy arena's tree shows (wire.h arena_proto_buddy_stats). */
struct tstat_buddy {
	uint32_t index;
	uint32_t max_order;
	uint64_t free_bytes;
	uint64_t alloc_bytes;
	uint64_t largest_free;
	uint64_t splits;
	uint64_t coalesces;
	uint64_t free_blocks[32];
};

struct tstat {
	uint32_t narenas;
	uint32_t nclients;
	struct tstat_arena a[ARENA_PROTO_MAX_ARENAS];
	uint32_t nbuddy; /* 0, or 1 with buddy filled */
	struct tstat_buddy buddy;
};

/* Ask the daemon at sock over the wire.  Returns 0 or a negative errno. */
int tstat_get(const char *sock, struct tstat *out);

/*
 * Run BUILD/arenactl --socket sock stats --json and parse its output.
 * Returns 0, or a negative errno (-EBADMSG when the output does not
 * parse; the output is then copied to stderr).
 */
int tstat_ctl(const char *sock, struct tstat *out);

/* Sums over all arenas. */
uint64_t tstat_in_use(const struct tstat *s);
uint64_t tstat_allocs(const struct tstat *s);
uint64_t tstat_frees(const struct tstat *s);
uint64_t tstat_failures(const struct tstat *s);

/*
 * Poll tstat_get until pred(s, arg) holds or timeout_ms passes.  Returns
 * 0 (with *s the last snapshot), -ETIMEDOUT, or the error of tstat_get.
 */
int tstat_wait(const char *sock, struct tstat *s,
	       int (*pred)(const struct tstat *s, void *arg), void *arg,
	       int timeout_ms);

/*
 * First thing in a forked child: default actions for the signals that
 * cmocka catches in the parent, so that a crash in a child ends that
 * child (and shows in its exit status) instead of jumping back into a
 * copy of the parent's test runner.
 */
void tstat_child_init(void);

/* Milliseconds of a monotonic clock. */
long long tstat_now_ms(void);

/* Sleep ms milliseconds. */
void tstat_sleep_ms(int ms);

#endif
