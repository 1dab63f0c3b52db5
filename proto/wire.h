/* SPDX-License-Identifier: MIT */
/*
 * Control-socket wire format between arenad, libarena and arenactl.
 *
 * Every message is a 16-byte header followed by a fixed-layout payload
 * whose length is exact for its type (or, for STATS, exact for the count
 * it announces).  Both peers are on the same machine, so fields are in
 * host byte order.  Decoding validates everything before a byte of the
 * payload is trusted; anything off closes the connection.
 *
 * A client attaches with HELLO and receives WELCOME plus the region's
 * file descriptor (SCM_RIGHTS), or ERROR with a negative errno.  STATS,
 * AUDIT, METRICS and PING may be sent without attaching (arenactl does
 * that).  New kinds of information come as new message types, never as
 * new fields in an old one, so a peer of either age reads what it knows.
 */
#ifndef ARENA_PROTO_WIRE_H
#define ARENA_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buddy.h"
#include "layout.h"

#define ARENA_PROTO_WIRE_MAGIC 0x414e5241u /* "ARNA" */
#define ARENA_PROTO_WIRE_VERSION 1u
#define ARENA_PROTO_MAX_PAYLOAD 8192u
#define ARENA_PROTO_MAX_BUDDY 4u /* buddy records in a STATS message */

enum arena_proto_type {
	ARENA_MSG_HELLO = 1,
	ARENA_MSG_WELCOME = 2,
	ARENA_MSG_ERROR = 3,
	ARENA_MSG_STATS_REQ = 4,
	ARENA_MSG_STATS = 5,
	ARENA_MSG_PING = 6,
	ARENA_MSG_PONG = 7,
	ARENA_MSG_CHAN_OPEN = 8,       /* attached clients only */
	ARENA_MSG_CHAN_OK = 9,	       /* answer to CHAN_OPEN and CHAN_CLOSE */
	ARENA_MSG_CHAN_CLOSE = 10,     /* attached clients only */
	ARENA_MSG_CHAN_STATS_REQ = 11, /* like STATS_REQ */
	ARENA_MSG_CHAN_STATS = 12,
	ARENA_MSG_AUDIT_REQ = 13, /* like STATS_REQ */
	ARENA_MSG_AUDIT = 14,
	ARENA_MSG_METRICS_REQ = 15, /* like STATS_REQ */
	ARENA_MSG_METRICS = 16,
	ARENA_MSG_TYPE_MAX = 16,
};

struct arena_proto_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len; /* payload bytes after the header */
	uint32_t seq;
};

struct arena_proto_hello {
	uint32_t flags; /* 0 */
	uint32_t layout_version;
	uint64_t reserved[2];
};

struct arena_proto_welcome {
	uint32_t client_id;
	uint32_t region_id;
	uint64_t region_size;
	uint64_t instance;
	uint64_t reserved[2];
};

struct arena_proto_error {
	int32_t err; /* negative errno */
	uint32_t reserved;
};

struct arena_proto_arena_stats {
	uint32_t kind;
	uint32_t index;
	uint64_t block_size;
	uint64_t capacity; /* blocks */
	uint64_t in_use;   /* allocated blocks */
	uint64_t cached;   /* reserved in client magazines */
	uint64_t allocs;
	uint64_t frees; /* allocs - blocks in use: includes reclaimed ones */
	uint64_t fail_full;
	uint64_t fail_big;
	/*
	 * Bump arena only (0 otherwise), which counts in chunks: capacity is
	 * its chunks, in_use those a client bumps in, cached those retired
	 * but still referenced, chunks_free the rest (the three add up to
	 * capacity); block_size is the chunk size and bytes the sizes of its
	 * live allocations.
	 */
	uint64_t chunks_free;
	uint64_t bytes;
	uint64_t reserved;
};

/*
 * What a buddy arena's tree shows.  free_bytes and the per-order counts
 * come from the tree, alloc_bytes from the leaf state words (MAG and
 * ALLOC blocks), so that with nothing under way they add up to the
 * arena's bytes.
 */
struct arena_proto_buddy_stats {
	uint32_t index;	    /* the arena's index */
	uint32_t max_order; /* orders 0 .. max_order */
	uint64_t min_block; /* bytes of an order-0 block */
	uint64_t free_bytes;
	uint64_t alloc_bytes;
	uint64_t largest_free; /* bytes of the largest free block, or 0 */
	uint64_t splits;
	uint64_t coalesces;
	uint64_t reserved;
	uint64_t free_blocks[ARENA_BUDDY_ORDERS]; /* by order; 0 past max */
};

struct arena_proto_stats {
	uint32_t narenas;
	uint32_t nclients;
	uint32_t nbuddy; /* <= ARENA_PROTO_MAX_BUDDY */
	uint32_t reserved;
	/*
	 * followed by narenas x struct arena_proto_arena_stats, then nbuddy
	 * x struct arena_proto_buddy_stats
	 */
};

