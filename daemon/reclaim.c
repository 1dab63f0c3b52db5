// SPDX-License-Identifier: MIT
/*
 * Reclaiming a detached or dead client: give back exactly what it held.
 *
 * A block's state word counts every reference held anywhere:
 *
 *   count = [owner is set] + sum over clients of their ledger counts
 *
 * and each client announces an operation in its ledger (pending) before
 * the CAS on the state word that performs it (lib/ledger.c).  So for a
 * block that a dead client may have held, the share of the living is
 *
 *   live = [owner is a live client] + sum over live clients of ledger counts
 *
 * provided no live client has an operation pending on it, and the dead
 * client's share is whatever the word counts beyond that.  The daemon
 * reads the word, sums the living, and writes count = live with one CAS
 * that expects the word unchanged (the version field moves on every
 * change), so a live client acting meanwhile just makes it try again.
 * This is exact whatever instruction the dead client stopped at, and no
 * block a live client holds can lose a reference.
 *
 * Slots the dead client had reserved (MAG) go back to FREE.  Lost bitmap
 * bits are repaired on the way: the state word is the authority, so
 * setting the bit of any FREE slot is always safe.
 *
 * Buddy blocks are the same records (the state word of a block's first
 * leaf); a block that goes back is given to the buddy tree with the
 * order its order byte says, after its word is FREE, as the library
 * does.  A client killed inside a tree operation can leave blocks that
 * the tree counts as taken and no word holds: those are found only by
 * reclaim_buddy_rebuild(), when no client is attached, because only then
 * can no live client be between its tree step and its word step.
 *
 * Everything read from the region is checked first (DESIGN.md rule 5); a
 * header that fails the checks stops the reclaim with -EUCLEAN rather than
 * risk a write outside the region.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "handle.h"
#include "layout.h"
#include "ledger.h"
#include "log.h"
#include "reclaim.h"

#define RECLAIM_RETRIES 1000

struct rc {
	uint8_t *base;
	uint64_t size;
	const struct arena_proto_region *r; /* the private copy below */
	uint32_t dead;
	uint32_t freed;
	struct arena_buddy_tally tally; /* what giving back did to trees */
	struct arena_proto_region copy; /* read once: clients may scribble */
};

static bool span_ok(uint64_t off, uint64_t n, uint64_t unit, uint64_t size)
{
	uint64_t len;

	if (__builtin_mul_overflow(n, unit, &len))
		return false;
	return off <= size && len <= size - off;
}

static bool header_ok(const struct arena_proto_region *r, uint64_t size)
{
	uint32_t le = r->ledger_entries;

	if (r->magic != ARENA_PROTO_REGION_MAGIC ||
	    r->narenas > ARENA_PROTO_MAX_ARENAS || r->max_clients == 0 ||
	    r->max_clients > ARENA_PROTO_MAX_CLIENTS)
		return false;
	if (le == 0 || le & (le - 1) || r->ledger_off % 8 || r->clients_off % 8)
		return false;
	if (r->client_stride % 8 ||
	    !span_ok(r->ledger_off, le, 8, r->client_stride))
		return false;
	if (r->bctr_off % 8 ||
	    !span_ok(r->bctr_off, ARENA_PROTO_STAT_SLOTS,
		     sizeof(struct arena_proto_bctr), r->client_stride))
		return false;
	return span_ok(r->clients_off, r->max_clients, r->client_stride, size);
}

static bool buddy_ok(const struct arena_proto_arena *d, uint64_t size)
{
	if (d->max_order > ARENA_BUDDY_MAX_ORDER ||
	    d->nblocks != 1ull << d->max_order || d->nblocks > UINT32_MAX ||
	    d->tree_len != 2 * d->nblocks || d->state_off % 8)
		return false;
	return span_ok(d->state_off, d->nblocks, 8, size) &&
	       span_ok(d->order_off, d->nblocks, 1, size) &&
	       span_ok(d->tree_off, d->tree_len, 1, size);
}

static bool arena_ok(const struct arena_proto_arena *d, uint64_t size)
{
	if (d->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_ok(d, size);
	if (d->kind != ARENA_PROTO_KIND_FIXED || d->nblocks > UINT32_MAX)
		return false;
	if (d->state_off % 8 || d->bitmap_off % 64 ||
	    d->nwords != (d->nblocks + 63) / 64)
		return false;
	return span_ok(d->state_off, d->nblocks, 8, size) &&
	       span_ok(d->bitmap_off, d->nwords, 64, size);
}

static uint8_t *client_table(const struct rc *rc, uint32_t id)
{
	return rc->base + rc->r->clients_off +
	       (uint64_t)(id - 1) * rc->r->client_stride;
}

static bool client_live(const struct rc *rc, uint32_t id)
{
	const struct arena_proto_client *h;

	if (id == 0 || id > rc->r->max_clients || id == rc->dead)
		return false;
	h = (const void *)client_table(rc, id);
	return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) ==
	       ARENA_PROTO_CLIENT_LIVE;
}

