// SPDX-License-Identifier: MIT
/*
 * A non-blocking buddy tree in shared memory, after the 1-level NBBS of
 * Marotta, Ianni, Scarselli, Pellegrini and Quaglia ("A non-blocking
 * buddy system for scalable memory allocation on multi-core machines").
 *
 * Why this shape: a buddy allocator shared by processes that may die at
 * any instruction cannot hold a lock, and must never leave two owners of
 * one byte.  Every node is one byte changed only by CAS.  A node is free
 * as a whole when it is 0.  Taking node n is one CAS 0 -> BUSY; then the
 * climb to the root sets, in every ancestor, the bit that says "something
 * on this side is taken", and fails (undoing its marks) if an ancestor
 * turns out to be an allocated block itself.  Whoever reaches a node
 * first wins: a block and anything inside or around it cannot both be
 * taken, because each must CAS the other's path.
 *
 * Freeing has the classic race: between freeing n and clearing its
 * parent's "taken" bit, someone may take n again, and the parent bit
 * would then be cleared under a live block.  The coalescing bits solve
 * it: the freer first marks "coalescing on this side" up the path it will
 * clear (stopping where the buddy stays taken), then frees n, then clears
 * each mark only while it is still there.  An allocation that climbs
 * through a node wipes the coalescing bit on its side, which tells the
 * freer to stop: the subtree is taken again.  The last of two freers that
 * meet at a parent carries the coalescing on upward, so after every free
 * has returned the tree is exactly as if nothing had ever been allocated:
 * coalescing is complete whatever the interleaving.
 *
 * A failed allocation's undo is such a free, and must be a whole one.  It
 * once stopped below the node where its climb had met an allocated block,
 * as if the marks above were not its business.  But that block can be
 * freed meanwhile, and another allocation beside ours climb through the
 * same nodes and free again; that freer sees our mark below, stops there
 * and leaves the rest of the climb to us, the last one out.  An undo that
 * stopped short then left "taken" bits over an empty subtree for good (1
 * run of the threaded test in 35).  So the undo announces and clears like
 * any free, up through the nodes that count its side as taken, which are
 * exactly those where such a freer can have left it the work.  It stops
 * at a node that is an allocated block when it gets there (its bits are
 * its own: it was 0 when taken, and nothing under it is anyone's to
 * carry above it), and at a node that does not count its side as taken
 * (nothing to clear there, and a coalescing mark without the "taken" bit
 * under it would outlive every unmark: 1 TSan run in 200 kept one).  So
 * a coalescing bit is only ever set beside its "taken" bit, as in a free.
 *
 * A process killed inside one of these functions leaves at worst marks
 * that nobody clears: blocks that look taken, never a taken block that
 * looks free.  So that reclaim can finish exactly what it left, every
 * step is announced first in the caller's journal entry (the tally's
 * jnl, proto/journal.h): the node being taken, the node being given back
 * and how far up its marks reach.  The daemon gives such a node back, or
 * goes on clearing its marks, once it knows no live client holds it
 * (daemon/reclaim.c, docs/blocks.md "Journal"); and it still rebuilds the
 * tree from the leaf state words when no client is attached.
 *
 * Every index is computed from the geometry, never read from the tree, so
 * no tree contents can steer an access outside the array; every loop is
 * bounded by the depth or by a CAS that only fails when another process
 * made progress.
 */
#include <errno.h>
#include <stdbool.h>

#include "buddy.h"
#include "crashpoint.h"
#include "journal.h"

#define OCC_ANY (ARENA_BN_OCC_L | ARENA_BN_OCC_R)

