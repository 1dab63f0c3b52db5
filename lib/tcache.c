// SPDX-License-Identifier: MIT
/*
 * Thread caches.  Each thread that allocates through a client gets one of
 * the client's LIB_TC_MAX caches (its magazines, one per fixed arena and
 * one per buddy order, and its own counter rows, so counting needs no
 * atomic read-modify-write).  The lookup is a
 * thread-local compare on the fast path; a pthread key per client hands a
 * cache back to the pool when its thread exits, magazines and all, for
 * the next thread to reuse.  Threads beyond the pool use the uncached
 * paths and the shared counter row.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

/* initial-exec: no __tls_get_addr call on the fast path of libarena.so */
__thread struct lib_tls lib_tls_last __attribute__((tls_model("initial-exec")));

/* Give every block a cache holds back to its arena. */
static void tc_flush(struct arena_client *c, struct lib_tcache *tc)
{
	uint32_t k;

	for (k = 0; k < c->narenas; k++)
		fixed_mag_flush(&c->arenas[k], &tc->mags[k], 0);
	buddy_mags_flush(c, tc);
	bump_retire(c, tc);
	for (k = 0; k < c->narenas; k++)
		wait_given_back(c, &c->arenas[k]);
}

/*
 * At thread exit: the cache goes back to the pool empty, so that blocks
 * an exited thread had reserved are free for every client at once, not
 * only for the next thread of this one.
 */
static void tc_release(void *p)
{
	struct lib_tcache *tc = p;

	if (client_inherited(tc->c))
		return; /* a fork child's copy: the parent's blocks */
	tc_flush(tc->c, tc);
	atomic_store_explicit(&tc->c->tc_used[tc->slot], 0,
			      memory_order_release);
}

static struct lib_tcache *tc_claim(struct arena_client *c)
{
	unsigned i, busy;

	for (i = 0; i < LIB_TC_MAX; i++) {
		busy = 0;
		if (atomic_compare_exchange_strong(&c->tc_used[i], &busy, 1))
			return c->tc[i];
	}
	return NULL;
}

struct lib_tcache *tc_get_slow(struct arena_client *c)
{
	struct lib_tcache *tc = pthread_getspecific(c->key);

	if (!tc) {
		tc = tc_claim(c);
		if (tc)
			pthread_setspecific(c->key, tc);
	}
	lib_tls_last.serial = c->serial;
	lib_tls_last.tc = tc;
	return tc;
}

/*
 * Per-order magazines of the buddy arena.  Each cache searches from its
 * own home in the arena, the same for every order, so that its blocks of
 * all sizes cluster there instead of fragmenting the whole arena, and
 * caches of different clients and threads start apart.
 */
static int tc_buddy(struct arena_client *c, struct lib_tcache *tc)
{
	uint32_t o, n = c->buddy->max_order + 1u;
	uint64_t home = (c->id * 7919u + tc->slot * 104729u) * 2654435761u;

	tc->bmags = calloc(n, sizeof(struct lib_mag));
	if (!tc->bmags)
		return -ENOMEM;
	home = ((home & 0xffffffffu) * c->buddy->nblocks) >> 32;
	for (o = 0; o < n; o++)
		tc->bmags[o].hint = (uint32_t)(home >> o);
	return 0;
}

/*
 * A journal entry for an operation.  A cache's entry has one writer, its
 * thread.  Threads without a cache share the rest of the entries, each
 * taken by CAS for one operation; all taken means as many cacheless
 * threads of this client are inside a tree or bump step right now, and
 * one of them will be done in a few CASes.
 */
_Atomic uint64_t *jnl_take(struct arena_client *c, struct lib_tcache *tc)
{
	const uint64_t held = arena_jnl_make(ARENA_JNL_HELD, 0, 0, 0);
	uint64_t v;
	uint32_t i;

	if (tc)
		return &c->jnl[tc->slot];
	for (;;) {
		for (i = ARENA_PROTO_JNL_CACHES; i < ARENA_PROTO_JNL_ENTRIES;
		     i++) {
			v = 0;
			if (atomic_compare_exchange_strong(&c->jnl[i], &v,
							   held))
				return &c->jnl[i];
		}
		sched_yield();
	}
}

void jnl_done(_Atomic uint64_t *e)
{
	ARENA_CRASHPOINT();
	atomic_store_explicit(e, 0, memory_order_release);
}

static struct lib_tcache *tc_new(struct arena_client *c, uint32_t slot)
{
	struct lib_tcache *tc;
	uint32_t i;

	tc = calloc(1, sizeof(*tc) + c->narenas * sizeof(struct lib_mag));
	if (!tc)
		return NULL;
	tc->c = c;
	tc->slot = slot;
	tc->ctr = &c->ctr[slot * c->narenas];
	tc->bctr = &c->bctr[slot];
	for (i = 0; i < c->narenas; i++)
		if (c->arenas[i].nwords)
			tc->mags[i].hint = (c->id * 7919u + slot * 104729u) %
					   c->arenas[i].nwords;
	bump_init(c, &tc->bump,
		  c->bumpa ? &tc->ctr[c->bumpa->index].allocs
			   : &tc->bump.made0);
	if (c->bumpa)
		tc->bump.bytes = &tc->ctr[c->bumpa->index].alloc_bytes;
	if (c->buddy && tc_buddy(c, tc)) {
		free(tc);
		return NULL;
	}
	return tc;
}

int tc_setup(struct arena_client *c)
{
	uint32_t i;

	for (i = 0; i < LIB_TC_MAX; i++) {
		c->tc[i] = tc_new(c, i);
		if (!c->tc[i])
			return -ENOMEM;
	}
	if (pthread_key_create(&c->key, tc_release))
		return -EAGAIN;
	c->key_ok = true;
	return 0;
}

/* Give every reserved slot back to its arena and free the caches. */
void tc_teardown(struct arena_client *c)
{
	uint32_t i;

	if (c->key_ok)
		pthread_key_delete(c->key);
	for (i = 0; i < LIB_TC_MAX; i++) {
		if (!c->tc[i])
			continue;
		tc_flush(c, c->tc[i]);
		free(c->tc[i]->bmags);
		free(c->tc[i]);
		c->tc[i] = NULL;
	}
}