static _Atomic uint64_t *ledger_of(const struct rc *rc, uint32_t id)
{
	return (_Atomic uint64_t *)(client_table(rc, id) + rc->r->ledger_off);
}

/*
 * Sum of the references to key in one ledger (the chain up to its first
 * empty entry); -1 when an operation on key is pending there.
 */
static int64_t ledger_count(const struct rc *rc, uint32_t id, uint64_t key)
{
	uint32_t mask = rc->r->ledger_entries - 1;
	uint32_t i = arena_ledger_hash(key, mask), n;
	_Atomic uint64_t *l = ledger_of(rc, id);
	int64_t sum = 0;
	uint64_t e;

	for (n = 0; n <= mask; n++, i = (i + 1) & mask) {
		e = atomic_load_explicit(&l[i], memory_order_acquire);
		if (e == 0)
			break;
		if (arena_ledger_key_of(e) != key)
			continue;
		if (arena_ledger_pending(e))
			return -1;
		sum += arena_ledger_count(e);
	}
	return sum;
}

/* References live clients hold to a block, or -1 while one is moving. */
static int64_t live_share(const struct rc *rc, uint64_t s, uint64_t key)
{
	int64_t sum = client_live(rc, arena_bs_owner(s)) ? 1 : 0, n;
	uint32_t id;

	for (id = 1; id <= rc->r->max_clients; id++) {
		if (!client_live(rc, id))
			continue;
		n = ledger_count(rc, id, key);
		if (n < 0)
			return -1;
		sum += n;
	}
	return sum;
}

static void bm_set(uint8_t *base, const struct arena_proto_arena *d,
		   uint32_t idx)
{
	uint64_t *w = (uint64_t *)(base + d->bitmap_off + (idx / 64) * 64);

	__atomic_fetch_or(w, 1ull << (idx % 64), __ATOMIC_RELEASE);
}

/*
 * Block idx, whose word has just become FREE, back to its arena: its
 * bitmap bit, or the buddy tree with the order of its order byte.  A
 * byte or tree that does not show the block as allocated (corruption)
 * is left alone: the block stays taken in the tree, a leak that the next
 * rebuild repairs, never a free of somebody else's block.
 */
static void give_back(struct rc *rc, const struct arena_proto_arena *d,
		      uint32_t idx)
{
	struct arena_buddy_geom g = { .max_order = d->max_order };
	uint8_t o;

	if (d->kind != ARENA_PROTO_KIND_BUDDY) {
		bm_set(rc->base, d, idx);
		return;
	}
	o = __atomic_load_n(rc->base + d->order_off + idx, __ATOMIC_ACQUIRE);
	arena_buddy_free(rc->base + d->tree_off, &g, idx, o, &rc->tally);
}

/* The word with only the living's references left in it. */
static uint64_t settle_word(const struct rc *rc, uint64_t s, int64_t live)
{
	uint32_t owner = arena_bs_owner(s);

	if (live == 0)
		return arena_bs_next(s, arena_proto_gen_next(arena_bs_gen(s)),
				     ARENA_BS_FREE, 0, 0);
	if (!client_live(rc, owner))
		owner = 0;
	return arena_bs_next(s, arena_bs_gen(s), ARENA_BS_ALLOC, owner,
			     (uint32_t)live);
}

