// SPDX-License-Identifier: MIT
/*
 * Statistics.  Occupancy comes from the block state words, the one
 * authoritative record (a scan, but STATS is a rare control request);
 * activity from the per-client counters, which are hints.  Every offset
 * used here comes from the daemon's private layout, never from the
 * shared header, so a client that scribbles over the header cannot make
 * the daemon read outside the region (DESIGN.md rule 5); the header is
 * still compared with that layout and a mismatch is logged once.
 *
 * A buddy arena also gets a record of what its tree shows free, per
 * order, and the bytes its state words hold (MAG and ALLOC blocks, by
 * their order bytes), so that free + allocated can be checked against
 * the arena's size.  Its row counts in leaves (minimum blocks).
 *
 * METRICS (stats_metrics_build) is what arena_stats() says, computed by
 * the same proto/metrics.c from the same counters: allocations and frees
 * counted by whoever made them or dropped the last reference (reclaim
 * counts its frees in the dead client's rows before they are folded),
 * so live = allocs - frees.  High-water marks live in the region and are
 * raised by every arena_stats() call, every METRICS answer, and
 * stats_sample(), which the server runs every STATS_SAMPLE_MS while
 * clients are attached; a peak between two looks is missed.
 *
 * The bump arena's row counts in chunks, by their words: in use (a client
 * bumps in it), retired but referenced, free; its live allocations and
 * their bytes come from walking each chunk's headers (proto/bump.h),
 * never from scanning the data, which is the allocations' contents.
 */
#include <stdbool.h>
#include <string.h>

#include "buddy.h"
#include "bump.h"
#include "handle.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"

static void header_check(const struct clients *c)
{
	static int reported = -1;
	int bad = layout_verify(c->layout, c->region->base);

	if (bad == reported)
		return;
	reported = bad;
	if (bad < 0)
		LOG(LOG_INFO, "region header matches the layout again");
	else if (bad == (int)ARENA_PROTO_MAX_ARENAS)
		LOG(LOG_WARN, "region header corrupt: a client overwrote it; "
			      "stats come from the daemon's own layout");
	else
		LOG(LOG_WARN,
		    "arena %d descriptor corrupt: a client "
		    "overwrote it; stats come from the daemon's "
		    "own layout",
		    bad);
}

/*
 * Blocks in use and cached, by their state words.  A buddy arena counts
 * in leaves: a block counts the leaves its order byte says it spans (one
 * when the byte names no block of the arena).  Returns the number of
 * allocated blocks, whatever their size.
 */
static uint64_t states_scan(const struct clients *c,
			    const struct layout_arena *a,
			    struct arena_proto_arena_stats *o)
{
	const uint64_t *st = (const void *)(c->region->base + a->state_off);
	const uint8_t *ord = c->region->base + a->order_off;
	bool buddy = a->kind == ARENA_PROTO_KIND_BUDDY;
	uint64_t i, s, n, blocks = 0;
	uint8_t b;

	for (i = 0; i < a->nblocks; i++) {
		s = __atomic_load_n(&st[i], __ATOMIC_RELAXED);
		if (arena_bs_state(s) != ARENA_BS_ALLOC &&
		    arena_bs_state(s) != ARENA_BS_MAG)
			continue;
		n = 1;
		if (buddy) {
			b = __atomic_load_n(&ord[i], __ATOMIC_RELAXED);
			n = b <= a->max_order ? 1ull << b : 1;
		}
		if (arena_bs_state(s) == ARENA_BS_ALLOC) {
			o->in_use += n;
			blocks++;
		} else {
			o->cached += n;
		}
	}
	return blocks;
}

static uint64_t bump_scan(const struct clients *c, const struct layout_arena *a,
			  struct arena_proto_arena_stats *o)
{
	const struct arena_bump_hdr *h =
		(const void *)(c->region->base + a->bump_off);
	const uint8_t *data;
	uint64_t ci, w, off, next, s, blocks = 0;

	o->capacity = a->nchunks;
	for (ci = 0; ci < a->nchunks; ci++) {
		w = __atomic_load_n(&h->chunks[ci].word, __ATOMIC_ACQUIRE);
		if (arena_bump_state(w) == ARENA_BUMP_FREE) {
			o->chunks_free++;
			continue;
		}
		if (arena_bump_state(w) == ARENA_BUMP_RETIRED)
			o->cached++;
		else
			o->in_use++;
		data = c->region->base + a->data_off + ci * a->block_size;
		for (off = 0; arena_bump_header(data, off, a->block_size,
						arena_bump_gen(w), &s, &next);
		     off = next) {
			if (arena_bs_state(s) != ARENA_BS_ALLOC)
				continue;
			blocks++;
			o->bytes += next - off - ARENA_BUMP_HDR;
		}
	}
	return blocks;
}

