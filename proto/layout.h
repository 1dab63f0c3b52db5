/* SPDX-License-Identifier: MIT */
/*
 * Binary layout of the shared region: the ABI between arenad and libarena.
 *
 * Everything here is fixed-width, position-independent (offsets from the
 * region base, never addresses) and checked at compile time.  The daemon
 * writes the header and descriptors once at start-up; after that clients
 * only touch per-block state words, bitmap words and their own client
 * table, always through atomics.
 *
 * Region map (all offsets 4 KiB aligned):
 *
 *   [0]            struct arena_proto_region   header + arena descriptors
 *   chan_off       channel table and ring cells (when channels are on)
 *   wait_off       narenas x struct arena_proto_wait: waiting and live
 *                  metrics of each arena (see below)
 *   clients_off    max_clients x client_stride  per-client tables
 *   per arena:     fixed: bitmap (one 64-bit word per 64 B line), state
 *                  words, data; buddy: state words (one per leaf), order
 *                  bytes, tree (see buddy.h), data aligned to its size
 *
 * The block state word (see handle.h) is the one authoritative record of
 * a block; the bitmap is only a hint for finding free blocks quickly.
 */
#ifndef ARENA_PROTO_LAYOUT_H
#define ARENA_PROTO_LAYOUT_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define ARENA_PROTO_REGION_MAGIC 0x414e455241524731ULL /* "1GRARENA" */
#define ARENA_PROTO_LAYOUT_VERSION 3u

#define ARENA_PROTO_CACHELINE 64u
#define ARENA_PROTO_PAGE 4096u

#define ARENA_PROTO_MAX_ARENAS 64u    /* fits the handle's 8 arena bits */
#define ARENA_PROTO_MAX_CLIENTS 4095u /* client ids 1..4095, 12 bits */
#define ARENA_PROTO_STAT_SLOTS 16u    /* per-client counter rows */
#define ARENA_PROTO_MIN_BLOCK 16u     /* smallest fixed slot, bytes */
#define ARENA_PROTO_MAX_FIXED (1u << 30)

enum arena_proto_kind {
	ARENA_PROTO_KIND_FIXED = 1,
	ARENA_PROTO_KIND_BUDDY = 2,
	ARENA_PROTO_KIND_BUMP = 3,
};

/*
 * One arena.  Immutable after the daemon publishes the region, so readers
 * need no atomics; every field is still bounds-checked by whoever uses it
 * because a client could have scribbled over it (DESIGN.md rule 5).
 */
struct arena_proto_arena {
	uint32_t kind;	     /* enum arena_proto_kind */
	uint32_t flags;	     /* ARENA_PROTO_ARENA_* */
	uint64_t block_size; /* bytes per block (fixed); min block (buddy) */
	uint64_t nblocks;    /* blocks in the arena */
	uint64_t data_off;   /* first block */
	uint64_t data_len;   /* bytes of data */
	uint64_t state_off;  /* nblocks x uint64_t state words */
	uint64_t bitmap_off; /* nwords bitmap words, one per cache line */
	uint64_t nwords;     /* ceil(nblocks / 64); 0 for buddy */
	/* Buddy only (0 otherwise); nblocks is 1 << max_order leaves. */
	uint64_t tree_off; /* 2 << max_order bytes, see buddy.h */
	uint64_t tree_len;
	uint64_t order_off; /* nblocks bytes: order of the block at each leaf */
	uint32_t max_order; /* largest block = block_size << max_order */
	uint32_t reserved32;
	/*
	 * Bump only (0 otherwise): block_size is the chunk size, nblocks
	 * counts 8-byte units of data (a handle's index), state_off is
	 * data_off (allocation headers live in the chunks), see bump.h.
	 */
	uint64_t bump_off; /* struct arena_bump_hdr + nchunks chunk records */
	uint64_t nchunks;
	uint64_t reserved[2];
};

/*
 * struct arena_proto_arena.flags.  ZERO: every allocation from the arena
 * clears the block's usable bytes before it is handed out (arenad --init
 * zero); the allocating client does it, so the cost is the block's own
 * bytes, paid by whoever takes it.
 */
#define ARENA_PROTO_ARENA_ZERO (1u << 0)
#define ARENA_PROTO_ARENA_FLAGS ARENA_PROTO_ARENA_ZERO /* all known */

_Static_assert(sizeof(struct arena_proto_arena) == 128, "arena desc size");
_Static_assert(offsetof(struct arena_proto_arena, data_off) == 24, "data_off");
_Static_assert(offsetof(struct arena_proto_arena, nwords) == 56, "nwords");
_Static_assert(offsetof(struct arena_proto_arena, tree_off) == 64, "tree");
_Static_assert(offsetof(struct arena_proto_arena, max_order) == 88, "order");
_Static_assert(offsetof(struct arena_proto_arena, bump_off) == 96, "bump");

/* A bitmap word alone on its cache line so claims do not false-share. */
struct arena_proto_bitmap_word {
	alignas(ARENA_PROTO_CACHELINE) uint64_t bits; /* 1 = free (a hint) */
	uint64_t pad[7];
};

