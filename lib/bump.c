// SPDX-License-Identifier: MIT
/*
 * The bump arena: chunks reserved with one CAS, allocation by bumping a
 * private cursor inside the thread's chunk, memory back by chunk.
 *
 * Design.  The arena is nchunks chunks of a power-of-two size.  A thread
 * cache takes a chunk by moving the shared cursor on (one fetch_add on a
 * line of its own) to pick a candidate and claiming the candidate's word
 * FREE -> OWNED(me) by CAS; in the common case the first candidate is
 * free.  Inside the chunk it bumps privately (bumpfast.h): every
 * allocation gets a 16-byte header holding a standard block state word,
 * so references, ledgers, passing handles and reclaim are exactly those
 * of the other arenas (lib/fixed.c, daemon/reclaim.c); a handle's index
 * is the header's offset in 8-byte units and its generation the chunk's.
 *
 * Why the chunk word does not count allocations: that would cost an
 * atomic per allocation.  While a chunk is OWNED its word counts the
 * allocations freed, the owner counts those made, and the owner settles
 * the difference into the word when it retires the chunk (RETIRED, live
 * = made - freed).  If the owner dies, the daemon counts what was made
 * by walking the headers, which the owner keeps terminated at every
 * instruction (bump.h).  The free that brings a RETIRED chunk to 0 makes
 * it FREE with its generation bumped, so every handle into it is stale.
 *
 * Frees of allocations (the header FREE, then its chunk's word counts
 * it) and the rollback of a freed header (the chunk's word forgets it,
 * then the header is erased) touch two records, so they are announced in
 * the thread's journal entry (proto/journal.h); reclaim counts such a
 * chunk again from its headers instead of trusting its word.
 *
 * Checkpoint and rollback are per thread cache: a checkpoint is (chunks
 * reserved so far, cursor).  Rollback walks back over the chunks reserved
 * since (at most LIB_BUMP_HIST) and drops the caller's references to
 * every allocation made after the checkpoint; in the thread's current
 * chunk, the trailing allocations nobody else references are erased
 * last-first (their header word CAS ALLOC(me, count 1) -> 0, which also
 * ends a walk there) and the cursor moves back over them.  An allocation
 * another process references stays, and so does everything before it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "bumpfast.h"
#include "crashpoint.h"

#define FIELD(f) offsetof(struct arena_proto_ctr, f)
#define NONE UINT64_MAX /* checkpoint cursor: no chunk */

static const uint64_t no_epoch; /* what caches without a bump arena read */

static inline _Atomic uint64_t *cword(struct lib_arena *a, uint32_t ci)
{
	return (_Atomic uint64_t *)&a->bump->chunks[ci].word;
}

static inline uint32_t chunk_of(const struct lib_arena *a, uint64_t off)
{
	return (uint32_t)(off >> a->shift);
}

static inline uint64_t epoch_now(const struct lib_bump *b)
{
	return __atomic_load_n(b->epoch_p, __ATOMIC_ACQUIRE);
}

/*
 * Record the epoch b is in.  An arena that zeroes what it hands out
 * keeps its caches off the fast path: fast_epoch never matches.
 */
static void set_epoch(struct lib_bump *b, uint64_t e)
{
	b->epoch = e;
	b->fast_epoch = b->zero ? ~e : e;
}

/* The thread's place in the bump arena, before its first chunk. */
void bump_init(struct arena_client *c, struct lib_bump *b, uint64_t *allocs)
{
	struct lib_arena *a = c->bumpa;

	*b = (struct lib_bump){ 0 };
	b->allocs = allocs;
	b->bytes = &b->sink;
	b->epoch_p = &no_epoch;
	if (!a)
		return;
	b->data = a->data;
	b->max = a->max_size;
	b->zero = a->zero;
	b->epoch_p = &a->bump->epoch;
	set_epoch(b, epoch_now(b));
}

/* b now bumps in chunk ci at gen. */
static void set_chunk(struct arena_client *c, struct lib_arena *a,
		      struct lib_bump *b, uint32_t ci, uint32_t gen)
{
	b->chunk = ci;
	b->gen = gen;
	b->end = ((uint64_t)ci << a->shift) + a->block_size;
	b->word = (uint64_t)gen << ARENA_BS_GEN_SHIFT | c->sole_body;
	b->hbase = arena_proto_handle_pack(c->region_id, a->index, gen, 0);
}