static void arena_stats(const struct clients *c, uint32_t i,
			struct arena_proto_arena_stats *o)
{
	const struct layout_arena *a = &c->layout->arenas[i];
	struct arena_proto_ctr sum;
	uint64_t blocks;

	memset(o, 0, sizeof(*o));
	o->kind = a->kind;
	o->index = i;
	o->block_size = a->block_size;
	o->capacity = a->nblocks;
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		blocks = bump_scan(c, a, o);
	else
		blocks = states_scan(c, a, o);
	(void)blocks;
	clients_sum(c, i, &sum);
	o->allocs = sum.allocs;
	/* counted by whoever dropped the last reference, reclaim included */
	o->frees = sum.frees;
	o->fail_full = sum.fail_full;
	o->fail_big = sum.fail_big;
}

/* The tree's record of buddy arena i, whose row is r. */
static void buddy_stats(const struct clients *c, uint32_t i,
			const struct arena_proto_arena_stats *r,
			struct arena_proto_buddy_stats *o)
{
	const struct layout_arena *a = &c->layout->arenas[i];
	const struct arena_buddy_geom g = { .max_order = a->max_order };
	struct arena_buddy_free f;
	struct arena_proto_bctr sum;

	memset(o, 0, sizeof(*o));
	arena_buddy_scan(c->region->base + a->tree_off, &g, &f);
	clients_bsum(c, &sum);
	o->index = i;
	o->max_order = a->max_order;
	o->min_block = a->block_size;
	o->free_bytes = f.leaves * a->block_size;
	o->alloc_bytes = (r->in_use + r->cached) * a->block_size;
	if (f.largest >= 0)
		o->largest_free = a->block_size << f.largest;
	o->splits = sum.splits;
	o->coalesces = sum.coalesces;
	memcpy(o->free_blocks, f.blocks, sizeof(o->free_blocks));
}

/* Arena i's geometry for proto/metrics.c, from the private layout. */
static void geometry(const struct clients *c, uint32_t i,
		     struct arena_proto_marena *m)
{
	const struct layout_arena *a = &c->layout->arenas[i];

	memset(m, 0, sizeof(*m));
	m->index = i;
	m->kind = a->kind;
	m->block_size = a->block_size;
	m->nblocks = a->nblocks;
	if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		m->max_order = a->max_order;
		m->tree = c->region->base + a->tree_off;
	} else if (a->kind == ARENA_PROTO_KIND_BUMP) {
		m->nchunks = (uint32_t)a->nchunks;
		m->chunks = ((const struct arena_bump_hdr *)(c->region->base +
							     a->bump_off))
				    ->chunks;
	}
}

static void metrics_of(const struct clients *c, uint32_t i,
		       struct arena_proto_metrics *o)
{
	struct arena_proto_marena m;
	struct arena_proto_ctr sum;

	geometry(c, i, &m);
	clients_sum(c, i, &sum);
	arena_proto_metrics(&m, &sum,
			    layout_wait(c->layout, c->region->base, i), o);
}

uint32_t stats_metrics_build(const struct clients *c, void *buf)
{
	struct arena_proto_metrics_hdr h = { 0 };
	struct arena_proto_metrics m;
	uint8_t *out = buf;
	uint32_t i;

	clients_publish(c);
	h.narenas = c->layout->narenas;
	memcpy(out, &h, sizeof(h));
	for (i = 0; i < h.narenas; i++) {
		metrics_of(c, i, &m);
		memcpy(out + arena_proto_metrics_len(i), &m, sizeof(m));
	}
	return arena_proto_metrics_len(h.narenas);
}

void stats_sample(const struct clients *c)
{
	struct arena_proto_metrics m;
	uint32_t i;

	for (i = 0; i < c->layout->narenas; i++)
		metrics_of(c, i, &m);
}

uint32_t stats_build(const struct clients *c, void *buf)
{
	struct arena_proto_stats h = { 0 };
	struct arena_proto_arena_stats a;
	struct arena_proto_buddy_stats b;
	uint8_t *out = buf;
	uint32_t i, k = 0;

	header_check(c);
	h.narenas = c->layout->narenas;
	h.nclients = c->nlive;
	h.nbuddy = c->layout->nbuddy;
	memcpy(out, &h, sizeof(h));
	for (i = 0; i < h.narenas; i++) {
		arena_stats(c, i, &a);
		memcpy(out + arena_proto_stats_len(i), &a, sizeof(a));
		if (a.kind != ARENA_PROTO_KIND_BUDDY || k == h.nbuddy)
			continue;
		buddy_stats(c, i, &a, &b);
		memcpy(out + arena_proto_stats_len_b(h.narenas, k++), &b,
		       sizeof(b));
	}
	return arena_proto_stats_len_b(h.narenas, h.nbuddy);
}
