// SPDX-License-Identifier: MIT
/*
 * Fixed-slot arenas: lock-free allocation across processes.
 *
 * The block state word (proto/handle.h) is the only authority on a slot.
 * The bitmap says where free slots probably are; claims are made by CAS on
 * the state word, so a stale or duplicated bitmap bit costs a retry, never
 * a slot handed out twice.  That lets the daemon repair lost bits at any
 * time, and lets a client crash between any two instructions without
 * leaving a slot in an unknowable state.
 *
 * Fast path: a thread pops a slot it already holds in MAG(client) state
 * from its magazine and publishes ALLOC with a single release store (no
 * other process may change a MAG slot of a live client).  The free of a
 * block whose only reference is the allocator's is one CAS that returns
 * it to MAG(client) with its generation bumped, and a push.  Magazines
 * refill by clearing up to mag_cap bits of one bitmap word in one CAS,
 * then marking each slot MAG by CAS; they overflow by marking slots FREE
 * and setting their bits again.
 *
 * References (arena_ref, arena_unref, the ledger) are the same for every
 * kind of arena, so they live here for buddy blocks too: only where a
 * block goes on its last reference depends on the kind (free_target and
 * freed dispatch to lib/buddy.c for a buddy arena).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define FIELD(f) offsetof(struct arena_proto_ctr, f)

static inline uint64_t *bm_word(struct lib_arena *a, uint32_t idx)
{
	return &a->bitmap[idx / 64].bits;
}

static inline void bm_set(struct lib_arena *a, uint32_t idx)
{
	__atomic_fetch_or(bm_word(a, idx), 1ull << (idx % 64),
			  __ATOMIC_RELEASE);
}

/* FREE -> new state by CAS; false when the slot was not free. */
static bool slot_claim(struct lib_arena *a, uint32_t idx, uint32_t state,
		       uint32_t owner, uint32_t count)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);

	while (arena_bs_state(s) == ARENA_BS_FREE) {
		uint64_t n =
			arena_bs_next(s, arena_bs_gen(s), state, owner, count);
		if (atomic_compare_exchange_weak_explicit(
			    &a->state[idx], &s, n, memory_order_acq_rel,
			    memory_order_acquire)) {
			ARENA_CRASHPOINT();
			return true;
		}
	}
	return false;
}