/*
 * Live metrics of one arena (METRICS, the answer to METRICS_REQ): what
 * struct arena_stats says (include/arena/arena.h), computed by the same
 * code (proto/metrics.c) from the same counters in the region.
 */
struct arena_proto_metrics {
	uint32_t index; /* its position in the message */
	uint32_t kind;	/* enum arena_proto_kind */
	uint64_t live_blocks;
	uint64_t live_bytes;
	uint64_t peak_blocks;
	uint64_t peak_bytes;
	uint64_t allocs;
	uint64_t frees;
	uint64_t fail_full;
	uint64_t fail_big;
	uint64_t waits;
	uint64_t wait_ns;
	uint64_t free_bytes;
	uint64_t largest_free;
	uint64_t reserved;
};

struct arena_proto_metrics_hdr {
	uint32_t narenas; /* records follow */
	uint32_t reserved;
};

_Static_assert(sizeof(struct arena_proto_metrics) == 112, "metrics rec");
_Static_assert(sizeof(struct arena_proto_metrics_hdr) == 8, "metrics hdr");
_Static_assert(sizeof(struct arena_proto_metrics_hdr) +
			       ARENA_PROTO_MAX_ARENAS *
				       sizeof(struct arena_proto_metrics) <=
		       ARENA_PROTO_MAX_PAYLOAD,
	       "metrics fit a message");

static inline uint32_t arena_proto_metrics_len(uint32_t n)
{
	return (uint32_t)(sizeof(struct arena_proto_metrics_hdr) +
			  n * sizeof(struct arena_proto_metrics));
}

/*
 * Channels.  CHAN_OPEN creates or joins the channel called name (NUL
 * terminated, 1..47 bytes, zero-padded) with room for at least capacity
 * handles; CHAN_OK names its table slot and the capacity it has.
 * CHAN_CLOSE{slot} gives one endpoint back; CHAN_OK{slot} confirms.
 */
struct arena_proto_chan_open {
	char name[ARENA_PROTO_CHAN_NAME];
	uint32_t capacity;
	uint32_t flags; /* 0 */
};

struct arena_proto_chan_ok {
	uint32_t slot;
	uint32_t capacity;
	uint64_t reserved;
};

struct arena_proto_chan_close {
	uint32_t slot;
	uint32_t reserved;
};

struct arena_proto_chan_rec {
	char name[ARENA_PROTO_CHAN_NAME]; /* NUL terminated */
	uint32_t capacity;
	uint32_t endpoints;
	uint64_t depth; /* handles queued */
	uint64_t sends;
	uint64_t receives;
};

#define ARENA_PROTO_MAX_CHAN_RECS 64u /* channel records in CHAN_STATS */

struct arena_proto_chan_stats {
	uint32_t nchan; /* <= ARENA_PROTO_MAX_CHAN_RECS, records follow */
	uint32_t total; /* live channels, of which nchan are listed */
};

_Static_assert(sizeof(struct arena_proto_chan_open) == 56, "chan open");
_Static_assert(sizeof(struct arena_proto_chan_ok) == 16, "chan ok");
_Static_assert(sizeof(struct arena_proto_chan_close) == 8, "chan close");
_Static_assert(sizeof(struct arena_proto_chan_rec) == 80, "chan rec");
_Static_assert(sizeof(struct arena_proto_chan_stats) +
			       ARENA_PROTO_MAX_CHAN_RECS *
				       sizeof(struct arena_proto_chan_rec) <=
		       ARENA_PROTO_MAX_PAYLOAD,
	       "chan stats fit a message");

static inline uint32_t arena_proto_chan_stats_len(uint32_t n)
{
	return (uint32_t)(sizeof(struct arena_proto_chan_stats) +
			  n * sizeof(struct arena_proto_chan_rec));
}

/*
 * AUDIT: the daemon walks the whole region (daemon/audit.c) and answers
 * with a summary, then nlines findings (at most ARENA_PROTO_AUDIT_LINES
 * of them, however many there were).  Every finding has a category; all
 * but HINT are problems (arenactl audit exits 1).  A block that kept
 * changing while it was looked at is counted busy, never judged.
 */
enum arena_proto_audit_cat {
	ARENA_AUDIT_HEADER = 0,	   /* header or descriptor differs */
	ARENA_AUDIT_CLIENT = 1,	   /* a client table's head is wrong */
	ARENA_AUDIT_STATE = 2,	   /* a malformed state or chunk word */
	ARENA_AUDIT_LEAK = 3,	   /* references no live client holds */
	ARENA_AUDIT_COUNT_LOW = 4, /* more holders than the count says */
	ARENA_AUDIT_ORPHAN = 5,	   /* a reference to a block not allocated */
	ARENA_AUDIT_OVERLAP = 6,   /* one piece of memory in two places */
	ARENA_AUDIT_SPACE = 7,	   /* free + used does not add up */
	ARENA_AUDIT_HINT = 8,	   /* a wrong hint (bitmap): harmless */
	ARENA_AUDIT_NCAT = 9,
};

