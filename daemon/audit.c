// SPDX-License-Identifier: MIT
/*
 * The audit: a read-only walk of the whole region that checks every
 * invariant the design promises, run by the daemon on request while
 * clients keep working (arenactl audit).
 *
 * What it trusts: only what the daemon alone knows.  Offsets come from
 * its private layout, never from the header in the region (which is
 * compared with it); which client ids are attached (and their pids) from
 * its private tables, never from the client-writable table heads (which
 * are compared with them); which channels exist and where their rings
 * lie from its private channel table.  So no byte of the region can steer
 * a read outside it, and the walk never writes.
 *
 * What it checks, per block: a well-formed state word (FREE unowned with
 * count 0, MAG reserved for an attached client, ALLOC with a count); a
 * count equal to its holders (holders.h: the owner if attached, the live
 * ledgers, the copies queued in channels) - more is a leak, fewer is a
 * use-after-free waiting to happen; no reference (ledger entry, queued
 * handle) to a block that is not allocated or to no block at all; per
 * arena, that space adds up: buddy blocks by their words and order bytes
 * are disjoint and taken in the tree, bump chunk words agree with the
 * allocation headers walked in them, no chunk is free while it holds
 * live allocations.  A bitmap bit saying "free" for a slot that is not
 * is only a wrong hint (the state word decides every claim, the library
 * clears such a bit when it meets it, and reclaim can leave one behind
 * in a benign race), so it is reported in a category of its own that
 * does not make the audit fail.  With no client attached the checks that
 * need quiet become exact: the tree's free blocks plus the blocks the
 * words hold make the whole buddy arena, retired chunks count exactly
 * their live allocations.
 *
 * Why it may report only what it can prove: a first pass reads every
 * word once against a snapshot of the ledgers and rings and keeps as
 * candidates whatever disagrees.  Each candidate is then judged alone,
 * up to ROUNDS times: its word is read, the holders are counted (ledgers,
 * rings, ledgers again), the word is read again.  Only when the word did
 * not move (its version changes on every CAS), no live ledger has an
 * operation pending on it and both ledger sums agree is the verdict
 * proof, by the argument of reclaim.c: every operation announces itself
 * as pending before it touches the word or a ring.  A candidate that
 * never holds still is counted busy, not judged.  Findings that no
 * interleaving can produce (a state that no writer writes, a key that
 * names no block) need a single read.  Blocks of a client whose reclaim
 * is still pending are busy too.
 *
 * Cost: one read per state word, a hash lookup per allocated block, one
 * pass over each attached client's ledger and each ring.  Measured on a
 * 1 GiB default region (1.45 million state words): 4-5 ms idle, 25-65
 * ms with 740,000 blocks allocated and 4,096 shared (on a loaded 2-core
 * machine).  The daemon is single-threaded, so everyone else's control
 * requests wait that long; the data path never involves the daemon.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "buddy.h"
#include "bump.h"
#include "handle.h"
#include "holders.h"
#include "ledger.h"
#include "log.h"

#define ROUNDS 8	    /* looks at a moving candidate */
#define CAND_MAX (1u << 20) /* past that, the rest is busy */
#define MAP_MIN 4096u

enum who {
	W_NONE = 0, /* free id, or no client */
	W_LIVE,
	W_PENDING, /* dead, reclaim to be retried */
	W_GONE,	   /* reclaim failed, id retired */
};

enum ckind {
	C_REF,	   /* count against holders; references to it */
	C_HINT,	   /* bitmap bit set for a slot that is not free */
	C_TREE,	   /* buddy block held, tree shows it free */
	C_ORDER,   /* buddy order byte read while the word moved */
	C_OVERLAP, /* buddy block inside another */
	C_CHUNK,   /* bump chunk word against its headers */
};

struct cand {
	uint8_t kind;
	uint8_t open;
	uint16_t ai;
	uint32_t idx; /* block, leaf or chunk */
	uint64_t s1;  /* the word before the holders were counted */
	uint64_t aux; /* a bit or tree byte read in between */
};

struct ment {
	uint64_t key;
	uint32_t led, led2, ring;
	uint8_t pend, dead, seen, pad;
};

struct audit {
	const struct audit_src *src;
	const struct layout *l;
	uint8_t *base;
	struct audit_report *out;
	uint8_t who[ARENA_PROTO_MAX_CLIENTS + 1];
	bool quiet; /* no client attached or pending */
	struct ment *map;
	uint32_t mask, nmap;
	bool frozen; /* count only keys already in the map */
	struct cand *cand;
	uint32_t ncand, cap;
	uint64_t examined;
	int err;
};

