// SPDX-License-Identifier: MIT
/*
 * The buddy arena through the public API, against a real daemon, in one
 * process (and a child for reclaim): every order, sizes and kinds,
 * alignment of every block to its size, exhaustion to the exact block
 * and recovery, full coalescing seen through the daemon's statistics,
 * stale, forged, double-freed and foreign handles, blocks shared with a
 * client that dies, a client copied by fork(), and the daemon's repair of
 * a tree left behind by a client killed between its tree step and its
 * state-word step.
 *
 * A keeper client stays attached to the group's daemon throughout, so
 * that the daemon never rebuilds the tree behind the tests' backs (it
 * does that only when no client is attached): every "whole arena free"
 * seen here is the tree's own coalescing.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "handle.h"
#include "harness.h"
#include "tclient.h"
#include "internal.h"
#include "tstat.h"

#define WAIT_MS 10000
#define SENTINEL ((arena_handle_t)0x5a5a5a5a5a5a5a5aULL)
#define MIN_BLOCK 4096u
#define ARENA_BYTES (4u << 20) /* 1024 leaves, orders 0..10 */
#define MAX_ORDER 10u
#define LEAVES (ARENA_BYTES / MIN_BLOCK)

/* Few clients, so that small orders get magazines (their share rule). */
static const char *const daemon_args[] = { "--size", "64M",	      "--buddy",
					   "4M:4K",  "--max-clients", "4",
					   NULL };

static struct harness_daemon d;
static struct arena_client *keeper;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, daemon_args);

	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	return arena_connect(d.sock, &keeper) ? -1 : 0;
}

static int group_teardown(void **state)
{
	int repaired = harness_log_contains(&d, "buddy tree repaired");

	arena_disconnect(keeper);
	if (repaired)
		fprintf(stderr, "the daemon had to repair the tree\n");
	return harness_daemon_stop(&d) || repaired ? -1 : 0;
}

static unsigned buddy_index(struct arena_client *c)
{
	struct arena_info inf;
	unsigned i;

	for (i = 0; arena_info(c, i, &inf) == 0; i++)
		if (inf.kind == ARENA_KIND_BUDDY)
			return i;
	fail_msg("no buddy arena");
	return 0;
}

static arena_handle_t balloc(struct arena_client *c, size_t size)
{
	arena_handle_t h = ARENA_HANDLE_NULL;
	int err = arena_alloc(c, ARENA_KIND_BUDDY, size, &h);

	if (err)
		fail_msg("arena_alloc(%zu): %s", size, strerror(-err));
	assert_non_null(arena_ptr(c, h));
	return h;
}

static struct tstat stats(void)
{
	struct tstat s;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(s.nbuddy, 1);
	return s;
}

/* Nothing held, and the tree shows the whole arena as one free block. */
static void all_free(const char *sock, uint64_t bytes, unsigned max_order)
{
	struct tstat s, j;
	unsigned o;

	assert_int_equal(tstat_get(sock, &s), 0);
	assert_int_equal(tstat_ctl(sock, &j), 0);
	assert_int_equal(s.nbuddy, 1);
	assert_int_equal(j.nbuddy, 1);
	assert_int_equal(s.a[s.buddy.index].in_use, 0);
	assert_int_equal(s.a[s.buddy.index].cached, 0);
	assert_int_equal(s.buddy.alloc_bytes, 0);
	assert_int_equal(s.buddy.free_bytes, bytes);
	assert_int_equal(s.buddy.largest_free, bytes);
	assert_int_equal(s.buddy.max_order, max_order);
	for (o = 0; o < max_order; o++)
		assert_int_equal(s.buddy.free_blocks[o], 0);
	assert_int_equal(s.buddy.free_blocks[max_order], 1);
	/* arenactl --json shows the same */
	assert_memory_equal(&j.buddy, &s.buddy, sizeof(s.buddy));
}

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

static void wait_clients(const char *sock, uint32_t n)
{
	struct tstat s;

	assert_int_equal(tstat_wait(sock, &s, clients_are, &n, WAIT_MS), 0);
}

/* ---- sizes and orders ---- */

