/* SPDX-License-Identifier: MIT */
/*
 * libarena internals shared between lib/ files; never installed.
 *
 * A client keeps validated, process-local copies of the region's arena
 * descriptors (so a scribbled header cannot move a later access outside
 * the mapping), a size-class lookup table, its reference ledger in the
 * region, and up to LIB_TC_MAX thread caches.  A thread cache holds one
 * magazine of reserved slots per fixed arena, and one per order of the
 * buddy arena; reserved blocks are marked MAG(client) in their state
 * words, so the magazines themselves can live in private memory: the
 * daemon finds a dead client's blocks by their state, never by trusting
 * its caches.
 */
#ifndef ARENA_LIB_INTERNAL_H
#define ARENA_LIB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <arena/arena.h>

#include "buddy.h"
#include "bump.h"
#include "crashpoint.h"
#include "handle.h"
#include "journal.h"
#include "layout.h"
#include "ledger.h"

#define LIB_TC_MAX (ARENA_PROTO_STAT_SLOTS - 1) /* last row is shared */
#define LIB_SHARED_ROW (ARENA_PROTO_STAT_SLOTS - 1)
_Static_assert(LIB_TC_MAX == ARENA_PROTO_JNL_CACHES, "a journal entry each");
#define LIB_MAG_MAX 62u			 /* struct lib_mag is 256 bytes */
#define LIB_LUT_MAX 65536u		 /* sizes served by the class table */
#define LIB_BUDDY_MAG_BYTES (256u << 10) /* per thread and buddy order */
#define LIB_MAP_ALIGN_MAX (1ull << 40)	 /* largest mapping alignment */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct lib_arena {
	uint32_t kind;
	uint32_t index;
	uint64_t block_size; /* buddy: the minimum block (a leaf) */
	uint32_t nblocks;    /* buddy: leaves */
	uint32_t nwords;     /* fixed: bitmap words; buddy: 0 */
	uint32_t mag_cap;    /* slots per magazine; 0: no magazine (buddy) */
	uint8_t max_order;   /* buddy: leaves = 1 << max_order */
	uint8_t shift;	     /* buddy: block_size = 1 << shift */
	uint8_t zero;	     /* ARENA_PROTO_ARENA_ZERO: clear on allocation */
	uint8_t pad;
	uint8_t *data;
	_Atomic uint64_t *state;
	union {
		struct arena_proto_bitmap_word *bitmap; /* fixed */
		uint8_t *tree;				/* buddy, buddy.h */
		struct arena_bump_hdr *bump;		/* bump, bump.h */
	};
	union {
		uint8_t *order;	   /* buddy: order of the block at each leaf */
		uint64_t max_size; /* bump: largest allocation */
	};
};

_Static_assert(sizeof(struct lib_arena) == 64, "one line per arena");

struct lib_mag {
	uint32_t n;
	uint32_t hint; /* bitmap word to try first */
	uint32_t idx[LIB_MAG_MAX];
};

_Static_assert(sizeof(struct lib_mag) == 256, "magazine size");

/* A thread's place in the bump arena: its chunk and cursor. */
#define LIB_BUMP_HIST 64u /* chunks a rollback can reach back over */

struct lib_bump {
	/* what the fast path reads (bumpfast.h) */
	uint64_t cur;		 /* next header, bytes from the data start */
	uint64_t end;		 /* end of the chunk; 0: no chunk */
	const uint64_t *epoch_p; /* the arena's reset epoch (bump.h) */
	uint64_t fast_epoch;	 /* epoch, or never equal: --init zero */
	uint8_t *data;		 /* the arena's data */
	uint64_t word;	  /* a new header's state word: ALLOC(me, gen, 1) */
	uint64_t hbase;	  /* a new handle's region, arena and gen bits */
	uint64_t *allocs; /* counted per allocation: this cache's counter */
	uint64_t *bytes;  /* and their sizes: its alloc_bytes, or sink */
	/* the rest */
	uint64_t sink;
	uint64_t max;	/* largest allocation */
	uint64_t made0; /* headers in the chunk = *allocs - made0 */
	uint32_t chunk; /* its index */
	uint32_t gen;	/* its generation */
	bool zero;	/* the arena clears what it hands out */
	uint64_t epoch; /* the reset epoch when this cache last looked */
	uint64_t seq;	/* chunks this cache has reserved */
	uint32_t hist[LIB_BUMP_HIST][2]; /* chunk seq % HIST: index, gen */
};

struct lib_tcache {
	struct arena_client *c;
	uint32_t slot;
	struct arena_proto_ctr *ctr;   /* this cache's counter row */
	struct arena_proto_bctr *bctr; /* its buddy tree counters */
	struct lib_mag *bmags;	       /* buddy: one per order, or NULL */
	struct lib_bump bump;	       /* bump arena */
	struct lib_mag mags[];	       /* one per arena */
};