/* Take a free chunk for b; -ENOMEM when a whole round finds none. */
static int reserve(struct arena_client *c, struct lib_arena *a,
		   struct lib_bump *b)
{
	uint32_t n = a->nwords, ci, tries;
	uint64_t w, start;

	set_epoch(b, epoch_now(b)); /* a reset after this: retire again */
	for (tries = 0; tries < n; tries++) {
		ci = (uint32_t)(__atomic_fetch_add(&a->bump->cursor, 1,
						   __ATOMIC_RELAXED) %
				n);
		ARENA_CRASHPOINT();
		w = atomic_load_explicit(cword(a, ci), memory_order_acquire);
		if (arena_bump_state(w) != ARENA_BUMP_FREE)
			continue;
		if (!atomic_compare_exchange_strong_explicit(
			    cword(a, ci), &w,
			    arena_bump_word(arena_bump_gen(w), ARENA_BUMP_OWNED,
					    c->id, 0),
			    memory_order_acq_rel, memory_order_acquire))
			continue;
		ARENA_CRASHPOINT();
		start = (uint64_t)ci << a->shift;
		__atomic_store_n((uint64_t *)(a->data + start), 0,
				 __ATOMIC_RELEASE);
		ARENA_CRASHPOINT();
		set_chunk(c, a, b, ci, arena_bump_gen(w));
		b->cur = start;
		b->made0 = *b->allocs;
		b->hist[b->seq % LIB_BUMP_HIST][0] = ci;
		b->hist[b->seq % LIB_BUMP_HIST][1] = b->gen;
		b->seq++;
		return 0;
	}
	return -ENOMEM;
}

/*
 * OWNED(me, freed) -> RETIRED(made - freed), or FREE when none is live;
 * a chunk made FREE wakes the waiters of the arena (arena_bump_reset(),
 * a rollback that emptied it, a reset noticed, exit), as a free does.
 */
static void retire(struct arena_client *c, struct lib_arena *a,
		   struct lib_bump *b)
{
	_Atomic uint64_t *cw = cword(a, b->chunk);
	uint64_t w = atomic_load_explicit(cw, memory_order_acquire), n, live;

	if (!b->end)
		return;
	b->end = 0;
	do {
		if (arena_bump_gen(w) != b->gen ||
		    arena_bump_state(w) != ARENA_BUMP_OWNED ||
		    arena_bump_owner(w) != c->id)
			return; /* not ours any more: the daemon's */
		live = bump_made(b) > arena_bump_count(w)
			       ? bump_made(b) - arena_bump_count(w)
			       : 0;
		n = live ? arena_bump_word(b->gen, ARENA_BUMP_RETIRED, 0, live)
			 : arena_bump_word(arena_proto_gen_next(b->gen),
					   ARENA_BUMP_FREE, 0, 0);
	} while (!atomic_compare_exchange_weak_explicit(
		cw, &w, n, memory_order_acq_rel, memory_order_acquire));
	ARENA_CRASHPOINT();
	if (!live) /* a free chunk: somebody may wait for one (wait.c) */
		wait_given_back(c, a);
}

void bump_retire(struct arena_client *c, struct lib_tcache *tc)
{
	if (c->bumpa && !client_inherited(c))
		retire(c, c->bumpa, &tc->bump);
}

__attribute__((noinline)) int bump_alloc_slow(struct arena_client *c,
					      size_t size, arena_handle_t *out)
{
	struct lib_arena *a = c->bumpa;
	struct lib_bump one, *b;
	struct lib_tcache *tc;
	uint64_t span, n = 0;

	if (size == 0)
		return -EINVAL;
	if (!a)
		return -ENOTSUP;
	if (unlikely(client_inherited(c)))
		return -ECHILD;
	tc = tc_get(c);
	if (size > a->max_size) {
		ctr_bump(c, tc, a->index, FIELD(fail_big));
		return -E2BIG;
	}
	span = arena_bump_span(size);
	b = &one;
	if (tc)
		b = &tc->bump;
	else
		bump_init(c, b, &n);
	if (!b->end || b->cur + span > b->end || b->epoch != epoch_now(b)) {
		retire(c, a, b);
		if (reserve(c, a, b)) {
			ctr_bump(c, tc, a->index, FIELD(fail_full));
			return -ENOMEM;
		}
	}
	*out = bump_place(b, size, b->cur + span);
	if (b->zero)
		bump_clear(b, *out, size);
	if (!tc) {
		retire(c, a, b); /* no cache: one allocation per chunk */
		ctr_bump(c, tc, a->index, FIELD(allocs));
		ctr_addf(c, tc, a->index, FIELD(alloc_bytes), size);
	}
	return 0;
}

