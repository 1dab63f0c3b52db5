/* SPDX-License-Identifier: MIT */
/*
 * The audit: a read-only walk of the whole region that checks every
 * invariant and says what is wrong (arenactl audit, AUDIT on the wire).
 */
#ifndef ARENAD_AUDIT_H
#define ARENAD_AUDIT_H

#include <stdint.h>

#include "chan.h"
#include "clients.h"
#include "layout.h"
#include "region.h"
#include "wire.h"

/* What only the daemon knows for sure, and the region it judges. */
struct audit_src {
	const struct region *region;
	const struct layout *layout;   /* the daemon's private copy */
	const struct clients *clients; /* which ids are attached */
	const struct chans *chans;     /* which channels exist, where */
	const int32_t *pids;	       /* [max_clients + 1]: peer pids, 0 */
};

struct audit_report {
	struct arena_proto_audit sum;
	struct arena_proto_audit_line line[ARENA_PROTO_AUDIT_LINES];
};

/*
 * Walk the region and fill out.  Never writes the region.  Returns 0, or
 * -ENOMEM (out then holds what was found before memory ran out).
 */
int audit_run(const struct audit_src *src, struct audit_report *out);

/* The AUDIT payload of r into buf (ARENA_PROTO_MAX_PAYLOAD); its length. */
uint32_t audit_encode(const struct audit_report *r, void *buf);

#endif
