/* SPDX-License-Identifier: MIT */
/*
 * The word of a channel ring cell (struct arena_proto_cell.seq), shared by
 * libarena (lib/chan.c), which sends and receives through it, and arenad,
 * which counts the references queued in rings, skips cells that a dead
 * sender claimed, and drains released channels.
 *
 *   63..62 state   61..50 claimer   49..0 position (modulo 2^50)
 *
 *   FREE(p)         the sender of position p may claim the cell
 *   WRITING(p, id)  client id claimed it for position p and is putting
 *                   its handle in
 *   FULL(p)         holds the handle of position p: one reference
 *
 * A sender claims by one CAS FREE(p) -> WRITING(p, me), so the cell
 * itself says who claimed it; it then fills the handle and publishes with
 * a store FULL(p).  A receiver takes by one CAS FULL(p) -> FREE(p + cap),
 * which both claims the handle and gives the cell to the next lap: there
 * is no state in which a receiver holds a cell.  When a client dies, the
 * daemon turns its WRITING(p, dead) cells into FREE(p + cap), as if a
 * receiver had taken an empty message, so receivers go past them.  tail
 * and head in the channel record are hints of the next position to try,
 * moved on by whoever finds them behind a claimed or taken cell.
 *
 * Positions compare modulo 2^50 (about 13 days at 10^9 messages a second
 * before a wrap, and only a process stalled that long inside one send
 * could mistake a position for another).
 */
#ifndef ARENA_PROTO_RING_H
#define ARENA_PROTO_RING_H

#include <stdint.h>

#define ARENA_CELL_POS_BITS 50
#define ARENA_CELL_POS_MASK ((1ull << ARENA_CELL_POS_BITS) - 1)
#define ARENA_CELL_ID_SHIFT ARENA_CELL_POS_BITS
#define ARENA_CELL_STATE_SHIFT 62

enum arena_cell_state {
	ARENA_CELL_FREE = 0,
	ARENA_CELL_WRITING = 1,
	ARENA_CELL_FULL = 2,
};

static inline uint64_t arena_cell_word(uint32_t state, uint32_t id,
				       uint64_t pos)
{
	return (uint64_t)(state & 3) << ARENA_CELL_STATE_SHIFT |
	       (uint64_t)(id & 0xfff) << ARENA_CELL_ID_SHIFT |
	       (pos & ARENA_CELL_POS_MASK);
}

static inline uint32_t arena_cell_state(uint64_t w)
{
	return (uint32_t)(w >> ARENA_CELL_STATE_SHIFT);
}

static inline uint32_t arena_cell_claimer(uint64_t w)
{
	return (uint32_t)(w >> ARENA_CELL_ID_SHIFT) & 0xfff;
}

static inline uint64_t arena_cell_pos(uint64_t w)
{
	return w & ARENA_CELL_POS_MASK;
}

/* How far the cell's position is ahead of pos (negative: behind). */
static inline int64_t arena_cell_dist(uint64_t w, uint64_t pos)
{
	return (int64_t)((w - pos) << (64 - ARENA_CELL_POS_BITS)) >>
	       (64 - ARENA_CELL_POS_BITS);
}

/* Does the cell hold a handle (a reference the channel holds)? */
static inline int arena_cell_full(uint64_t w)
{
	return arena_cell_state(w) == ARENA_CELL_FULL;
}

#endif