_Static_assert(sizeof(struct arena_proto_bitmap_word) == 64, "bitmap word");

/* Region header, page 0.  Descriptors follow; the whole header spans at most three pages. */
struct arena_proto_region {
	uint64_t magic;	  /* ARENA_PROTO_REGION_MAGIC */
	uint32_t version; /* ARENA_PROTO_LAYOUT_VERSION */
	uint32_t hdr_size;
	uint64_t region_size;
	uint64_t instance;  /* random per daemon start */
	uint32_t region_id; /* handle region bits */
	uint32_t narenas;
	uint32_t max_clients;
	uint32_t ledger_entries; /* per client, a power of two */
	uint64_t clients_off;	 /* client i at clients_off + (i-1)*stride */
	uint64_t client_stride;	 /* bytes per client table */
	uint64_t ctr_off;	 /* counters, inside a client table */
	uint64_t ledger_off;	 /* ledger, inside a client table */
	uint64_t daemon_pid;
	uint64_t bctr_off;	 /* buddy counters, inside a client table */
	uint64_t chan_off;	 /* nchan x struct arena_proto_chan, or 0 */
	uint64_t chan_cells_off; /* chan_cells x struct arena_proto_cell */
	uint32_t nchan;		 /* channel table slots (0: no channels) */
	uint32_t chan_cells;	 /* ring cells shared by all channels */
	uint64_t jnl_off;	 /* journal, inside a client table */
	uint64_t wait_off;	 /* narenas x struct arena_proto_wait, or 0 */
	uint64_t reserved[15];
	struct arena_proto_arena arenas[ARENA_PROTO_MAX_ARENAS];
};

_Static_assert(offsetof(struct arena_proto_region, arenas) == 256, "hdr");
_Static_assert(offsetof(struct arena_proto_region, chan_off) == 96, "chan");
_Static_assert(offsetof(struct arena_proto_region, jnl_off) == 120, "jnl");
_Static_assert(offsetof(struct arena_proto_region, wait_off) == 128, "wait");
_Static_assert(sizeof(struct arena_proto_region) <= 3 * ARENA_PROTO_PAGE,
	       "region header fits three pages");

/*
 * Zero-copy channels (lib/chan.c, daemon/chan.c).  The daemon owns the
 * table: it claims a slot, names it and carves its ring out of the cell
 * area on CHAN_OPEN, and drains and frees it when the last endpoint is
 * gone.  Clients only touch tail, head, the cells and the futex words.
 * The ring is a bounded MPMC queue after Vyukov's whose cells record who
 * claimed them: the encoding of a cell's seq word is in ring.h.
 */
#define ARENA_PROTO_CHAN_NAME 48u	/* bytes, NUL included */
#define ARENA_PROTO_CHAN_MAX_CAP 65536u /* cells of one channel */
#define ARENA_PROTO_CHAN_MAX 1024u	/* channel table slots */
#define ARENA_PROTO_CHAN_MAX_CELLS (1u << 24)

enum arena_proto_chan_state {
	ARENA_PROTO_CHAN_FREE = 0,
	ARENA_PROTO_CHAN_LIVE = 1,
};

struct arena_proto_cell {
	uint64_t seq;	 /* atomic, see ring.h */
	uint64_t handle; /* valid while seq says full */
};

struct arena_proto_chan {
	/* line 0: written by the daemon only, while no endpoint exists */
	char name[ARENA_PROTO_CHAN_NAME];
	uint32_t state;	   /* enum arena_proto_chan_state */
	uint32_t capacity; /* cells, a power of two >= 2 */
	uint64_t ring;	   /* first cell, an index into the cell area */
	/* line 1: producers */
	alignas(ARENA_PROTO_CACHELINE) uint64_t tail; /* ~ sends, a hint */
	uint64_t pad1[7];
	/* line 2: consumers */
	alignas(ARENA_PROTO_CACHELINE) uint64_t head; /* ~ receives, a hint */
	uint64_t pad2[7];
	/* line 3: sleeping; a futex word changes on each wake-worthy event */
	alignas(ARENA_PROTO_CACHELINE) uint32_t rx_futex;
	uint32_t rx_waiters;
	uint32_t tx_futex;
	uint32_t tx_waiters;
	uint64_t pad3[6];
};

_Static_assert(sizeof(struct arena_proto_cell) == 16, "cell size");
_Static_assert(sizeof(struct arena_proto_chan) == 256, "chan size");
_Static_assert(offsetof(struct arena_proto_chan, tail) == 64, "chan tail");
_Static_assert(offsetof(struct arena_proto_chan, head) == 128, "chan head");
_Static_assert(offsetof(struct arena_proto_chan, rx_futex) == 192, "futex");

/*
 * Per (client, stat slot, arena) counters.  Single writer: one thread
 * (the last row: threads without a cache, with atomic adds).  frees and
 * free_bytes are counted by whoever drops a block's last reference, so
 * summed over every row (and the departed clients' share in struct
 * arena_proto_wait) allocs - frees is the number of live blocks.  The
 * byte counters are kept for buddy and bump arenas only: a fixed arena's
 * bytes are its counts times its block size.
 */
