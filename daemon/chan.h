/* SPDX-License-Identifier: MIT */
/*
 * The channel table: the daemon's side of zero-copy channels.
 */
#ifndef ARENAD_CHAN_H
#define ARENAD_CHAN_H

#include <stdint.h>

#include "layout.h"
#include "region.h"

struct chan_slot {
	char name[ARENA_PROTO_CHAN_NAME]; /* the daemon's copy, trusted */
	uint32_t capacity;		  /* 0: slot free */
	uint32_t endpoints;
	uint64_t ring;	 /* first cell */
	uint16_t *opens; /* endpoints per client id, [max_clients + 1] */
};

struct chans {
	uint8_t *base;
	uint64_t size;
	uint32_t nchan;
	uint32_t ncells;
	uint32_t max_clients;
	struct arena_proto_chan *table; /* in the region */
	struct arena_proto_cell *cells; /* in the region */
	struct chan_slot *slot;		/* private, nchan of them */
};

/* Returns 0 or -ENOMEM. */
int chans_init(struct chans *t, const struct region *r, const struct layout *l);
void chans_fini(struct chans *t);

/*
 * Create or join the channel called name (validated by the wire layer)
 * for client id.  A new channel gets capacity rounded up to a power of
 * two, at least 2; joining keeps the channel's.  Returns the slot and
 * stores the capacity, or -ENFILE (table full or no channels configured),
 * -ENOSPC (no run of free cells that long), -EINVAL (capacity out of
 * range), -ENOMEM.
 */
int chans_open(struct chans *t, uint32_t id, const char *name, uint32_t cap,
	       uint32_t *cap_out);

/*
 * Give back one endpoint of slot that client id holds; the last endpoint
 * releases what is still queued.  Returns 0 or -EBADF.
 */
int chans_close(struct chans *t, uint32_t id, uint32_t slot);

/* Client id is gone: close every endpoint it held. */
void chans_client_gone(struct chans *t, uint32_t id);

/* A CHAN_STATS payload into buf (ARENA_PROTO_MAX_PAYLOAD); its length. */
uint32_t chans_stats(const struct chans *t, void *buf);

#endif
