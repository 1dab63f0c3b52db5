/* SPDX-License-Identifier: MIT */
/*
 * The bump arena's records, shared by libarena (allocation, free,
 * rollback) and arenad (reclaim, statistics).
 *
 * The data is nchunks chunks of chunk bytes (a power of two).  At
 * bump_off lies struct arena_bump_hdr: the shared cursor alone on its
 * cache line, then one struct arena_bump_chunk per chunk.
 *
 * A chunk's word is its one authoritative record, changed only by CAS:
 *
 *   63..44 gen   43..42 state   41..30 owner   29..0 count
 *
 *   FREE     in the pool; gen is what its allocations will carry next
 *   OWNED    a client bumps in it; count is how many of its allocations
 *            have been freed so far (the owner alone knows how many it
 *            made, until it retires the chunk)
 *   RETIRED  full, or its owner moved on or died; count is the number of
 *            its allocations still live.  The free that takes it to 0
 *            also makes the chunk FREE with gen + 1.
 *
 * Every allocation starts with a 16-byte header in its chunk: a block
 * state word (handle.h; ALLOC, owner, count, the chunk's gen) and the
 * size asked for.  The next allocation's header follows the data,
 * rounded up to 16 bytes.  A freed allocation's word turns FREE with the
 * same gen, so that the headers of one generation of a chunk can be
 * walked from its start: a word that is neither ALLOC nor FREE with the
 * chunk's gen (an allocating client stores 0 where the next header will
 * go before publishing a header) ends the walk.  For an OWNED chunk the
 * headers walked minus its count is the number of live allocations,
 * which is how a dead client's chunk is retired exactly.
 *
 * Reset (arena_bump_reset, lib/bump.c) moves epoch on by one CAS, after
 * a walk of every chunk found no live allocation.  A thread cache
 * compares the epoch it took its chunk in with the header's on every
 * bump allocation (one load of a line written only by resets and chunk
 * reservations); on a mismatch it retires its chunk (FREE, since
 * everything in it was freed, unless it allocated there after the walk)
 * and takes a new one.  So a chunk is never taken from a thread that
 * may still be writing into it: it goes back by the owner's own CAS on
 * its word, as always, or by the daemon's reclaim when the owner died.
 *
 * A handle's index is the header's offset from the data start in 8-byte
 * units (always even), so the state word of handle index i is the i-th
 * 64-bit word of the data, like state_off[i] of the other arenas.
 */
#ifndef ARENA_PROTO_BUMP_H
#define ARENA_PROTO_BUMP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "handle.h"
#include "layout.h"

#define ARENA_BUMP_HDR 16u		  /* allocation header bytes */
#define ARENA_BUMP_CHUNK_MIN 4096u	  /* smallest chunk */
#define ARENA_BUMP_CHUNK_MAX (1ull << 30) /* largest chunk */
#define ARENA_BUMP_CHUNK_DEFAULT (1u << 20)

enum arena_bump_cstate {
	ARENA_BUMP_FREE = 0,
	ARENA_BUMP_OWNED = 1,
	ARENA_BUMP_RETIRED = 2,
};

#define ARENA_BUMP_COUNT_MASK ((1ull << 30) - 1)

struct arena_bump_chunk {
	uint64_t word; /* see above, atomic */
	uint64_t link; /* owner-private: previous chunk + 1 | its gen << 32 */
};

struct arena_bump_hdr {
	_Alignas(
		ARENA_PROTO_CACHELINE) uint64_t cursor; /* next chunk, atomic */
	uint64_t epoch; /* arena_bump_reset()s so far, atomic */
	uint64_t pad[6];
	struct arena_bump_chunk chunks[];
};

_Static_assert(sizeof(struct arena_bump_hdr) == 64, "bump header");
_Static_assert(sizeof(struct arena_bump_chunk) == 16, "chunk record");

static inline uint64_t arena_bump_word(uint32_t gen, uint32_t state,
				       uint32_t owner, uint64_t count)
{
	return (uint64_t)(gen & ARENA_HANDLE_GEN_MASK) << 44 |
	       (uint64_t)(state & 3) << 42 | (uint64_t)(owner & 0xfff) << 30 |
	       (count & ARENA_BUMP_COUNT_MASK);
}

static inline uint32_t arena_bump_gen(uint64_t w)
{
	return (uint32_t)(w >> 44) & ARENA_HANDLE_GEN_MASK;
}

static inline uint32_t arena_bump_state(uint64_t w)
{
	return (uint32_t)(w >> 42) & 3;
}

static inline uint32_t arena_bump_owner(uint64_t w)
{
	return (uint32_t)(w >> 30) & 0xfff;
}

static inline uint64_t arena_bump_count(uint64_t w)
{
	return w & ARENA_BUMP_COUNT_MASK;
}

/* Bytes an allocation of size bytes takes, header included. */
static inline uint64_t arena_bump_span(uint64_t size)
{
	return ARENA_BUMP_HDR + ((size + 15) & ~15ull);
}

/*
 * One allocation of the chunk at gen is gone (its header just turned
 * FREE): count it.  Returns true when that made the chunk FREE again.
 */
static inline bool arena_bump_put(_Atomic uint64_t *cw, uint32_t gen)
{
	uint64_t w = atomic_load_explicit(cw, memory_order_acquire), n;

	for (;;) {
		if (arena_bump_gen(w) != gen ||
		    arena_bump_state(w) == ARENA_BUMP_FREE)
			return false; /* corruption: leave it */
		if (arena_bump_state(w) == ARENA_BUMP_OWNED) {
			if (arena_bump_count(w) == ARENA_BUMP_COUNT_MASK)
				return false;
			n = w + 1;
		} else if (arena_bump_count(w) > 1) {
			n = w - 1;
		} else {
			n = arena_bump_word(arena_proto_gen_next(gen),
					    ARENA_BUMP_FREE, 0, 0);
		}
		if (atomic_compare_exchange_weak_explicit(cw, &w, n,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return arena_bump_state(n) == ARENA_BUMP_FREE;
	}
}

/*
 * The header at byte off of a chunk of chunk bytes whose word says gen:
 * its state word, and through *next the offset after its allocation.
 * Returns false where the walk of the chunk ends.
 */
static inline bool arena_bump_header(const uint8_t *chunk_data, uint64_t off,
				     uint64_t chunk, uint32_t gen,
				     uint64_t *word, uint64_t *next)
{
	const uint64_t *h = (const uint64_t *)(chunk_data + off);
	uint64_t s, size;

	if (off + ARENA_BUMP_HDR > chunk)
		return false;
	s = __atomic_load_n(&h[0], __ATOMIC_ACQUIRE);
	if (arena_bs_gen(s) != gen || (arena_bs_state(s) != ARENA_BS_ALLOC &&
				       arena_bs_state(s) != ARENA_BS_FREE))
		return false;
	size = __atomic_load_n(&h[1], __ATOMIC_RELAXED);
	if (size == 0 || size > chunk - off - ARENA_BUMP_HDR)
		return false;
	*word = s;
	*next = off + arena_bump_span(size);
	return true;
}

#endif
