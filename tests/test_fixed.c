// SPDX-License-Identifier: MIT
/*
 * The fixed-slot arena through the public API, against a real daemon:
 * attaching, size classes, every allocation error, alignment, that data
 * stays put, arena_info, exhaustion to the exact slot, and that the
 * daemon's statistics (arenactl stats --json) count exactly what was done.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
#include "tstat.h"

#define WAIT_MS 10000
#define SENTINEL ((arena_handle_t)0x5a5a5a5a5a5a5a5aULL)

static struct harness_daemon d;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, NULL);

	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

static int narenas(struct arena_client *c)
{
	struct arena_info info;
	int n = 0;

	while (arena_info(c, (unsigned)n, &info) == 0)
		n++;
	return n;
}

/* The block size of the smallest class holding size bytes, or 0. */
static uint64_t class_for(struct arena_client *c, size_t size)
{
	struct arena_info info;
	uint64_t best = 0;
	unsigned i;

	for (i = 0; arena_info(c, i, &info) == 0; i++)
		if (info.kind == ARENA_KIND_FIXED && info.block_size >= size &&
		    (!best || info.block_size < best))
			best = info.block_size;
	return best;
}

/* Whether the daemon has an arena of this kind. */
static bool has_kind(struct arena_client *c, enum arena_kind kind)
{
	struct arena_info info;
	unsigned i;

	for (i = 0; arena_info(c, i, &info) == 0; i++)
		if (info.kind == (uint32_t)kind)
			return true;
	return false;
}

/* Index of the fixed arena with this block size. */
static unsigned arena_of(struct arena_client *c, uint64_t block_size)
{
	struct arena_info info;
	unsigned i;

	for (i = 0; arena_info(c, i, &info) == 0; i++)
		if (info.kind == ARENA_KIND_FIXED &&
		    info.block_size == block_size)
			return i;
	fail_msg("no arena of %llu B", (unsigned long long)block_size);
	return 0;
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

/* ---- attaching ---- */

static void connect_disconnect(void **state)
{
	struct arena_client *a, *b, *c = (void *)SENTINEL;
	char longpath[300], file[400], *xdg;
	struct tstat s0, s;

	assert_int_equal(tstat_get(d.sock, &s0), 0);

	/* NULL path: $ARENA_SOCKET, which the harness set */
	a = tcl_conn(NULL);
	b = tcl_conn(d.sock);
	assert_in_range(arena_client_id(a), 1, 4095);
	assert_in_range(arena_client_id(b), 1, 4095);
	assert_int_not_equal(arena_client_id(a), arena_client_id(b));
	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(s.nclients, s0.nclients + 2);
	tcl_disc(a);
	tcl_disc(b);
	wait_clients(d.sock, s0.nclients);
	arena_disconnect(NULL);
	assert_int_equal(arena_client_id(NULL), 0);
	assert_string_equal(arena_version(), "0.1.0");

	/* no $ARENA_SOCKET: $XDG_RUNTIME_DIR/arenad.sock */
	xdg = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR"))
					: NULL;
	assert_int_equal(unsetenv("ARENA_SOCKET"), 0);
	assert_int_equal(setenv("XDG_RUNTIME_DIR", d.dir, 1), 0);
	a = tcl_conn(NULL);
	tcl_disc(a);
	assert_int_equal(setenv("ARENA_SOCKET", d.sock, 1), 0);
	if (xdg)
		setenv("XDG_RUNTIME_DIR", xdg, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	free(xdg);

	/* errors leave *out alone */
	assert_int_equal(arena_connect(d.sock, NULL), -EINVAL);
	assert_int_equal(arena_connect("/nonexistent-arenad/x.sock", &c),
			 -ENOENT);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(arena_connect(longpath, &c), -EINVAL);
	snprintf(file, sizeof(file), "%s/not-a-socket", d.dir);
	fclose(fopen(file, "w"));
	assert_int_equal(arena_connect(file, &c), -ECONNREFUSED);
	unlink(file);
	assert_ptr_equal(c, (void *)SENTINEL);
	wait_clients(d.sock, s0.nclients);
}

/* ---- allocation ---- */

static void alloc_sizes(void **state)
{
	static const size_t sizes[] = { 1,    16,   17,	   63,	 64,   65,
					200,  256,  257,   4095, 4096, 4097,
					8192, 8193, 65535, 65536 };
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[2][sizeof(sizes) / sizeof(sizes[0])];
	size_t i, k;
	void *p;

	for (k = 0; k < 2; k++) {
		enum arena_kind kind = k ? ARENA_KIND_AUTO : ARENA_KIND_FIXED;

		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			h[k][i] = ARENA_HANDLE_NULL;
			assert_int_equal(
				arena_alloc(c, kind, sizes[i], &h[k][i]), 0);
			assert_int_not_equal(h[k][i], ARENA_HANDLE_NULL);
			assert_int_equal(arena_size(c, h[k][i]),
					 class_for(c, sizes[i]));
			p = arena_ptr(c, h[k][i]);
			assert_non_null(p);
			memset(p, 0xab, sizes[i]);
		}
	}
	/* the documented default layout: 64 B ... 64 KiB */
	assert_int_equal(arena_size(c, h[0][0]), 64);  /* 1 */
	assert_int_equal(arena_size(c, h[0][6]), 256); /* 200 */
	assert_int_equal(arena_size(c, h[0][10]), 4096);
	assert_int_equal(arena_size(c, h[0][15]), 65536);
	for (k = 0; k < 2; k++)
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			assert_int_equal(arena_unref(c, h[k][i]), 0);
	tcl_disc(c);
}

static void alloc_errors(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h = SENTINEL;
	struct tstat s0, s;
	uint32_t i;

	assert_int_equal(tstat_get(d.sock, &s0), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 65537, &h), -E2BIG);
	if (!has_kind(c, ARENA_KIND_BUDDY)) /* AUTO falls back to buddy */
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 65537, &h),
				 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, SIZE_MAX, &h),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, SIZE_MAX - 15, &h),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, (size_t)1 << 40, &h),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 0, &h), -EINVAL);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 0, &h), -EINVAL);
	assert_int_equal(arena_alloc(NULL, ARENA_KIND_FIXED, 64, &h), -EINVAL);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 64, NULL), -EINVAL);
	assert_int_equal(arena_alloc(c, (enum arena_kind)42, 64, &h), -EINVAL);
	assert_int_equal(arena_alloc(c, (enum arena_kind)4, 64, &h), -EINVAL);
	assert_int_equal(arena_alloc(c, (enum arena_kind) - 1, 64, &h),
			 -EINVAL);
	if (!has_kind(c, ARENA_KIND_BUDDY))
		assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, 64, &h),
				 -ENOTSUP);
	if (!has_kind(c, ARENA_KIND_BUMP))
		assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 64, &h),
				 -ENOTSUP);
	assert_int_equal(h, SENTINEL);

	/* nothing was allocated, and no allocation was counted */
	assert_int_equal(tstat_get(d.sock, &s), 0);
	for (i = 0; i < s.narenas; i++) {
		assert_int_equal(s.a[i].in_use, s0.a[i].in_use);
		assert_int_equal(s.a[i].allocs, s0.a[i].allocs);
	}
	tcl_disc(c);
}