/* Take up to want bits of bitmap word w; returns the bits taken. */
static uint64_t bm_take(struct lib_arena *a, uint32_t w, uint32_t want)
{
	uint64_t *p = &a->bitmap[w].bits;
	uint64_t bits = __atomic_load_n(p, __ATOMIC_RELAXED), take, b;
	uint32_t n;

	while (bits) {
		for (take = 0, b = bits, n = 0; b && n < want; n++) {
			take |= b & -b;
			b &= b - 1;
		}
		if (__atomic_compare_exchange_n(p, &bits, bits & ~take, true,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			ARENA_CRASHPOINT();
			return take;
		}
	}
	return 0;
}

static void mag_fill_from(struct arena_client *c, struct lib_arena *a,
			  struct lib_mag *m, uint32_t w, uint64_t bits)
{
	uint32_t idx;

	for (; bits; bits &= bits - 1) {
		idx = w * 64 + (uint32_t)__builtin_ctzll(bits);
		if (idx < a->nblocks &&
		    slot_claim(a, idx, ARENA_BS_MAG, c->id, 0))
			m->idx[m->n++] = idx;
	}
}

static uint32_t mag_refill(struct arena_client *c, struct lib_arena *a,
			   struct lib_mag *m)
{
	uint32_t i, w = m->hint;
	uint64_t bits;

	for (i = 0; i < a->nwords && m->n == 0; i++) {
		w = m->hint + i;
		if (w >= a->nwords)
			w -= a->nwords;
		bits = bm_take(a, w, a->mag_cap);
		if (bits)
			mag_fill_from(c, a, m, w, bits);
	}
	m->hint = w;
	return m->n;
}

/* Return all but keep slots of a magazine to the arena. */
void fixed_mag_flush(struct lib_arena *a, struct lib_mag *m, uint32_t keep)
{
	uint32_t i, idx, from = m->n > keep ? m->n - keep : 0;
	uint64_t s;

	for (i = 0; i < from; i++) {
		idx = m->idx[i];
		s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
		atomic_store_explicit(
			&a->state[idx],
			arena_bs_next(s, arena_bs_gen(s), ARENA_BS_FREE, 0, 0),
			memory_order_release);
		ARENA_CRASHPOINT();
		bm_set(a, idx);
		ARENA_CRASHPOINT();
	}
	for (i = from; i < m->n; i++)
		m->idx[i - from] = m->idx[i];
	m->n -= from;
}

/* Uncached claim: one bit, then the slot, straight to ALLOC. */
static int direct_claim(struct arena_client *c, struct lib_arena *a,
			uint32_t *out)
{
	uint32_t i, w, idx, start = (c->id * 7919u) % a->nwords;
	uint64_t bit;

	for (i = 0; i < a->nwords; i++) {
		w = start + i < a->nwords ? start + i : start + i - a->nwords;
		while ((bit = bm_take(a, w, 1)) != 0) {
			idx = w * 64 + (uint32_t)__builtin_ctzll(bit);
			if (idx < a->nblocks &&
			    slot_claim(a, idx, ARENA_BS_ALLOC, c->id, 1)) {
				*out = idx;
				return 0;
			}
		}
	}
	return -ENOMEM;
}

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

__attribute__((noinline)) int
fixed_alloc(struct arena_client *c, struct lib_arena *a, arena_handle_t *out)
{
	struct lib_tcache *tc;
	struct lib_mag *m;
	uint32_t idx, gen;
	int err;

	if (unlikely(client_inherited(c)))
		return -ECHILD;
	tc = tc_get(c);
	if (likely(tc && a->mag_cap)) {
		m = &tc->mags[a->index];
		if (unlikely(m->n == 0) && !mag_refill(c, a, m))
			goto full;
		idx = m->idx[--m->n];
		gen = publish(a, idx, c->id);
	} else {
		err = direct_claim(c, a, &idx);
		if (err)
			goto full;
		gen = arena_bs_gen(atomic_load_explicit(&a->state[idx],
							memory_order_relaxed));
	}
	if (tc)
		count_alloc(tc, a->index);
	else
		ctr_bump(c, tc, a->index, FIELD(allocs));
	*out = arena_proto_handle_pack(c->region_id, a->index, gen, idx);
	if (a->zero)
		memset(a->data + (uint64_t)idx * a->block_size, 0,
		       a->block_size);
	return 0;
full:
	ctr_bump(c, tc, a->index, FIELD(fail_full));
	return -ENOMEM;
}

/*
 * Where a block goes when this client frees it: its own magazine when it
 * has one with room (making room first if needed), else straight back to
 * the bitmap (fixed) or the tree (buddy, whose magazines are per order).
 */
static struct lib_mag *free_target(struct arena_client *c,
				   struct lib_tcache *tc, struct lib_arena *a,
				   uint32_t idx)
{
	struct lib_mag *m;

	if (a->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_free_target(c, tc, a, idx);
	if (!tc || !a->mag_cap) /* bump: mag_cap 0, by chunk instead */
		return NULL;
	m = &tc->mags[a->index];
	if (m->n >= a->mag_cap)
		fixed_mag_flush(a, m, a->mag_cap / 2);
	return m;
}

static void freed(struct arena_client *c, struct lib_tcache *tc,
		  struct lib_arena *a, struct lib_mag *m, uint32_t idx,
		  uint32_t gen, _Atomic uint64_t *e)
{
	if (m)
		m->idx[m->n++] = idx;
	else if (a->kind == ARENA_PROTO_KIND_BUDDY)
		buddy_release(c, tc, a, idx, e);
	else if (a->kind == ARENA_PROTO_KIND_BUMP)
		bump_freed(a, idx, gen);
	else
		bm_set(a, idx);
}

/*
 * A free that goes on to the buddy tree or to a bump chunk's word is two
 * steps on two records: announce it in the journal before the first
 * (proto/journal.h), so that reclaim can finish it for a dead client.
 */
static _Atomic uint64_t *free_note(struct arena_client *c,
				   struct lib_tcache *tc, struct lib_arena *a,
				   uint32_t idx)
{
	_Atomic uint64_t *e;
	unsigned o;

	if (a->kind == ARENA_PROTO_KIND_FIXED)
		return NULL;
	e = jnl_take(c, tc);
	if (a->kind == ARENA_PROTO_KIND_BUMP) {
		jnl_note(e, ARENA_JNL_BPUT, a->index,
			 (uint32_t)(((uint64_t)idx << 3) >> a->shift));
	} else {
		o = __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED);
		if (o > a->max_order)
			o = 0; /* corrupt: the release will refuse it */
		jnl_note(e, ARENA_JNL_BRELEASE, a->index,
			 (uint32_t)((1ull << (a->max_order - o)) + (idx >> o)));
	}
	ARENA_CRASHPOINT();
	return e;
}

/*
 * The state word after dropping one reference from s.  A bump header
 * keeps its chunk's generation when freed (proto/bump.h): the chunk's
 * word makes its handles stale.
 */
static uint64_t drop_one(const struct lib_arena *a, uint64_t s, bool implicit,
			 struct lib_mag *m, uint32_t id)
{
	uint32_t gen = arena_bs_gen(s), cnt = arena_bs_count(s);
	uint32_t owner = implicit ? 0 : arena_bs_owner(s);

	if (cnt > 1)
		return arena_bs_next(s, gen, ARENA_BS_ALLOC, owner, cnt - 1);
	if (m)
		return arena_bs_next(s, arena_proto_gen_next(gen), ARENA_BS_MAG,
				     id, 0);
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		return arena_bs_next(s, gen, ARENA_BS_FREE, 0, 0);
	return arena_bs_next(s, arena_proto_gen_next(gen), ARENA_BS_FREE, 0, 0);
}

/*
 * Bytes a freed block counts for (struct arena_proto_ctr): its buddy
 * order's, its bump allocation's size; 0 for a fixed slot.  Read while
 * the caller still holds a reference, so the block cannot change.
 */
static uint64_t block_bytes(const struct lib_arena *a, uint32_t idx)
{
	unsigned o;

	if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		o = __atomic_load_n(&a->order[idx], __ATOMIC_RELAXED);
		return o <= a->max_order ? a->block_size << o : 0;
	}
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		return __atomic_load_n(
			(uint64_t *)(a->data + ((uint64_t)idx << 3)) + 1,
			__ATOMIC_RELAXED);
	return 0;
}

