// SPDX-License-Identifier: MIT
/*
 * The buddy arena: power-of-two blocks from a non-blocking buddy tree in
 * the region (proto/buddy.c), with the same state words, handles,
 * references and reclaim as fixed slots (docs/blocks.md).
 *
 * A block is named by its first leaf.  That leaf's state word is the one
 * authoritative record of the block (FREE, MAG(owner) or ALLOC with its
 * generation and count), and its order byte says how large the block is.
 * Every other leaf of a block keeps a FREE word, so a handle that points
 * inside a block, or at a leaf that starts no block, resolves to nothing.
 *
 * Why the order of steps: claiming takes the block in the tree first,
 * writes its order byte, then moves the state word FREE -> MAG or ALLOC
 * by CAS; releasing moves the word to FREE (generation bumped) first,
 * then gives the block back to the tree.  So whoever can see a claimed
 * word can trust its order byte, and a client killed between two steps
 * leaves at worst a block the tree counts as taken that nobody holds.
 * Each such operation is announced in the thread's journal entry first
 * (proto/journal.h; the tree functions keep it up to date at each of
 * their own steps), which tells reclaim which node to give back or to
 * finish clearing (docs/blocks.md, "Journal").
 *
 * Why magazines: the tree costs a CAS per level on every take and give,
 * on nodes every process shares near the root.  Each thread cache keeps
 * a magazine of MAG(me) blocks per order, bounded in bytes, so an
 * alloc+free pair of one size touches only its own block's state word
 * (buddyfast.h) and the tree is reached only to refill or overflow.  When
 * the tree has no block of an order left, the thread gives back
 * everything it keeps and tries again, so blocks it hoards never make
 * its own large allocation fail.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "buddyfast.h"

#define FIELD(f) offsetof(struct arena_proto_ctr, f)
#define CLAIM_TRIES 64 /* blocks skipped whose state word is not FREE */

static inline struct arena_buddy_geom geom(const struct lib_arena *a)
{
	return (struct arena_buddy_geom){ .max_order = a->max_order };
}

/* Count what the tree did: this cache's row, or the shared one. */
static void tally_add(struct arena_client *c, struct lib_tcache *tc,
		      const struct arena_buddy_tally *t)
{
	struct arena_proto_bctr *b = &c->bctr[LIB_SHARED_ROW];

	if (!t->splits && !t->coalesces)
		return;
	if (tc) {
		ctr_add(&tc->bctr->splits, t->splits);
		ctr_add(&tc->bctr->coalesces, t->coalesces);
		return;
	}
	__atomic_fetch_add(&b->splits, t->splits, __ATOMIC_RELAXED);
	__atomic_fetch_add(&b->coalesces, t->coalesces, __ATOMIC_RELAXED);
}

/*
 * Take a block of order o from the tree, searching from *hint, and claim
 * its first leaf FREE -> state(me, count).  A block whose word is not
 * FREE (a tree that disagrees with the words: only after corruption) is
 * left taken, and the search goes on.
 */
static int tree_claim(struct arena_client *c, struct lib_tcache *tc,
		      struct lib_arena *a, unsigned o, uint32_t *hint,
		      uint32_t state, uint32_t count, uint32_t *out)
{
	struct arena_buddy_geom g = geom(a);
	struct arena_buddy_tally t = { .jnl = (uint64_t *)jnl_take(c, tc),
				       .jarena = a->index };
	uint32_t leaf;
	uint64_t s;
	int err = -ENOMEM, tries;

	for (tries = 0; tries < CLAIM_TRIES; tries++) {
		err = arena_buddy_alloc(a->tree, &g, o, *hint, &leaf, &t);
		if (err)
			break;
		*hint = (leaf >> o) + 1;
		s = atomic_load_explicit(&a->state[leaf], memory_order_acquire);
		if (arena_bs_state(s) != ARENA_BS_FREE)
			continue;
		__atomic_store_n(&a->order[leaf], (uint8_t)o, __ATOMIC_RELAXED);
		ARENA_CRASHPOINT();
		if (atomic_compare_exchange_strong_explicit(
			    &a->state[leaf], &s,
			    arena_bs_next(s, arena_bs_gen(s), state, c->id,
					  count),
			    memory_order_acq_rel, memory_order_acquire)) {
			*out = leaf;
			break;
		}
	}
	jnl_done((_Atomic uint64_t *)t.jnl);
	tally_add(c, tc, &t);
	return tries == CLAIM_TRIES ? -ENOMEM : err;
}

/* Give back all but keep blocks of the magazine of order o. */
static void mag_flush(struct arena_client *c, struct lib_tcache *tc,
		      struct lib_arena *a, unsigned o, uint32_t keep)
{
	struct lib_mag *m = &tc->bmags[o];
	struct arena_buddy_geom g = geom(a);
	uint32_t i, idx, from = m->n > keep ? m->n - keep : 0;
	struct arena_buddy_tally t = { .jarena = a->index };
	_Atomic uint64_t *e;
	uint64_t s;

	if (!from)
		return;
	e = jnl_take(c, tc);
	t.jnl = (uint64_t *)e;
	for (i = 0; i < from; i++) {
		idx = m->idx[i];
		jnl_note(e, ARENA_JNL_BRELEASE, a->index,
			 (uint32_t)((1ull << (a->max_order - o)) + (idx >> o)));
		ARENA_CRASHPOINT();
		s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
		atomic_store_explicit(
			&a->state[idx],
			arena_bs_next(s, arena_bs_gen(s), ARENA_BS_FREE, 0, 0),
			memory_order_release);
		ARENA_CRASHPOINT();
		arena_buddy_free(a->tree, &g, idx, o, &t);
		ARENA_CRASHPOINT();
		jnl_note(e, ARENA_JNL_HELD, 0, 0);
	}
	jnl_done(e);
	for (i = from; i < m->n; i++)
		m->idx[i - from] = m->idx[i];
	m->n -= from;
	tally_add(c, tc, &t);
}

