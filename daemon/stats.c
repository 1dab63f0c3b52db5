// SPDX-License-Identifier: MIT
/*
 * Statistics.  Occupancy comes from the block state words, the one
 * authoritative record (a scan, but STATS is a rare control request);
 * activity from the per-client counters, which are hints.  Every offset
 * used here comes from the daemon's private layout, never from the
 * shared header, so a client that scribbles over the header cannot make
 * the daemon read outside the region (DESIGN.md rule 5); the header is
 * still compared with that layout and a mismatch is logged once.
 */
#include <string.h>

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

static void states_scan(const struct clients *c, const struct layout_arena *a,
			struct arena_proto_arena_stats *o)
{
	const uint64_t *st = (const void *)(c->region->base + a->state_off);
	uint64_t i, s;

	for (i = 0; i < a->nblocks; i++) {
		s = __atomic_load_n(&st[i], __ATOMIC_RELAXED);
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			o->in_use++;
		else if (arena_bs_state(s) == ARENA_BS_MAG)
			o->cached++;
	}
}

static void arena_stats(const struct clients *c, uint32_t i,
			struct arena_proto_arena_stats *o)
{
	const struct layout_arena *a = &c->layout->arenas[i];
	struct arena_proto_ctr sum;

	memset(o, 0, sizeof(*o));
	o->kind = ARENA_PROTO_KIND_FIXED;
	o->index = i;
	o->block_size = a->block_size;
	o->capacity = a->nblocks;
	states_scan(c, a, o);
	clients_sum(c, i, &sum);
	o->allocs = sum.allocs;
	o->frees = sum.frees;
	o->fail_full = sum.fail_full;
	o->fail_big = sum.fail_big;
}

uint32_t stats_build(const struct clients *c, void *buf)
{
	struct arena_proto_stats h = { 0 };
	struct arena_proto_arena_stats a;
	uint8_t *out = buf;
	uint32_t i;

	header_check(c);
	h.narenas = c->layout->narenas;
	h.nclients = c->nlive;
	memcpy(out, &h, sizeof(h));
	for (i = 0; i < h.narenas; i++) {
		arena_stats(c, i, &a);
		memcpy(out + sizeof(h) + i * sizeof(a), &a, sizeof(a));
	}
	return arena_proto_stats_len(h.narenas);
}