static uint64_t lowbit(uint64_t v)
{
	return v & -v;
}

static void alignment(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	int n = narenas(c), i, k;
	struct arena_info info;
	arena_handle_t h[4];
	uintptr_t p, align;

	for (i = 0; i < n; i++) {
		assert_int_equal(arena_info(c, (unsigned)i, &info), 0);
		if (info.kind != ARENA_KIND_FIXED)
			continue;
		align = lowbit(info.block_size);
		for (k = 0; k < 4; k++) {
			assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED,
						     info.block_size, &h[k]),
					 0);
			p = (uintptr_t)arena_ptr(c, h[k]);
			assert_int_equal(p % 16, 0);
			if (p % align)
				fail_msg("%llu B block at %p: not aligned to "
					 "%llu",
					 (unsigned long long)info.block_size,
					 (void *)p, (unsigned long long)align);
		}
		for (k = 0; k < 4; k++)
			assert_int_equal(arena_unref(c, h[k]), 0);
	}
	tcl_disc(c);
}

/*
 * Blocks larger than the kernel's usual mapping alignment (2 MiB for huge
 * pages): 4 MiB slots in an 18 MiB region, so that mappings placed next
 * to each other alternate in their alignment modulo 4 MiB unless the
 * library aligns them itself.
 */