bool bump_handle_ok(const struct lib_arena *a, uint32_t idx, uint32_t gen)
{
	uint64_t w;

	if (idx & 1)
		return false;
	w = atomic_load_explicit(
		(_Atomic uint64_t *)&a->bump
			->chunks[chunk_of(a, (uint64_t)idx << 3)]
			.word,
		memory_order_acquire);
	return arena_bump_gen(w) == gen &&
	       arena_bump_state(w) != ARENA_BUMP_FREE;
}

void bump_freed(struct lib_arena *a, uint32_t idx, uint32_t gen)
{
	arena_bump_put(cword(a, chunk_of(a, (uint64_t)idx << 3)), gen);
	ARENA_CRASHPOINT();
}

size_t bump_size(const struct lib_arena *a, uint32_t idx, uint32_t gen)
{
	const uint64_t *h = (const uint64_t *)(a->data + ((uint64_t)idx << 3));
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	uint64_t size;

	if (!arena_bs_is_live(s, gen))
		return 0;
	size = __atomic_load_n(&h[1], __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_acquire);
	/* live still; another holder's ref or unref only moves the version */
	s = atomic_load_explicit(&a->state[idx], memory_order_relaxed);
	if (!arena_bs_is_live(s, gen) || size > a->max_size)
		return 0;
	return (size_t)size;
}

/* Drop every reference this client holds to the allocation at idx. */
static void drop_mine(struct arena_client *c, struct lib_arena *a, uint32_t idx,
		      uint32_t gen)
{
	while (fixed_unref(c, a, idx, gen) == 0)
		;
}

/* A freed header at the tail of our chunk: take its free back. */
static bool unput(struct arena_client *c, struct lib_arena *a,
		  const struct lib_bump *b)
{
	_Atomic uint64_t *cw = cword(a, b->chunk);
	uint64_t w = atomic_load_explicit(cw, memory_order_acquire);

	do {
		if (arena_bump_gen(w) != b->gen ||
		    arena_bump_state(w) != ARENA_BUMP_OWNED ||
		    arena_bump_owner(w) != c->id || !arena_bump_count(w))
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		cw, &w, w - 1, memory_order_acq_rel, memory_order_acquire));
	ARENA_CRASHPOINT();
	return true;
}

/*
 * Erase the freed header h at the tail of our chunk: the chunk's word
 * forgets its free, then the header goes.  Two records, so announced in
 * the journal: reclaim then counts the chunk again rather than trust a
 * word that may be one short (proto/journal.h).
 */
static bool erase_freed(struct arena_client *c, struct lib_arena *a,
			const struct lib_bump *b, _Atomic uint64_t *h)
{
	_Atomic uint64_t *e = jnl_take(c, tc_peek(c));
	bool ok;

	jnl_note(e, ARENA_JNL_BROLL, a->index, b->chunk);
	ARENA_CRASHPOINT();
	ok = unput(c, a, b);
	if (ok)
		atomic_store_explicit(h, 0, memory_order_release);
	jnl_done(e);
	return ok;
}

/*
 * Roll back the current chunk to byte from (absolute): erase from the
 * end what nobody else holds and move the cursor back over it; drop our
 * references to the rest.
 */
static void roll_current(struct arena_client *c, struct lib_arena *a,
			 struct lib_bump *b, uint64_t from)
{
	uint64_t base = (uint64_t)b->chunk << a->shift, off, next, s;
	uint64_t sole = (uint64_t)b->gen << ARENA_BS_GEN_SHIFT | c->sole_body;
	uint64_t n = 0, k, cap = (b->cur - from) / ARENA_BUMP_HDR;
	uint32_t *offs = cap ? malloc(cap * sizeof(*offs)) : NULL;
	bool erasing = offs != NULL;
	_Atomic uint64_t *h;

