/* SPDX-License-Identifier: MIT */
/*
 * Handle and block-state word encodings, shared by daemon and library.
 *
 * A handle names a block, never an address:
 *
 *   63..60 region   59..52 arena   51..32 generation   31..0 index
 *
 * The generation is never 0, so no valid handle is 0.  The region bits
 * are 0 today; they are kept so that one daemon can later own several
 * regions without changing what a handle means.
 *
 * The block state word is the one authoritative record of a block.  Every
 * change is a single atomic store or CAS of the whole word, so the record
 * of "taken, by whom, at which generation, how many references" is written
 * by the same instruction that claims or releases:
 *
 *   63..50 version   49..30 gen   29..28 state   27..16 owner   15..0 count
 *
 *   FREE   unowned; findable through the arena's bitmap (a hint)
 *   MAG    reserved in client <owner>'s magazine; gen is the next
 *          allocation's generation
 *   ALLOC  allocated; count is the total of references held anywhere;
 *          owner, when non-zero, is the allocating client still holding
 *          its first reference (further references are in the holders'
 *          ledgers)
 *
 * version is bumped on every change so that the daemon can detect, with
 * one CAS, that nothing moved while it reconciled a dead client's share.
 * It sits in the top bits so that a transition is one addition (version
 * wraps off the top); the fast paths rely on that, see ARENA_BS_*_ONE.
 */
#ifndef ARENA_PROTO_HANDLE_H
#define ARENA_PROTO_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

#define ARENA_HANDLE_INDEX_BITS 32
#define ARENA_HANDLE_GEN_BITS 20
#define ARENA_HANDLE_ARENA_BITS 8
#define ARENA_HANDLE_REGION_BITS 4
#define ARENA_HANDLE_GEN_MASK ((1u << ARENA_HANDLE_GEN_BITS) - 1)

struct arena_proto_handle {
	uint32_t region;
	uint32_t arena;
	uint32_t gen;
	uint32_t index;
};

static inline uint64_t arena_proto_handle_pack(uint32_t region, uint32_t arena,
					       uint32_t gen, uint32_t index)
{
	return (uint64_t)(region & 0xf) << 60 | (uint64_t)(arena & 0xff) << 52 |
	       (uint64_t)(gen & ARENA_HANDLE_GEN_MASK) << 32 | index;
}

static inline void arena_proto_handle_unpack(uint64_t h,
					     struct arena_proto_handle *out)
{
	out->region = (uint32_t)(h >> 60);
	out->arena = (uint32_t)(h >> 52) & 0xff;
	out->gen = (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK;
	out->index = (uint32_t)h;
}

/* Generations run 1..2^20-1 and skip 0, keeping handle 0 invalid. */
static inline uint32_t arena_proto_gen_next(uint32_t gen)
{
	gen = (gen + 1) & ARENA_HANDLE_GEN_MASK;
	return gen ? gen : 1;
}

enum arena_proto_bstate {
	ARENA_BS_FREE = 0,
	ARENA_BS_MAG = 1,
	ARENA_BS_ALLOC = 2,
};

#define ARENA_BS_COUNT_MAX 0xffffu
#define ARENA_BS_OWNER_MAX 0xfffu
#define ARENA_BS_VERSION_MASK 0x3fffu

#define ARENA_BS_COUNT_ONE 1ull
#define ARENA_BS_OWNER_SHIFT 16
#define ARENA_BS_STATE_ONE (1ull << 28)
#define ARENA_BS_GEN_SHIFT 30
#define ARENA_BS_GEN_ONE (1ull << ARENA_BS_GEN_SHIFT)
#define ARENA_BS_VERSION_SHIFT 50
#define ARENA_BS_VERSION_ONE (1ull << ARENA_BS_VERSION_SHIFT)
/* Everything but the version: what a transition's precondition checks. */
#define ARENA_BS_BODY_MASK (ARENA_BS_VERSION_ONE - 1)

static inline uint32_t arena_bs_count(uint64_t s)
{
	return (uint32_t)s & 0xffff;
}

static inline uint32_t arena_bs_owner(uint64_t s)
{
	return (uint32_t)(s >> ARENA_BS_OWNER_SHIFT) & 0xfff;
}

static inline uint32_t arena_bs_state(uint64_t s)
{
	return (uint32_t)(s >> 28) & 0x3;
}

static inline uint32_t arena_bs_version(uint64_t s)
{
	return (uint32_t)(s >> ARENA_BS_VERSION_SHIFT);
}

static inline uint32_t arena_bs_gen(uint64_t s)
{
	return (uint32_t)(s >> ARENA_BS_GEN_SHIFT) & ARENA_HANDLE_GEN_MASK;
}

/* The word without its version. */
static inline uint64_t arena_bs_body(uint32_t gen, uint32_t state,
				     uint32_t owner, uint32_t count)
{
	return (uint64_t)(gen & ARENA_HANDLE_GEN_MASK) << ARENA_BS_GEN_SHIFT |
	       (uint64_t)(state & 3) << 28 |
	       (uint64_t)(owner & 0xfff) << ARENA_BS_OWNER_SHIFT |
	       (count & 0xffff);
}

static inline uint64_t arena_bs_make(uint32_t gen, uint32_t version,
				     uint32_t state, uint32_t owner,
				     uint32_t count)
{
	return (uint64_t)(version & ARENA_BS_VERSION_MASK)
		       << ARENA_BS_VERSION_SHIFT |
	       arena_bs_body(gen, state, owner, count);
}

/* The same word with a new state/owner/count and the version bumped. */
static inline uint64_t arena_bs_next(uint64_t s, uint32_t gen, uint32_t state,
				     uint32_t owner, uint32_t count)
{
	return arena_bs_make(gen, arena_bs_version(s) + 1, state, owner, count);
}

static inline bool arena_bs_is_live(uint64_t s, uint32_t gen)
{
	return arena_bs_state(s) == ARENA_BS_ALLOC && arena_bs_gen(s) == gen &&
	       arena_bs_count(s) != 0;
}

#endif