/* Up to three blocks of order o (sizes that round up to it), freed. */
static void one_order(struct arena_client *c, unsigned o)
{
	size_t sz = (size_t)MIN_BLOCK << o, want[3];
	unsigned i, n = ARENA_BYTES / sz < 3 ? ARENA_BYTES / sz : 3;
	arena_handle_t h[3];
	uint8_t *p;

	want[0] = sz;
	want[1] = sz - 1;
	want[2] = o ? sz / 2 + 1 : 1;
	for (i = 0; i < n; i++) {
		h[i] = balloc(c, want[i]);
		assert_int_equal(arena_size(c, h[i]), sz);
		p = arena_ptr(c, h[i]);
		if ((uintptr_t)p % sz)
			fail_msg("%zu B block at %p", sz, (void *)p);
		memset(p, (int)i + 1, sz);
	}
	for (i = 0; i < n; i++) {
		p = arena_ptr(c, h[i]);
		assert_int_equal(p[0], i + 1);
		assert_int_equal(p[sz - 1], i + 1);
		assert_int_equal(arena_unref(c, h[i]), 0);
	}
}

static void every_order(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[1], x = SENTINEL;
	unsigned o, ai = buddy_index(c);
	struct arena_info inf;

	assert_int_equal(arena_info(c, ai, &inf), 0);
	assert_int_equal(inf.kind, ARENA_KIND_BUDDY);
	assert_int_equal(inf.block_size, MIN_BLOCK);
	assert_int_equal(inf.capacity, LEAVES);
	for (o = 0; o <= MAX_ORDER; o++)
		one_order(c, o);
	/* the largest block is the whole arena; one byte more never fits */
	h[0] = balloc(c, ARENA_BYTES);
	assert_int_equal(arena_size(c, h[0]), ARENA_BYTES);
	assert_int_equal((uintptr_t)arena_ptr(c, h[0]) % ARENA_BYTES, 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, 1, &x), -ENOMEM);
	assert_int_equal(arena_unref(c, h[0]), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, ARENA_BYTES + 1, &x),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, SIZE_MAX, &x),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, 0, &x), -EINVAL);
	assert_int_equal(x, SENTINEL);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* AUTO: fixed classes up to 64 KiB, then the buddy arena. */