static void alignment_large(void **state)
{
	static const char *const args[] = { "--size", "18M",	 "--fixed",
					    "4M:2",   "--fixed", "64:64",
					    NULL };
	struct harness_daemon e;
	struct arena_client *c[4];
	arena_handle_t h;
	uintptr_t p;
	int i;

	assert_int_equal(harness_daemon_start(&e, args), 0);
	for (i = 0; i < 4; i++) {
		c[i] = tcl_conn(e.sock);
		assert_int_equal(
			arena_alloc(c[i], ARENA_KIND_AUTO, 3 << 20, &h), 0);
		p = (uintptr_t)arena_ptr(c[i], h);
		assert_int_equal(arena_size(c[i], h), 4 << 20);
		if (p % (4 << 20))
			fail_msg("client %d: 4 MiB block at %p", i, (void *)p);
		assert_int_equal(arena_unref(c[i], h), 0);
	}
	for (i = 0; i < 4; i++)
		tcl_disc(c[i]);
	assert_int_equal(harness_daemon_stop(&e), 0);
	assert_int_equal(setenv("ARENA_SOCKET", d.sock, 1), 0);
}

struct blk {
	arena_handle_t h;
	uint8_t *p;
	size_t size;
};

static uint8_t pattern(arena_handle_t h, size_t off)
{
	return (uint8_t)(h * 0x9e3779b97f4a7c15ULL >> 56) ^ (uint8_t)off ^
	       (uint8_t)(off >> 8);
}

static int by_addr(const void *a, const void *b)
{
	const struct blk *x = a, *y = b;

	return x->p < y->p ? -1 : x->p > y->p;
}

/*
 * Fill many blocks of every class with a pattern of their own, check all
 * of them after all were written (no two overlap, nothing moved), free.
 */
static void data_survives(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	int n = narenas(c), i, k, per, total = 0;
	struct arena_info info;
	struct blk *b = calloc(64 * 64, sizeof(*b));
	size_t off;

	assert_non_null(b);
	for (i = 0; i < n; i++) {
		assert_int_equal(arena_info(c, (unsigned)i, &info), 0);
		if (info.kind != ARENA_KIND_FIXED)
			continue;
		per = info.capacity / 2 < 64 ? (int)info.capacity / 2 : 64;
		for (k = 0; k < per; k++, total++) {
			size_t want = info.block_size - (size_t)(k % 16);

			assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, want,
						     &b[total].h),
					 0);
			b[total].p = arena_ptr(c, b[total].h);
			b[total].size = arena_size(c, b[total].h);
			assert_non_null(b[total].p);
			assert_int_equal(b[total].size, info.block_size);
			for (off = 0; off < b[total].size; off++)
				b[total].p[off] = pattern(b[total].h, off);
		}
	}
	for (i = 0; i < total; i++) {
		assert_ptr_equal(arena_ptr(c, b[i].h), b[i].p);
		for (off = 0; off < b[i].size; off++)
			if (b[i].p[off] != pattern(b[i].h, off))
				fail_msg("block %d byte %zu changed", i, off);
	}
	qsort(b, (size_t)total, sizeof(*b), by_addr);
	for (i = 1; i < total; i++)
		assert_true(b[i - 1].p + b[i - 1].size <= b[i].p);
	for (i = 0; i < total; i++) {
		assert_int_equal(arena_unref(c, b[i].h), 0);
		assert_null(arena_ptr(c, b[i].h));
	}
	free(b);
	tcl_disc(c);
}

static void info(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct arena_info inf, none = { 7, 7, 7, 7 }, o = none;
	struct tstat s, j;
	int n = narenas(c), i, nfixed = 0;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(tstat_ctl(d.sock, &j), 0);
	assert_int_equal(s.narenas, (uint32_t)n);
	assert_int_equal(j.narenas, (uint32_t)n);
	for (i = 0; i < n; i++) {
		assert_int_equal(arena_info(c, (unsigned)i, &inf), 0);
		assert_int_equal(inf.index, i);
		assert_true(inf.capacity > 0);
		assert_int_equal(s.a[i].index, i);
		assert_int_equal(s.a[i].kind, inf.kind);
		assert_int_equal(s.a[i].block_size, inf.block_size);
		assert_int_equal(s.a[i].capacity, inf.capacity);
		assert_int_equal(j.a[i].kind, inf.kind);
		assert_int_equal(j.a[i].block_size, inf.block_size);
		assert_int_equal(j.a[i].capacity, inf.capacity);
		if (inf.kind != ARENA_KIND_FIXED) {
			assert_in_range(inf.kind, ARENA_KIND_BUDDY,
					ARENA_KIND_BUMP);
			continue;
		}
		/* default layout: 64 B doubling up to 64 KiB, in order */
		assert_int_equal(inf.block_size, 64ull << nfixed);
		nfixed++;
	}
	assert_int_equal(nfixed, 11);
	assert_int_equal(arena_info(c, (unsigned)n, &o), -ENOENT);
	assert_int_equal(arena_info(c, 64, &o), -ENOENT);
	assert_int_equal(arena_info(c, 255, &o), -ENOENT);
	assert_int_equal(arena_info(c, ~0u, &o), -ENOENT);
	assert_int_equal(arena_info(NULL, 0, &o), -EINVAL);
	assert_int_equal(arena_info(c, 0, NULL), -EINVAL);
	assert_memory_equal(&o, &none, sizeof(o));
	tcl_disc(c);
}

