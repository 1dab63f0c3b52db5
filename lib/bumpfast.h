/* SPDX-License-Identifier: MIT */
/*
 * The bump arena's allocation fast path, inlined into arena_alloc: the
 * thread's chunk is exclusively its own (OWNED(me) in the chunk's word),
 * so an allocation is a few plain stores and no atomic read-modify-write:
 *
 *   0 where the next header will go   (relaxed store: ends a walk there)
 *   the size into the header          (relaxed store)
 *   ALLOC(me, chunk gen, count 1)     (release store: the header is live)
 *
 * The chunk's word does not count allocations; the thread's counter row
 * does (one store it makes anyway, for the statistics), and the thread
 * adds them in when it retires the chunk (lib/bump.c, proto/bump.h).
 * Everything the path needs is in the thread's struct lib_bump: the
 * state word and handle bits of the chunk are precomputed there.  The
 * one shared read is the arena's reset epoch (proto/bump.h), on a line
 * that only resets and chunk reservations write: a mismatch sends the
 * thread to the slow path, which retires its chunk and takes a new one.
 */
#ifndef ARENA_LIB_BUMPFAST_H
#define ARENA_LIB_BUMPFAST_H

#include <string.h>

#include "internal.h"

/* Headers written in b's chunk. */
static inline uint64_t bump_made(const struct lib_bump *b)
{
	return *b->allocs - b->made0;
}

/* Write an allocation of size bytes at b->cur; its handle. */
static inline arena_handle_t bump_place(struct lib_bump *b, size_t size,
					uint64_t next)
{
	uint64_t off = b->cur, *h = (uint64_t *)(b->data + off);

	if (likely(next + 8 <= b->end))
		__atomic_store_n((uint64_t *)(b->data + next), 0,
				 __ATOMIC_RELAXED);
	ARENA_CRASHPOINT();
	__atomic_store_n(&h[1], (uint64_t)size, __ATOMIC_RELAXED);
	ARENA_CRASHPOINT();
	__atomic_store_n(&h[0], b->word, __ATOMIC_RELEASE);
	ARENA_CRASHPOINT();
	b->cur = next;
	ctr_add(b->allocs, 1);
	ctr_add(b->bytes, size);
	return b->hbase | off >> 3;
}

/*
 * Clear the usable bytes of the allocation h just placed (--init zero:
 * such an arena's caches never match fast_epoch, so this is done on the
 * slow path only and the fast path stays as it was).
 */
static inline void bump_clear(const struct lib_bump *b, arena_handle_t h,
			      size_t size)
{
	memset(b->data + ((uint64_t)(uint32_t)h << 3) + ARENA_BUMP_HDR, 0,
	       (size + 15) & ~(size_t)15);
}

/*
 * Without a bump arena a cache's end stays 0, so every size takes the
 * slow path, which says -ENOTSUP; so does size 0 (-EINVAL).  A size
 * above the largest chunk cannot
 * fit any chunk (and could overflow next); below it, next <= end implies
 * size <= the chunk less its header.
 */
static inline int bump_fast_alloc(struct arena_client *c, size_t size,
				  arena_handle_t *out)
{
	struct lib_tcache *tc = tc_peek(c);
	uint64_t next;

	if (unlikely(!tc))
		return bump_alloc_slow(c, size, out);
	next = tc->bump.cur + arena_bump_span(size);
	if (unlikely(size - 1 >= ARENA_BUMP_CHUNK_MAX || next > tc->bump.end))
		return bump_alloc_slow(c, size, out);
	if (unlikely(__atomic_load_n(tc->bump.epoch_p, __ATOMIC_RELAXED) !=
		     tc->bump.fast_epoch))
		return bump_alloc_slow(c, size, out);
	*out = bump_place(&tc->bump, size, next);
	return 0;
}

#endif
