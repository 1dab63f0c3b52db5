/* SPDX-License-Identifier: MIT */
/*
 * Client ids and client tables: attach, detach (with reclaim), counters.
 */
#ifndef ARENAD_CLIENTS_H
#define ARENAD_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"
#include "region.h"

enum client_slot {
	CLIENT_SLOT_FREE = 0,
	CLIENT_SLOT_LIVE = 1,
	CLIENT_SLOT_RECLAIM = 2,     /* DEAD, reclaim to be retried */
	CLIENT_SLOT_QUARANTINED = 3, /* reclaim failed: id never reused */
};

#define CLIENTS_RECLAIM_TRIES 50 /* retries of a busy reclaim */

struct clients {
	const struct region *region;
	const struct layout *layout;
	uint32_t nlive;
	uint32_t npending; /* ids in CLIENT_SLOT_RECLAIM */
	uint8_t slot[ARENA_PROTO_MAX_CLIENTS + 1]; /* enum client_slot */
	uint8_t tries[ARENA_PROTO_MAX_CLIENTS + 1];
	uint64_t reclaim_ns; /* the last clients_detach's reclaim_client() */
	/* Counters folded in from clients that have detached. */
	struct arena_proto_ctr totals[ARENA_PROTO_MAX_ARENAS];
	struct arena_proto_bctr btotals;
};

void clients_init(struct clients *c, const struct region *r,
		  const struct layout *l);

/*
 * Give the lowest free id to a new client and publish its table LIVE.
 * Returns the id, or -EUSERS when every id is taken.
 */
int clients_attach(struct clients *c, pid_t pid, uid_t uid);

/*
 * Mark client id DEAD, fold its counters into the totals, reclaim what it
 * held and free the id.  Returns the number of blocks reclaimed; -EAGAIN
 * when a block was busy (the id stays DEAD and clients_retry() tries
 * again); -EINVAL for an id that is not attached; or the errno of a
 * failed reclaim, after which the id is quarantined (never reused).
 */
int clients_detach(struct clients *c, uint32_t id);

/* Retry deferred reclaims, logging each outcome.  Returns how many wait. */
uint32_t clients_retry(struct clients *c);

/* Copy the departed clients' totals into the region for the library. */
void clients_publish(const struct clients *c);

/* Buddy tree counters summed over live clients and the totals. */
void clients_bsum(const struct clients *c, struct arena_proto_bctr *out);

/* Counters of arena a summed over live clients and the totals. */
void clients_sum(const struct clients *c, uint32_t a,
		 struct arena_proto_ctr *out);

#endif