struct arena_proto_ctr {
	uint64_t allocs;
	uint64_t frees;
	uint64_t fail_full; /* -ENOMEM, -ETIMEDOUT */
	uint64_t fail_big;  /* -E2BIG */
	uint64_t alloc_bytes;
	uint64_t free_bytes;
	uint64_t waits;	  /* arena_alloc_wait() calls that slept */
	uint64_t wait_ns; /* time they waited */
};

_Static_assert(sizeof(struct arena_proto_ctr) == 64, "ctr size");

/*
 * Waiting for a block, and the shared part of the live metrics, one per
 * arena (lib/wait.c, proto/waitq.h, lib/stats.c).
 *
 * Line 0 is the wait queue: a ticket lock's two counters in one word
 * (tail << 32 | head), so that a free tells whether anybody waits with
 * one load of a line written only while somebody does, and a futex word
 * bumped on every event a sleeper may be waiting for (a block given back
 * while somebody waits, the head moving).  Tickets are taken by claiming
 * a cell: cell t % WAIT_CELLS goes EMPTY(t) -> WAITING(t, client) by
 * CAS, which records the owner in the claiming atomic, and the tail then
 * moves on (anybody helps).  Only the waiter whose ticket is the head
 * may take a block; it leaves by marking its cell DONE, and whoever sees
 * a DONE cell at the head (or one a dead client still holds) recycles it
 * EMPTY(t + WAIT_CELLS) and moves the head on.  arenad marks a dead
 * client's cells DONE before its id can be reused.
 *
 * Line 5 is the daemon's: counters of clients that have gone, folded in
 * under fold_seq (odd while a fold is under way).  Line 6 holds the
 * high-water marks, raised with an atomic max by arena_stats() and by
 * the daemon's sampling.  Everything here is a hint to the daemon, which
 * keeps its own copy of the totals and bounds every read.
 */
#define ARENA_PROTO_WAIT_CELLS 32u

enum arena_proto_wait_state {
	ARENA_PROTO_WAIT_EMPTY = 0,
	ARENA_PROTO_WAIT_WAITING = 1,
	ARENA_PROTO_WAIT_DONE = 2,
};

/* A cell: ticket << 32 | owner client id << 20 | state. */
static inline uint64_t arena_proto_wait_cell(uint32_t ticket, uint32_t owner,
					     uint32_t state)
{
	return (uint64_t)ticket << 32 | (uint64_t)(owner & 0xfffu) << 20 |
	       (state & 3u);
}

struct arena_proto_wait {
	/* line 0: the queue, written only while somebody waits */
	alignas(ARENA_PROTO_CACHELINE) uint64_t queue; /* tail << 32 | head */
	uint32_t futex; /* bumped on each wake-worthy event */
	uint32_t reserved0;
	uint64_t pad0[6];
	/* lines 1-4: ticket cells */
	uint64_t cell[ARENA_PROTO_WAIT_CELLS];
	/* line 5: the daemon's: counters of departed clients */
	struct arena_proto_ctr gone;
	/* line 6: high-water marks and the fold sequence */
	uint64_t peak_blocks;
	uint64_t peak_bytes;
	uint64_t fold_seq; /* odd while the daemon folds */
	uint64_t pad6[5];
	uint64_t reserved[8];
};

_Static_assert(sizeof(struct arena_proto_wait) == 512, "wait size");
_Static_assert(offsetof(struct arena_proto_wait, cell) == 64, "wait cells");
_Static_assert(offsetof(struct arena_proto_wait, gone) == 320, "wait gone");
_Static_assert(offsetof(struct arena_proto_wait, peak_blocks) == 384,
	       "wait peaks");

/* Per (client, stat slot) counters of the buddy tree.  Single writer. */
struct arena_proto_bctr {
	uint64_t splits;    /* free blocks divided */
	uint64_t coalesces; /* free buddies merged */
};

_Static_assert(sizeof(struct arena_proto_bctr) == 16, "bctr size");

enum arena_proto_client_state {
	ARENA_PROTO_CLIENT_FREE = 0,
	ARENA_PROTO_CLIENT_LIVE = 1,
	ARENA_PROTO_CLIENT_DEAD = 2, /* awaiting or undergoing reclaim */
};

/*
 * Head of a client table.  The daemon writes it at attach and reclaim;
 * the client writes only its counters and its ledger.  Counters follow at
 * ctr_off as [ARENA_PROTO_STAT_SLOTS][narenas] struct arena_proto_ctr, the
 * buddy tree's at bctr_off as [ARENA_PROTO_STAT_SLOTS] struct
 * arena_proto_bctr, the ledger at ledger_off as ledger_entries 64-bit
 * words (see ledger.h), the pending-operation journal at jnl_off as
 * ARENA_PROTO_JNL_ENTRIES 64-bit words (see journal.h).
 */
struct arena_proto_client {
	uint32_t state; /* enum arena_proto_client_state, atomic */
	uint32_t id;
	int32_t pid;
	uint32_t uid;
	uint64_t incarnation; /* bumped at each attach of this id */
	uint64_t reserved[5];
};

_Static_assert(sizeof(struct arena_proto_client) == 64, "client head");

#endif