/* ---- exhaustion ---- */

/*
 * One client, one thread, allocates every slot of the class of bsize on
 * the daemon at sock: exactly capacity allocations succeed, then -ENOMEM
 * (repeatedly, with *out untouched, other classes unaffected); after
 * freeing some, exactly that many succeed again.
 */
static void exhaust(const char *sock, uint64_t bsize)
{
	struct arena_client *c = tcl_conn(sock);
	unsigned ai = arena_of(c, bsize);
	arena_handle_t *h, x = SENTINEL, y;
	struct arena_info inf;
	struct tstat s0, s;
	uint64_t n = 0, i, cap;

	assert_int_equal(arena_info(c, ai, &inf), 0);
	cap = inf.capacity;
	assert_int_equal(tstat_get(sock, &s0), 0);
	assert_int_equal(s0.a[ai].in_use, 0);
	h = calloc(cap + 1, sizeof(*h));
	assert_non_null(h);
	while (n <= cap && arena_alloc(c, ARENA_KIND_FIXED, bsize, &h[n]) == 0)
		*(uint64_t *)arena_ptr(c, h[n]) = n, n++;
	assert_int_equal(n, cap);
	for (i = 0; i < 3; i++)
		assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, bsize, &x),
				 -ENOMEM);
	assert_int_equal(x, SENTINEL);

	assert_int_equal(tstat_get(sock, &s), 0);
	assert_int_equal(s.a[ai].in_use, cap);
	assert_int_equal(s.a[ai].allocs - s0.a[ai].allocs, cap);
	/* the allocation that found the class full counts too */
	assert_int_equal(s.a[ai].failures - s0.a[ai].failures, 4);
	if (s.a[ai].cached != (uint64_t)-1)
		assert_int_equal(s.a[ai].cached, 0);

	/* another class still works while this one is full */
	for (i = 0; i < (uint64_t)narenas(c); i++) {
		struct arena_info other;

		assert_int_equal(arena_info(c, (unsigned)i, &other), 0);
		if (i == ai || other.kind != ARENA_KIND_FIXED)
			continue;
		assert_int_equal(
			arena_alloc(c, ARENA_KIND_FIXED, other.block_size, &y),
			0);
		assert_int_equal(arena_unref(c, y), 0);
		break;
	}

	/* free ten scattered slots: exactly ten allocate again */
	for (i = 0; i < 10; i++)
		assert_int_equal(arena_unref(c, h[i * (cap / 10)]), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, bsize,
					     &h[i * (cap / 10)]),
				 0);
		*(uint64_t *)arena_ptr(c, h[i * (cap / 10)]) = i * (cap / 10);
	}
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, bsize, &x), -ENOMEM);
	for (i = 0; i < cap; i++) {
		assert_int_equal(*(uint64_t *)arena_ptr(c, h[i]), i);
		assert_int_equal(arena_unref(c, h[i]), 0);
	}
	assert_int_equal(tstat_get(sock, &s), 0);
	assert_int_equal(s.a[ai].in_use, 0);
	assert_int_equal(s.a[ai].allocs - s0.a[ai].allocs, cap + 10);
	assert_int_equal(s.a[ai].frees - s0.a[ai].frees, cap + 10);
	free(h);
	tcl_disc(c);
}

/* Default layout: 64 B goes through magazines, 64 KiB does not. */
static void exhaustion_default(void **state)
{
	exhaust(d.sock, 64);
	exhaust(d.sock, 65536);
}