static inline uint8_t load(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline bool cas(uint8_t *p, uint8_t *old, uint8_t nv)
{
	return __atomic_compare_exchange_n(p, old, nv, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

static inline unsigned depth_of(uint64_t n)
{
	return 63u - (unsigned)__builtin_clzll(n);
}

/* The "taken" and "coalescing" bits of child's side in its parent. */
static inline uint8_t occ_bit(uint64_t child)
{
	return (uint8_t)(ARENA_BN_OCC_L << (child & 1));
}

static inline uint8_t coal_bit(uint64_t child)
{
	return (uint8_t)(ARENA_BN_COAL_L << (child & 1));
}

/* Keep the caller's journal entry up to date (proto/journal.h). */
static inline void jnote(struct arena_buddy_tally *ta, uint32_t op, uint64_t n,
			 unsigned top)
{
	if (ta->jnl)
		__atomic_store_n(
			ta->jnl,
			arena_jnl_make(op, top, ta->jarena, (uint32_t)n),
			__ATOMIC_RELEASE);
}

static bool block_ok(const struct arena_buddy_geom *g, uint32_t leaf,
		     unsigned order)
{
	if (g->max_order > ARENA_BUDDY_MAX_ORDER || order > g->max_order)
		return false;
	return (uint64_t)leaf < (1ull << g->max_order) &&
	       !(leaf & ((1ull << order) - 1));
}

static inline uint64_t node_of(const struct arena_buddy_geom *g, uint32_t leaf,
			       unsigned order)
{
	return (1ull << (g->max_order - order)) + (leaf >> order);
}

/* Clear the marks of a free climbing from n while they are still there. */
static void unmark(uint8_t *t, uint64_t n, unsigned top,
		   struct arena_buddy_tally *ta)
{
	uint64_t run = n, cur;
	uint8_t v, nv;

	for (;;) {
		cur = run >> 1;
		v = load(&t[cur]);
		do {
			if (!(v & coal_bit(run)))
				return; /* taken again below: stop here */
			nv = (uint8_t)(v & ~(occ_bit(run) | coal_bit(run)));
		} while (!cas(&t[cur], &v, nv));
		ARENA_CRASHPOINT();
		if (!(nv & OCC_ANY))
			ta->coalesces++;
		if (depth_of(cur) <= top || (nv & occ_bit(run ^ 1)))
			return;
		run = cur;
	}
}

/*
 * Free node n, whose marks reach up to depth top (0: the root; the
 * daemon may give a smaller reach for a dead client's node): announce
 * the coalescing up to where the buddy stays taken, free n, unmark.
 * Also undoes an allocation of n that found an allocated block above it
 * (try_alloc), as a whole free (top 0).  Past the nodes its own climb
 * marked, the undo goes on only through nodes that count this side as
 * taken and are no allocated block (see the top of the file); a free
 * never meets either condition, every node above a held block counts it.
 * An allocated block met so ends the climb with its byte left exactly as
 * its owner set it.
 */
static void release(uint8_t *t, uint64_t n, unsigned top,
		    struct arena_buddy_tally *ta)
{
	uint64_t run = n, cur;
	uint8_t v;

	while (depth_of(run) > top) {
		cur = run >> 1;
		v = load(&t[cur]);
		do {
			/* only an undo meets these: see above */
			if ((v & ARENA_BN_OCC) || !(v & occ_bit(run)))
				goto freed;
		} while ((v | coal_bit(run)) != v &&
			 !cas(&t[cur], &v, (uint8_t)(v | coal_bit(run))));
		ARENA_CRASHPOINT();
		if ((v & occ_bit(run ^ 1)) && !(v & coal_bit(run ^ 1)))
			break; /* the buddy stays taken: nothing merges above */
		run = cur;
	}
freed:
	jnote(ta, ARENA_JNL_BUNMARK, n, top);
	ARENA_CRASHPOINT();
	__atomic_store_n(&t[n], 0, __ATOMIC_RELEASE);
	ARENA_CRASHPOINT();
	if (depth_of(n) > top)
		unmark(t, n, top, ta);
	jnote(ta, ARENA_JNL_HELD, 0, 0);
}

/*
 * Take node n: 0 when taken, else the node in the way (n itself, or an
 * ancestor that is an allocated block).
 */
static uint64_t try_alloc(uint8_t *t, uint64_t n, struct arena_buddy_tally *ta)
{
	uint64_t cur = n, child;
	uint8_t v = 0, nv;

	jnote(ta, ARENA_JNL_BCLAIM, n, 0);
	ARENA_CRASHPOINT();
	if (!cas(&t[n], &v, ARENA_BN_BUSY))
		return n;
	ARENA_CRASHPOINT();
	while (cur > 1) {
		child = cur;
		cur >>= 1;
		v = load(&t[cur]);
		do {
			if (v & ARENA_BN_OCC) {
				jnote(ta, ARENA_JNL_BUNDO, n, 0);
				ARENA_CRASHPOINT();
				release(t, n, 0, ta);
				return cur;
			}
			nv = (uint8_t)((v | occ_bit(child)) & ~coal_bit(child));
		} while (nv != v && !cas(&t[cur], &v, nv));
		ARENA_CRASHPOINT();
		if (!(v & OCC_ANY))
			ta->splits++;
	}
	return 0;
}

/*
 * Read-only look up the path: the nearest ancestor that is an allocated
 * block, or 0.  Stops early where the parent already counts this side as
 * taken.  Only a hint that saves a CAS and its undo.
 */
static uint64_t blocked_above(const uint8_t *t, uint64_t n)
{
	uint8_t v;

	for (; n > 1; n >>= 1) {
		v = load(&t[n >> 1]);
		if (v & ARENA_BN_OCC)
			return n >> 1;
		if (v & occ_bit(n))
			return 0;
	}
	return 0;
}

/* Scan positions [from, to) of the level starting at node first. */
static bool level_scan(uint8_t *t, uint64_t first, uint64_t from, uint64_t to,
		       uint64_t *out, struct arena_buddy_tally *ta)
{
	uint64_t i = from, n, at;
	unsigned d = depth_of(first);

	while (i < to) {
		n = first + i;
		if (load(&t[n]) != 0) {
			i++;
			continue;
		}
		at = blocked_above(t, n);
		if (!at)
			at = try_alloc(t, n, ta);
		if (!at) {
			*out = n;
			return true;
		}
		/* past the subtree of the node in the way */
		i = ((at + 1) << (d - depth_of(at))) - first;
	}
	return false;
}

int arena_buddy_alloc(void *tree, const struct arena_buddy_geom *g,
		      unsigned order, uint32_t hint, uint32_t *leaf,
		      struct arena_buddy_tally *t)
{
	uint64_t first, h, n;

	if (g->max_order > ARENA_BUDDY_MAX_ORDER || order > g->max_order)
		return -EINVAL;
	first = 1ull << (g->max_order - order);
	h = hint & (first - 1);
	if (level_scan(tree, first, h, first, &n, t) ||
	    level_scan(tree, first, 0, h, &n, t)) {
		*leaf = (uint32_t)((n - first) << order);
		return 0;
	}
	return -ENOMEM;
}

int arena_buddy_free(void *tree, const struct arena_buddy_geom *g,
		     uint32_t leaf, unsigned order, struct arena_buddy_tally *t)
{
	uint8_t *tr = tree;
	uint64_t n;

	if (!block_ok(g, leaf, order))
		return -EINVAL;
	n = node_of(g, leaf, order);
	if (!(load(&tr[n]) & ARENA_BN_OCC))
		return -EINVAL;
	release(tr, n, 0, t);
	return 0;
}

static bool node_ok(const struct arena_buddy_geom *g, uint64_t node,
		    unsigned top)
{
	return g->max_order <= ARENA_BUDDY_MAX_ORDER && node >= 1 &&
	       node < (2ull << g->max_order) && top <= depth_of(node);
}

int arena_buddy_release_node(void *tree, const struct arena_buddy_geom *g,
			     uint64_t node, unsigned top,
			     struct arena_buddy_tally *t)
{
	uint8_t *tr = tree;

	if (!node_ok(g, node, top))
		return -EINVAL;
	if (!(load(&tr[node]) & ARENA_BN_OCC))
		return 0;
	release(tr, node, top, t);
	return 1;
}

/*
 * Clear at cur the marks of a free that climbed from its child run, if
 * they are still there; the byte left.
 */
static uint8_t unmark_one(uint8_t *t, uint64_t run, uint64_t cur)
{
	uint8_t v = load(&t[cur]);

	while ((v & coal_bit(run)) &&
	       !cas(&t[cur], &v,
		    (uint8_t)(v & ~(occ_bit(run) | coal_bit(run)))))
		;
	return (v & coal_bit(run))
		       ? (uint8_t)(v & ~(occ_bit(run) | coal_bit(run)))
		       : v;
}

/*
 * Unlike unmark(), a level whose coalescing bit is gone does not end the
 * climb: the dead client may have cleared it itself and died before the
 * next (its journal cannot say which, a store and a CAS are two steps),
 * or an allocation climbing through wiped it, in which case that
 * allocation wipes, or will wipe, every coalescing bit above it too.  The
 * climb ends where the dead client's marks cannot reach: at top, at an
 * allocated block, or where the buddy is taken (its release stopped
 * there, or an allocation since owns everything above).
 */
int arena_buddy_unmark_node(void *tree, const struct arena_buddy_geom *g,
			    uint64_t node, unsigned top,
			    struct arena_buddy_tally *t)
{
	uint8_t *tr = tree, v;
	uint64_t run, cur;

	(void)t;
	if (!node_ok(g, node, top))
		return -EINVAL;
	for (run = node; depth_of(run) > top; run = cur) {
		cur = run >> 1;
		if (load(&tr[cur]) & ARENA_BN_OCC)
			break;
		v = unmark_one(tr, run, cur);
		if ((v & occ_bit(run ^ 1)) && !(v & coal_bit(run ^ 1)))
			break;
	}
	return 0;
}

static void count_free(struct arena_buddy_free *out, unsigned order)
{
	out->blocks[order]++;
	out->leaves += 1ull << order;
	if ((int32_t)order > out->largest)
		out->largest = (int32_t)order;
}

/* Depth-first from node n (of the given order); recursion <= 32 deep. */
static void scan_node(const uint8_t *t, uint64_t n, unsigned order,
		      struct arena_buddy_free *out)
{
	uint8_t v = load(&t[n]);
	unsigned s;

	if (v & ARENA_BN_OCC)
		return;
	if (!(v & OCC_ANY) || order == 0) {
		count_free(out, order);
		return;
	}
	for (s = 0; s < 2; s++) {
		if (v & (ARENA_BN_OCC_L << s))
			scan_node(t, 2 * n + s, order - 1, out);
		else
			count_free(out, order - 1);
	}
}

void arena_buddy_scan(const void *tree, const struct arena_buddy_geom *g,
		      struct arena_buddy_free *out)
{
	unsigned o;

	for (o = 0; o < ARENA_BUDDY_ORDERS; o++)
		out->blocks[o] = 0;
	out->leaves = 0;
	out->largest = -1;
	if (g->max_order <= ARENA_BUDDY_MAX_ORDER)
		scan_node(tree, 1, g->max_order, out);
}

int arena_buddy_mark(void *tree, const struct arena_buddy_geom *g,
		     uint32_t leaf, unsigned order)
{
	uint8_t *t = tree;
	uint64_t n, cur;

	if (!block_ok(g, leaf, order))
		return -EINVAL;
	n = node_of(g, leaf, order);
	if (t[n] != 0)
		return -EINVAL; /* taken, or something inside it is */
	for (cur = n; cur > 1; cur >>= 1)
		if (t[cur >> 1] & ARENA_BN_OCC)
			return -EINVAL; /* inside a taken block */
	t[n] = ARENA_BN_BUSY;
	for (cur = n; cur > 1; cur >>= 1)
		t[cur >> 1] |= occ_bit(cur);
	return 0;
}