/* ---- findings ---- */

static void finding(struct audit *a, uint32_t cat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finding(struct audit *a, uint32_t cat, const char *fmt, ...)
{
	struct arena_proto_audit *s = &a->out->sum;
	struct arena_proto_audit_line *l;
	va_list ap;

	s->found[cat]++;
	if (s->nlines == ARENA_PROTO_AUDIT_LINES)
		return;
	l = &a->out->line[s->nlines++];
	memset(l, 0, sizeof(*l));
	l->cat = cat;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
}

static void busy(struct audit *a)
{
	a->out->sum.busy++;
}

static const struct layout_arena *arena(const struct audit *a, uint32_t ai)
{
	return &a->l->arenas[ai];
}

/* "fixed arena 0 slot 17", "bump arena 3 chunk 2 +4096"... */
static const char *where(const struct audit *a, uint32_t ai, uint64_t idx,
			 char buf[64])
{
	const struct layout_arena *d = arena(a, ai);
	uint64_t off = idx * 8;

	if (d->kind == ARENA_PROTO_KIND_BUMP)
		snprintf(buf, 64, "bump arena %u chunk %llu +%llu", ai,
			 (unsigned long long)(off / d->block_size),
			 (unsigned long long)(off % d->block_size));
	else
		snprintf(buf, 64, "%s arena %u %s %llu",
			 d->kind == ARENA_PROTO_KIND_BUDDY ? "buddy" : "fixed",
			 ai,
			 d->kind == ARENA_PROTO_KIND_BUDDY ? "leaf" : "slot",
			 (unsigned long long)idx);
	return buf;
}

static const char *state_name(uint64_t s)
{
	static const char *const n[] = { "free", "reserved", "allocated",
					 "invalid" };

	return n[arena_bs_state(s)];
}

/* ---- where things are, from the private layout ---- */

static uint64_t *word_at(const struct audit *a, uint32_t ai, uint64_t idx)
{
	const struct layout_arena *d = arena(a, ai);

	return (uint64_t *)(a->base + d->state_off) + idx;
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint8_t load8(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint8_t *table(const struct audit *a, uint32_t id)
{
	return a->base + layout_client_off(a->l, id);
}

static bool claimed(uint64_t s)
{
	return arena_bs_state(s) == ARENA_BS_MAG ||
	       arena_bs_state(s) == ARENA_BS_ALLOC;
}

/* Does key name a block (for bump: a possible header) of the region? */
static bool key_ok(const struct audit *a, uint64_t key)
{
	uint64_t ai = (key >> 32) - 1, idx = (uint32_t)key;

	if ((key >> 32) == 0 || ai >= a->l->narenas)
		return false;
	if (arena(a, ai)->kind == ARENA_PROTO_KIND_BUMP && (idx & 1))
		return false;
	return idx < arena(a, ai)->nblocks;
}

/* ---- the holders map: key -> live ledger sums, queued copies ---- */

static struct ment *map_slot(const struct audit *a, uint64_t key)
{
	uint32_t i = arena_ledger_hash(key, a->mask);

	while (a->map[i].key && a->map[i].key != key)
		i = (i + 1) & a->mask;
	return &a->map[i];
}

static int map_grow(struct audit *a)
{
	struct ment *old = a->map;
	uint32_t omask = a->mask, i, cap = old ? (omask + 1) * 2 : MAP_MIN;

	if (cap == 0)
		return -ENOMEM;
	a->map = calloc(cap, sizeof(*a->map));
	if (!a->map) {
		a->map = old;
		return -ENOMEM;
	}
	a->mask = cap - 1;
	for (i = 0; old && i <= omask; i++)
		if (old[i].key)
			*map_slot(a, old[i].key) = old[i];
	free(old);
	return 0;
}

static struct ment *map_get(struct audit *a, uint64_t key, bool insert)
{
	struct ment *e;

	if (!key)
		return NULL;
	e = map_slot(a, key);
	if (e->key || !insert || a->frozen)
		return e->key ? e : NULL;
	if ((a->nmap + 1) * 2 > a->mask + 1) {
		if (map_grow(a)) {
			a->err = -ENOMEM;
			return NULL;
		}
		e = map_slot(a, key);
	}
	e->key = key;
	a->nmap++;
	return e;
}

static void map_reset(struct audit *a)
{
	memset(a->map, 0, ((size_t)a->mask + 1) * sizeof(*a->map));
	a->nmap = 0;
	a->frozen = false;
}

/*
 * One pass over client id's ledger: pass 1 and 2 sum the live ledgers
 * (before and after the rings), pass 0 marks what a client awaiting
 * reclaim still names.  The first pass of the first look reports entries
 * that name no block: the library writes only keys of real blocks.
 */
static void ledger_scan(struct audit *a, uint32_t id, int pass, bool report)
{
	const uint64_t *l = (const void *)(table(a, id) + a->l->ledger_off);
	uint64_t e, key;
	struct ment *m;
	uint32_t i;

	for (i = 0; i < a->l->ledger_entries; i++) {
		e = load(&l[i]);
		if (!arena_ledger_count(e) && !arena_ledger_pending(e))
			continue;
		key = arena_ledger_key_of(e);
		if (!key_ok(a, key)) {
			if (report && pass == 1)
				finding(a, ARENA_AUDIT_ORPHAN,
					"client %u ledger entry %u: %u "
					"references to key %#llx, no block",
					id, i, arena_ledger_count(e),
					(unsigned long long)key);
			continue;
		}
		m = map_get(a, key, true);
		if (!m)
			continue;
		if (pass == 0)
			m->dead = 1;
		else if (pass == 1)
			m->led += arena_ledger_count(e);
		else
			m->led2 += arena_ledger_count(e);
		if (pass && arena_ledger_pending(e))
			m->pend = 1;
	}
}

/* Channels carry fixed and buddy blocks of this region only. */
static bool handle_ok(const struct audit *a, uint64_t h)
{
	uint64_t ai = (h >> 52) & 0xfff;

	return ai < a->l->narenas &&
	       arena(a, ai)->kind != ARENA_PROTO_KIND_BUMP &&
	       (uint32_t)h < arena(a, ai)->nblocks;
}

static void ring_scan(struct audit *a, uint32_t i, bool report)
{
	const struct chans *t = a->src->chans;
	const struct arena_proto_cell *cell = t->cells + t->slot[i].ring;
	uint32_t j, cap = t->slot[i].capacity;
	struct ment *m;
	uint64_t seq, h;

	for (j = 0; j < cap; j++) {
		seq = __atomic_load_n(&cell[j].seq, __ATOMIC_ACQUIRE);
		if (!holders_cell_full(seq, j, cap))
			continue;
		h = __atomic_load_n(&cell[j].handle, __ATOMIC_RELAXED);
		if (!handle_ok(a, h)) {
			if (report)
				finding(a, ARENA_AUDIT_ORPHAN,
					"channel %u cell %u: handle %#llx "
					"names no block",
					i, j, (unsigned long long)h);
			continue;
		}
		m = map_get(a, holders_handle_key(h), true);
		if (m)
			m->ring++;
	}
}

/* Ledgers, rings, ledgers again: see the top of the file. */
static void holders_count(struct audit *a, bool report)
{
	const struct chans *t = a->src->chans;
	uint32_t id, i;

	for (id = 1; id <= a->l->max_clients; id++)
		if (a->who[id] == W_LIVE)
			ledger_scan(a, id, 1, report);
	for (i = 0; i < t->nchan; i++)
		if (t->slot[i].capacity)
			ring_scan(a, i, report);
	for (id = 1; id <= a->l->max_clients; id++)
		if (a->who[id] == W_LIVE)
			ledger_scan(a, id, 2, false);
	for (id = 1; id <= a->l->max_clients; id++)
		if (a->who[id] == W_PENDING)
			ledger_scan(a, id, 0, false);
}

/* ---- candidates ---- */

static void cand_add(struct audit *a, enum ckind k, uint32_t ai, uint64_t idx)
{
	struct cand *n;

	if (a->ncand == a->cap) {
		if (a->cap >= CAND_MAX) {
			busy(a);
			return;
		}
		n = realloc(a->cand, (a->cap ? a->cap * 2 : 256) * sizeof(*n));
		if (!n) {
			a->err = -ENOMEM;
			busy(a);
			return;
		}
		a->cand = n;
		a->cap = a->cap ? a->cap * 2 : 256;
	}
	a->cand[a->ncand++] = (struct cand){ .kind = (uint8_t)k,
					     .open = 1,
					     .ai = (uint16_t)ai,
					     .idx = (uint32_t)idx };
}

/* ---- single-read checks: what no interleaving can produce ---- */

/* Judge a word's form; false when it was reported (or is busy). */
static bool word_ok(struct audit *a, uint32_t ai, uint64_t idx, uint64_t s)
{
	uint32_t st = arena_bs_state(s), own = arena_bs_owner(s);
	uint32_t n = arena_bs_count(s);
	char w[64];

	if (st == 3 || (st == ARENA_BS_FREE && (own || n)) ||
	    (st == ARENA_BS_MAG && n) || (st == ARENA_BS_ALLOC && !n)) {
		finding(a, ARENA_AUDIT_STATE,
			"%s: malformed state word %#llx (%s, owner %u, "
			"count %u)",
			where(a, ai, idx, w), (unsigned long long)s,
			state_name(s), own, n);
		return false;
	}
	if (st != ARENA_BS_MAG || a->who[own] == W_LIVE)
		return true;
	if (a->who[own] == W_PENDING) {
		busy(a);
		return false;
	}
	finding(a, ARENA_AUDIT_STATE,
		"%s: reserved for client %u, which is not attached",
		where(a, ai, idx, w), own);
	return false;
}

/* An allocated block in the first pass: a candidate unless it adds up. */
static void ref_first(struct audit *a, uint32_t ai, uint64_t idx, uint64_t s)
{
	struct ment *m = map_get(a, arena_ledger_key(ai, (uint32_t)idx), false);
	uint32_t own = arena_bs_owner(s);

	if (m)
		m->seen = 1;
	if (a->who[own] == W_PENDING || (m && m->dead)) {
		busy(a);
		return;
	}
	if ((m && (m->pend || m->led != m->led2)) ||
	    arena_bs_count(s) != holders_expected(a->who[own] == W_LIVE,
						  m ? m->led : 0,
						  m ? m->ring : 0))
		cand_add(a, C_REF, ai, idx);
}

/* ---- fixed-slot arenas ---- */

static bool bit_free(const struct audit *a, const struct layout_arena *d,
		     uint64_t idx)
{
	const uint64_t *w =
		(const void *)(a->base + d->bitmap_off + (idx / 64) * 64);

	return load(w) >> (idx % 64) & 1;
}

static void fixed_walk(struct audit *a, uint32_t ai)
{
	const struct layout_arena *d = arena(a, ai);
	uint64_t i, s;

	for (i = 0; i < d->nblocks; i++) {
		s = load(word_at(a, ai, i));
		a->examined++;
		if (!word_ok(a, ai, i, s))
			continue;
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			ref_first(a, ai, i, s);
		if (arena_bs_state(s) != ARENA_BS_FREE && bit_free(a, d, i))
			cand_add(a, C_HINT, ai, i);
	}
}

/* ---- buddy arenas ---- */

static uint8_t order_at(const struct audit *a, uint32_t ai, uint64_t leaf)
{
	return load8(a->base + arena(a, ai)->order_off + leaf);
}

static bool order_fits(const struct layout_arena *d, uint64_t leaf, uint8_t o)
{
	return o <= d->max_order && !(leaf & ((1ull << o) - 1));
}

static uint8_t node_at(const struct audit *a, uint32_t ai, uint64_t leaf,
		       uint8_t o)
{
	const struct layout_arena *d = arena(a, ai);

	return load8(a->base + d->tree_off +
		     ((1ull << (d->max_order - o)) + (leaf >> o)));
}

static void order_bad(struct audit *a, uint32_t ai, uint64_t i, uint8_t o)
{
	char w[64];

	finding(a, ARENA_AUDIT_STATE,
		"%s: order byte %u names no block there (max order %u)",
		where(a, ai, i, w), o, arena(a, ai)->max_order);
}

/* One claimed first leaf; returns the leaves it holds (0: reported). */
static uint64_t buddy_block(struct audit *a, uint32_t ai, uint64_t i,
			    uint64_t s, uint8_t *priv)
{
	const struct layout_arena *d = arena(a, ai);
	const struct arena_buddy_geom g = { .max_order = d->max_order };
	uint8_t o = order_at(a, ai, i);

	if (load(word_at(a, ai, i)) != s) {
		cand_add(a, C_ORDER, ai, i);
		return 0;
	}
	if (!order_fits(d, i, o)) {
		order_bad(a, ai, i, o);
		return 0;
	}
	if (arena_buddy_mark(priv, &g, (uint32_t)i, o)) {
		cand_add(a, C_OVERLAP, ai, i);
		return 0;
	}
	if (!(node_at(a, ai, i, o) & ARENA_BN_OCC))
		cand_add(a, C_TREE, ai, i);
	if (arena_bs_state(s) == ARENA_BS_ALLOC)
		ref_first(a, ai, i, s);
	return 1ull << o;
}

/* With nobody attached the tree and the words must tile the arena. */
static void buddy_space(struct audit *a, uint32_t ai, uint64_t held)
{
	const struct layout_arena *d = arena(a, ai);
	const struct arena_buddy_geom g = { .max_order = d->max_order };
	struct arena_buddy_free f;

	arena_buddy_scan(a->base + d->tree_off, &g, &f);
	if (f.leaves + held == d->nblocks)
		return;
	finding(a, ARENA_AUDIT_SPACE,
		"buddy arena %u: tree shows %llu leaves free, blocks hold "
		"%llu, the arena has %llu",
		ai, (unsigned long long)f.leaves, (unsigned long long)held,
		(unsigned long long)d->nblocks);
}

static void buddy_walk(struct audit *a, uint32_t ai)
{
	const struct layout_arena *d = arena(a, ai);
	uint8_t *priv = calloc(1, d->tree_len);
	uint64_t i, s, n, held = 0;
	bool whole = true;

	if (!priv) {
		a->err = -ENOMEM;
		return;
	}
	for (i = 0; i < d->nblocks; i++) {
		s = load(word_at(a, ai, i));
		a->examined++;
		if (!word_ok(a, ai, i, s)) {
			whole = false;
			continue;
		}
		if (!claimed(s))
			continue;
		n = buddy_block(a, ai, i, s, priv);
		whole = whole && n;
		held += n;
	}
	if (a->quiet && whole)
		buddy_space(a, ai, held);
	free(priv);
}

/* ---- the bump arena ---- */

static uint64_t *chunk_word(const struct audit *a, uint32_t ai, uint64_t ci)
{
	struct arena_bump_hdr *h = (void *)(a->base + arena(a, ai)->bump_off);

	return &h->chunks[ci].word;
}

/* Allocations of chunk ci at gen, judging each header when judge. */
static uint64_t headers_walk(struct audit *a, uint32_t ai, uint64_t ci,
			     uint32_t gen, bool judge)
{
	const struct layout_arena *d = arena(a, ai);
	const uint8_t *data = a->base + d->data_off + ci * d->block_size;
	uint64_t off, next, s, idx, live = 0;

	for (off = 0;
	     arena_bump_header(data, off, d->block_size, gen, &s, &next);
	     off = next) {
		live += arena_bs_state(s) == ARENA_BS_ALLOC;
		if (!judge)
			continue;
		idx = (ci * d->block_size + off) / 8;
		a->examined++;
		if (word_ok(a, ai, idx, s) &&
		    arena_bs_state(s) == ARENA_BS_ALLOC)
			ref_first(a, ai, idx, s);
	}
	return live;
}

static bool chunk_form_ok(struct audit *a, uint32_t ai, uint64_t ci, uint64_t w)
{
	uint32_t st = arena_bump_state(w), own = arena_bump_owner(w);
	uint64_t n = arena_bump_count(w);

	if (st != 3 && !(st == ARENA_BUMP_FREE && (own || n)) &&
	    !(st == ARENA_BUMP_RETIRED && (own || !n)))
		return true;
	finding(a, ARENA_AUDIT_STATE,
		"bump arena %u chunk %llu: malformed chunk word %#llx "
		"(state %u, owner %u, count %llu)",
		ai, (unsigned long long)ci, (unsigned long long)w, st, own,
		(unsigned long long)n);
	return false;
}

static bool chunk_owner_ok(struct audit *a, uint32_t ai, uint64_t ci,
			   uint32_t own)
{
	if (a->who[own] == W_LIVE)
		return true;
	if (a->who[own] == W_PENDING) {
		busy(a);
		return false;
	}
	finding(a, ARENA_AUDIT_LEAK,
		"bump arena %u chunk %llu: owned by client %u, which is not "
		"attached",
		ai, (unsigned long long)ci, own);
	return false;
}

static void chunk_check(struct audit *a, uint32_t ai, uint64_t ci)
{
	uint64_t w = load(chunk_word(a, ai, ci)), live;
	uint32_t st = arena_bump_state(w);

	a->examined++;
	if (!chunk_form_ok(a, ai, ci, w))
		return;
	if (st == ARENA_BUMP_FREE) {
		if (headers_walk(a, ai, ci, arena_bump_gen(w), false))
			cand_add(a, C_CHUNK, ai, ci);
		return;
	}
	if (st == ARENA_BUMP_OWNED &&
	    !chunk_owner_ok(a, ai, ci, arena_bump_owner(w)))
		return;
	live = headers_walk(a, ai, ci, arena_bump_gen(w), true);
	if (st == ARENA_BUMP_RETIRED &&
	    (live > arena_bump_count(w) ||
	     (a->quiet && live != arena_bump_count(w))))
		cand_add(a, C_CHUNK, ai, ci);
}

static void bump_walk(struct audit *a, uint32_t ai)
{
	uint64_t ci;

	for (ci = 0; ci < arena(a, ai)->nchunks; ci++)
		chunk_check(a, ai, ci);
}

/* ---- tables and header ---- */

static void header_check(struct audit *a)
{
	int bad = layout_verify(a->l, a->base);

	a->examined++;
	if (bad < 0)
		return;
	if (bad == (int)ARENA_PROTO_MAX_ARENAS)
		finding(a, ARENA_AUDIT_HEADER,
			"region header differs from the daemon's layout");
	else
		finding(a, ARENA_AUDIT_HEADER,
			"arena %d descriptor differs from the daemon's layout",
			bad);
}

static void head_check(struct audit *a, uint32_t id, uint8_t slot)
{
	const struct arena_proto_client *h = (const void *)table(a, id);
	uint32_t st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
	int32_t pid = a->src->pids ? a->src->pids[id] : 0;

	a->examined++;
	if (slot == CLIENT_SLOT_QUARANTINED)
		finding(a, ARENA_AUDIT_LEAK,
			"client %u: reclaim failed, id retired; what it held "
			"stays allocated",
			id);
	else if (slot == CLIENT_SLOT_LIVE &&
		 (st != ARENA_PROTO_CLIENT_LIVE || h->id != id ||
		  (pid && h->pid != pid)))
		finding(a, ARENA_AUDIT_CLIENT,
			"client %u (pid %d): its table says state %u, id %u, "
			"pid %d",
			id, pid, st, h->id, h->pid);
	else if (slot == CLIENT_SLOT_FREE && st != ARENA_PROTO_CLIENT_FREE)
		finding(a, ARENA_AUDIT_CLIENT,
			"client table %u: says state %u, but the id is free",
			id, st);
	else if (slot == CLIENT_SLOT_RECLAIM)
		busy(a);
}

static void who_init(struct audit *a)
{
	const struct clients *c = a->src->clients;
	uint32_t id;

	a->quiet = !c->nlive && !c->npending;
	for (id = 1; id <= a->l->max_clients; id++) {
		switch (c->slot[id]) {
		case CLIENT_SLOT_LIVE:
			a->who[id] = W_LIVE;
			break;
		case CLIENT_SLOT_RECLAIM:
			a->who[id] = W_PENDING;
			break;
		case CLIENT_SLOT_QUARANTINED:
			a->who[id] = W_GONE;
			break;
		default:
			a->who[id] = W_NONE;
		}
		head_check(a, id, c->slot[id]);
	}
}

/* References to blocks the walk did not find allocated. */
static void orphans(struct audit *a)
{
	uint32_t i;
	uint64_t k;

	for (i = 0; i <= a->mask; i++) {
		k = a->map[i].key;
		if (!k || a->map[i].seen || a->map[i].dead ||
		    !(a->map[i].led || a->map[i].led2 || a->map[i].ring))
			continue;
		cand_add(a, C_REF, (uint32_t)(k >> 32) - 1, (uint32_t)k);
	}
}

/* ---- judging the candidates ---- */

static void ref_judge(struct audit *a, struct cand *c, uint64_t s)
{
	struct ment *m = map_get(a, arena_ledger_key(c->ai, c->idx), false);
	uint32_t own = arena_bs_owner(s), led = m ? m->led : 0;
	uint32_t q = m ? m->ring : 0;
	uint64_t exp;
	char w[64];

	if (m && (m->pend || m->led != m->led2))
		return; /* moving: look again */
	c->open = 0;
	if ((m && m->dead) || (claimed(s) && a->who[own] == W_PENDING)) {
		busy(a);
		return;
	}
	where(a, c->ai, c->idx, w);
	if (arena_bs_state(s) != ARENA_BS_ALLOC) {
		if (led + q)
			finding(a, ARENA_AUDIT_ORPHAN,
				"%s: %s, yet live ledgers hold %u references "
				"and channels %u",
				w, state_name(s), led, q);
		return;
	}
	exp = holders_expected(a->who[own] == W_LIVE, led, q);
	if (arena_bs_count(s) > exp)
		finding(a, ARENA_AUDIT_LEAK,
			"%s: count %u, live holders %llu (owner %u, ledgers "
			"%u, queued %u): a leak",
			w, arena_bs_count(s), (unsigned long long)exp, own, led,
			q);
	else if (arena_bs_count(s) < exp)
		finding(a, ARENA_AUDIT_COUNT_LOW,
			"%s: count %u, but %llu holders (owner %u, ledgers "
			"%u, queued %u)",
			w, arena_bs_count(s), (unsigned long long)exp, own, led,
			q);
}

static void hint_judge(struct audit *a, struct cand *c, uint64_t s)
{
	char w[64];

	c->open = 0;
	if (arena_bs_state(s) != ARENA_BS_FREE && c->aux)
		finding(a, ARENA_AUDIT_HINT,
			"%s: bitmap says free, the slot is %s (a stale hint)",
			where(a, c->ai, c->idx, w), state_name(s));
}

/* aux: the tree byte, and the order byte before (bits 8..15), after. */
static void tree_judge(struct audit *a, struct cand *c, uint64_t s)
{
	uint8_t o = (uint8_t)(c->aux >> 8);
	char w[64];

	if (o != order_at(a, c->ai, c->idx))
		return;
	c->open = 0;
	if (!claimed(s) || !order_fits(arena(a, c->ai), c->idx, o) ||
	    (c->aux & ARENA_BN_OCC))
		return;
	finding(a, ARENA_AUDIT_SPACE,
		"%s: %s block of order %u, but the tree shows it free",
		where(a, c->ai, c->idx, w), state_name(s), o);
}

static void order_judge(struct audit *a, struct cand *c)
{
	uint64_t s = load(word_at(a, c->ai, c->idx));
	uint8_t o = order_at(a, c->ai, c->idx);

	if (load(word_at(a, c->ai, c->idx)) != s)
		return;
	c->open = 0;
	if (claimed(s) && !order_fits(arena(a, c->ai), c->idx, o))
		order_bad(a, c->ai, c->idx, o);
}

/*
 * Leaf i's block inside a block that starts at an aligned leaf j before
 * it: read every candidate j and i, twice; judge only what held still.
 */
static void overlap_judge(struct audit *a, struct cand *c)
{
	const struct layout_arena *d = arena(a, c->ai);
	uint64_t s[ARENA_BUDDY_ORDERS + 1], i = c->idx, j;
	uint8_t o[ARENA_BUDDY_ORDERS + 1];
	uint32_t k, pass;
	char w[64];

	for (pass = 0; pass < 2; pass++)
		for (k = 0; k <= d->max_order; k++) {
			j = i & ~((1ull << k) - 1);
			if (pass && (load(word_at(a, c->ai, j)) != s[k] ||
				     order_at(a, c->ai, j) != o[k]))
				return; /* moved: look again */
			s[k] = load(word_at(a, c->ai, j));
			o[k] = order_at(a, c->ai, j);
		}
	c->open = 0;
	for (k = 1; claimed(s[0]) && k <= d->max_order; k++) {
		j = i & ~((1ull << k) - 1);
		if (j == i || !claimed(s[k]) || o[k] < k || o[k] > d->max_order)
			continue;
		finding(a, ARENA_AUDIT_OVERLAP,
			"%s: a block of order %u inside the block at leaf %llu "
			"(order %u)",
			where(a, c->ai, i, w), o[0], (unsigned long long)j,
			o[k]);
		return;
	}
}

static void chunk_judge(struct audit *a, struct cand *c)
{
	uint64_t *cw = chunk_word(a, c->ai, c->idx), w = load(cw), n;

	n = headers_walk(a, c->ai, c->idx, arena_bump_gen(w), false);
	if (load(cw) != w ||
	    headers_walk(a, c->ai, c->idx, arena_bump_gen(w), false) != n)
		return;
	c->open = 0;
	if (arena_bump_state(w) == ARENA_BUMP_FREE && n)
		finding(a, ARENA_AUDIT_OVERLAP,
			"bump arena %u chunk %u: free, yet %llu allocations "
			"in it are live",
			c->ai, c->idx, (unsigned long long)n);
	else if (arena_bump_state(w) == ARENA_BUMP_RETIRED &&
		 (n > arena_bump_count(w) ||
		  (a->quiet && n != arena_bump_count(w))))
		finding(a, ARENA_AUDIT_SPACE,
			"bump arena %u chunk %u: retired with %llu live "
			"allocations, its headers show %llu",
			c->ai, c->idx, (unsigned long long)arena_bump_count(w),
			(unsigned long long)n);
}

static bool needs_holders(const struct cand *c)
{
	return c->open &&
	       (c->kind == C_REF || c->kind == C_HINT || c->kind == C_TREE);
}

/* Between the two reads of the words: what each kind looks at. */
static void round_middle(struct audit *a)
{
	const struct layout_arena *d;
	struct cand *c;
	uint32_t i;

	for (i = 0; i < a->ncand; i++) {
		c = &a->cand[i];
		if (!needs_holders(c))
			continue;
		d = arena(a, c->ai);
		if (c->kind == C_REF)
			map_get(a, arena_ledger_key(c->ai, c->idx), true);
		else if (c->kind == C_HINT)
			c->aux = bit_free(a, d, c->idx);
		else
			c->aux = (uint64_t)order_at(a, c->ai, c->idx) << 8;
	}
	a->frozen = true;
	holders_count(a, false);
	for (i = 0; i < a->ncand; i++) {
		c = &a->cand[i];
		if (needs_holders(c) && c->kind == C_TREE &&
		    order_fits(arena(a, c->ai), c->idx, (uint8_t)(c->aux >> 8)))
			c->aux |= node_at(a, c->ai, c->idx,
					  (uint8_t)(c->aux >> 8));
	}
}

static void round_judge(struct audit *a, struct cand *c)
{
	uint64_t s;

	if (!c->open)
		return;
	if (c->kind == C_ORDER)
		return order_judge(a, c);
	if (c->kind == C_OVERLAP)
		return overlap_judge(a, c);
	if (c->kind == C_CHUNK)
		return chunk_judge(a, c);
	s = load(word_at(a, c->ai, c->idx));
	if (s != c->s1)
		return; /* moved: look again */
	if (c->kind == C_REF)
		ref_judge(a, c, s);
	else if (c->kind == C_HINT)
		hint_judge(a, c, s);
	else
		tree_judge(a, c, s);
}

static uint32_t round_once(struct audit *a)
{
	uint32_t i, open = 0;

	for (i = 0; i < a->ncand; i++)
		if (needs_holders(&a->cand[i]))
			a->cand[i].s1 =
				load(word_at(a, a->cand[i].ai, a->cand[i].idx));
	map_reset(a);
	round_middle(a);
	for (i = 0; i < a->ncand; i++) {
		round_judge(a, &a->cand[i]);
		open += a->cand[i].open;
	}
	return open;
}

static void candidates_judge(struct audit *a)
{
	struct timespec nap = { .tv_nsec = 200 * 1000 };
	uint32_t r, open = a->ncand, i;

	for (r = 0; r < ROUNDS && open; r++) {
		if (r)
			nanosleep(&nap, NULL); /* let a mover finish */
		open = round_once(a);
	}
	for (i = 0; i < a->ncand; i++)
		if (a->cand[i].open)
			busy(a);
}

/* ---- the whole ---- */

static void arenas_walk(struct audit *a)
{
	uint32_t ai;

	for (ai = 0; ai < a->l->narenas; ai++) {
		if (arena(a, ai)->kind == ARENA_PROTO_KIND_FIXED)
			fixed_walk(a, ai);
		else if (arena(a, ai)->kind == ARENA_PROTO_KIND_BUDDY)
			buddy_walk(a, ai);
		else
			bump_walk(a, ai);
	}
}

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static void summary(const struct audit *a, uint64_t start)
{
	struct arena_proto_audit *s = &a->out->sum;
	uint64_t bad = 0;
	uint32_t i;

	s->checked = a->examined > s->busy ? a->examined - s->busy : 0;
	s->elapsed_us = now_us() - start;
	for (i = 0; i < ARENA_AUDIT_NCAT; i++)
		if (i != ARENA_AUDIT_HINT)
			bad += s->found[i];
	LOG(bad ? LOG_WARN : LOG_INFO,
	    "audit: %llu checked, %u looked at again, %llu busy, %llu "
	    "problems, %llu stale hints in %llu us",
	    (unsigned long long)s->checked, a->ncand,
	    (unsigned long long)s->busy, (unsigned long long)bad,
	    (unsigned long long)s->found[ARENA_AUDIT_HINT],
	    (unsigned long long)s->elapsed_us);
}

int audit_run(const struct audit_src *src, struct audit_report *out)
{
	static struct audit a; /* large; the daemon is single-threaded */
	uint64_t start = now_us();

	memset(&a, 0, sizeof(a));
	memset(out, 0, sizeof(*out));
	a.src = src;
	a.l = src->layout;
	a.base = src->region->base;
	a.out = out;
	if (map_grow(&a))
		return -ENOMEM;
	header_check(&a);
	who_init(&a);
	holders_count(&a, true);
	arenas_walk(&a);
	orphans(&a);
	a.frozen = true;
	candidates_judge(&a);
	free(a.map);
	free(a.cand);
	summary(&a, start);
	return a.err;
}

uint32_t audit_encode(const struct audit_report *r, void *buf)
{
	uint8_t *p = buf;

	memcpy(p, &r->sum, sizeof(r->sum));
	memcpy(p + sizeof(r->sum), r->line, r->sum.nlines * sizeof(r->line[0]));
	return arena_proto_audit_len(r->sum.nlines);
}