static void auto_falls_back(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	unsigned ai = buddy_index(c);
	arena_handle_t h, x = SENTINEL;
	struct arena_proto_handle ph;

	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 65536, &h), 0);
	arena_proto_handle_unpack(h, &ph);
	assert_int_not_equal(ph.arena, ai);
	assert_int_equal(arena_size(c, h), 65536);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 65537, &h), 0);
	arena_proto_handle_unpack(h, &ph);
	assert_int_equal(ph.arena, ai);
	assert_int_equal(arena_size(c, h), 131072);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 65537, &x), -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, ARENA_BYTES + 1, &x),
			 -E2BIG);
	assert_int_equal(x, SENTINEL);
	tcl_disc(c);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Random orders, freed in random order: every block aligned to its size,
 * no two overlapping (a tag over each block's first and last words), and
 * the tree whole again at the end.
 */
static void alignment_and_disjoint(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[64];
	uint64_t rng = 7, k, tag;
	unsigned n = 0, i, o;
	uint64_t *p;
	size_t sz;

	for (k = 0; k < 20000; k++) {
		if (n < 64 && (n == 0 || xorshift(&rng) % 2)) {
			o = (unsigned)(xorshift(&rng) % 7);
			if (arena_alloc(c, ARENA_KIND_BUDDY,
					(size_t)MIN_BLOCK << o, &h[n]))
				continue;
			p = arena_ptr(c, h[n]);
			sz = arena_size(c, h[n]);
			if (sz != (size_t)MIN_BLOCK << o || (uintptr_t)p % sz)
				fail_msg("order %u: %zu B at %p", o, sz,
					 (void *)p);
			p[0] = p[sz / 8 - 1] = h[n];
			n++;
			continue;
		}
		i = (unsigned)(xorshift(&rng) % n);
		p = arena_ptr(c, h[i]);
		tag = h[i];
		assert_int_equal(p[0], tag);
		assert_int_equal(p[arena_size(c, h[i]) / 8 - 1], tag);
		assert_int_equal(arena_unref(c, h[i]), 0);
		h[i] = h[--n];
	}
	while (n)
		assert_int_equal(arena_unref(c, h[--n]), 0);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* ---- exhaustion ---- */

/*
 * Every block of order o, exactly: then -ENOMEM (counted), other orders
 * too; ten scattered frees give exactly ten back; after freeing all the
 * whole arena is one block again (magazine blocks given back on the way).
 */
static void exhaust_order(struct arena_client *c, unsigned o)
{
	uint64_t n = LEAVES >> o, k, i;
	size_t sz = (size_t)MIN_BLOCK << o;
	unsigned ai = buddy_index(c);
	arena_handle_t *h = calloc(n + 1, sizeof(*h)), x = SENTINEL, w;
	struct tstat s0 = stats(), s;

	assert_non_null(h);
	for (k = 0; k <= n && !arena_alloc(c, ARENA_KIND_BUDDY, sz, &h[k]); k++)
		*(uint64_t *)arena_ptr(c, h[k]) = k;
	assert_int_equal(k, n);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, sz, &x), -ENOMEM);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, MIN_BLOCK, &x),
			 -ENOMEM);
	assert_int_equal(x, SENTINEL);
	s = stats();
	assert_int_equal(s.a[ai].in_use, LEAVES);
	assert_int_equal(s.a[ai].allocs - s0.a[ai].allocs, n);
	/* the allocation that found the arena full counts too */
	assert_int_equal(s.a[ai].failures - s0.a[ai].failures, 3);
	assert_int_equal(s.buddy.free_bytes, 0);
	assert_int_equal(s.buddy.largest_free, 0);
	assert_int_equal(s.buddy.alloc_bytes, ARENA_BYTES);

	/* recovery: exactly what was freed comes back */
	for (i = 0; i < n; i += n / 4 + 1)
		assert_int_equal(arena_unref(c, h[i]), 0);
	for (i = 0; i < n; i += n / 4 + 1) {
		assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, sz, &h[i]),
				 0);
		*(uint64_t *)arena_ptr(c, h[i]) = i;
	}
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, sz, &w), -ENOMEM);
	for (i = 0; i < n; i++) {
		assert_int_equal(*(uint64_t *)arena_ptr(c, h[i]), i);
		assert_int_equal(arena_unref(c, h[i]), 0);
	}
	/* whole again: the freed blocks this thread keeps go back first */
	w = balloc(c, ARENA_BYTES);
	assert_int_equal(arena_unref(c, w), 0);
	free(h);
}

static void exhaustion(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	unsigned o;

	for (o = 0; o <= MAX_ORDER; o++)
		exhaust_order(c, o);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* Every other leaf taken: no block of order 1 anywhere, then all back. */
static void fragmentation(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[LEAVES], x;
	struct tstat s;
	unsigned i;

	for (i = 0; i < LEAVES; i++)
		h[i] = balloc(c, MIN_BLOCK);
	for (i = 0; i < LEAVES; i++)
		if (arena_ptr(c, h[i]) == NULL)
			fail_msg("block %u", i);
	/* free the blocks at odd leaves: nothing of order 1 can form */
	for (i = 0; i < LEAVES; i++) {
		struct arena_proto_handle ph;

		arena_proto_handle_unpack(h[i], &ph);
		if (ph.index % 2) {
			assert_int_equal(arena_unref(c, h[i]), 0);
			h[i] = ARENA_HANDLE_NULL;
		}
	}
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, 2 * MIN_BLOCK, &x),
			 -ENOMEM);
	s = stats();
	assert_int_equal(s.buddy.free_bytes, ARENA_BYTES / 2);
	assert_int_equal(s.buddy.free_blocks[0], LEAVES / 2);
	assert_int_equal(s.buddy.largest_free, MIN_BLOCK);
	for (i = 0; i < LEAVES; i++)
		if (h[i])
			assert_int_equal(arena_unref(c, h[i]), 0);
	x = balloc(c, ARENA_BYTES);
	assert_int_equal(arena_unref(c, x), 0);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* ---- handles ---- */

