/* SPDX-License-Identifier: MIT */
/*
 * Where everything goes in the region: pure computation from the options,
 * then one function that writes the result into a zero-filled mapping.
 * The daemon keeps its struct layout privately and trusts only that copy
 * afterwards, never the header in shared memory (DESIGN.md rule 5).
 */
#ifndef ARENAD_LAYOUT_H
#define ARENAD_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "../proto/layout.h"

#define LAYOUT_DEFAULT_CLASSES 11u /* 64 B .. 64 KiB */
#define LAYOUT_BUDDY_MIN 4096u	   /* default minimum buddy block */

struct layout_class {
	uint64_t block_size;
	uint64_t count;
};

/*
 * One --init rule: arenas of kind (0: every kind; fixed with size set:
 * the class of size bytes) zero what they hand out, or not.  Rules apply
 * in order, a later one overriding an earlier one.
 */
#define LAYOUT_MAX_INIT 64u

struct layout_init {
	uint32_t kind; /* enum arena_proto_kind, or 0 */
	uint32_t zero; /* 1: ARENA_PROTO_ARENA_ZERO */
	uint64_t size; /* fixed class size, or 0 */
};

/*
 * What the options ask for.  nfixed 0 selects the default layout, which
 * has a buddy arena of buddy_size bytes (0: the largest power of two
 * that fits its share); with --fixed classes there is one only when
 * buddy_size is set.  buddy_min 0 means LAYOUT_BUDDY_MIN.
 */
struct layout_req {
	uint64_t size;
	uint32_t max_clients;
	uint32_t ledger_entries;
	uint32_t nfixed;
	struct layout_class fixed[ARENA_PROTO_MAX_ARENAS];
	uint64_t buddy_size; /* a power of two, or 0 */
	uint64_t buddy_min;  /* a power of two >= 16, or 0 */
	uint64_t bump_size;  /* bytes of bump chunks, or 0: the default */
	uint64_t bump_chunk; /* a power of two in 4 KiB..1 GiB, or 0 */
	uint32_t channels;   /* channel table slots; 0: no channels */
	uint32_t chan_cells; /* ring cells shared by the channels */
	uint32_t ninit;	     /* --init rules */
	struct layout_init init[LAYOUT_MAX_INIT];
};

struct layout_arena {
	uint32_t kind;	     /* enum arena_proto_kind */
	uint32_t max_order;  /* buddy: nblocks = 1 << max_order leaves */
	uint64_t block_size; /* buddy: the minimum block */
	uint64_t nblocks;
	uint64_t nwords; /* fixed */
	uint64_t bitmap_off;
	uint64_t state_off;
	uint64_t order_off; /* buddy */
	uint64_t tree_off;
	uint64_t tree_len;
	uint64_t data_off;
	uint64_t data_len;
	uint64_t end;	   /* first byte past the arena */
	uint64_t bump_off; /* bump: cursor and chunk records */
	uint64_t nchunks;
	uint32_t flags; /* ARENA_PROTO_ARENA_*, from the --init rules */
};

struct layout {
	uint64_t size;	  /* region size as asked */
	uint64_t hdr_len; /* header rounded up to a page */
	uint32_t max_clients;
	uint32_t ledger_entries;
	uint64_t clients_off;
	uint64_t client_stride;
	uint64_t ctr_off;
	uint64_t bctr_off;
	uint64_t jnl_off; /* pending-operation journal, proto/journal.h */
	uint64_t ledger_off;
	uint32_t nchan;	     /* channel table, between header and clients */
	uint32_t chan_cells; /* ring cells after the table */
	uint64_t chan_off;
	uint64_t chan_cells_off;
	uint64_t wait_off; /* narenas x struct arena_proto_wait */
	uint32_t narenas;  /* fixed ones first, then nbuddy buddy arenas */
	uint32_t nbuddy;   /* 0 or 1 */
	uint32_t nbump;	   /* 0 or 1, the last arena */
	struct layout_arena arenas[ARENA_PROTO_MAX_ARENAS];
	uint64_t used; /* end of the last arena */
	/* Default layout only: shares kept for later arena kinds. */
	uint64_t buddy_off, buddy_len;
	uint64_t bump_off, bump_len;
	/* Default classes left out because their share held no block. */
	uint32_t ndropped;
	uint64_t dropped[LAYOUT_DEFAULT_CLASSES];
	/* On -ENOSPC: the bytes the request needs (0 if unknown). */
	uint64_t need;
	/* On -ENOENT: the size of an --init rule that names no fixed class. */
	uint64_t init_unmatched;
};

/*
 * Compute the layout.  Returns 0; -EINVAL for a request the options
 * parser should have refused (no classes, bad class, limits out of
 * range, a buddy size that is not a power of two of at least its minimum
 * block); -ENOSPC when it does not fit req->size (out->need says how much
 * a --fixed layout needs, or what header plus client tables need; 0 when
 * the default layout fits but a requested buddy arena does not); -ENOENT
 * when an --init rule names a fixed class size the layout does not have
 * (out->init_unmatched).
 */
int layout_compute(const struct layout_req *req, struct layout *out);

/* Byte offset of client id's table (1..max_clients). */
uint64_t layout_client_off(const struct layout *l, uint32_t id);

/*
 * Write the header, descriptors, bitmaps and state words of l into base,
 * which must be l->size bytes of zero-filled memory.
 */
void layout_write(const struct layout *l, void *base, uint64_t instance,
		  uint64_t pid);

/*
 * Write the header and descriptors of l over what is at base, leaving the
 * rest of the region alone: after start-up only the daemon writes the
 * header, so one that a client overwrote is put back this way.
 */
void layout_header_write(const struct layout *l, void *base, uint64_t instance,
			 uint64_t pid);

/*
 * Compare the header in the region at base with what l says it must be.
 * Returns -1 when it matches; otherwise the index of the first arena
 * descriptor that differs, or ARENA_PROTO_MAX_ARENAS when a header field
 * does.  Reads only the header's bytes (base spans at least l->hdr_len).
 */
int layout_verify(const struct layout *l, const void *base);

/* Arena i's wait queue and shared metrics in the region at base. */
struct arena_proto_wait *layout_wait(const struct layout *l, void *base,
				     uint32_t i);

/* Log the layout, one line per arena and reserved share. */
void layout_log(const struct layout *l);

#endif
