// SPDX-License-Identifier: MIT
/*
 * Region layout: from the options to an offset for everything, following
 * proto/layout.h.  Pure computation, so it is unit-tested without a
 * daemon; layout_write() then stamps the result into the fresh memfd.
 *
 *   [0]            header + arena descriptors, rounded up to a page
 *   chan_off       channel table and cells (with channels)
 *   wait_off       narenas wait queues and shared metrics, one struct
 *                  arena_proto_wait each
 *   clients_off    max_clients client tables of client_stride bytes:
 *                  head (64 B), counters at ctr_off
 *                  [ARENA_PROTO_STAT_SLOTS][narenas], buddy counters at
 *                  bctr_off, journal at jnl_off, ledger at ledger_off
 *   per arena      bitmap, state words, data; each section page aligned,
 *                  data also to the largest power of two dividing the
 *                  block size
 *
 * Default layout (--size alone): of what remains after the header and the
 * client tables, 50% goes to fixed-slot arenas of 64 B, 128 B, ... 64 KiB,
 * each class getting an equal share of bytes; 25% is the buddy arena's
 * share and 25% the bump arena's.
 * While some class's share holds no block, the largest such class is
 * dropped and the shares recomputed over the classes left; if none is
 * left the layout does not fit.  With --fixed, exactly the classes given,
 * sorted by size, with exactly their counts, and no reserved shares.
 *
 * The buddy arena (the last arena when there is one) is a power of two
 * of bytes in leaves of the minimum block: by default the largest that
 * fits its share with its metadata, left out when not even one leaf
 * does; --buddy SIZE places it at the start of the second half instead
 * (the bump share gets what it leaves), or after the --fixed classes.
 * Its data is aligned to its own size so that every block is aligned to
 * its size; the state words, order bytes and tree go in the gap the
 * alignment leaves when they fit there, else after the data.
 *
 * The bump arena (the last arena when there is one) is as many chunks
 * (1 MiB unless --bump says otherwise) as fit the bump share, after its
 * cursor line and chunk records; --bump SIZE asks for SIZE / CHUNK
 * chunks there instead, or after the other arenas with --fixed.
 *
 * All arithmetic is overflow-checked: sizes come from the command line.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "buddy.h"
#include "bump.h"
#include "handle.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "size.h"

#define PAGE ((uint64_t)ARENA_PROTO_PAGE)
#define LINE ((uint64_t)ARENA_PROTO_CACHELINE)

static const uint64_t default_classes[LAYOUT_DEFAULT_CLASSES] = {
	64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
};

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/*
 * Data is aligned to the largest power of two dividing the block size
 * (at least a page), so that every block is naturally aligned in a
 * mapping aligned as much (include/arena/arena.h promises that).
 */
static uint64_t block_align(uint64_t b)
{
	uint64_t low = b & -b;

	return low > PAGE ? low : PAGE;
}

/* Place n blocks of b bytes at off: bitmap, state words, aligned data. */
static int arena_place(struct layout_arena *a, uint64_t off, uint64_t b,
		       uint64_t n)
{
	if (n > UINT32_MAX || __builtin_mul_overflow(n, b, &a->data_len) ||
	    a->data_len > (UINT64_MAX >> 2) || off > (UINT64_MAX >> 2))
		return -ERANGE;
	a->kind = ARENA_PROTO_KIND_FIXED;
	a->block_size = b;
	a->nblocks = n;
	a->nwords = (n + 63) / 64;
	a->bitmap_off = off;
	a->state_off = off + align_up(a->nwords * LINE, PAGE);
	a->data_off =
		align_up(a->state_off + align_up(n * 8, PAGE), block_align(b));
	a->end = a->data_off + align_up(a->data_len, PAGE);
	return 0;
}

