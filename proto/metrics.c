// SPDX-License-Identifier: MIT
/*
 * Live metrics from counters (see metrics.h).  Nothing here trusts the
 * region beyond the geometry the caller validated: counters are numbers
 * summed with wrap-around, the loops are bounded by the geometry, and a
 * client state that is not FREE only decides whether a table is summed.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "buddy.h"
#include "metrics.h"

#define FOLD_TRIES 64

static const struct arena_proto_ctr *row(const struct arena_proto_rows *r,
					 uint32_t id, uint32_t s, uint32_t ai)
{
	const uint8_t *t = r->tables + (uint64_t)(id - 1) * r->stride;

	return (const struct arena_proto_ctr *)(t + r->ctr_off) +
	       (uint64_t)s * r->narenas + ai;
}

static bool in_use(const struct arena_proto_rows *r, uint32_t id)
{
	const struct arena_proto_client *h =
		(const void *)(r->tables + (uint64_t)(id - 1) * r->stride);

	return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) !=
	       ARENA_PROTO_CLIENT_FREE;
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Add the fields of c that pass says: 0 all but frees, 1 the frees. */
static void add(struct arena_proto_ctr *o, const struct arena_proto_ctr *c,
		int pass)
{
	if (pass) {
		o->frees += ld(&c->frees);
		o->free_bytes += ld(&c->free_bytes);
		return;
	}
	o->allocs += ld(&c->allocs);
	o->alloc_bytes += ld(&c->alloc_bytes);
	o->fail_full += ld(&c->fail_full);
	o->fail_big += ld(&c->fail_big);
	o->waits += ld(&c->waits);
	o->wait_ns += ld(&c->wait_ns);
}

static void sum_once(const struct arena_proto_rows *r,
		     const struct arena_proto_wait *w, uint32_t ai,
		     struct arena_proto_ctr *out)
{
	uint32_t id, s;
	int pass;

	memset(out, 0, sizeof(*out));
	for (pass = 0; pass < 2; pass++) {
		add(out, &w->gone, pass);
		for (id = 1; id <= r->max_clients; id++) {
			if (!in_use(r, id))
				continue;
			for (s = 0; s < ARENA_PROTO_STAT_SLOTS; s++)
				add(out, row(r, id, s, ai), pass);
		}
		atomic_thread_fence(memory_order_seq_cst);
	}
}

void arena_proto_ctr_total(const struct arena_proto_rows *r,
			   const struct arena_proto_wait *w, uint32_t ai,
			   struct arena_proto_ctr *out)
{
	uint64_t seq;
	int n;

	for (n = 0; n < FOLD_TRIES; n++) {
		seq = __atomic_load_n(&w->fold_seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		sum_once(r, w, ai, out);
		atomic_thread_fence(memory_order_acquire);
		if (__atomic_load_n(&w->fold_seq, __ATOMIC_RELAXED) == seq)
			return;
	}
	sum_once(r, w, ai, out); /* a fold that never ends: best effort */
}

/* Raise *p to at least v; what it holds then. */
static uint64_t peak_raise(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	return cur < v ? v : cur;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void free_space(const struct arena_proto_marena *a,
		       struct arena_proto_metrics *o)
{
	struct arena_buddy_geom g = { .max_order = a->max_order };
	struct arena_buddy_free f;
	uint32_t i, nfree = 0;

	if (a->kind == ARENA_PROTO_KIND_FIXED) {
		o->free_bytes =
			sub0(a->nblocks, o->live_blocks) * a->block_size;
		o->largest_free = o->free_bytes ? a->block_size : 0;
	} else if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		o->free_bytes = sub0(a->nblocks * a->block_size, o->live_bytes);
		arena_buddy_scan(a->tree, &g, &f);
		o->largest_free =
			f.largest >= 0 ? a->block_size << f.largest : 0;
	} else {
		for (i = 0; i < a->nchunks; i++)
			if (arena_bump_state(__atomic_load_n(
				    &a->chunks[i].word, __ATOMIC_RELAXED)) ==
			    ARENA_BUMP_FREE)
				nfree++;
		o->free_bytes = (uint64_t)nfree * a->block_size;
		o->largest_free = nfree ? a->block_size - ARENA_BUMP_HDR : 0;
	}
}

void arena_proto_metrics(const struct arena_proto_marena *a,
			 const struct arena_proto_ctr *sum,
			 struct arena_proto_wait *w,
			 struct arena_proto_metrics *o)
{
	memset(o, 0, sizeof(*o));
	o->index = a->index;
	o->kind = a->kind;
	o->allocs = sum->allocs;
	o->frees = sum->frees;
	o->fail_full = sum->fail_full;
	o->fail_big = sum->fail_big;
	o->waits = sum->waits;
	o->wait_ns = sum->wait_ns;
	o->live_blocks = sub0(sum->allocs, sum->frees);
	if (a->kind == ARENA_PROTO_KIND_FIXED)
		o->live_bytes = o->live_blocks * a->block_size;
	else
		o->live_bytes = sub0(sum->alloc_bytes, sum->free_bytes);
	o->peak_blocks = o->live_blocks;
	o->peak_bytes = o->live_bytes;
	if (w) {
		o->peak_blocks = peak_raise(&w->peak_blocks, o->live_blocks);
		o->peak_bytes = peak_raise(&w->peak_bytes, o->live_bytes);
	}
	free_space(a, o);
}
