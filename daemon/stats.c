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
	clients_sum(c, i, &sum);
	o->allocs = sum.allocs;
	/*
	 * Frees are not counted on the free path (it would cost a store per
	 * free): every allocation not in use any more was freed, by its
	 * holders or by reclaim.  An allocation is published a moment before
	 * it is counted, so a snapshot may see one block too many.
	 */
	o->frees = sum.allocs > blocks ? sum.allocs - blocks : 0;
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
