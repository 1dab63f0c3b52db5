/* SPDX-License-Identifier: MIT */
/*
 * The buddy arena's tree: a non-blocking buddy system (after NBBS,
 * Marotta et al.) in shared memory, used by libarena to allocate and free
 * and by arenad to give back what a dead client held, and read by arenad
 * for statistics.
 *
 * The tree is an array of one byte per node in heap order: node 1 is the
 * whole arena, node n has children 2n and 2n + 1, and the nodes of depth
 * d (1 << d of them, blocks of order max_order - d) are 1 << d ..
 * (2 << d) - 1.  Byte 0 is unused; the array is 2 << max_order bytes.
 * A block of order o starting at leaf L is node (1 << (max_order - o)) +
 * (L >> o).
 *
 * The tree says which blocks are taken; the leaf state words (handle.h)
 * say by whom and at which generation.  Allocation takes a block here
 * first, then claims the state word of its first leaf; a free releases
 * the state word first, then the block here.  So a client killed between
 * the two can only leave a block taken in the tree that nobody holds,
 * never one held by two; the caller's journal entry (proto/journal.h,
 * kept up to date through the tally) tells reclaim which node that is.
 */
#ifndef ARENA_PROTO_BUDDY_H
#define ARENA_PROTO_BUDDY_H

#include <stdint.h>

#define ARENA_BUDDY_MAX_ORDER 31u /* at most 1 << 31 leaves */
#define ARENA_BUDDY_ORDERS 32u	  /* orders 0 .. ARENA_BUDDY_MAX_ORDER */

/* Node bits. */
#define ARENA_BN_OCC_L 0x01u  /* something in the left subtree is taken */
#define ARENA_BN_OCC_R 0x02u  /* ... in the right subtree */
#define ARENA_BN_COAL_L 0x04u /* a free in the left subtree climbs here */
#define ARENA_BN_COAL_R 0x08u
#define ARENA_BN_OCC 0x10u /* the node itself is an allocated block */
#define ARENA_BN_BUSY (ARENA_BN_OCC | ARENA_BN_OCC_L | ARENA_BN_OCC_R)

struct arena_buddy_geom {
	uint32_t
		max_order; /* 1 << max_order leaves; <= ARENA_BUDDY_MAX_ORDER */
};

/*
 * What an operation did to the tree, for the statistics; and where the
 * caller keeps its journal entry (proto/journal.h), which the tree
 * functions keep up to date at every step when jnl is not NULL.
 */
struct arena_buddy_tally {
	uint32_t splits;    /* free blocks divided to serve a smaller one */
	uint32_t coalesces; /* pairs of free buddies merged again */
	uint64_t *jnl;	    /* the caller's journal entry, or NULL */
	uint32_t jarena;    /* the arena, for the journal */
	uint32_t pad;
};

/* What the tree shows as free, for the statistics. */
struct arena_buddy_free {
	uint64_t blocks[ARENA_BUDDY_ORDERS]; /* free blocks of each order */
	uint64_t leaves;		     /* free bytes / minimum block */
	int32_t largest; /* order of the largest, -1: none */
};

/* Bytes of the tree array for g. */
static inline uint64_t arena_buddy_tree_len(const struct arena_buddy_geom *g)
{
	return 2ull << g->max_order;
}

/*
 * Take a free block of the given order, searching from position hint
 * among the blocks of that order (any value; reduced modulo their
 * number), and set *leaf to its first leaf.  Returns 0; -ENOMEM when no
 * block of that order is free now; -EINVAL for an order above max_order.
 */
int arena_buddy_alloc(void *tree, const struct arena_buddy_geom *g,
		      unsigned order, uint32_t hint, uint32_t *leaf,
		      struct arena_buddy_tally *t);

/*
 * Give back the block of the given order starting at leaf, coalescing it
 * with its free buddies.  Returns 0, or -EINVAL (nothing changed) when
 * leaf and order do not name a block of g, or the tree does not show that
 * block as allocated.
 */
int arena_buddy_free(void *tree, const struct arena_buddy_geom *g,
		     uint32_t leaf, unsigned order,
		     struct arena_buddy_tally *t);

/*
 * Read-only: the free blocks as the tree shows them (exact when no
 * operation is under way).  Bounded by the geometry whatever the bytes.
 */
void arena_buddy_scan(const void *tree, const struct arena_buddy_geom *g,
		      struct arena_buddy_free *out);

/*
 * For the daemon, finishing what a dead client left half done (its
 * journal names the node, proto/journal.h): give node back when the tree
 * shows it as an allocated block, clearing the marks above it up to depth
 * top, as arena_buddy_free does for top 0; returns 1 then, 0 when the node
 * is not taken, -EINVAL when node or top do not fit g.  The caller must
 * know that no live client holds the node (docs/blocks.md, "Journal").
 */
int arena_buddy_release_node(void *tree, const struct arena_buddy_geom *g,
			     uint64_t node, unsigned top,
			     struct arena_buddy_tally *t);

/*
 * For the daemon: go on clearing the marks that a free of node (already
 * 0) left above it, up to depth top, while they are still there, as the
 * dead client would have.  Returns 0, or -EINVAL when node or top do not
 * fit g.
 */
int arena_buddy_unmark_node(void *tree, const struct arena_buddy_geom *g,
			    uint64_t node, unsigned top,
			    struct arena_buddy_tally *t);

/*
 * Mark the block of the given order starting at leaf as allocated in a
 * tree that nobody else is using (a fresh or private one): the daemon
 * rebuilds the shared tree this way when no client is attached.  Returns
 * 0, or -EINVAL when leaf and order do not name a block of g, or the block
 * overlaps one marked before.
 */
int arena_buddy_mark(void *tree, const struct arena_buddy_geom *g,
		     uint32_t leaf, unsigned order);

#endif