	for (off = from; off < b->cur; off = next) {
		if (!arena_bump_header(a->data + base, off - base,
				       a->block_size, b->gen, &s, &next))
			break;
		next += base;
		if (offs)
			offs[n++] = (uint32_t)(off - base);
		else if (arena_bs_state(s) == ARENA_BS_ALLOC)
			drop_mine(c, a, (uint32_t)(off >> 3), b->gen);
	}
	if (off != b->cur)
		erasing = false; /* headers we cannot follow: keep them */
	for (k = n; k-- > 0;) {
		off = base + offs[k];
		h = &a->state[off >> 3];
		s = atomic_load_explicit(h, memory_order_acquire);
		if (erasing && arena_bs_state(s) == ARENA_BS_ALLOC &&
		    (s & ARENA_BS_BODY_MASK) == sole &&
		    atomic_compare_exchange_strong_explicit(
			    h, &s, 0, memory_order_acq_rel,
			    memory_order_acquire)) {
			ARENA_CRASHPOINT();
			count_free(c, tc_peek(c), a->index,
				   __atomic_load_n((uint64_t *)h + 1,
						   __ATOMIC_RELAXED));
			b->made0++;
			b->cur = off;
			continue;
		}
		if (erasing && arena_bs_state(s) == ARENA_BS_FREE &&
		    arena_bs_gen(s) == b->gen && erase_freed(c, a, b, h)) {
			b->made0++;
			b->cur = off;
			continue;
		}
		erasing = false;
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			drop_mine(c, a, (uint32_t)(off >> 3), b->gen);
	}
	free(offs);
}

/* Drop our references to what a chunk we moved on from holds past from. */
static void roll_retired(struct arena_client *c, struct lib_arena *a,
			 uint32_t ci, uint32_t gen, uint64_t from)
{
	uint64_t base = (uint64_t)ci << a->shift, off, next, s, w;

	for (off = from - base; off < a->block_size; off = next) {
		w = atomic_load_explicit(cword(a, ci), memory_order_acquire);
		if (arena_bump_gen(w) != gen ||
		    arena_bump_state(w) == ARENA_BUMP_FREE)
			return; /* everything in it is gone */
		if (!arena_bump_header(a->data + base, off, a->block_size, gen,
				       &s, &next))
			return;
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			drop_mine(c, a, (uint32_t)((base + off) >> 3), gen);
	}
}

static struct lib_bump *bump_of(struct arena_client *c, int *err)
{
	struct lib_tcache *tc;

	*err = 0;
	if (!c) {
		*err = -EINVAL;
		return NULL;
	}
	if (!c->bumpa) {
		*err = -ENOTSUP;
		return NULL;
	}
	if (client_inherited(c)) {
		*err = -ECHILD;
		return NULL;
	}
	tc = tc_get(c);
	if (!tc) {
		*err = -EAGAIN;
		return NULL;
	}
	if (tc->bump.epoch != epoch_now(&tc->bump)) {
		retire(c, c->bumpa, &tc->bump); /* the arena was reset */
		set_epoch(&tc->bump, epoch_now(&tc->bump));
	}
	return &tc->bump;
}

int arena_bump_checkpoint(struct arena_client *c, arena_bump_checkpoint_t *cp)
{
	struct lib_bump *b;
	int err;

	if (!cp)
		return -EINVAL;
	b = bump_of(c, &err);
	if (!b)
		return err;
	cp->v[0] = b->seq;
	cp->v[1] = b->end ? b->cur : NONE;
	return 0;
}

/*
 * Take a chunk we retired back: RETIRED(live) -> OWNED(me, made - live),
 * where made is what a walk of its headers finds, so that a rollback into
 * it can move the cursor back.  False when it went back to the pool or
 * a free raced with the walk twice.
 */
static bool reopen(struct arena_client *c, struct lib_arena *a,
		   struct lib_bump *b, uint32_t ci, uint32_t gen)
{
	uint64_t base = (uint64_t)ci << a->shift, off, next, s, w, made;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		w = atomic_load_explicit(cword(a, ci), memory_order_acquire);
		if (arena_bump_gen(w) != gen ||
		    arena_bump_state(w) != ARENA_BUMP_RETIRED)
			return false;
		for (off = 0, made = 0;
		     arena_bump_header(a->data + base, off, a->block_size, gen,
				       &s, &next);
		     off = next)
			made++;
		if (made < arena_bump_count(w))
			return false;
		if (!atomic_compare_exchange_strong_explicit(
			    cword(a, ci), &w,
			    arena_bump_word(gen, ARENA_BUMP_OWNED, c->id,
					    made - arena_bump_count(w)),
			    memory_order_acq_rel, memory_order_acquire))
			continue;
		ARENA_CRASHPOINT();
		set_chunk(c, a, b, ci, gen);
		b->cur = base + off;
		b->made0 = *b->allocs - made;
		return true;
	}
	return false;
}

/* The chunk this cache reserved as its seq-th (from 1). */
static void hist_at(const struct lib_bump *b, uint64_t seq, uint32_t *ci,
		    uint32_t *gen)
{
	*ci = b->hist[(seq - 1) % LIB_BUMP_HIST][0];
	*gen = b->hist[(seq - 1) % LIB_BUMP_HIST][1];
}

