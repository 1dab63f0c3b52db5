/* SPDX-License-Identifier: MIT */
/*
 * The allocation and free fast paths, inlined into the public entry
 * points so that a pair costs a few dozen instructions.
 *
 * Both are single transitions of the block state word done by one
 * addition (proto/handle.h puts the version in the top bits for this):
 *
 *   alloc  MAG(me, gen) -> ALLOC(me, gen, count 1)   plain release store:
 *          nobody else changes a live client's MAG slot
 *   free   ALLOC(me, gen, count 1) -> MAG(me, gen + 1)   one CAS, because
 *          another process may be taking a reference at the same moment;
 *          then the free is counted in the thread's own counter row, and
 *          one load of the arena's wait queue says whether somebody waits
 *          for a block (then the magazine goes back to the arena, so the
 *          waiter can have it: lib/wait.c)
 *
 * An arena the daemon runs with --init zero clears the block after the
 * store (nobody else knows the handle yet): one predicted branch on a
 * byte of the arena's line that the path reads anyway.
 *
 * Anything else (empty or full magazine, other holders, a generation
 * about to wrap, no thread cache) goes to the general paths in fixed.c.
 */
#ifndef ARENA_LIB_FASTPATH_H
#define ARENA_LIB_FASTPATH_H

#include <string.h>

#include "internal.h"

#define BS_ALLOC_STEP                                                          \
	(ARENA_BS_VERSION_ONE + ARENA_BS_STATE_ONE + ARENA_BS_COUNT_ONE)
#define BS_FREE_STEP                                                           \
	(ARENA_BS_VERSION_ONE + ARENA_BS_GEN_ONE - ARENA_BS_STATE_ONE -        \
	 ARENA_BS_COUNT_ONE)

static inline int fast_alloc(struct arena_client *c, struct lib_arena *a,
			     arena_handle_t *out)
{
	struct lib_tcache *tc = tc_peek(c);
	struct lib_mag *m;
	uint32_t idx;
	uint64_t s;

	if (unlikely(!tc))
		return fixed_alloc(c, a, out);
	m = &tc->mags[a->index];
	if (unlikely(m->n == 0))
		return fixed_alloc(c, a, out);
	idx = m->idx[--m->n];
	s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	atomic_store_explicit(&a->state[idx], s + BS_ALLOC_STEP,
			      memory_order_release);
	ARENA_CRASHPOINT();
	count_alloc(tc, a->index);
	*out = arena_proto_handle_pack(c->region_id, a->index, arena_bs_gen(s),
				       idx);
	if (unlikely(a->zero))
		memset(a->data + (uint64_t)idx * a->block_size, 0,
		       a->block_size);
	return 0;
}

static inline int fast_unref(struct arena_client *c, struct lib_arena *a,
			     uint32_t idx, uint32_t gen)
{
	struct lib_tcache *tc = tc_peek(c);
	uint64_t want = (uint64_t)gen << ARENA_BS_GEN_SHIFT | c->sole_body;
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	struct lib_mag *m;

	if (likely(tc && (s & ARENA_BS_BODY_MASK) == want &&
		   gen != ARENA_HANDLE_GEN_MASK)) {
		m = &tc->mags[a->index];
		if (likely(m->n < a->mag_cap) &&
		    likely(atomic_compare_exchange_strong_explicit(
			    &a->state[idx], &s, s + BS_FREE_STEP,
			    memory_order_seq_cst, memory_order_relaxed))) {
			ARENA_CRASHPOINT();
			m->idx[m->n++] = idx;
			ctr_add(&tc->ctr[a->index].frees, 1);
			if (unlikely(wait_busy(c, a)))
				wait_hand_over(c, tc, a);
			return 0;
		}
	}
	return fixed_unref(c, a, idx, gen); /* the one way out */
}

#endif