static void exhaustion_explicit(void **state)
{
	static const char *const args[] = { "--fixed", "64:1000", "--fixed",
					    "4096:50", NULL };
	static const char *const args2[] = {
		"--fixed",	 "64:1000", "--fixed", "4096:50",
		"--max-clients", "2",	    NULL
	};
	struct harness_daemon e;
	struct arena_client *c;
	struct arena_info inf;

	assert_int_equal(harness_daemon_start(&e, args), 0);
	c = tcl_conn(e.sock);
	assert_int_equal(narenas(c), 2);
	assert_int_equal(arena_info(c, 0, &inf), 0);
	assert_int_equal(inf.block_size, 64);
	assert_int_equal(inf.capacity, 1000);
	assert_int_equal(arena_info(c, 1, &inf), 0);
	assert_int_equal(inf.block_size, 4096);
	assert_int_equal(inf.capacity, 50);
	tcl_disc(c);
	exhaust(e.sock, 64);
	exhaust(e.sock, 4096);
	assert_int_equal(harness_daemon_stop(&e), 0);

	/* few clients: both classes get magazines */
	assert_int_equal(harness_daemon_start(&e, args2), 0);
	exhaust(e.sock, 64);
	exhaust(e.sock, 4096);
	assert_int_equal(harness_daemon_stop(&e), 0);
	assert_int_equal(setenv("ARENA_SOCKET", d.sock, 1), 0);
}

/* ---- statistics ---- */

static void stats_exact(void **state)
{
	static const struct {
		uint64_t size;
		int alloc, free;
	} work[] = { { 64, 100, 30 }, { 4096, 50, 20 }, { 65536, 7, 7 } };
	struct arena_client *c;
	arena_handle_t *h[3], x;
	struct tstat s0, s, w;
	unsigned ai;
	int i, k;

	assert_int_equal(tstat_ctl(d.sock, &s0), 0);
	c = tcl_conn(d.sock);
	for (k = 0; k < 3; k++) {
		h[k] = calloc((size_t)work[k].alloc, sizeof(*h[k]));
		assert_non_null(h[k]);
		for (i = 0; i < work[k].alloc; i++)
			assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO,
						     work[k].size, &h[k][i]),
					 0);
		for (i = 0; i < work[k].free; i++)
			assert_int_equal(arena_unref(c, h[k][i]), 0);
	}
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 1 << 20, &x), -E2BIG);

	assert_int_equal(tstat_ctl(d.sock, &s), 0);
	assert_int_equal(tstat_get(d.sock, &w), 0);
	assert_int_equal(s.nclients, s0.nclients + 1);
	for (k = 0; k < 3; k++) {
		ai = arena_of(c, work[k].size);
		assert_int_equal(s.a[ai].in_use - s0.a[ai].in_use,
				 work[k].alloc - work[k].free);
		assert_int_equal(s.a[ai].allocs - s0.a[ai].allocs,
				 work[k].alloc);
		assert_int_equal(s.a[ai].frees - s0.a[ai].frees, work[k].free);
	}
	assert_int_equal(tstat_in_use(&s) - tstat_in_use(&s0), 70 + 30);
	assert_int_equal(tstat_allocs(&s) - tstat_allocs(&s0), 157);
	assert_int_equal(tstat_frees(&s) - tstat_frees(&s0), 57);
	/* the wire and the JSON agree */
	assert_int_equal(w.narenas, s.narenas);
	for (ai = 0; ai < s.narenas; ai++) {
		assert_int_equal(w.a[ai].in_use, s.a[ai].in_use);
		assert_int_equal(w.a[ai].allocs, s.a[ai].allocs);
		assert_int_equal(w.a[ai].frees, s.a[ai].frees);
		assert_int_equal(w.a[ai].failures, s.a[ai].failures);
	}

	/* the rest is released by disconnecting; allocations stay counted */
	tcl_disc(c);
	wait_clients(d.sock, s0.nclients);
	assert_int_equal(tstat_ctl(d.sock, &s), 0);
	for (ai = 0; ai < s.narenas; ai++)
		assert_int_equal(s.a[ai].in_use, s0.a[ai].in_use);
	assert_int_equal(tstat_allocs(&s) - tstat_allocs(&s0), 157);
	for (k = 0; k < 3; k++)
		free(h[k]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(connect_disconnect, tcl_teardown),
		cmocka_unit_test_teardown(alloc_sizes, tcl_teardown),
		cmocka_unit_test_teardown(alloc_errors, tcl_teardown),
		cmocka_unit_test_teardown(alignment, tcl_teardown),
		cmocka_unit_test_teardown(alignment_large, tcl_teardown),
		cmocka_unit_test_teardown(data_survives, tcl_teardown),
		cmocka_unit_test_teardown(info, tcl_teardown),
		cmocka_unit_test_teardown(exhaustion_default, tcl_teardown),
		cmocka_unit_test_teardown(exhaustion_explicit, tcl_teardown),
		cmocka_unit_test_teardown(stats_exact, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