/*
 * Drop one reference: the allocator's implicit one (implicit) or one
 * recorded in the ledger.  Returns 1 when it was the last, 0 when not,
 * or a negative errno with nothing changed.
 */
static int drop_ref(struct arena_client *c, struct lib_arena *a, uint32_t idx,
		    uint32_t gen, bool implicit)
{
	struct lib_tcache *tc = tc_get(c);
	struct lib_mag *m = NULL;
	_Atomic uint64_t *e = NULL;
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	uint64_t bytes = block_bytes(a, idx);
	int ret = 1;

	do {
		if (!arena_bs_is_live(s, gen)) {
			ret = -ESTALE;
			goto out;
		}
		if (implicit && arena_bs_owner(s) != c->id) {
			ret = -EINVAL;
			goto out;
		}
		if (arena_bs_count(s) == 1 && !m)
			m = free_target(c, tc, a, idx);
		if (arena_bs_count(s) == 1 && !m && !e)
			e = free_note(c, tc, a, idx);
	} while (!atomic_compare_exchange_weak_explicit(
		&a->state[idx], &s, drop_one(a, s, implicit, m, c->id),
		memory_order_acq_rel, memory_order_acquire));
	ARENA_CRASHPOINT();
	if (arena_bs_count(s) > 1) {
		ret = 0;
		goto out;
	}
	freed(c, tc, a, m, idx, gen, e);
	count_free(c, tc, a->index, bytes);
	atomic_thread_fence(memory_order_seq_cst); /* see wait_busy() */
	if (!m)
		wait_given_back(c, a);
	else if (unlikely(wait_busy(c, a)))
		wait_hand_over(c, tc, a);
out:
	if (e)
		jnl_done(e);
	return ret;
}

static int unref_ledger(struct arena_client *c, struct lib_arena *a,
			uint32_t idx, uint32_t gen)
{
	_Atomic uint64_t *e = ledger_take(c, arena_ledger_key(a->index, idx));
	int err;

	if (!e)
		return -EINVAL;
	ARENA_CRASHPOINT();
	err = drop_ref(c, a, idx, gen, false);
	ledger_settle(e, err < 0 ? 1 : 0);
	ARENA_CRASHPOINT();
	if (err >= 0)
		atomic_fetch_sub_explicit(&c->ledger_refs, 1,
					  memory_order_relaxed);
	return err < 0 ? err : 0;
}

__attribute__((noinline)) int fixed_unref(struct arena_client *c,
					  struct lib_arena *a, uint32_t idx,
					  uint32_t gen)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	int err;

	if (gen == 0)
		return -EINVAL; /* no block ever has generation 0 */
	if (client_inherited(c))
		return -ECHILD;
	if (!arena_bs_is_live(s, gen))
		return -ESTALE;
	if (atomic_load_explicit(&c->ledger_refs, memory_order_relaxed)) {
		err = unref_ledger(c, a, idx, gen);
		if (err != -EINVAL)
			return err;
	}
	err = drop_ref(c, a, idx, gen, true);
	return err < 0 ? err : 0;
}

/* Count one more reference on a live block; the ledger holds the claim. */
static int add_ref(struct lib_arena *a, uint32_t idx, uint32_t gen)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	uint32_t cnt;

	do {
		if (!arena_bs_is_live(s, gen))
			return -ESTALE;
		cnt = arena_bs_count(s);
		if (cnt >= ARENA_BS_COUNT_MAX)
			return -EOVERFLOW;
	} while (!atomic_compare_exchange_weak_explicit(
		&a->state[idx], &s,
		arena_bs_next(s, gen, ARENA_BS_ALLOC, arena_bs_owner(s),
			      cnt + 1),
		memory_order_acq_rel, memory_order_acquire));
	ARENA_CRASHPOINT();
	return 0;
}

int fixed_ref(struct arena_client *c, struct lib_arena *a, uint32_t idx,
	      uint32_t gen)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	_Atomic uint64_t *e;
	int err;

	if (client_inherited(c))
		return -ECHILD;
	if (!arena_bs_is_live(s, gen))
		return -ESTALE;
	e = ledger_acquire(c, arena_ledger_key(a->index, idx));
	if (!e)
		return -ENOSPC;
	ARENA_CRASHPOINT();
	err = add_ref(a, idx, gen);
	ledger_settle(e, err ? 0 : 1);
	ARENA_CRASHPOINT();
	if (!err)
		atomic_fetch_add_explicit(&c->ledger_refs, 1,
					  memory_order_relaxed);
	return err;
}