#define ARENA_PROTO_AUDIT_CATS 16u  /* room in the summary */
#define ARENA_PROTO_AUDIT_TEXT 120u /* bytes of a line, NUL included */
#define ARENA_PROTO_AUDIT_LINES 60u /* finding lines in one reply */

struct arena_proto_audit {
	uint64_t checked; /* blocks, chunks and tables judged */
	uint64_t busy;	  /* changing at every look: not judged */
	uint64_t elapsed_us;
	uint32_t nlines; /* lines that follow, <= ARENA_PROTO_AUDIT_LINES */
	uint32_t reserved;
	uint64_t found[ARENA_PROTO_AUDIT_CATS]; /* findings per category */
};

struct arena_proto_audit_line {
	uint32_t cat; /* enum arena_proto_audit_cat */
	uint32_t reserved;
	char text[ARENA_PROTO_AUDIT_TEXT]; /* NUL terminated, zero-padded */
};

_Static_assert(sizeof(struct arena_proto_audit) == 160, "audit size");
_Static_assert(sizeof(struct arena_proto_audit_line) == 128, "audit line");
_Static_assert(sizeof(struct arena_proto_audit) +
			       ARENA_PROTO_AUDIT_LINES *
				       sizeof(struct arena_proto_audit_line) <=
		       ARENA_PROTO_MAX_PAYLOAD,
	       "audit fits a message");

static inline uint32_t arena_proto_audit_len(uint32_t n)
{
	return (uint32_t)(sizeof(struct arena_proto_audit) +
			  n * sizeof(struct arena_proto_audit_line));
}

_Static_assert(sizeof(struct arena_proto_hdr) == 16, "hdr size");
_Static_assert(offsetof(struct arena_proto_hdr, len) == 8, "hdr len");
_Static_assert(sizeof(struct arena_proto_hello) == 24, "hello size");
_Static_assert(sizeof(struct arena_proto_welcome) == 40, "welcome size");
_Static_assert(sizeof(struct arena_proto_error) == 8, "error size");
_Static_assert(sizeof(struct arena_proto_arena_stats) == 96, "astats size");
_Static_assert(sizeof(struct arena_proto_stats) == 16, "stats size");
_Static_assert(sizeof(struct arena_proto_buddy_stats) == 320, "bstats size");
_Static_assert(sizeof(struct arena_proto_stats) +
			       ARENA_PROTO_MAX_ARENAS *
				       sizeof(struct arena_proto_arena_stats) +
			       ARENA_PROTO_MAX_BUDDY *
				       sizeof(struct arena_proto_buddy_stats) <=
		       ARENA_PROTO_MAX_PAYLOAD,
	       "stats fit a message");

/*
 * Fill a header.  Returns 0, or -EINVAL for an unknown type or a payload
 * longer than ARENA_PROTO_MAX_PAYLOAD.
 */
int arena_proto_hdr_encode(struct arena_proto_hdr *h, uint16_t type,
			   uint32_t len, uint32_t seq);

/*
 * Decode and validate a header from len received bytes.  Returns 0;
 * -EAGAIN when fewer than 16 bytes are there yet; -EBADMSG for a wrong
 * magic or an unknown type; -EPROTO for another protocol version;
 * -EMSGSIZE for a payload longer than the type allows.
 */
int arena_proto_hdr_decode(const void *buf, size_t len,
			   struct arena_proto_hdr *out);

/*
 * Validate a payload of the given type and length.  Returns 0 or
 * -EBADMSG (wrong length for the type, reserved fields set, a STATS count
 * that disagrees with the length or exceeds ARENA_PROTO_MAX_ARENAS or
 * ARENA_PROTO_MAX_BUDDY, a buddy record that does not name a buddy arena
 * of the message or counts free blocks past its largest order; an AUDIT
 * whose line count disagrees with the length or exceeds the findings, a
 * line of an unknown category, or text that is not printable ASCII,
 * NUL terminated and zero-padded; a METRICS record out of place, of an
 * unknown kind, or with reserved bits set).
 */
int arena_proto_payload_check(uint16_t type, const void *payload, uint32_t len);

/* Exact payload length of a STATS message carrying n arenas. */
static inline uint32_t arena_proto_stats_len(uint32_t n)
{
	return (uint32_t)(sizeof(struct arena_proto_stats) +
			  n * sizeof(struct arena_proto_arena_stats));
}

/* The same with nb buddy records after the arenas. */
static inline uint32_t arena_proto_stats_len_b(uint32_t n, uint32_t nb)
{
	return arena_proto_stats_len(n) +
	       (uint32_t)(nb * sizeof(struct arena_proto_buddy_stats));
}

#endif
