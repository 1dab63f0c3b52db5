/* SPDX-License-Identifier: MIT */
/*
 * A client's pending-operation journal: what each of its threads is in the
 * middle of, for the operations whose steps touch two records that no one
 * atomic can change together (a buddy tree node and a block's state word,
 * a bump header and its chunk's word).  It lives in the client's table
 * (jnl_off, ARENA_PROTO_JNL_ENTRIES 64-bit words) so that reclaim can read
 * it once the client is dead, and tells reclaim which records to look at;
 * the records themselves stay the authority (docs/blocks.md, "Journal").
 *
 * Entry i < ARENA_PROTO_JNL_CACHES belongs to thread cache i and has one
 * writer, its thread; threads without a cache take one of the others by
 * CAS from 0 for the length of an operation.  Each entry is one word,
 * written with one store:
 *
 *   63..60 op   59..54 top   53..46 arena   45..32 0   31..0 pos
 *
 *   BCLAIM    taking buddy node pos in the tree, or holding it until the
 *             block's state word is claimed
 *   BUNDO     giving node pos back: its climb met an allocated block at
 *             depth top - 1 (the marks reach depth top at most)
 *   BRELEASE  giving node pos back after its state word went FREE
 *   BUNMARK   node pos is (about to be) 0; clearing its marks up to
 *             depth top
 *   BPUT      freeing an allocation in bump chunk pos (header FREE, then
 *             the chunk's word counts it)
 *   BROLL     rolling back over a freed header of bump chunk pos (the
 *             chunk's word forgets it, then the header is erased)
 *   HELD      an entry of the shared pool taken, nothing under way
 */
#ifndef ARENA_PROTO_JOURNAL_H
#define ARENA_PROTO_JOURNAL_H

#include <stdint.h>

#define ARENA_PROTO_JNL_ENTRIES 32u
#define ARENA_PROTO_JNL_CACHES 15u /* one per thread cache (LIB_TC_MAX) */

enum arena_jnl_op {
	ARENA_JNL_NONE = 0,
	ARENA_JNL_BCLAIM = 1,
	ARENA_JNL_BUNDO = 2,
	ARENA_JNL_BRELEASE = 3,
	ARENA_JNL_BUNMARK = 4,
	ARENA_JNL_BPUT = 5,
	ARENA_JNL_BROLL = 6,
	ARENA_JNL_HELD = 15,
};

static inline uint64_t arena_jnl_make(uint32_t op, uint32_t top, uint32_t arena,
				      uint32_t pos)
{
	return (uint64_t)(op & 0xf) << 60 | (uint64_t)(top & 0x3f) << 54 |
	       (uint64_t)(arena & 0xff) << 46 | pos;
}

static inline uint32_t arena_jnl_op(uint64_t e)
{
	return (uint32_t)(e >> 60);
}

static inline uint32_t arena_jnl_top(uint64_t e)
{
	return (uint32_t)(e >> 54) & 0x3f;
}

static inline uint32_t arena_jnl_arena(uint64_t e)
{
	return (uint32_t)(e >> 46) & 0xff;
}

static inline uint32_t arena_jnl_pos(uint64_t e)
{
	return (uint32_t)e;
}

#endif
