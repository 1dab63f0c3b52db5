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
 * does.
 *
 * Four operations span two records that no one atomic changes together:
 * a buddy claim (tree node, then word) and release (word, then node and
 * its marks), a bump free (header, then the chunk's count) and the
 * rollback of a freed header (count, then header).  Each is announced in
 * the thread's journal entry first (proto/journal.h), and reclaim starts
 * from the dead client's journal (jnl_settle):
 *
 *   - a buddy node it names goes back if the tree shows it taken while
 *     no word holds its block and no live journal names it: a live
 *     client holds a node only while its journal names it or a word
 *     holds it, and only a holder frees a taken node, so nobody can hold
 *     it or come to (jnl_buddy); a node already 0 has the marks the dead
 *     client was clearing cleared;
 *   - a bump chunk it names, and every chunk it owned, is counted again
 *     from its headers, which are exact at every instruction, once no
 *     live journal names the chunk (chunk_recount).
 *
 * With that, reclaim is exact wherever the client stopped; the argument,
 * step by step, is in docs/blocks.md ("Journal"), and tests/test_crash.c
 * kills a client at every crash point of every operation to check it.
 * reclaim_buddy_rebuild(), when no client is attached, remains a safety
 * net for a tree damaged by other means.
 *
 * Speed (100,000 blocks in well under 10 ms, bench/bench_reclaim.c):
 * the walk reads every state word once, but a FREE word, the bulk of any
 * region, costs one plain load and its bitmap bit is repaired with those
 * of its 63 neighbours in one atomic OR (reclaim_group); the live
 * clients and whether any channel is live are read once per reclaim, not
 * per block (snapshot), so a block's sum visits only the live ledgers.
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
#include "bump.h"
#include "handle.h"
#include "holders.h"
#include "journal.h"
#include "layout.h"
#include "ledger.h"
#include "log.h"
#include "reclaim.h"
#include "ring.h"

#define RECLAIM_RETRIES 1000

struct rc {
	uint8_t *base;
	uint64_t size;
	const struct arena_proto_region *r; /* the private copy below */
	uint32_t dead;
	uint32_t freed;
	uint32_t nlive; /* live[]: the live clients, see snapshot() */
	bool chans;	/* a channel was live when the reclaim started */
	struct arena_buddy_tally tally; /* what giving back did to trees */
	uint32_t live[ARENA_PROTO_MAX_CLIENTS];
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
	if (r->jnl_off % 8 ||
	    !span_ok(r->jnl_off, ARENA_PROTO_JNL_ENTRIES, 8, r->client_stride))
		return false;
	if (r->nchan > ARENA_PROTO_CHAN_MAX ||
	    r->chan_cells > ARENA_PROTO_CHAN_MAX_CELLS || r->chan_off % 64 ||
	    r->chan_cells_off % 16 ||
	    !span_ok(r->chan_off, r->nchan, sizeof(struct arena_proto_chan),
		     size) ||
	    !span_ok(r->chan_cells_off, r->chan_cells,
		     sizeof(struct arena_proto_cell), size))
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

/* The bump arena's records and chunks, as lib/region.c checks them. */
static bool bump_ok(const struct arena_proto_arena *d, uint64_t size)
{
	uint64_t c = d->block_size, n = d->nchunks;

	if (c < ARENA_BUMP_CHUNK_MIN || c > ARENA_BUMP_CHUNK_MAX ||
	    (c & (c - 1)) || n == 0 || n > UINT32_MAX || d->data_len != n * c ||
	    d->nblocks != d->data_len / 8 || d->nblocks > UINT32_MAX ||
	    d->state_off != d->data_off || d->data_off % 8 || d->bump_off % 64)
		return false;
	return span_ok(d->data_off, n, c, size) &&
	       span_ok(d->bump_off, n + 4, sizeof(struct arena_bump_chunk),
		       size);
}

static _Atomic uint64_t *
chunk_word(uint8_t *base, const struct arena_proto_arena *d, uint64_t ci)
{
	struct arena_bump_hdr *h = (void *)(base + d->bump_off);

	return (_Atomic uint64_t *)&h->chunks[ci].word;
}

static bool arena_ok(const struct arena_proto_arena *d, uint64_t size)
{
	if (d->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_ok(d, size);
	if (d->kind == ARENA_PROTO_KIND_BUMP)
		return bump_ok(d, size);
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

/*
 * References live clients hold to a block, or -1 while one is moving.
 * Reads rc->live: whoever reconciles must have called snapshot() first.
 */
static int64_t live_share(const struct rc *rc, uint64_t s, uint64_t key)
{
	int64_t sum = client_live(rc, arena_bs_owner(s)) ? 1 : 0, n;
	uint32_t i;

	for (i = 0; i < rc->nlive; i++) {
		n = ledger_count(rc, rc->live[i], key);
		if (n < 0)
			return -1;
		sum += n;
	}
	return sum;
}

/*
 * Copies of the block key names queued in channel rings: each is a
 * reference the channel holds (docs/blocks.md, "Channels").  A cell holds
 * a handle when its word says FULL (proto/ring.h); rings and
 * capacities are bounds-checked, so a scribbled table miscounts (which
 * reconcile reports as -EUCLEAN or leaves as a leak), never reads outside
 * the region.
 */
static int64_t chan_copies(const struct rc *rc, uint64_t key)
{
	const struct arena_proto_region *r = rc->r;
	struct arena_proto_chan *ch;
	struct arena_proto_cell *cell;
	uint64_t seq, h, ring;
	uint32_t i, j, cap;
	int64_t n = 0;

	for (i = 0; i < r->nchan; i++) {
		ch = (struct arena_proto_chan *)(rc->base + r->chan_off) + i;
		if (__atomic_load_n(&ch->state, __ATOMIC_ACQUIRE) !=
		    ARENA_PROTO_CHAN_LIVE)
			continue;
		cap = __atomic_load_n(&ch->capacity, __ATOMIC_RELAXED);
		ring = __atomic_load_n(&ch->ring, __ATOMIC_RELAXED);
		if (cap < 2 || cap & (cap - 1) || ring > r->chan_cells ||
		    cap > r->chan_cells - ring)
			continue;
		cell = (struct arena_proto_cell *)(rc->base +
						   r->chan_cells_off) +
		       ring;
		for (j = 0; j < cap; j++) {
			seq = __atomic_load_n(&cell[j].seq, __ATOMIC_ACQUIRE);
			if (!holders_cell_full(seq))
				continue;
			h = __atomic_load_n(&cell[j].handle, __ATOMIC_RELAXED);
			if (holders_handle_key(h) == key)
				n++;
		}
	}
	return n;
}

/*
 * The living's share including channel-held copies.  Ledgers are read
 * before and after the rings: a send or receive announces itself in its
 * ledger (pending) before it moves a handle into or out of a ring, so a
 * move that the ring scan saw half of shows up as pending or as a
 * changed sum in the second pass, and the caller tries again.
 */
static int64_t live_share_all(const struct rc *rc, uint64_t s, uint64_t key)
{
	int64_t a = live_share(rc, s, key), q;

	if (a < 0 || !rc->chans)
		return a;
	q = chan_copies(rc, key);
	if (live_share(rc, s, key) != a)
		return -1;
	return a + q;
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
	_Atomic uint64_t *cw;
	uint8_t o;

	if (d->kind == ARENA_PROTO_KIND_BUMP) {
		/* its chunk counts it: the chunk cannot recycle before that */
		cw = chunk_word(rc->base, d,
				((uint64_t)idx * 8) / d->block_size);
		arena_bump_put(cw, arena_bump_gen(atomic_load(cw)));
		return;
	}
	if (d->kind != ARENA_PROTO_KIND_BUDDY) {
		bm_set(rc->base, d, idx);
		return;
	}
	o = __atomic_load_n(rc->base + d->order_off + idx, __ATOMIC_ACQUIRE);
	arena_buddy_free(rc->base + d->tree_off, &g, idx, o, &rc->tally);
}

/*
 * Bytes block idx counts for in the counters (struct arena_proto_ctr):
 * its buddy order's, its bump allocation's size, 0 for a fixed slot.
 * Read while the block is still allocated.
 */
static uint64_t block_bytes(const struct rc *rc,
			    const struct arena_proto_arena *d, uint32_t idx)
{
	uint8_t o;

	if (d->kind == ARENA_PROTO_KIND_BUDDY) {
		o = __atomic_load_n(rc->base + d->order_off + idx,
				    __ATOMIC_RELAXED);
		return o <= d->max_order ? d->block_size << o : 0;
	}
	if (d->kind == ARENA_PROTO_KIND_BUMP)
		return __atomic_load_n(
			(const uint64_t *)(rc->base + d->data_off) + idx + 1,
			__ATOMIC_RELAXED);
	return 0;
}

/*
 * A block freed here counts as freed in the last counter row of client
 * id (the dead one, folded into the totals right after; or the one a
 * channel drop is charged to), so that allocs - frees stays the number
 * of live blocks.  Nothing is written if the row would not lie inside
 * the client's table.
 */
static void count_free(const struct rc *rc, uint32_t id, uint32_t ai,
		       uint64_t bytes)
{
	uint64_t rows = (uint64_t)ARENA_PROTO_STAT_SLOTS * rc->r->narenas;
	struct arena_proto_ctr *c;

	if (rc->r->ctr_off % 8 ||
	    !span_ok(rc->r->ctr_off, rows, sizeof(*c), rc->r->client_stride))
		return;
	c = (struct arena_proto_ctr *)(client_table(rc, id) + rc->r->ctr_off) +
	    (uint64_t)(ARENA_PROTO_STAT_SLOTS - 1) * rc->r->narenas + ai;
	__atomic_fetch_add(&c->frees, 1, __ATOMIC_RELAXED);
	if (bytes)
		__atomic_fetch_add(&c->free_bytes, bytes, __ATOMIC_RELAXED);
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
	uint64_t key = arena_ledger_key(ai, idx), s, n, bytes;
	int64_t live;
	int tries;

	for (tries = 0; tries < RECLAIM_RETRIES; tries++) {
		s = atomic_load_explicit(sp, memory_order_acquire);
		if (arena_bs_state(s) != ARENA_BS_ALLOC)
			return 0;
		live = live_share_all(rc, s, key);
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
		if (live == 0 && d->kind == ARENA_PROTO_KIND_BUMP)
			n = arena_bs_next(s, arena_bs_gen(s), ARENA_BS_FREE, 0,
					  0); /* bump headers keep their gen */
		bytes = block_bytes(rc, d, idx);
		if (atomic_compare_exchange_strong(sp, &s, n)) {
			if (live == 0) {
				give_back(rc, d, idx);
				count_free(rc, rc->dead, ai, bytes);
			}
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

/*
 * Headers walked in chunk ci at gen (proto/bump.h), or -1 when the chunk
 * moved meanwhile; *alloc (when not NULL) gets how many of them are
 * allocated.
 */
static int64_t bump_walk(struct rc *rc, const struct arena_proto_arena *d,
			 uint32_t ai, uint64_t ci, uint32_t gen, bool settle,
			 int64_t *alloc)
{
	uint8_t *data = rc->base + d->data_off + ci * d->block_size;
	uint64_t off, next, s, w;
	uint32_t idx;
	int64_t n = 0, na = 0;
	int ret;

	for (off = 0;
	     arena_bump_header(data, off, d->block_size, gen, &s, &next);
	     off = next, n++) {
		w = atomic_load(chunk_word(rc->base, d, ci));
		if (arena_bump_gen(w) != gen ||
		    arena_bump_state(w) == ARENA_BUMP_FREE)
			return -1;
		idx = (uint32_t)((ci * d->block_size + off) / 8);
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			na++;
		if (!settle || arena_bs_state(s) != ARENA_BS_ALLOC)
			continue;
		if (arena_bs_owner(s) == rc->dead ||
		    in_dead_ledger(rc, arena_ledger_key(ai, idx))) {
			ret = reconcile(rc, d, ai, idx);
			if (ret > 0)
				rc->freed++;
		}
	}
	if (alloc)
		*alloc = na;
	return n;
}

/*
 * Is a live client's journal in the middle of an operation (one of the
 * ops in mask, 1 << op) on position pos of arena ai?  Such an operation
 * has changed, or may change, one of its two records and not yet the
 * other, so what the records say about pos is not settled.
 */
static bool jnl_busy(const struct rc *rc, uint32_t ai, uint32_t pos,
		     uint32_t mask)
{
	_Atomic uint64_t *j;
	uint32_t id, i;
	uint64_t e;

	for (id = 1; id <= rc->r->max_clients; id++) {
		if (!client_live(rc, id))
			continue;
		j = (_Atomic uint64_t *)(client_table(rc, id) + rc->r->jnl_off);
		for (i = 0; i < ARENA_PROTO_JNL_ENTRIES; i++) {
			e = atomic_load_explicit(&j[i], memory_order_acquire);
			if ((mask >> arena_jnl_op(e) & 1) &&
			    arena_jnl_arena(e) == ai && arena_jnl_pos(e) == pos)
				return true;
		}
	}
	return false;
}

#define JNL_BUMP (1u << ARENA_JNL_BPUT | 1u << ARENA_JNL_BROLL)
#define JNL_BUDDY                                                              \
	(1u << ARENA_JNL_BCLAIM | 1u << ARENA_JNL_BUNDO |                      \
	 1u << ARENA_JNL_BRELEASE | 1u << ARENA_JNL_BUNMARK)

/*
 * What chunk ci's word must say, counted from its headers: RETIRED with
 * the allocations still live (FREE, gen + 1, when none is), OWNED with
 * the frees (the headers walked less the live ones).  False when the
 * chunk moved on while its headers were walked.
 */
static bool chunk_counted(struct rc *rc, const struct arena_proto_arena *d,
			  uint32_t ai, uint64_t ci, uint64_t w, uint64_t *nw)
{
	uint32_t gen = arena_bump_gen(w);
	int64_t n, live;

	n = bump_walk(rc, d, ai, ci, gen, false, &live);
	if (n < 0)
		return false;
	if (arena_bump_state(w) == ARENA_BUMP_OWNED &&
	    arena_bump_owner(w) != rc->dead)
		*nw = arena_bump_word(gen, ARENA_BUMP_OWNED,
				      arena_bump_owner(w),
				      (uint64_t)(n - live));
	else if (live)
		*nw = arena_bump_word(gen, ARENA_BUMP_RETIRED, 0,
				      (uint64_t)live);
	else
		*nw = arena_bump_word(arena_proto_gen_next(gen),
				      ARENA_BUMP_FREE, 0, 0);
	return true;
}

/*
 * Count chunk ci again from its headers and put what they say in its
 * word; a chunk the dead client owned is retired this way (RETIRED with
 * its live allocations, or FREE).  Its word alone cannot be trusted where
 * the dead client stopped between a header and the word (a free not yet
 * counted, or a rolled-back free not yet erased, journal.h), but the
 * headers are exact: every allocation's header is ALLOC until its last
 * reference goes.  The count stands only if no live client is itself
 * between those two steps on this chunk (its journal says so; it is
 * retried then) and the word did not move while the headers were walked
 * (the CAS expects it; a live free's count would be in it).
 */
static int chunk_recount(struct rc *rc, const struct arena_proto_arena *d,
			 uint32_t ai, uint64_t ci)
{
	_Atomic uint64_t *cw = chunk_word(rc->base, d, ci);
	uint64_t w, nw;
	int tries;

	for (tries = 0; tries < RECLAIM_RETRIES; tries++) {
		w = atomic_load(cw);
		if (arena_bump_state(w) == ARENA_BUMP_FREE)
			return 0;
		if (!chunk_counted(rc, d, ai, ci, w, &nw))
			continue;
		if (nw == w)
			return 0;
		if (jnl_busy(rc, ai, (uint32_t)ci, JNL_BUMP)) {
			sched_yield();
			continue;
		}
		if (atomic_compare_exchange_strong(cw, &w, nw))
			return 0;
	}
	return -EAGAIN;
}

/* A chunk the dead client owned: retired with what its headers say. */
static int bump_retire_dead(struct rc *rc, const struct arena_proto_arena *d,
			    uint32_t ai, uint64_t ci)
{
	uint64_t w = atomic_load(chunk_word(rc->base, d, ci));

	if (arena_bump_state(w) != ARENA_BUMP_OWNED ||
	    arena_bump_owner(w) != rc->dead)
		return 0;
	return chunk_recount(rc, d, ai, ci);
}

/*
 * The bump arena: the allocations the dead client held are reconciled
 * like any block (their headers are state words), then the chunks it
 * owned are retired.  Only headers reachable by walking a chunk from its
 * start are looked at: the rest of the data is allocations' contents.
 */
static int reclaim_bump(struct rc *rc, const struct arena_proto_arena *d,
			uint32_t ai)
{
	uint64_t ci, w;
	int err = 0, ret;

	for (ci = 0; ci < d->nchunks; ci++) {
		w = atomic_load(chunk_word(rc->base, d, ci));
		if (arena_bump_state(w) == ARENA_BUMP_FREE)
			continue;
		bump_walk(rc, d, ai, ci, arena_bump_gen(w), true, NULL);
		ret = bump_retire_dead(rc, d, ai, ci);
		if (ret)
			err = ret;
	}
	return err;
}

/*
 * The buddy node a dead client's journal names, which it was taking or
 * giving back (journal.h).  Once no live client is at work on the node
 * (its journal) and no state word holds the block (the word of its first
 * leaf, read twice around the journals and unchanged, with the block's
 * order in its order byte), no live client holds the node nor can come
 * to: a live client holds a node only while its journal names it or a
 * word holds it, and only a holder ever makes a taken node free again.
 * So a node still taken then is nobody's and goes back, with its marks
 * cleared as far up as the dead client had set them; and a node already
 * free has only the dead client's clearing of its marks left to finish.
 */
static int jnl_buddy(struct rc *rc, const struct arena_proto_arena *d,
		     uint32_t ai, uint64_t e)
{
	const struct arena_buddy_geom g = { .max_order = d->max_order };
	uint32_t node = arena_jnl_pos(e), op = arena_jnl_op(e), leaf, o;
	uint8_t *tree = rc->base + d->tree_off;
	_Atomic uint64_t *sp;
	unsigned top = op == ARENA_JNL_BUNDO || op == ARENA_JNL_BUNMARK
			       ? arena_jnl_top(e)
			       : 0;
	uint64_t w1, w2;
	int tries, ret;

	if (node == 0 || node >= 2ull << d->max_order)
		return 0; /* not a node: nothing it could stand for */
	o = d->max_order - (31u - (unsigned)__builtin_clz(node));
	leaf = (node - (1u << (d->max_order - o))) << o;
	sp = (_Atomic uint64_t *)(rc->base + d->state_off) + leaf;
	for (tries = 0; tries < RECLAIM_RETRIES; tries++) {
		w1 = atomic_load_explicit(sp, memory_order_acquire);
		ret = __atomic_load_n(rc->base + d->order_off + leaf,
				      __ATOMIC_ACQUIRE) == o;
		if (jnl_busy(rc, ai, node, JNL_BUDDY)) {
			sched_yield();
			continue;
		}
		w2 = atomic_load_explicit(sp, memory_order_acquire);
		if (w1 != w2)
			continue;
		if (arena_bs_state(w1) != ARENA_BS_FREE && ret)
			return 0; /* a word holds it: reclaim goes by that */
		ret = arena_buddy_release_node(tree, &g, node, top, &rc->tally);
		if (ret == 0 && op == ARENA_JNL_BUNMARK)
			ret = arena_buddy_unmark_node(tree, &g, node, top,
						      &rc->tally);
		return ret < 0 ? -EUCLEAN : 0;
	}
	return -EAGAIN;
}

/* Finish, or count again after, what each of the dead client's threads was
 * in the middle of (journal.h), before its records are reclaimed. */
static int jnl_settle(struct rc *rc)
{
	_Atomic uint64_t *j = (_Atomic uint64_t *)(client_table(rc, rc->dead) +
						   rc->r->jnl_off);
	struct arena_proto_arena d;
	uint32_t i, ai, op;
	int err = 0, ret;
	uint64_t e;

	for (i = 0; i < ARENA_PROTO_JNL_ENTRIES; i++) {
		e = atomic_load_explicit(&j[i], memory_order_acquire);
		op = arena_jnl_op(e);
		ai = arena_jnl_arena(e);
		if (!((JNL_BUDDY | JNL_BUMP) >> op & 1) || ai >= rc->r->narenas)
			continue;
		memcpy(&d, &rc->r->arenas[ai], sizeof(d));
		if (!arena_ok(&d, rc->size))
			continue;
		ret = 0;
		if (d.kind == ARENA_PROTO_KIND_BUDDY && (JNL_BUDDY >> op & 1))
			ret = jnl_buddy(rc, &d, ai, e);
		else if (d.kind == ARENA_PROTO_KIND_BUMP &&
			 (JNL_BUMP >> op & 1) && arena_jnl_pos(e) < d.nchunks)
			ret = chunk_recount(rc, &d, ai, arena_jnl_pos(e));
		if (ret < 0)
			err = ret;
		else
			atomic_store_explicit(&j[i], 0, memory_order_release);
	}
	return err;
}

/*
 * Slots [first, first + n) of an arena, n <= 64 and one bitmap word's
 * worth for a fixed arena.  A plain read of each state word filters:
 * FREE slots (almost all of an idle arena) cost one load here and their
 * bits are repaired together, in at most one atomic OR for the word,
 * instead of one per slot; only MAG and ALLOC slots go to reclaim_slot,
 * which reads the word again and decides.  The filter can only skip a
 * slot that was FREE when read, and a FREE slot holds nothing of anyone:
 * whatever the dead client held was MAG or ALLOC before it died and stays
 * so until the daemon or a live holder changes it.
 */
static int reclaim_group(struct rc *rc, const struct arena_proto_arena *d,
			 uint32_t ai, uint32_t first, uint32_t n)
{
	const _Atomic uint64_t *st =
		(const _Atomic uint64_t *)(rc->base + d->state_off) + first;
	uint64_t idle = 0, *bm, s;
	uint32_t i;
	int ret, err = 0;

	for (i = 0; i < n; i++) {
		s = atomic_load_explicit(&st[i], memory_order_relaxed);
		if (arena_bs_state(s) == ARENA_BS_FREE) {
			idle |= 1ull << i;
			continue;
		}
		ret = reclaim_slot(rc, d, ai, first + i);
		if (ret > 0)
			rc->freed++;
		else if (ret < 0)
			err = ret;
	}
	if (d->kind != ARENA_PROTO_KIND_FIXED)
		return err;
	bm = (uint64_t *)(rc->base + d->bitmap_off + (first / 64) * 64);
	idle &= ~__atomic_load_n(bm, __ATOMIC_RELAXED);
	if (idle)
		__atomic_fetch_or(bm, idle, __ATOMIC_RELEASE);
	return err;
}

static int reclaim_arena(struct rc *rc, uint32_t ai)
{
	struct arena_proto_arena d;
	uint64_t idx;
	int ret, err = 0;

	memcpy(&d, &rc->r->arenas[ai], sizeof(d));
	if (!arena_ok(&d, rc->size))
		return -EUCLEAN;
	if (d.kind == ARENA_PROTO_KIND_BUMP)
		return reclaim_bump(rc, &d, ai);
	for (idx = 0; idx < d.nblocks; idx += 64) {
		ret = reclaim_group(rc, &d, ai, (uint32_t)idx,
				    (uint32_t)(d.nblocks - idx < 64
						       ? d.nblocks - idx
						       : 64));
		if (ret < 0)
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

/*
 * The live clients and whether any channel is live, read once: only the
 * daemon changes either (attach, detach, CHAN_OPEN and the last close),
 * and it is in this reclaim, so reading them again for every block, as
 * the sums above would otherwise do, could only cost time.
 */
static void snapshot(struct rc *rc)
{
	const struct arena_proto_chan *ch =
		(const void *)(rc->base + rc->r->chan_off);
	uint32_t id, i;

	rc->nlive = 0;
	for (id = 1; id <= rc->r->max_clients; id++)
		if (client_live(rc, id))
			rc->live[rc->nlive++] = id;
	rc->chans = false;
	for (i = 0; i < rc->r->nchan && !rc->chans; i++)
		rc->chans = __atomic_load_n(&ch[i].state, __ATOMIC_ACQUIRE) ==
			    ARENA_PROTO_CHAN_LIVE;
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
	snapshot(&rc);
	err = jnl_settle(&rc);
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

/*
 * Drop one reference that a channel held to block h: count - 1, the block
 * freed (and given back) at zero.  Buddy-tree effects are charged to
 * client id's shared counter row.  Returns 1 when the block was freed,
 * 0 when not, -ESTALE for a handle of no live block, -EUCLEAN for a
 * header that fails validation.
 */
int reclaim_chan_drop(uint8_t *base, uint64_t size, uint64_t h, uint32_t id)
{
	static struct rc rc; /* large; the daemon is single-threaded */
	struct arena_proto_arena d;
	uint32_t ai = (uint32_t)(h >> 52) & 0xff, idx = (uint32_t)h, gen;
	_Atomic uint64_t *sp;
	uint64_t s, n, bytes;

	if (size < sizeof(struct arena_proto_region))
		return -EUCLEAN;
	memcpy(&rc.copy, base, sizeof(rc.copy));
	rc.base = base;
	rc.size = size;
	rc.r = &rc.copy;
	rc.dead = id;
	rc.tally = (struct arena_buddy_tally){ 0 };
	if (!header_ok(rc.r, size) || id == 0 || id > rc.r->max_clients)
		return -EUCLEAN;
	if (h >> 60 || ai >= rc.r->narenas)
		return -ESTALE;
	memcpy(&d, &rc.r->arenas[ai], sizeof(d));
	if ((d.kind != ARENA_PROTO_KIND_FIXED &&
	     d.kind != ARENA_PROTO_KIND_BUDDY) ||
	    !arena_ok(&d, size) || idx >= d.nblocks)
		return -ESTALE; /* channels carry no bump blocks */
	gen = (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK;
	if (d.kind == ARENA_PROTO_KIND_BUMP &&
	    ((idx & 1) ||
	     arena_bump_gen(atomic_load(chunk_word(
		     base, &d, ((uint64_t)idx * 8) / d.block_size))) != gen))
		return -ESTALE;
	sp = (_Atomic uint64_t *)(base + d.state_off) + idx;
	s = atomic_load_explicit(sp, memory_order_acquire);
	bytes = block_bytes(&rc, &d, idx);
	do {
		if (!arena_bs_is_live(s, gen))
			return -ESTALE;
		if (arena_bs_count(s) > 1)
			n = arena_bs_next(s, gen, ARENA_BS_ALLOC,
					  arena_bs_owner(s),
					  arena_bs_count(s) - 1);
		else
			n = arena_bs_next(s,
					  d.kind == ARENA_PROTO_KIND_BUMP
						  ? gen /* bump.h */
						  : arena_proto_gen_next(gen),
					  ARENA_BS_FREE, 0, 0);
	} while (!atomic_compare_exchange_weak(sp, &s, n));
	if (arena_bs_count(s) > 1)
		return 0;
	give_back(&rc, &d, idx);
	count_free(&rc, id, ai, bytes);
	tally_store(&rc);
	return 1;
}
