// SPDX-License-Identifier: MIT
/*
 * Zeroed allocation and moving a block to a larger one.
 *
 * arena_alloc_ex(ARENA_ALLOC_ZERO) is arena_alloc() and one memset of
 * the new block's usable bytes, done by the allocating thread before the
 * handle leaves it, so nobody can see the block before it is clear.  An
 * arena the daemon runs with --init zero already clears in its
 * allocation paths (fastpath.h, buddyfast.h, bumpfast.h), so the flag
 * adds nothing there.  Clearing on allocation rather than on free costs
 * the same bytes and is exact whoever frees, reclaim included: the
 * daemon never writes block data.
 *
 * arena_realloc() is built from the public steps in an order that keeps
 * every failure harmless: check that the caller holds the block,
 * allocate the new one, copy, and only then drop the caller's reference
 * to the old one (other holders' references are theirs; the old block
 * lives until they drop them).  If that drop fails (another thread of
 * the caller dropped the same reference meanwhile) the new block is
 * given back and the error returned, so *h never names a block the
 * caller does not hold.
 */
#include <errno.h>
#include <string.h>

#include "buddyfast.h"
#include "bumpfast.h"

/* The arena of a handle of this region, or NULL. */
static struct lib_arena *arena_of(struct arena_client *c, arena_handle_t h)
{
	uint32_t ai = (uint32_t)(h >> 52) - c->arena_base;

	if (ai >= c->narenas || (uint32_t)h >= c->arenas[ai].nblocks)
		return NULL;
	return &c->arenas[ai];
}

/* Clear the usable bytes of block h, which this thread just allocated. */
static void clear_new(struct arena_client *c, arena_handle_t h)
{
	struct lib_arena *a = arena_of(c, h);
	uint64_t idx = (uint32_t)h;
	const uint64_t *hdr;

	if (!a || a->zero)
		return; /* --init zero: cleared already */
	if (a->kind == ARENA_PROTO_KIND_FIXED) {
		memset(a->data + idx * a->block_size, 0, a->block_size);
	} else if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		memset(a->data + idx * a->block_size, 0,
		       a->block_size << __atomic_load_n(&a->order[idx],
							__ATOMIC_RELAXED));
	} else {
		hdr = (const uint64_t *)(a->data + (idx << 3));
		memset(a->data + (idx << 3) + ARENA_BUMP_HDR, 0,
		       (__atomic_load_n(&hdr[1], __ATOMIC_RELAXED) + 15) &
			       ~15ull);
	}
}

int arena_alloc_ex(struct arena_client *c, enum arena_kind kind, size_t size,
		   unsigned flags, arena_handle_t *out)
{
	int err;

	if (flags & ~ARENA_ALLOC_ZERO)
		return -EINVAL;
	err = arena_alloc(c, kind, size, out);
	if (err || !(flags & ARENA_ALLOC_ZERO))
		return err;
	clear_new(c, *out);
	return 0;
}

/*
 * The arena of h when h names a live block this client holds a
 * reference to; else NULL and why in *err.
 */
static struct lib_arena *held(struct arena_client *c, arena_handle_t h,
			      int *err)
{
	struct lib_arena *a = arena_of(c, h);
	uint32_t idx = (uint32_t)h,
		 gen = (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK;
	uint64_t s;

	*err = -EINVAL;
	if (!a || gen == 0 || (a->kind == ARENA_PROTO_KIND_BUMP && (idx & 1)))
		return NULL;
	*err = -ESTALE;
	if (a->kind == ARENA_PROTO_KIND_BUMP && !bump_handle_ok(a, idx, gen))
		return NULL;
	s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	if (!arena_bs_is_live(s, gen))
		return NULL;
	*err = -EINVAL;
	if (arena_bs_owner(s) != c->id &&
	    !ledger_holds(c, arena_ledger_key(a->index, idx)))
		return NULL;
	*err = 0;
	return a;
}

/* The kind to move a block of arena a to for new_size bytes. */
static enum arena_kind grow_kind(struct arena_client *c,
				 const struct lib_arena *a, size_t new_size)
{
	switch (a->kind) {
	case ARENA_PROTO_KIND_FIXED:
		if (c->nfixed &&
		    c->arenas[c->fixed_order[c->nfixed - 1]].block_size >=
			    new_size)
			return ARENA_KIND_FIXED;
		break;
	case ARENA_PROTO_KIND_BUDDY:
		if (buddy_order_of(a, new_size) <= a->max_order)
			return ARENA_KIND_BUDDY;
		break;
	case ARENA_PROTO_KIND_BUMP:
		if (new_size <= a->max_size)
			return ARENA_KIND_BUMP;
		break;
	}
	return ARENA_KIND_AUTO;
}

int arena_realloc(struct arena_client *c, arena_handle_t *h, size_t new_size)
{
	struct lib_arena *a;
	arena_handle_t n;
	void *to, *from;
	size_t old;
	int err;

	if (!c || !h || new_size == 0)
		return -EINVAL;
	if (client_inherited(c))
		return -ECHILD;
	a = held(c, *h, &err);
	if (!a)
		return err;
	old = arena_size(c, *h);
	if (old == 0)
		return -ESTALE; /* freed since: by another of our threads */
	if (old >= new_size)
		return 0;
	err = arena_alloc(c, grow_kind(c, a, new_size), new_size, &n);
	if (err)
		return err == -ENOTSUP ? -E2BIG : err;
	to = arena_ptr(c, n);
	from = arena_ptr(c, *h);
	if (to && from)
		memcpy(to, from, old); /* before the drop: it may free it */
	err = to && from ? arena_unref(c, *h) : -ESTALE;
	if (err) {
		arena_unref(c, n);
		return err;
	}
	*h = n;
	return 0;
}
