/* SPDX-License-Identifier: MIT */
/*
 * The buddy arena's allocation and free fast paths, inlined into the
 * public entry points like the fixed-slot ones (fastpath.h), with one
 * magazine per order instead of one per arena:
 *
 *   alloc  pop a MAG(me) block of the order the size needs from the
 *          thread's magazine of that order; MAG -> ALLOC(me, count 1)
 *          with one release store
 *   free   ALLOC(me, gen, count 1) -> MAG(me, gen + 1) with one CAS and a
 *          push onto the magazine of the block's order (its order byte)
 *
 * Anything else (no thread cache, empty or full magazine, an order too
 * large for a magazine, other holders) goes to lib/buddy.c or to the
 * kind-independent reference paths in lib/fixed.c.
 */
#ifndef ARENA_LIB_BUDDYFAST_H
#define ARENA_LIB_BUDDYFAST_H

#include "fastpath.h"

/* Order of the smallest block holding size (>= 1) bytes; may exceed max. */
static inline unsigned buddy_order_of(const struct lib_arena *a, size_t size)
{
	unsigned long long units = (unsigned long long)(size - 1) >> a->shift;

	return units ? 64u - (unsigned)__builtin_clzll(units) : 0;
}

static inline int buddy_fast_alloc(struct arena_client *c, struct lib_arena *a,
				   size_t size, arena_handle_t *out)
{
	struct lib_tcache *tc = tc_peek(c);
	unsigned o = buddy_order_of(a, size);
	struct lib_mag *m;
	uint32_t idx;
	uint64_t s;

	if (unlikely(!tc || o > a->max_order))
		return buddy_alloc(c, a, size, out);
	m = &tc->bmags[o];
	if (unlikely(m->n == 0))
		return buddy_alloc(c, a, size, out);
	idx = m->idx[--m->n];
	s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	atomic_store_explicit(&a->state[idx], s + BS_ALLOC_STEP,
			      memory_order_release);
	ARENA_CRASHPOINT();
	count_alloc(tc, a->index);
	ctr_add(&tc->ctr[a->index].alloc_bytes, a->block_size << o);
	*out = arena_proto_handle_pack(c->region_id, a->index, arena_bs_gen(s),
				       idx);
	if (unlikely(a->zero))
		memset(a->data + (uint64_t)idx * a->block_size, 0,
		       a->block_size << o);
	return 0;
}

static inline int buddy_fast_unref(struct arena_client *c, struct lib_arena *a,
				   uint32_t idx, uint32_t gen)
{
	struct lib_tcache *tc = tc_peek(c);
	uint64_t want = (uint64_t)gen << ARENA_BS_GEN_SHIFT | c->sole_body;
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	struct lib_mag *m;
	unsigned o;

	if (likely(tc && (s & ARENA_BS_BODY_MASK) == want &&
		   gen != ARENA_HANDLE_GEN_MASK)) {
		o = __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED);
		if (unlikely(o > a->max_order))
			return fixed_unref(c, a, idx, gen);
		m = &tc->bmags[o];
		if (likely(m->n < c->bcap[o]) &&
		    likely(atomic_compare_exchange_strong_explicit(
			    &a->state[idx], &s, s + BS_FREE_STEP,
			    memory_order_seq_cst, memory_order_relaxed))) {
			struct arena_proto_ctr *r = &tc->ctr[a->index];

			ARENA_CRASHPOINT();
			m->idx[m->n++] = idx;
			ctr_add(&r->frees, 1);
			ctr_add(&r->free_bytes, a->block_size << o);
			if (unlikely(wait_busy(c, a)))
				wait_hand_over(c, tc, a);
			return 0;
		}
	}
	return fixed_unref(c, a, idx, gen); /* kind-independent slow path */
}

#endif
