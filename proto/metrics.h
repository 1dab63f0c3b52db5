/* SPDX-License-Identifier: MIT */
/*
 * Live metrics of an arena from the counters in the region: the one
 * computation behind arena_stats() (lib/stats.c) and arenad's METRICS
 * answer (daemon/stats.c), so that both always say the same.
 */
#ifndef ARENA_PROTO_METRICS_H
#define ARENA_PROTO_METRICS_H

#include <stdint.h>

#include "bump.h"
#include "layout.h"
#include "wire.h"

/* Where the counter rows are, from a validated layout. */
struct arena_proto_rows {
	const uint8_t *tables; /* client 1's table */
	uint64_t stride;       /* bytes per table */
	uint64_t ctr_off;      /* counters inside a table */
	uint32_t max_clients;
	uint32_t narenas;
};

/* One arena's validated geometry, and where its free space shows. */
struct arena_proto_marena {
	uint32_t index;
	uint32_t kind;
	uint64_t block_size; /* fixed: slot; buddy: leaf; bump: chunk */
	uint64_t nblocks;    /* fixed: slots; buddy: leaves */
	uint32_t max_order;  /* buddy */
	uint32_t nchunks;    /* bump */
	const uint8_t *tree; /* buddy */
	const struct arena_bump_chunk *chunks; /* bump */
};

/*
 * Arena ai's counters summed over every client table not FREE and the
 * share of departed clients (w->gone), consistent with the daemon's
 * folds (retried while fold_seq moves).  All allocations are read before
 * all frees, so live = allocs - frees is never above what was live at
 * some moment of the read.
 */
void arena_proto_ctr_total(const struct arena_proto_rows *r,
			   const struct arena_proto_wait *w, uint32_t ai,
			   struct arena_proto_ctr *out);

/*
 * The metrics of arena a from its total, raising w's high-water marks
 * to what is live now (w may be NULL: no marks).
 */
void arena_proto_metrics(const struct arena_proto_marena *a,
			 const struct arena_proto_ctr *sum,
			 struct arena_proto_wait *w,
			 struct arena_proto_metrics *out);

#endif
