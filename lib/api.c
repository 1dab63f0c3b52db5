// SPDX-License-Identifier: MIT
/*
 * Public entry points: size-class choice for allocation, and handle
 * decoding for everything else.  A handle is untrusted input: its region,
 * arena and index are checked against the client's validated copy of the
 * layout before anything in shared memory is touched, and the block's
 * state word must show the handle's generation, allocated.
 */
#include <errno.h>
#include <stddef.h>

#include "buddyfast.h"
#include "bumpfast.h"

#define FIELD(f) offsetof(struct arena_proto_ctr, f)

/* Smallest fixed arena holding size bytes, or NULL. */
static struct lib_arena *fixed_class(struct arena_client *c, size_t size)
{
	uint32_t k;

	if (likely(size <= LIB_LUT_MAX)) {
		k = c->lut[(size - 1) / 16];
		return k == LIB_NO_ARENA ? NULL : &c->arenas[k];
	}
	for (k = 0; k < c->nfixed; k++)
		if (c->arenas[c->fixed_order[k]].block_size >= size)
			return &c->arenas[c->fixed_order[k]];
	return NULL;
}

static int too_big(struct arena_client *c)
{
	uint32_t largest = c->fixed_order[c->nfixed - 1];

	ctr_bump(c, tc_get(c), largest, FIELD(fail_big));
	return -E2BIG;
}

/* Sizes no fixed class holds: the buddy arena for AUTO, when there is one. */
static int beyond_fixed(struct arena_client *c, enum arena_kind kind,
			size_t size, arena_handle_t *out)
{
	if (kind == ARENA_KIND_AUTO && c->buddy)
		return buddy_fast_alloc(c, c->buddy, size, out);
	if (c->nfixed == 0)
		return -ENOTSUP;
	return too_big(c);
}

int arena_alloc(struct arena_client *c, enum arena_kind kind, size_t size,
		arena_handle_t *out)
{
	struct lib_arena *a;

	if (kind == ARENA_KIND_BUMP && likely(c && out))
		return bump_fast_alloc(c, size, out); /* size 0: slow path */
	if (unlikely(!c || !out || size == 0))
		return -EINVAL;
	if (unlikely(kind != ARENA_KIND_AUTO && kind != ARENA_KIND_FIXED)) {
		if (kind == ARENA_KIND_BUDDY && c->buddy)
			return buddy_fast_alloc(c, c->buddy, size, out);
		if (kind == ARENA_KIND_BUDDY || kind == ARENA_KIND_BUMP)
			return -ENOTSUP;
		return -EINVAL;
	}
	if (unlikely(c->nfixed == 0))
		return beyond_fixed(c, kind, size, out);
	a = fixed_class(c, size);
	if (unlikely(!a))
		return beyond_fixed(c, kind, size, out);
	return fast_alloc(c, a, out);
}

/*
 * The arena of a handle, or NULL when it cannot be one of ours.  The
 * region and arena bits are checked in one compare: (h >> 52) is
 * region << 8 | arena, and arena_base is region_id << 8.
 */
static inline __attribute__((always_inline)) struct lib_arena *
resolve(struct arena_client *c, arena_handle_t h, uint32_t *idx)
{
	uint32_t ai = (uint32_t)(h >> 52) - c->arena_base;
	struct lib_arena *a;

	if (unlikely(ai >= c->narenas))
		return NULL;
	a = &c->arenas[ai];
	*idx = (uint32_t)h;
	return likely(*idx < a->nblocks) ? a : NULL;
}

static inline uint32_t handle_gen(arena_handle_t h)
{
	return (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK;
}

static inline __attribute__((always_inline)) struct lib_arena *
resolve_live(struct arena_client *c, arena_handle_t h, uint32_t *idx)
{
	struct lib_arena *a = resolve(c, h, idx);
	uint64_t s;

	if (unlikely(!a))
		return NULL;
	s = atomic_load_explicit(&a->state[*idx], memory_order_acquire);
	if (unlikely(a->kind == ARENA_PROTO_KIND_BUMP) &&
	    !bump_handle_ok(a, *idx, handle_gen(h)))
		return NULL;
	return likely(arena_bs_is_live(s, handle_gen(h))) ? a : NULL;
}

void *arena_ptr(struct arena_client *c, arena_handle_t h)
{
	struct lib_arena *a;
	uint32_t idx;

	if (unlikely(!c))
		return NULL;
	a = resolve_live(c, h, &idx);
	if (likely(a) && unlikely(a->kind == ARENA_PROTO_KIND_BUMP))
		return a->data + ((uint64_t)idx << 3) + ARENA_BUMP_HDR;
	return likely(a) ? a->data + (uint64_t)idx * a->block_size : NULL;
}

size_t arena_size(struct arena_client *c, arena_handle_t h)
{
	struct lib_arena *a;
	uint32_t idx;

	if (unlikely(!c))
		return 0;
	a = resolve_live(c, h, &idx);
	if (a && a->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_size(a, idx, handle_gen(h));
	if (a && a->kind == ARENA_PROTO_KIND_BUMP)
		return bump_size(a, idx, handle_gen(h));
	return a ? (size_t)a->block_size : 0;
}

int arena_ref(struct arena_client *c, arena_handle_t h)
{
	struct lib_arena *a;
	uint32_t idx;

	if (unlikely(!c))
		return -EINVAL;
	a = resolve(c, h, &idx);
	if (unlikely(!a || handle_gen(h) == 0))
		return -EINVAL;
	if (unlikely(a->kind == ARENA_PROTO_KIND_BUMP) &&
	    !bump_handle_ok(a, idx, handle_gen(h)))
		return (idx & 1) ? -EINVAL : -ESTALE;
	return fixed_ref(c, a, idx, handle_gen(h));
}

int arena_unref(struct arena_client *c, arena_handle_t h)
{
	struct lib_arena *a;
	uint32_t idx;

	if (unlikely(!c))
		return -EINVAL;
	a = resolve(c, h, &idx);
	if (unlikely(!a))
		return -EINVAL;
	if (unlikely(a->kind == ARENA_PROTO_KIND_BUDDY))
		return buddy_fast_unref(c, a, idx, handle_gen(h));
	if (unlikely(a->kind == ARENA_PROTO_KIND_BUMP)) {
		if (handle_gen(h) == 0 || (idx & 1))
			return -EINVAL;
		if (!bump_handle_ok(a, idx, handle_gen(h)))
			return -ESTALE;
		return fixed_unref(c, a, idx, handle_gen(h));
	}
	return fast_unref(c, a, idx, handle_gen(h));
}
