/* SPDX-License-Identifier: MIT */
/*
 * The STATS reply: what every arena holds and what clients did with it.
 */
#ifndef ARENAD_STATS_H
#define ARENAD_STATS_H

#include <stdint.h>

#include "clients.h"
#include "wire.h"

#define STATS_MAX_LEN                                                          \
	(sizeof(struct arena_proto_stats) +                                    \
	 ARENA_PROTO_MAX_ARENAS * sizeof(struct arena_proto_arena_stats) +     \
	 ARENA_PROTO_MAX_BUDDY * sizeof(struct arena_proto_buddy_stats))

/* Write the STATS payload into buf (STATS_MAX_LEN bytes); its length. */
uint32_t stats_build(const struct clients *c, void *buf);

#define STATS_SAMPLE_MS 10 /* high-water mark sampling while attached */

/*
 * Write the METRICS payload into buf (ARENA_PROTO_MAX_PAYLOAD bytes),
 * raising the high-water marks; its length.
 */
uint32_t stats_metrics_build(const struct clients *c, void *buf);

/* Raise every arena's high-water marks to what is live now. */
void stats_sample(const struct clients *c);

#endif
