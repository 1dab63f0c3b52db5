// SPDX-License-Identifier: MIT
/*
 * arena_stats(): live metrics read straight from the region, with no
 * message to the daemon.  Every thread counts its own allocations and
 * frees in its counter row (single writer, plain stores), and arenad
 * folds departed clients' rows into the arena's record; summing them is
 * proto/metrics.c, the same code arenad answers METRICS with.  The sum
 * reads every attached client's rows, so a call costs a few microseconds
 * per client: meant for monitoring, not for the data path.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "metrics.h"

static void geometry(const struct arena_client *c, const struct lib_arena *a,
		     struct arena_proto_marena *m)
{
	memset(m, 0, sizeof(*m));
	m->index = a->index;
	m->kind = a->kind;
	m->block_size = a->block_size;
	m->nblocks = a->nblocks;
	if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		m->max_order = a->max_order;
		m->tree = a->tree;
	} else if (a->kind == ARENA_PROTO_KIND_BUMP) {
		m->nchunks = a->nwords; /* chunks */
		m->chunks = a->bump->chunks;
	}
}

int arena_stats(struct arena_client *c, unsigned idx, struct arena_stats *out)
{
	const struct arena_proto_rows r = {
		.tables = c ? c->tables : NULL,
		.stride = c ? c->table_stride : 0,
		.ctr_off = c ? c->ctr_off : 0,
		.max_clients = c ? c->max_clients : 0,
		.narenas = c ? c->narenas : 0,
	};
	struct arena_proto_marena m;
	struct arena_proto_metrics x;
	struct arena_proto_ctr sum;
	struct arena_proto_wait *w;
	const struct lib_arena *a;

	if (!c || !out)
		return -EINVAL;
	if (idx >= c->narenas)
		return -ENOENT;
	a = &c->arenas[idx];
	w = c->wait == lib_no_wait ? NULL : &c->wait[idx];
	geometry(c, a, &m);
	arena_proto_ctr_total(&r, w ? w : &lib_no_wait[idx], idx, &sum);
	arena_proto_metrics(&m, &sum, w, &x);
	memset(out, 0, sizeof(*out));
	out->index = idx;
	out->kind = a->kind;
	out->block_size = a->block_size;
	out->capacity =
		a->kind == ARENA_PROTO_KIND_BUMP ? a->nwords : a->nblocks;
	out->live_blocks = x.live_blocks;
	out->live_bytes = x.live_bytes;
	out->peak_blocks = x.peak_blocks;
	out->peak_bytes = x.peak_bytes;
	out->allocs = x.allocs;
	out->frees = x.frees;
	out->fail_full = x.fail_full;
	out->fail_big = x.fail_big;
	out->waits = x.waits;
	out->wait_ns = x.wait_ns;
	out->free_bytes = x.free_bytes;
	out->largest_free = x.largest_free;
	return 0;
}