struct arena_client {
	int sock;
	uint32_t ctl_seq;	  /* the last control request's, ctl.c */
	int ctl_err;		  /* 0, or -ESHUTDOWN / -ENOTCONN for good */
	pthread_mutex_t ctl_lock; /* one control round trip at a time */
	uint32_t id;
	uint32_t region_id;
	uint32_t arena_base; /* region_id << 8, see resolve() */
	uint32_t narenas;
	uint32_t nfixed;
	uint64_t serial;
	uint64_t sole_body;	       /* ALLOC, owner me, count 1: sans gen */
	struct arena_proto_wait *wait; /* [narenas], see wait.c */
	uint64_t instance;
	uint8_t *base;
	uint64_t size;
	_Atomic uint64_t *ledger;
	uint32_t ledger_mask;
	atomic_uint ledger_refs;     /* references held through the ledger */
	struct arena_proto_ctr *ctr; /* [STAT_SLOTS][narenas] */
	uint8_t *tables;	     /* client 1's table; see stats.c */
	uint64_t table_stride;
	uint64_t ctr_off; /* counters inside a table */
	uint32_t max_clients;
	struct arena_proto_bctr *bctr;	  /* [STAT_SLOTS] */
	struct lib_arena *buddy;	  /* the buddy arena, or NULL */
	struct lib_arena *bumpa;	  /* the bump arena, or NULL */
	uint8_t bcap[ARENA_BUDDY_ORDERS]; /* buddy magazine size per order */
	pthread_key_t key;
	bool key_ok;
	atomic_uint tc_used[LIB_TC_MAX];
	struct lib_tcache *tc[LIB_TC_MAX];
	uint8_t fixed_order[ARENA_PROTO_MAX_ARENAS]; /* by block size */
	uint8_t lut[LIB_LUT_MAX / 16];		     /* (size-1)/16 -> arena */
	struct lib_arena arenas[ARENA_PROTO_MAX_ARENAS];
	_Atomic uint64_t *jnl; /* ARENA_PROTO_JNL_ENTRIES, journal.h */
};

#define LIB_NO_ARENA 0xff

/* attach.c */
int region_adopt(struct arena_client *c, int fd, uint64_t size);
void region_release(struct arena_client *c);

/*
 * ctl.c: send request type (len bytes of req) and wait for the answer:
 * its payload length with the payload in reply when it is of type want,
 * the daemon's ERROR as its errno, -EPROTO for anything else, -ESHUTDOWN
 * when the daemon is gone, -ETIMEDOUT when it did not answer in time,
 * -ENOTCONN when an earlier timeout left the stream out of step.
 */
int ctl_call(struct arena_client *c, uint16_t type, const void *req,
	     uint32_t len, uint16_t want, void *reply, uint32_t cap);

/* tcache.c */
int tc_setup(struct arena_client *c);
void tc_teardown(struct arena_client *c);
struct lib_tcache *tc_get_slow(struct arena_client *c);

/* fixed.c */
int fixed_alloc(struct arena_client *c, struct lib_arena *a,
		arena_handle_t *out);
int fixed_unref(struct arena_client *c, struct lib_arena *a, uint32_t idx,
		uint32_t gen);
int fixed_ref(struct arena_client *c, struct lib_arena *a, uint32_t idx,
	      uint32_t gen);
void fixed_mag_flush(struct lib_arena *a, struct lib_mag *m, uint32_t keep);

/* buddy.c */
int buddy_alloc(struct arena_client *c, struct lib_arena *a, size_t size,
		arena_handle_t *out);
struct lib_mag *buddy_free_target(struct arena_client *c, struct lib_tcache *tc,
				  struct lib_arena *a, uint32_t idx);
void buddy_release(struct arena_client *c, struct lib_tcache *tc,
		   struct lib_arena *a, uint32_t idx, _Atomic uint64_t *e);
void buddy_mags_flush(struct arena_client *c, struct lib_tcache *tc);
size_t buddy_size(const struct lib_arena *a, uint32_t idx, uint32_t gen);

/* bump.c */
int bump_alloc_slow(struct arena_client *c, size_t size, arena_handle_t *out);
bool bump_handle_ok(const struct lib_arena *a, uint32_t idx, uint32_t gen);
void bump_init(struct arena_client *c, struct lib_bump *b, uint64_t *allocs);
void bump_freed(struct lib_arena *a, uint32_t idx, uint32_t gen);
size_t bump_size(const struct lib_arena *a, uint32_t idx, uint32_t gen);
void bump_retire(struct arena_client *c, struct lib_tcache *tc);

/*
 * The journal (proto/journal.h): jnl_take gives the calling thread its
 * entry (its cache's, or one of the shared pool), jnl_done empties it
 * again once the operation is over.
 */