/* Reconcile one allocated block; 1 when it was freed. */
static int reconcile(struct rc *rc, const struct arena_proto_arena *d,
		     uint32_t ai, uint32_t idx)
{
	_Atomic uint64_t *sp =
		(_Atomic uint64_t *)(rc->base + d->state_off) + idx;
	uint64_t key = arena_ledger_key(ai, idx), s, n;
	int64_t live;
	int tries;

	for (tries = 0; tries < RECLAIM_RETRIES; tries++) {
		s = atomic_load_explicit(sp, memory_order_acquire);
		if (arena_bs_state(s) != ARENA_BS_ALLOC)
			return 0;
		live = live_share(rc, s, key);
		if (live < 0) {
			sched_yield(); /* a live client is mid-operation */
			continue;
		}
		/*
		 * The sum is only a snapshot if the word did not move while
		 * the ledgers were read (the version changes on every CAS);
		 * else a live ref may be counted in a ledger but not in s.
		 */
		if (atomic_load_explicit(sp, memory_order_acquire) != s)
			continue;
		if (live > arena_bs_count(s))
			return -EUCLEAN; /* ledgers claim more than counted */
		if (live == arena_bs_count(s) &&
		    (arena_bs_owner(s) == 0 ||
		     client_live(rc, arena_bs_owner(s))))
			return 0;
		n = settle_word(rc, s, live);
		if (atomic_compare_exchange_strong(sp, &s, n)) {
			if (live == 0)
				give_back(rc, d, idx);
			return live == 0;
		}
	}
	return -EAGAIN;
}

/* Does the dead client's ledger mention this block? */
static bool in_dead_ledger(const struct rc *rc, uint64_t key)
{
	return ledger_count(rc, rc->dead, key) != 0;
}

static void unreserve(struct rc *rc, const struct arena_proto_arena *d,
		      uint32_t idx)
{
	_Atomic uint64_t *sp =
		(_Atomic uint64_t *)(rc->base + d->state_off) + idx;
	uint64_t s = atomic_load_explicit(sp, memory_order_acquire);

	while (arena_bs_state(s) == ARENA_BS_MAG &&
	       arena_bs_owner(s) == rc->dead) {
		if (atomic_compare_exchange_weak(
			    sp, &s,
			    arena_bs_next(s, arena_bs_gen(s), ARENA_BS_FREE, 0,
					  0))) {
			give_back(rc, d, idx);
			return;
		}
	}
}

static int reclaim_slot(struct rc *rc, const struct arena_proto_arena *d,
			uint32_t ai, uint32_t idx)
{
	const _Atomic uint64_t *sp =
		(const _Atomic uint64_t *)(rc->base + d->state_off) + idx;
	uint64_t s = atomic_load_explicit(sp, memory_order_acquire);

	switch (arena_bs_state(s)) {
	case ARENA_BS_MAG:
		unreserve(rc, d, idx);
		return 0;
	case ARENA_BS_ALLOC:
		if (arena_bs_owner(s) == rc->dead ||
		    in_dead_ledger(rc, arena_ledger_key(ai, idx)))
			return reconcile(rc, d, ai, idx);
		return 0;
	case ARENA_BS_FREE:
		if (d->kind == ARENA_PROTO_KIND_FIXED)
			bm_set(rc->base, d, idx); /* repair a lost hint */
		return 0;
	default:
		return 0;
	}
}

static int reclaim_arena(struct rc *rc, uint32_t ai)
{
	struct arena_proto_arena d;
	uint32_t idx;
	int ret, err = 0;

	memcpy(&d, &rc->r->arenas[ai], sizeof(d));
	if (!arena_ok(&d, rc->size))
		return -EUCLEAN;
	for (idx = 0; idx < d.nblocks; idx++) {
		ret = reclaim_slot(rc, &d, ai, idx);
		if (ret > 0)
			rc->freed++;
		else if (ret < 0)
			err = ret;
	}
	return err;
}

/*
 * What giving back did to the buddy trees, into the dead client's last
 * counter row: clients.c folds its rows into the totals right after.
 */
static void tally_store(const struct rc *rc)
{
	struct arena_proto_bctr *b =
		(struct arena_proto_bctr *)(client_table(rc, rc->dead) +
					    rc->r->bctr_off) +
		(ARENA_PROTO_STAT_SLOTS - 1);

	__atomic_fetch_add(&b->splits, rc->tally.splits, __ATOMIC_RELAXED);
	__atomic_fetch_add(&b->coalesces, rc->tally.coalesces,
			   __ATOMIC_RELAXED);
}

/* Does key name a block of the region, as every key the library writes? */
static bool key_ok(const struct rc *rc, uint64_t key)
{
	uint32_t a = (uint32_t)(key >> 32); /* arena + 1 */

	return a >= 1 && a <= rc->r->narenas &&
	       (uint32_t)key < rc->r->arenas[a - 1].nblocks;
}

/*
 * Signs that a client overwrote the dead client's table: a head that no
 * longer names its id (only the daemon writes it), ledger entries that
 * name no block.  What such entries stood for cannot be known, so the
 * references behind them stay counted (a leak, never a wrong free); the
 * damage is logged and makes the reclaim fail, so the id is retired.
 */