/* Give back every block the cache keeps; not a copy inherited by fork. */
void buddy_mags_flush(struct arena_client *c, struct lib_tcache *tc)
{
	unsigned o;

	if (!c->buddy || !tc->bmags || client_inherited(c))
		return;
	for (o = 0; o <= c->buddy->max_order; o++)
		mag_flush(c, tc, c->buddy, o, 0);
}

/* Fill an empty magazine halfway; how many it holds then. */
static uint32_t mag_refill(struct arena_client *c, struct lib_tcache *tc,
			   struct lib_arena *a, unsigned o)
{
	struct lib_mag *m = &tc->bmags[o];
	uint32_t want = c->bcap[o] > 1 ? c->bcap[o] / 2u : 1u, leaf;

	while (m->n < want &&
	       !tree_claim(c, tc, a, o, &m->hint, ARENA_BS_MAG, 0, &leaf))
		m->idx[m->n++] = leaf;
	return m->n;
}

/* MAG(me) -> ALLOC(me, count 1); the block's generation. */
static uint32_t publish(struct lib_arena *a, uint32_t idx, uint32_t owner)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	uint32_t gen = arena_bs_gen(s);

	atomic_store_explicit(&a->state[idx],
			      arena_bs_next(s, gen, ARENA_BS_ALLOC, owner, 1),
			      memory_order_release);
	ARENA_CRASHPOINT();
	return gen;
}

/* A block of order o, allocated to this client: its first leaf. */
static int take(struct arena_client *c, struct lib_tcache *tc,
		struct lib_arena *a, unsigned o, uint32_t *idx)
{
	uint32_t hint =
		(uint32_t)(((uint64_t)(c->id * 2654435761u) * a->nblocks) >>
			   32 >> o);

	if (tc && c->bcap[o]) {
		if (!tc->bmags[o].n && !mag_refill(c, tc, a, o))
			return -ENOMEM;
		*idx = tc->bmags[o].idx[--tc->bmags[o].n];
		publish(a, *idx, c->id);
		return 0;
	}
	return tree_claim(c, tc, a, o, tc ? &tc->bmags[o].hint : &hint,
			  ARENA_BS_ALLOC, 1, idx);
}

__attribute__((noinline)) int buddy_alloc(struct arena_client *c,
					  struct lib_arena *a, size_t size,
					  arena_handle_t *out)
{
	unsigned o = buddy_order_of(a, size);
	struct lib_tcache *tc;
	uint32_t idx;
	int err;

	if (unlikely(client_inherited(c)))
		return -ECHILD;
	tc = tc_get(c);
	if (o > a->max_order) {
		ctr_bump(c, tc, a->index, FIELD(fail_big));
		return -E2BIG;
	}
	err = take(c, tc, a, o, &idx);
	if (err && tc) {
		buddy_mags_flush(c, tc); /* what this thread hoards first */
		err = take(c, tc, a, o, &idx);
	}
	if (err) {
		ctr_bump(c, tc, a->index, FIELD(fail_full));
		return -ENOMEM;
	}
	ctr_bump(c, tc, a->index, FIELD(allocs));
	ctr_addf(c, tc, a->index, FIELD(alloc_bytes), a->block_size << o);
	if (a->zero)
		memset(a->data + (uint64_t)idx * a->block_size, 0,
		       a->block_size << o);
	*out = arena_proto_handle_pack(
		c->region_id, a->index,
		arena_bs_gen(atomic_load_explicit(&a->state[idx],
						  memory_order_relaxed)),
		idx);
	return 0;
}

/*
 * Where this client's last reference to block idx sends it: the thread's
 * magazine of its order (made room in first), or NULL for the tree.
 */
struct lib_mag *buddy_free_target(struct arena_client *c, struct lib_tcache *tc,
				  struct lib_arena *a, uint32_t idx)
{
	unsigned o = __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED);

	if (!tc || o > a->max_order || !c->bcap[o])
		return NULL;
	if (tc->bmags[o].n >= c->bcap[o])
		mag_flush(c, tc, a, o, c->bcap[o] / 2u);
	return &tc->bmags[o];
}

/*
 * Block idx, its word already FREE, back to the tree; e is the journal
 * entry that announced it (lib/fixed.c).
 */
void buddy_release(struct arena_client *c, struct lib_tcache *tc,
		   struct lib_arena *a, uint32_t idx, _Atomic uint64_t *e)
{
	struct arena_buddy_geom g = geom(a);
	struct arena_buddy_tally t = { .jnl = (uint64_t *)e,
				       .jarena = a->index };

	arena_buddy_free(a->tree, &g, idx,
			 __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED), &t);
	tally_add(c, tc, &t);
}

/*
 * The size of a live block, or 0.  The order byte is read between two
 * reads of the state word, which must both show the block live at gen,
 * so a block freed and taken again meanwhile (its generation moves on)
 * gives 0 rather than another block's size.  Only gen and state are
 * compared: a reference taken or dropped meanwhile by another holder
 * changes the word's count and version, not the block (comparing whole
 * words gave 0 for a live block, found by tests/test_chaos.c).
 */
size_t buddy_size(const struct lib_arena *a, uint32_t idx, uint32_t gen)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	unsigned o;

	if (!arena_bs_is_live(s, gen))
		return 0;
	o = __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_acquire);
	s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	if (!arena_bs_is_live(s, gen) || o > a->max_order)
		return 0;
	return (size_t)a->block_size << o;
}