/* A handle that must resolve to nothing and change nothing. */
static void dead(struct arena_client *c, arena_handle_t h)
{
	int r;

	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_size(c, h), 0);
	r = arena_ref(c, h);
	if (r != -EINVAL && r != -ESTALE)
		fail_msg("arena_ref(%#llx) = %d", (unsigned long long)h, r);
	r = arena_unref(c, h);
	if (r != -EINVAL && r != -ESTALE)
		fail_msg("arena_unref(%#llx) = %d", (unsigned long long)h, r);
}

static arena_handle_t with(arena_handle_t h, uint32_t gen, uint32_t index)
{
	struct arena_proto_handle ph;

	arena_proto_handle_unpack(h, &ph);
	if (gen)
		ph.gen = gen;
	ph.index = index;
	return arena_proto_handle_pack(ph.region, ph.arena, ph.gen, ph.index);
}

static void handles(void **state)
{
	struct arena_client *c = tcl_conn(d.sock), *b = tcl_conn(d.sock);
	arena_handle_t big, small, old;
	struct arena_proto_handle ph;
	uint32_t i;
	uint8_t *p;

	big = balloc(c, 64 * MIN_BLOCK);
	p = arena_ptr(c, big);
	memset(p, 0x3c, 64 * MIN_BLOCK);
	arena_proto_handle_unpack(big, &ph);
	/* inside the block, at any generation: nothing */
	for (i = 1; i < 64; i++) {
		dead(c, with(big, 0, ph.index + i));
		dead(c, with(big, 1, ph.index + i));
		dead(c, with(big, ph.gen + 1, ph.index + i));
	}
	/* past the arena, wrong generations, generation 0 */
	dead(c, with(big, 0, LEAVES));
	dead(c, with(big, 0, UINT32_MAX));
	dead(c, with(big, ph.gen + 1, ph.index));
	dead(c, big & ~(0xfffffULL << 32));
	/* a client that holds no reference cannot drop one */
	assert_int_equal(arena_unref(b, big), -EINVAL);
	assert_ptr_equal(arena_ptr(c, big), p);
	for (i = 0; i < 64 * MIN_BLOCK; i++)
		if (p[i] != 0x3c)
			fail_msg("byte %u changed", i);
	assert_int_equal(memcmp(arena_ptr(b, big), p, 64 * MIN_BLOCK), 0);
	/* shared: the block lives until the last reference anywhere */
	assert_int_equal(arena_ref(b, big), 0);
	assert_int_equal(arena_ref(b, big), 0);
	assert_int_equal(arena_unref(c, big), 0);
	assert_int_equal(arena_unref(c, big), -EINVAL);
	assert_int_equal(arena_size(b, big), 64 * MIN_BLOCK);
	assert_int_equal(arena_unref(b, big), 0);
	assert_non_null(arena_ptr(b, big));
	assert_int_equal(arena_unref(b, big), 0);
	dead(b, big);
	assert_int_equal(arena_unref(b, big), -ESTALE);
	assert_int_equal(arena_unref(c, big), -ESTALE);

	/* reuse of the first leaf gives a new generation; old stays stale */
	small = balloc(c, MIN_BLOCK);
	old = small;
	assert_int_equal(arena_unref(c, small), 0);
	dead(c, old);
	for (i = 0; i < 200; i++) {
		small = balloc(c, MIN_BLOCK);
		if ((uint32_t)small == (uint32_t)old && small != old)
			break;
		assert_int_equal(arena_unref(c, small), 0);
	}
	assert_int_not_equal(small, old);
	dead(c, old);
	assert_non_null(arena_ptr(c, small));
	assert_int_equal(arena_unref(c, small), 0);
	tcl_disc(b);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* ---- a client that dies ---- */

struct pipes {
	int up[2], down[2];
};

static int child_holds(void *arg)
{
	struct pipes *pp = arg;
	struct arena_client *c;
	arena_handle_t h[8], gift;
	char go;
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 2;
	for (i = 0; i < 8; i++)
		if (arena_alloc(c, ARENA_KIND_BUDDY, (size_t)MIN_BLOCK << i,
				&h[i]))
			return 3;
	/* some go back to its magazines (MAG), the rest stay held */
	for (i = 0; i < 8; i += 2)
		if (arena_unref(c, h[i]))
			return 4;
	if (arena_alloc(c, ARENA_KIND_BUDDY, 3 * MIN_BLOCK, &gift))
		return 5;
	memset(arena_ptr(c, gift), 0x77, 4 * MIN_BLOCK);
	if (write(pp->up[1], &gift, sizeof(gift)) != sizeof(gift))
		return 6;
	if (read(pp->down[0], &go, 1) != 1)
		return 7;
	if (go == 'k')
		for (;;)
			pause();
	_exit(0); /* attached, holding everything */
}

static void dies_holding(bool kill9)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t gift;
	struct pipes pp;
	uint32_t before;
	uint8_t *p;
	pid_t pid;
	int i;

	assert_int_equal(pipe(pp.up), 0);
	assert_int_equal(pipe(pp.down), 0);
	before = stats().nclients;
	pid = harness_fork(child_holds, &pp);
	assert_true(pid > 0);
	assert_int_equal(read(pp.up[0], &gift, sizeof(gift)), sizeof(gift));
	assert_int_equal(arena_ref(c, gift), 0);
	assert_true(stats().buddy.alloc_bytes > 4 * MIN_BLOCK);
	assert_int_equal(write(pp.down[1], kill9 ? "k" : "e", 1), 1);
	if (kill9) {
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	} else {
		assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	}
	wait_clients(d.sock, before);
	/* only the gift is left, with the parent's reference, intact */
	p = arena_ptr(c, gift);
	assert_non_null(p);
	assert_int_equal(arena_size(c, gift), 4 * MIN_BLOCK);
	for (i = 0; i < 4 * (int)MIN_BLOCK; i++)
		if (p[i] != 0x77)
			fail_msg("byte %d of the gift changed", i);
	assert_int_equal(stats().buddy.alloc_bytes, 4 * MIN_BLOCK);
	assert_int_equal(arena_unref(c, gift), 0);
	dead(c, gift);
	tcl_disc(c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
	for (i = 0; i < 2; i++) {
		close(pp.up[i]);
		close(pp.down[i]);
	}
}

static void dead_client(void **state)
{
	dies_holding(false);
	dies_holding(true);
}

/* A copy inherited through fork() refuses, and leaves the parent's alone. */
struct forked {
	struct arena_client *c;
	arena_handle_t h;
};

static int child_of_fork(void *arg)
{
	struct forked *f = arg;
	arena_handle_t x;
	int bad = 0;

	tstat_child_init();
	bad += arena_alloc(f->c, ARENA_KIND_BUDDY, MIN_BLOCK, &x) != -ECHILD;
	bad += arena_alloc(f->c, ARENA_KIND_AUTO, 1 << 20, &x) != -ECHILD;
	bad += arena_ref(f->c, f->h) != -ECHILD;
	bad += arena_unref(f->c, f->h) != -ECHILD;
	bad += arena_size(f->c, f->h) != 8 * MIN_BLOCK;
	arena_disconnect(f->c); /* must not give back the parent's cache */
	return bad;
}

static void forked_copy(void **state)
{
	struct forked f = { .c = tcl_conn(d.sock) };
	unsigned ai = buddy_index(f.c);
	arena_handle_t k[4];
	struct tstat s;
	pid_t pid;
	int i;

	f.h = balloc(f.c, 8 * MIN_BLOCK);
	for (i = 0; i < 4; i++) /* blocks in the parent's magazines */
		k[i] = balloc(f.c, MIN_BLOCK);
	for (i = 0; i < 4; i++)
		assert_int_equal(arena_unref(f.c, k[i]), 0);
	s = stats();
	assert_true(s.a[ai].cached >= 4);
	pid = harness_fork(child_of_fork, &f);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_int_equal(stats().a[ai].cached, s.a[ai].cached);
	assert_int_equal(stats().buddy.free_bytes, s.buddy.free_bytes);
	for (i = 0; i < 4; i++) { /* the magazine's blocks are still ours */
		k[i] = balloc(f.c, MIN_BLOCK);
		assert_non_null(arena_ptr(f.c, k[i]));
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(arena_unref(f.c, k[i]), 0);
	assert_int_equal(arena_unref(f.c, f.h), 0);
	tcl_disc(f.c);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* ---- statistics ---- */

static void counters(void **state)
{
	struct tstat s0 = stats(), s, j;
	struct arena_client *c = tcl_conn(d.sock);
	unsigned ai = buddy_index(c);
	arena_handle_t h[5], x;
	int i;

	for (i = 0; i < 5; i++)
		h[i] = balloc(c, (size_t)MIN_BLOCK << i);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, ARENA_BYTES * 2, &x),
			 -E2BIG);
	for (i = 0; i < 3; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	s = stats();
	assert_int_equal(tstat_ctl(d.sock, &j), 0);
	assert_int_equal(s.a[ai].allocs - s0.a[ai].allocs, 5);
	assert_int_equal(s.a[ai].frees - s0.a[ai].frees, 3);
	assert_int_equal(s.a[ai].failures - s0.a[ai].failures, 1);
	assert_int_equal(s.a[ai].in_use, 8 + 16);
	assert_true(s.buddy.splits > s0.buddy.splits);
	assert_int_equal(s.buddy.free_bytes + s.buddy.alloc_bytes, ARENA_BYTES);
	assert_int_equal(j.a[ai].allocs, s.a[ai].allocs);
	assert_int_equal(j.a[ai].in_use, s.a[ai].in_use);
	assert_memory_equal(&j.buddy, &s.buddy, sizeof(s.buddy));
	for (i = 3; i < 5; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	tcl_disc(c);
	s = stats();
	assert_true(s.buddy.coalesces > s0.buddy.coalesces);
	assert_int_equal(s.buddy.splits - s0.buddy.splits,
			 s.buddy.coalesces - s0.buddy.coalesces);
	all_free(d.sock, ARENA_BYTES, MAX_ORDER);
}

/* ---- a client killed between the tree and its state word ---- */

static int has_repaired(struct harness_daemon *e)
{
	return harness_log_contains(e, "buddy tree repaired");
}

/*
 * A block taken in the tree whose state word was never claimed (what a
 * client killed inside arena_alloc leaves) is a leak while clients are
 * attached, and repaired by the daemon once none is.
 */
static void orphan_repaired(void **state)
{
	static const char *const args[] = { "--size", "16M",	 "--fixed",
					    "64:64",  "--buddy", "1M:4K",
					    NULL };
	struct arena_buddy_tally t = { 0 };
	struct arena_buddy_geom g;
	struct harness_daemon e;
	struct arena_client *c;
	struct tstat s;
	uint32_t leaf;
	long long end;

	assert_int_equal(harness_daemon_start(&e, args), 0);
	c = tcl_conn(e.sock);
	g.max_order = c->buddy->max_order;
	assert_int_equal(arena_buddy_alloc(c->buddy->tree, &g, 3, 0, &leaf, &t),
			 0);
	assert_int_equal(tstat_get(e.sock, &s), 0);
	assert_int_equal(s.buddy.free_bytes, (1u << 20) - 8 * MIN_BLOCK);
	assert_int_equal(s.buddy.alloc_bytes, 0);
	tcl_disc(c);
	end = tstat_now_ms() + WAIT_MS;
	while (!has_repaired(&e) && tstat_now_ms() < end)
		tstat_sleep_ms(10);
	assert_true(has_repaired(&e));
	all_free(e.sock, 1u << 20, 8);
	assert_int_equal(harness_daemon_stop(&e), 0);
	assert_int_equal(setenv("ARENA_SOCKET", d.sock, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(every_order, tcl_teardown),
		cmocka_unit_test_teardown(auto_falls_back, tcl_teardown),
		cmocka_unit_test_teardown(alignment_and_disjoint, tcl_teardown),
		cmocka_unit_test_teardown(exhaustion, tcl_teardown),
		cmocka_unit_test_teardown(fragmentation, tcl_teardown),
		cmocka_unit_test_teardown(handles, tcl_teardown),
		cmocka_unit_test_teardown(dead_client, tcl_teardown),
		cmocka_unit_test_teardown(forked_copy, tcl_teardown),
		cmocka_unit_test_teardown(counters, tcl_teardown),
		cmocka_unit_test_teardown(orphan_repaired, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