/* The most blocks of b bytes whose arena fits in share bytes from off. */
static uint64_t blocks_for(uint64_t off, uint64_t b, uint64_t share)
{
	uint64_t lo = 0, hi = share / b, mid;
	struct layout_arena a;

	if (hi > UINT32_MAX)
		hi = UINT32_MAX;
	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		if (!arena_place(&a, off, b, mid) && a.end - off <= share)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static unsigned log2u(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/*
 * Place a buddy arena of size bytes in leaves of min bytes (both powers
 * of two, validated) at off: data aligned to size, metadata in the gap
 * before it when it fits there, else after it.
 */
static int buddy_place(struct layout_arena *a, uint64_t off, uint64_t size,
		       uint64_t min)
{
	uint64_t n = size / min, state = align_up(n * 8, PAGE);
	uint64_t order = align_up(n, PAGE), tree = align_up(2 * n, PAGE), at;

	if (off > (UINT64_MAX >> 3) || size > (UINT64_MAX >> 3))
		return -ERANGE;
	memset(a, 0, sizeof(*a));
	a->kind = ARENA_PROTO_KIND_BUDDY;
	a->block_size = min;
	a->nblocks = n;
	a->max_order = log2u(n);
	a->data_len = size;
	a->data_off = align_up(off, size > PAGE ? size : PAGE);
	at = a->data_off - off >= state + order + tree ? off
						       : a->data_off + size;
	a->state_off = at;
	a->order_off = at + state;
	a->tree_off = a->order_off + order;
	a->tree_len = 2 * n;
	a->end = a->data_off + size;
	if (a->tree_off + tree > a->end)
		a->end = a->tree_off + tree;
	return 0;
}

/* The largest buddy arena of min-byte leaves within [off, off + len). */
static int buddy_fit(struct layout_arena *a, uint64_t off, uint64_t len,
		     uint64_t min)
{
	uint64_t s;

	if (len < min)
		return -ENOSPC;
	for (s = 1ull << log2u(len); s >= min; s >>= 1)
		if (s / min <= (1ull << ARENA_BUDDY_MAX_ORDER) &&
		    !buddy_place(a, off, s, min) && a->end - off <= len)
			return 0;
	return -ENOSPC;
}

/*
 * Place a bump arena of n chunks of chunk bytes at off: the cursor line
 * and chunk records (proto/bump.h), then the data, page aligned.
 */
static int bump_place(struct layout_arena *a, uint64_t off, uint64_t chunk,
		      uint64_t n)
{
	memset(a, 0, sizeof(*a));
	if (n == 0 || n > UINT32_MAX || off > (UINT64_MAX >> 3) ||
	    n > (8ull * UINT32_MAX) / chunk)
		return -ERANGE;
	a->kind = ARENA_PROTO_KIND_BUMP;
	a->block_size = chunk;
	a->nchunks = n;
	a->data_len = n * chunk;
	a->nblocks = a->data_len / 8;
	a->bump_off = off;
	a->data_off = align_up(off + sizeof(struct arena_bump_hdr) +
				       n * sizeof(struct arena_bump_chunk),
			       PAGE);
	a->state_off = a->data_off;
	a->end = a->data_off + a->data_len;
	return 0;
}

/* The most chunks that fit in [off, off + len); -ENOSPC: not one. */
static int bump_fit(struct layout_arena *a, uint64_t off, uint64_t len,
		    uint64_t chunk)
{
	uint64_t n = len / (chunk + sizeof(struct arena_bump_chunk));

	if (n > (8ull * UINT32_MAX) / chunk)
		n = (8ull * UINT32_MAX) / chunk;
	for (; n > 0; n--)
		if (!bump_place(a, off, chunk, n) && a->end - off <= len)
			return 0;
	return -ENOSPC;
}

static uint64_t bump_chunk(const struct layout_req *req)
{
	return req->bump_chunk ? req->bump_chunk : ARENA_BUMP_CHUNK_DEFAULT;
}

/* Header and client tables for nfixed + nbuddy + nbump arenas; their end. */
static uint64_t clients_place(struct layout *l, uint32_t nfixed)
{
	uint32_t narenas = nfixed + l->nbuddy + l->nbump;
	uint64_t ctr_len = (uint64_t)ARENA_PROTO_STAT_SLOTS * narenas *
			   sizeof(struct arena_proto_ctr);

	l->narenas = narenas;
	l->hdr_len = align_up(sizeof(struct arena_proto_region), PAGE);
	l->wait_off = l->hdr_len;
	if (l->nchan) { /* the channel table and its cells, then waits */
		l->chan_off = l->hdr_len;
		l->chan_cells_off =
			l->chan_off +
			(uint64_t)l->nchan * sizeof(struct arena_proto_chan);
		l->wait_off = align_up(
			l->chan_cells_off +
				(uint64_t)l->chan_cells *
					sizeof(struct arena_proto_cell),
			PAGE);
	}
	l->clients_off = align_up(
		l->wait_off + narenas * sizeof(struct arena_proto_wait), PAGE);
	l->ctr_off = sizeof(struct arena_proto_client);
	l->bctr_off = l->ctr_off + ctr_len;
	l->jnl_off =
		align_up(l->bctr_off + ARENA_PROTO_STAT_SLOTS *
					       sizeof(struct arena_proto_bctr),
			 LINE);
	l->ledger_off =
		align_up(l->jnl_off + ARENA_PROTO_JNL_ENTRIES * 8, LINE);
	l->client_stride =
		align_up(l->ledger_off + (uint64_t)l->ledger_entries * 8, PAGE);
	return l->clients_off + l->max_clients * l->client_stride;
}

static bool class_ok(const struct layout_class *c)
{
	return c->block_size >= ARENA_PROTO_MIN_BLOCK &&
	       c->block_size <= ARENA_PROTO_MAX_FIXED &&
	       c->block_size % 16 == 0 && c->count >= 1 &&
	       c->count <= UINT32_MAX;
}

/* Buddy size and minimum block: powers of two, at most 2^31 leaves. */
static bool buddy_req_ok(const struct layout_req *req)
{
	uint64_t min = req->buddy_min ? req->buddy_min : LAYOUT_BUDDY_MIN;

	if (!pow2(min) || min < ARENA_PROTO_MIN_BLOCK)
		return false;
	if (!req->buddy_size)
		return true;
	return pow2(req->buddy_size) && req->buddy_size >= min &&
	       req->buddy_size / min <= (1ull << ARENA_BUDDY_MAX_ORDER);
}

static bool req_ok(const struct layout_req *req)
{
	uint32_t le = req->ledger_entries, i;

	if (!req->size || !req->max_clients ||
	    req->max_clients > ARENA_PROTO_MAX_CLIENTS)
		return false;
	if (le < 64 || le > (1u << 20) || (le & (le - 1)))
		return false;
	if (req->channels > ARENA_PROTO_CHAN_MAX ||
	    req->chan_cells > ARENA_PROTO_CHAN_MAX_CELLS ||
	    (req->channels && req->chan_cells < 2))
		return false;
	if (req->nfixed > ARENA_PROTO_MAX_ARENAS - (req->buddy_size ? 1 : 0) -
				  (req->bump_size ? 1 : 0))
		return false;
	if (req->bump_chunk &&
	    (!pow2(req->bump_chunk) || req->bump_chunk < ARENA_BUMP_CHUNK_MIN ||
	     req->bump_chunk > ARENA_BUMP_CHUNK_MAX))
		return false;
	if (req->bump_size && req->bump_size < bump_chunk(req))
		return false;
	for (i = 0; i < req->nfixed; i++)
		if (!class_ok(&req->fixed[i]))
			return false;
	if (req->ninit > LAYOUT_MAX_INIT)
		return false;
	for (i = 0; i < req->ninit; i++)
		if (req->init[i].kind > ARENA_PROTO_KIND_BUMP ||
		    req->init[i].zero > 1 ||
		    (req->init[i].size &&
		     req->init[i].kind != ARENA_PROTO_KIND_FIXED))
			return false;
	return buddy_req_ok(req);
}

/* Classes sorted ascending; -EINVAL on a duplicate size. */
static int classes_sort(struct layout_class *c, uint32_t n)
{
	struct layout_class t;
	uint32_t i, j;

	for (i = 1; i < n; i++) {
		t = c[i];
		for (j = i; j > 0 && c[j - 1].block_size > t.block_size; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
	for (i = 1; i < n; i++)
		if (c[i].block_size == c[i - 1].block_size)
			return -EINVAL;
	return 0;
}

static int layout_fixed(const struct layout_req *req, struct layout *l)
{
	struct layout_class cls[ARENA_PROTO_MAX_ARENAS];
	uint64_t end;
	uint32_t i;

	memcpy(cls, req->fixed, sizeof(cls[0]) * req->nfixed);
	if (classes_sort(cls, req->nfixed))
		return -EINVAL;
	l->nbuddy = req->buddy_size ? 1 : 0;
	l->nbump = req->bump_size ? 1 : 0;
	end = clients_place(l, req->nfixed);
	for (i = 0; i < req->nfixed; i++) {
		if (arena_place(&l->arenas[i], end, cls[i].block_size,
				cls[i].count))
			return -ENOSPC; /* need stays 0: past 2^62 */
		end = l->arenas[i].end;
	}
	if (l->nbuddy) {
		if (buddy_place(&l->arenas[i], end, req->buddy_size,
				req->buddy_min ? req->buddy_min
					       : LAYOUT_BUDDY_MIN))
			return -ENOSPC;
		end = l->arenas[i].end;
		i++;
	}
	if (l->nbump) {
		if (bump_place(&l->arenas[i], end, bump_chunk(req),
			       req->bump_size / bump_chunk(req)))
			return -ENOSPC;
		end = l->arenas[i].end;
	}
	l->used = end;
	if (end > l->size) {
		l->need = end;
		return -ENOSPC;
	}
	return 0;
}

/* Smallest default region: one 64 B slot (three pages) in half the rest. */
static void default_need(struct layout *l)
{
	l->need = clients_place(l, 1) + 6 * PAGE;
}

/* Per-class share of the default layout; 0 when the tables do not fit. */
static uint64_t default_share(struct layout *l, uint32_t n, uint64_t *zone)
{
	uint64_t end = clients_place(l, n);
	uint64_t usable = l->size & ~(PAGE - 1);

	*zone = 0;
	if (end >= usable)
		return 0;
	*zone = ((usable - end) / 2) & ~(PAGE - 1);
	return (*zone / n) & ~(PAGE - 1);
}

/*
 * Drop the largest class whose share holds no block; returns how many
 * classes are left.  One at a time, because every drop enlarges the
 * shares of the others.
 */
static uint32_t default_drop(struct layout *l, uint64_t *cls, uint32_t n,
			     uint64_t share)
{
	uint64_t off = l->clients_off + l->max_clients * l->client_stride;
	uint32_t i = n;

	while (i-- > 0) {
		if (blocks_for(off + i * share, cls[i], share))
			continue;
		l->dropped[l->ndropped++] = cls[i];
		memmove(&cls[i], &cls[i + 1], (n - i - 1) * sizeof(cls[0]));
		return n - 1;
	}
	return n;
}

static void default_reserve(struct layout *l, uint64_t zone)
{
	uint64_t usable = l->size & ~(PAGE - 1);
	uint64_t rest =
		usable - l->clients_off - l->max_clients * l->client_stride;

	l->buddy_off =
		l->clients_off + l->max_clients * l->client_stride + zone;
	l->buddy_len = (rest / 4) & ~(PAGE - 1);
	l->bump_off = l->buddy_off + l->buddy_len;
	l->bump_len = usable - l->bump_off;
}

/*
 * The buddy arena of the default layout, after nfixed classes: the size
 * asked for at the start of the second half, or the largest that fits
 * the buddy share (-EAGAIN: none does).
 */
static int default_buddy(const struct layout_req *req, struct layout *l,
			 uint32_t nfixed)
{
	struct layout_arena *a = &l->arenas[nfixed];
	uint64_t min = req->buddy_min ? req->buddy_min : LAYOUT_BUDDY_MIN;
	uint64_t usable = l->size & ~(PAGE - 1);

	if (!req->buddy_size) {
		if (buddy_fit(a, l->buddy_off, l->buddy_len, min))
			return -EAGAIN;
		l->used = a->end;
		return 0;
	}
	if (buddy_place(a, l->buddy_off, req->buddy_size, min) ||
	    a->end > usable)
		return -ENOSPC;
	l->used = a->end;
	l->buddy_len = a->end - l->buddy_off;
	l->bump_off = a->end;
	l->bump_len = usable - a->end;
	return 0;
}

/*
 * The bump arena of the default layout, after the other arenas: the size
 * asked for, or as many chunks as fit the bump share (left out when not
 * one does).
 */
static int default_bump(const struct layout_req *req, struct layout *l,
			uint32_t i)
{
	struct layout_arena *a = &l->arenas[i];
	uint64_t usable = l->size & ~(PAGE - 1), chunk = bump_chunk(req);

	if (!req->bump_size) {
		if (bump_fit(a, l->bump_off, l->bump_len, chunk)) {
			if (l->nbump) {
				l->nbump = 0;
				l->narenas--;
			}
			return 0;
		}
	} else if (bump_place(a, l->bump_off, chunk, req->bump_size / chunk) ||
		   a->end > usable) {
		return -ENOSPC;
	}
	l->used = a->end;
	return 0;
}

/* The default layout, with a buddy arena (nbuddy 1) or without. */
static int default_try(const struct layout_req *req, struct layout *l,
		       uint32_t nbuddy)
{
	uint64_t cls[LAYOUT_DEFAULT_CLASSES], share = 0, zone = 0, off;
	uint32_t n = LAYOUT_DEFAULT_CLASSES, k, i;

	l->nbuddy = nbuddy;
	l->nbump = 1;
	l->ndropped = 0;
	memcpy(cls, default_classes, sizeof(cls));
	for (;;) {
		share = default_share(l, n, &zone);
		k = default_drop(l, cls, n, share);
		if (k == n)
			break;
		if (!k) {
			default_need(l);
			return -ENOSPC;
		}
		n = k;
	}
	off = l->clients_off + l->max_clients * l->client_stride;
	for (i = 0; i < n; i++, off += share)
		arena_place(&l->arenas[i], off, cls[i],
			    blocks_for(off, cls[i], share));
	l->used = l->arenas[n - 1].end;
	default_reserve(l, zone);
	if (nbuddy) {
		int err = default_buddy(req, l, n);

		if (err)
			return err;
	}
	return default_bump(req, l, n + nbuddy);
}

static int layout_default(const struct layout_req *req, struct layout *l)
{
	int err = default_try(req, l, 1);

	return err == -EAGAIN ? default_try(req, l, 0) : err;
}

static bool init_matches(const struct layout_init *r,
			 const struct layout_arena *a)
{
	if (r->kind && r->kind != a->kind)
		return false;
	return !r->size || r->size == a->block_size;
}

/*
 * The --init rules into each arena's flags, the last matching rule
 * winning; -ENOENT when a rule names a fixed class there is none of.
 */
static int init_apply(const struct layout_req *req, struct layout *l)
{
	uint32_t i, k;
	bool hit;

	for (i = 0; i < l->narenas; i++)
		for (k = 0; k < req->ninit; k++)
			if (init_matches(&req->init[k], &l->arenas[i]))
				l->arenas[i].flags =
					req->init[k].zero
						? ARENA_PROTO_ARENA_ZERO
						: 0;
	for (k = 0; k < req->ninit; k++) {
		if (!req->init[k].size)
			continue;
		for (i = 0, hit = false; i < l->narenas && !hit; i++)
			hit = init_matches(&req->init[k], &l->arenas[i]);
		if (!hit) {
			l->init_unmatched = req->init[k].size;
			return -ENOENT;
		}
	}
	return 0;
}

int layout_compute(const struct layout_req *req, struct layout *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	if (!req_ok(req))
		return -EINVAL;
	out->size = req->size;
	out->max_clients = req->max_clients;
	out->ledger_entries = req->ledger_entries;
	out->nchan = req->channels;
	out->chan_cells = req->channels ? req->chan_cells : 0;
	if (req->nfixed)
		err = layout_fixed(req, out);
	else
		err = layout_default(req, out);
	return err ? err : init_apply(req, out);
}

uint64_t layout_client_off(const struct layout *l, uint32_t id)
{
	return l->clients_off + (uint64_t)(id - 1) * l->client_stride;
}

static void desc_write(struct arena_proto_arena *d,
		       const struct layout_arena *a)
{
	d->kind = a->kind;
	d->flags = a->flags;
	d->block_size = a->block_size;
	d->nblocks = a->nblocks;
	d->data_off = a->data_off;
	d->data_len = a->data_len;
	d->state_off = a->state_off;
	d->bitmap_off = a->bitmap_off;
	d->nwords = a->nwords;
	d->tree_off = a->tree_off;
	d->tree_len = a->tree_len;
	d->order_off = a->order_off;
	d->max_order = a->max_order;
	d->bump_off = a->bump_off;
	d->nchunks = a->nchunks;
}

/*
 * Every block free at generation 1; bitmap bits past nblocks stay 0.  A
 * buddy arena's tree and order bytes are all zero: one free block.
 */
static void arena_init(uint8_t *base, const struct layout_arena *a)
{
	struct arena_proto_bitmap_word *bm = (void *)(base + a->bitmap_off);
	uint64_t *state = (uint64_t *)(base + a->state_off);
	uint64_t i, rem = a->nblocks % 64;
	struct arena_bump_hdr *bh = (void *)(base + a->bump_off);

	if (a->kind == ARENA_PROTO_KIND_BUMP) { /* data stays zero */
		bh->cursor = 0;
		for (i = 0; i < a->nchunks; i++)
			bh->chunks[i] = (struct arena_bump_chunk){
				arena_bump_word(1, ARENA_BUMP_FREE, 0, 0), 0
			};
		return;
	}

	for (i = 0; i < a->nwords && a->kind == ARENA_PROTO_KIND_FIXED; i++)
		bm[i].bits = ~0ULL;
	if (rem && a->kind == ARENA_PROTO_KIND_FIXED)
		bm[a->nwords - 1].bits = (1ULL << rem) - 1;
	for (i = 0; i < a->nblocks; i++)
		state[i] = arena_bs_make(1, 0, ARENA_BS_FREE, 0, 0);
}

/* An empty wait queue: head = tail = 0, cell i ready for ticket i. */
static void wait_init(struct arena_proto_wait *w)
{
	uint32_t i;

	for (i = 0; i < ARENA_PROTO_WAIT_CELLS; i++)
		w->cell[i] =
			arena_proto_wait_cell(i, 0, ARENA_PROTO_WAIT_EMPTY);
}

struct arena_proto_wait *layout_wait(const struct layout *l, void *base,
				     uint32_t i)
{
	return (struct arena_proto_wait *)((uint8_t *)base + l->wait_off) + i;
}

/* The header as the daemon means it, into a zeroed *r. */
static void hdr_fill(const struct layout *l, struct arena_proto_region *r,
		     uint64_t instance, uint64_t pid)
{
	uint32_t i;

	r->magic = ARENA_PROTO_REGION_MAGIC;
	r->version = ARENA_PROTO_LAYOUT_VERSION;
	r->hdr_size = sizeof(*r);
	r->region_size = l->size;
	r->instance = instance;
	r->region_id = 0;
	r->narenas = l->narenas;
	r->max_clients = l->max_clients;
	r->ledger_entries = l->ledger_entries;
	r->clients_off = l->clients_off;
	r->client_stride = l->client_stride;
	r->ctr_off = l->ctr_off;
	r->ledger_off = l->ledger_off;
	r->daemon_pid = pid;
	r->bctr_off = l->bctr_off;
	r->jnl_off = l->jnl_off;
	r->chan_off = l->chan_off;
	r->chan_cells_off = l->chan_cells_off;
	r->nchan = l->nchan;
	r->chan_cells = l->chan_cells;
	r->wait_off = l->wait_off;
	for (i = 0; i < l->narenas; i++)
		desc_write(&r->arenas[i], &l->arenas[i]);
}

void layout_write(const struct layout *l, void *base, uint64_t instance,
		  uint64_t pid)
{
	uint32_t i;

	hdr_fill(l, base, instance, pid);
	for (i = 0; i < l->narenas; i++) {
		arena_init(base, &l->arenas[i]);
		wait_init(layout_wait(l, base, i));
	}
}

void layout_header_write(const struct layout *l, void *base, uint64_t instance,
			 uint64_t pid)
{
	static struct arena_proto_region r; /* 8 KiB; the daemon is 1 thread */

	memset(&r, 0, sizeof(r));
	hdr_fill(l, &r, instance, pid);
	memcpy(base, &r, sizeof(r));
}

int layout_verify(const struct layout *l, const void *base)
{
	static struct arena_proto_region want, got; /* 8 KiB each */
	const uint8_t *a = (const void *)&want, *b = (const void *)&got;
	size_t i;

	memcpy(&got, base, sizeof(got));
	memset(&want, 0, sizeof(want));
	hdr_fill(l, &want, got.instance, got.daemon_pid);
	for (i = 0; i < sizeof(want); i++)
		if (a[i] != b[i])
			break;
	if (i == sizeof(want))
		return -1;
	if (i < offsetof(struct arena_proto_region, arenas))
		return (int)ARENA_PROTO_MAX_ARENAS;
	return (int)((i - offsetof(struct arena_proto_region, arenas)) /
		     sizeof(struct arena_proto_arena));
}

static void arena_log(uint32_t i, const struct layout_arena *a)
{
	char b[SIZE_HUMAN_MAX], d[SIZE_HUMAN_MAX];
	const char *z = a->flags & ARENA_PROTO_ARENA_ZERO ? ", init zero"
							  : ", init none";

	if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		LOG(LOG_INFO,
		    "arena %u: buddy %s in blocks of %s and up "
		    "(data at %llu)%s",
		    i, size_human(a->data_len, d), size_human(a->block_size, b),
		    (unsigned long long)a->data_off, z);
		return;
	}
	if (a->kind == ARENA_PROTO_KIND_BUMP) {
		LOG(LOG_INFO, "arena %u: bump %s in %llu chunks of %s%s", i,
		    size_human(a->data_len, d), (unsigned long long)a->nchunks,
		    size_human(a->block_size, b), z);
		return;
	}
	LOG(LOG_INFO, "arena %u: fixed %s slots x %llu (%s of data at %llu)%s",
	    i, size_human(a->block_size, b), (unsigned long long)a->nblocks,
	    size_human(a->data_len, d), (unsigned long long)a->data_off, z);
}

static void reserve_log(const char *what, uint64_t off, uint64_t len)
{
	char b[SIZE_HUMAN_MAX];

	LOG(LOG_INFO, "%s: %s at %llu left unused", what, size_human(len, b),
	    (unsigned long long)off);
}

void layout_log(const struct layout *l)
{
	char a[SIZE_HUMAN_MAX], b[SIZE_HUMAN_MAX];
	uint32_t i;

	LOG(LOG_INFO, "region %s: header %llu B, %u client tables of %s",
	    size_human(l->size, a), (unsigned long long)l->hdr_len,
	    l->max_clients, size_human(l->client_stride, b));
	for (i = 0; i < l->ndropped; i++)
		LOG(LOG_INFO,
		    "default class %s dropped: its share holds no slot",
		    size_human(l->dropped[i], a));
	for (i = 0; i < l->narenas; i++)
		arena_log(i, &l->arenas[i]);
	if (l->buddy_len || l->bump_len) {
		if (!l->nbuddy)
			reserve_log("reserved for the buddy arena",
				    l->buddy_off, l->buddy_len);
		if (!l->nbump)
			reserve_log("reserved for the bump arena", l->bump_off,
				    l->bump_len);
	} else if (l->used < l->size) {
		reserve_log("after the last arena", l->used, l->size - l->used);
	}
}