int arena_bump_rollback(struct arena_client *c, arena_bump_checkpoint_t cp)
{
	uint64_t seq = cp.v[0], from = cp.v[1], s;
	struct lib_arena *a;
	struct lib_bump *b;
	uint32_t ci, gen;
	int err;

	b = bump_of(c, &err);
	if (!b)
		return err;
	a = c->bumpa;
	if (seq > b->seq)
		return -EINVAL;
	if (b->seq - seq >= LIB_BUMP_HIST)
		return -ERANGE;
	if (from != NONE) {
		if (seq == 0 || from % ARENA_BUMP_HDR)
			return -EINVAL;
		hist_at(b, seq, &ci, &gen);
		if (from < (uint64_t)ci << a->shift ||
		    from - ((uint64_t)ci << a->shift) > a->block_size)
			return -EINVAL; /* the chunk's end when it was full */
		if (seq == b->seq && b->end && from > b->cur)
			return -EINVAL;
	}
	for (s = b->seq; s > seq;
	     s--) { /* chunks reserved since, newest first */
		hist_at(b, s, &ci, &gen);
		if (s == b->seq && b->end)
			roll_current(c, a, b, (uint64_t)ci << a->shift);
		else
			roll_retired(c, a, ci, gen, (uint64_t)ci << a->shift);
	}
	if (b->seq > seq && b->end && b->cur == (uint64_t)b->chunk << a->shift)
		retire(c, a, b); /* emptied: back to the pool */
	if (from == NONE)
		return 0;
	hist_at(b, seq, &ci, &gen);
	if (seq != b->seq && !b->end && reopen(c, a, b, ci, gen))
		b->seq = seq; /* the checkpoint's chunk is ours again */
	if (seq == b->seq && b->end)
		roll_current(c, a, b, from);
	else
		roll_retired(c, a, ci, gen, from);
	return 0;
}

/*
 * Is anything in chunk ci referenced?  A RETIRED chunk counts live
 * allocations, so it is; an OWNED one is when a walk of its headers
 * finds one ALLOC (the owner keeps the walk terminated at every
 * instruction, bump.h).
 */
static bool chunk_busy(struct lib_arena *a, uint32_t ci)
{
	uint64_t w = atomic_load_explicit(cword(a, ci), memory_order_acquire);
	uint64_t base = (uint64_t)ci << a->shift, off, next, s;

	if (arena_bump_state(w) == ARENA_BUMP_FREE)
		return false;
	if (arena_bump_state(w) != ARENA_BUMP_OWNED)
		return true;
	for (off = 0; arena_bump_header(a->data + base, off, a->block_size,
					arena_bump_gen(w), &s, &next);
	     off = next)
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			return true;
	return false;
}

/*
 * Reset: look at every chunk, then move the epoch on (the one step that
 * changes anything, a CAS, so a caller killed anywhere either reset or
 * did not).  Chunks other caches bump in go back when their owners
 * notice the epoch (bumpfast.h), never taken from under them: an owner
 * may be between its epoch check and its stores.  This thread's own
 * chunk goes back at once.  An allocation that lands after the walk is
 * one the reset precedes: it stays valid in its owner's chunk, which
 * then retires with it live.
 */
int arena_bump_reset(struct arena_client *c)
{
	struct lib_tcache *tc;
	struct lib_arena *a;
	uint64_t e;
	uint32_t ci;

	if (!c)
		return -EINVAL;
	a = c->bumpa;
	if (!a)
		return -ENOTSUP;
	if (client_inherited(c))
		return -ECHILD;
	e = __atomic_load_n(&a->bump->epoch, __ATOMIC_ACQUIRE);
	for (ci = 0; ci < a->nwords; ci++)
		if (chunk_busy(a, ci))
			return -EBUSY;
	ARENA_CRASHPOINT();
	/* a failed CAS means another reset got there: same effect */
	__atomic_compare_exchange_n(&a->bump->epoch, &e, e + 1, false,
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	ARENA_CRASHPOINT();
	__atomic_store_n(&a->bump->cursor, 0, __ATOMIC_RELAXED); /* a hint */
	ARENA_CRASHPOINT();
	tc = tc_get(c);
	if (tc) {
		retire(c, a, &tc->bump);
		set_epoch(&tc->bump, epoch_now(&tc->bump));
	}
	return 0;
}