static bool table_damaged(const struct rc *rc)
{
	const struct arena_proto_client *h;
	_Atomic uint64_t *l = ledger_of(rc, rc->dead);
	uint32_t i, bad = 0, id;
	uint64_t e;

	h = (const void *)client_table(rc, rc->dead);
	id = __atomic_load_n(&h->id, __ATOMIC_RELAXED);
	for (i = 0; i < rc->r->ledger_entries; i++) {
		e = atomic_load_explicit(&l[i], memory_order_acquire);
		if (e && !key_ok(rc, arena_ledger_key_of(e)))
			bad++;
	}
	if (!bad && id == rc->dead)
		return false;
	LOG(LOG_ERROR,
	    "client %u: table overwritten (head says id %u, %u ledger "
	    "entries name no block); what they held stays allocated",
	    rc->dead, id, bad);
	return true;
}

int reclaim_client(uint8_t *base, uint64_t size, uint32_t id)
{
	static struct rc rc; /* large; the daemon is single-threaded */
	bool damaged;
	uint32_t ai;
	int err = 0, ret;

	if (size < sizeof(struct arena_proto_region))
		return -EUCLEAN;
	memcpy(&rc.copy, base, sizeof(rc.copy));
	rc.base = base;
	rc.size = size;
	rc.r = &rc.copy;
	rc.dead = id;
	rc.freed = 0;
	rc.tally = (struct arena_buddy_tally){ 0 };
	if (!header_ok(rc.r, size) || id == 0 || id > rc.r->max_clients)
		return -EUCLEAN;
	damaged = table_damaged(&rc);
	for (ai = 0; ai < rc.r->narenas; ai++) {
		ret = reclaim_arena(&rc, ai);
		if (ret < 0)
			err = ret;
	}
	tally_store(&rc);
	if (damaged)
		return -EUCLEAN;
	return err ? err : (int)rc.freed;
}

/*
 * The tree that the words of arena d say: every block whose first leaf
 * is MAG or ALLOC taken with the order of its order byte, the rest free.
 * Returns the number of tree bytes that had to change, or -EUCLEAN when
 * the words and order bytes do not describe disjoint blocks (nothing is
 * written then), or -ENOMEM.
 */
static int64_t tree_rebuild(uint8_t *base, const struct arena_proto_arena *d)
{
	const struct arena_buddy_geom g = { .max_order = d->max_order };
	const _Atomic uint64_t *st = (const void *)(base + d->state_off);
	const uint8_t *ord = base + d->order_off;
	uint8_t *tree = base + d->tree_off, *t = calloc(1, d->tree_len), v;
	uint64_t i, s;
	int64_t changed = 0, bad = 0;

	if (!t)
		return -ENOMEM;
	for (i = 0; i < d->nblocks; i++) {
		s = atomic_load_explicit(&st[i], memory_order_acquire);
		if (arena_bs_state(s) != ARENA_BS_MAG &&
		    arena_bs_state(s) != ARENA_BS_ALLOC)
			continue;
		if (arena_buddy_mark(
			    t, &g, (uint32_t)i,
			    __atomic_load_n(&ord[i], __ATOMIC_ACQUIRE)))
			bad++;
	}
	for (i = 0; i < d->tree_len && !bad; i++) {
		v = __atomic_load_n(&tree[i], __ATOMIC_ACQUIRE);
		if (v == t[i])
			continue;
		__atomic_store_n(&tree[i], t[i], __ATOMIC_RELEASE);
		changed++;
	}
	free(t);
	return bad ? -EUCLEAN : changed;
}

int reclaim_buddy_rebuild(uint8_t *base, uint64_t size)
{
	static struct arena_proto_region copy; /* the daemon is one thread */
	struct arena_proto_arena d;
	int64_t n, total = 0;
	int err = 0;
	uint32_t ai;

	if (size < sizeof(copy))
		return -EUCLEAN;
	memcpy(&copy, base, sizeof(copy));
	if (!header_ok(&copy, size))
		return -EUCLEAN;
	for (ai = 0; ai < copy.narenas; ai++) {
		memcpy(&d, &copy.arenas[ai], sizeof(d));
		if (d.kind != ARENA_PROTO_KIND_BUDDY)
			continue;
		n = buddy_ok(&d, size) ? tree_rebuild(base, &d) : -EUCLEAN;
		if (n < 0)
			err = (int)n;
		else
			total += n;
	}
	if (err)
		return err;
	return total > INT32_MAX ? INT32_MAX : (int)total;
}