_Atomic uint64_t *jnl_take(struct arena_client *c, struct lib_tcache *tc);
void jnl_done(_Atomic uint64_t *e);

static inline void jnl_note(_Atomic uint64_t *e, uint32_t op, uint32_t arena,
			    uint32_t pos)
{
	atomic_store_explicit(e, arena_jnl_make(op, 0, arena, pos),
			      memory_order_release);
}

/* wait.c */
extern struct arena_proto_wait lib_no_wait[ARENA_PROTO_MAX_ARENAS];
void wait_hand_over(struct arena_client *c, struct lib_tcache *tc,
		    struct lib_arena *a);
void wait_given_back(struct arena_client *c, struct lib_arena *a);
bool wait_client_alive(void *ctx, uint32_t id);

/* ledger.c */
_Atomic uint64_t *ledger_acquire(struct arena_client *c, uint64_t key);
_Atomic uint64_t *ledger_take(struct arena_client *c, uint64_t key);
void ledger_settle(_Atomic uint64_t *e, int64_t count_delta);
/* Does this client's ledger record a reference to key? */
bool ledger_holds(struct arena_client *c, uint64_t key);

struct lib_tls {
	uint64_t serial;
	struct lib_tcache *tc;
};

extern __thread struct lib_tls lib_tls_last
	__attribute__((tls_model("initial-exec")));

/*
 * A client belongs to the process that connected it.  After fork() the
 * child's copies of every earlier client are dead: clients with a serial
 * below lib_fork_floor refuse the data path with -ECHILD (the fork
 * handler also clears the thread-local cache, so the fast paths fall
 * through to the slow ones, which check).
 */
extern _Atomic uint64_t lib_fork_floor;

static inline bool client_inherited(const struct arena_client *c)
{
	return c->serial <
	       atomic_load_explicit(&lib_fork_floor, memory_order_relaxed);
}

void fork_guard_init(void);

/* The calling thread's cache for c if it is at hand, else NULL. */
static inline struct lib_tcache *tc_peek(const struct arena_client *c)
{
	return likely(lib_tls_last.serial == c->serial) ? lib_tls_last.tc
							: NULL;
}

/* The calling thread's cache for c, or NULL when every cache is taken. */
static inline struct lib_tcache *tc_get(struct arena_client *c)
{
	if (likely(lib_tls_last.serial == c->serial))
		return lib_tls_last.tc;
	return tc_get_slow(c);
}

static inline void ctr_add(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/*
 * Counting.  A thread cache's row in the region has one writer, so it
 * needs no atomic read-modify-write and is exact at every moment (also
 * for a client that dies).  Threads without a cache share the last row
 * with atomic adds.
 */
static inline void ctr_bump(struct arena_client *c, struct lib_tcache *tc,
			    uint32_t arena, size_t field)
{
	uint64_t *p;

	if (tc) {
		ctr_add((uint64_t *)((char *)&tc->ctr[arena] + field), 1);
		return;
	}
	p = (uint64_t *)((char *)&c->ctr[LIB_SHARED_ROW * c->narenas + arena] +
			 field);
	__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

static inline void count_alloc(struct lib_tcache *tc, uint32_t arena)
{
	ctr_add(&tc->ctr[arena].allocs, 1);
}

/* Add n to a field of the caller's counter row of arena (as ctr_bump). */
static inline void ctr_addf(struct arena_client *c, struct lib_tcache *tc,
			    uint32_t arena, size_t field, uint64_t n)
{
	uint64_t *p;

	if (tc) {
		ctr_add((uint64_t *)((char *)&tc->ctr[arena] + field), n);
		return;
	}
	p = (uint64_t *)((char *)&c->ctr[LIB_SHARED_ROW * c->narenas + arena] +
			 field);
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

/* A block of bytes bytes (0: a fixed arena's, not counted) was freed. */
static inline void count_free(struct arena_client *c, struct lib_tcache *tc,
			      uint32_t arena, uint64_t bytes)
{
	ctr_addf(c, tc, arena, offsetof(struct arena_proto_ctr, frees), 1);
	if (bytes)
		ctr_addf(c, tc, arena,
			 offsetof(struct arena_proto_ctr, free_bytes), bytes);
}

/*
 * Somebody may wait for a block of arena a: one load of a line written
 * only while somebody does.  Ordered after the caller's seq_cst CAS or
 * fence that made a block visible (the waiter's side is a seq_cst CAS
 * on the queue, then its try), so a waiter either sees the block or is
 * seen here.
 */
static inline bool wait_busy(const struct arena_client *c,
			     const struct lib_arena *a)
{
	uint64_t q =
		__atomic_load_n(&c->wait[a->index].queue, __ATOMIC_SEQ_CST);

	return (uint32_t)q != (uint32_t)(q >> 32);
}

#endif
