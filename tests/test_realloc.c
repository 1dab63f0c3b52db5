// SPDX-License-Identifier: MIT
/*
 * arena_realloc: in place when the block is large enough (growing within
 * its size, shrinking), moving within a kind (fixed class to fixed class,
 * buddy order to order, bump to bump), across kinds (fixed to buddy, bump
 * to fixed, buddy to fixed when only a fixed class is left), with the
 * data checked each time; another process holding the old handle keeps
 * the old block intact until it unrefs it; and every error case leaves
 * the handle, both blocks and the counters as they were.
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

#include "harness.h"
#include "tclient.h"
#include "tstat.h"

#define WAIT_MS 20000

/* bump chunks of 64 KiB; a 128 KiB fixed class beyond them */
static const char *const args[] = { "--size",	     "32M",	"--fixed",
				    "64:256",	     "--fixed", "4K:16",
				    "--fixed",	     "128K:4",	"--buddy",
				    "1M:4K",	     "--bump",	"256K:64K",
				    "--max-clients", "8",	NULL };

static struct harness_daemon d;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, args);

	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

static enum arena_kind kind_of(struct arena_client *c, arena_handle_t h)
{
	struct arena_info inf;

	assert_int_equal(arena_info(c, (unsigned)(h >> 52) & 0xff, &inf), 0);
	return (enum arena_kind)inf.kind;
}

static void fill(struct arena_client *c, arena_handle_t h, size_t n,
		 unsigned seed)
{
	uint8_t *p = arena_ptr(c, h);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static bool same(struct arena_client *c, arena_handle_t h, size_t n,
		 unsigned seed)
{
	const uint8_t *p = arena_ptr(c, h);
	size_t i;

	if (!p)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 31 + seed))
			return false;
	return true;
}

static arena_handle_t alloc_filled(struct arena_client *c, enum arena_kind kind,
				   size_t size, unsigned seed)
{
	arena_handle_t h;

	assert_int_equal(arena_alloc(c, kind, size, &h), 0);
	fill(c, h, size, seed);
	return h;
}

/* Move h to new_size; the old block must be gone (we held it alone). */
static arena_handle_t grow(struct arena_client *c, arena_handle_t h, size_t old,
			   size_t new_size, enum arena_kind want, unsigned seed)
{
	arena_handle_t n = h;

	assert_int_equal(arena_realloc(c, &n, new_size), 0);
	assert_true(n != h);
	assert_int_equal(kind_of(c, n), want);
	assert_true(arena_size(c, n) >= new_size);
	assert_true(same(c, n, old, seed));
	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_unref(c, h), -ESTALE);
	fill(c, n, new_size, seed); /* what the next move must carry */
	return n;
}

static void all_free(void)
{
	struct tstat s;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(tstat_in_use(&s), 0);
}

static void in_place(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h = alloc_filled(c, ARENA_KIND_FIXED, 100, 1), g = h;

	assert_int_equal(arena_realloc(c, &g, 4096), 0); /* its class */
	assert_int_equal(g, h);
	assert_int_equal(arena_realloc(c, &g, 1), 0); /* shrink */
	assert_int_equal(g, h);
	assert_true(same(c, g, 100, 1));
	assert_int_equal(arena_unref(c, g), 0);
	h = alloc_filled(c, ARENA_KIND_BUDDY, 5000, 2); /* an 8 KiB block */
	g = h;
	assert_int_equal(arena_realloc(c, &g, 8192), 0);
	assert_int_equal(g, h);
	assert_int_equal(arena_unref(c, g), 0);
	h = alloc_filled(c, ARENA_KIND_BUMP, 100, 3);
	g = h;
	assert_int_equal(arena_realloc(c, &g, 50), 0);
	assert_int_equal(g, h);
	assert_int_equal(arena_unref(c, g), 0);
	tcl_disc(c);
	all_free();
}

static void within_kind(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h;

	h = alloc_filled(c, ARENA_KIND_FIXED, 64, 4);
	h = grow(c, h, 64, 1000, ARENA_KIND_FIXED, 4);	   /* 4K */
	h = grow(c, h, 1000, 100000, ARENA_KIND_FIXED, 4); /* 128K */
	assert_int_equal(arena_unref(c, h), 0);
	h = alloc_filled(c, ARENA_KIND_BUDDY, 4096, 5);
	h = grow(c, h, 4096, 65536, ARENA_KIND_BUDDY, 5);
	assert_int_equal(arena_unref(c, h), 0);
	h = alloc_filled(c, ARENA_KIND_BUMP, 100, 6);
	h = grow(c, h, 100, 30000, ARENA_KIND_BUMP, 6);
	assert_int_equal(arena_unref(c, h), 0);
	tcl_disc(c);
	all_free();
}

static void across_kinds(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h;

	/* fixed -> buddy: no class above 128K */
	h = alloc_filled(c, ARENA_KIND_AUTO, 4096, 7);
	h = grow(c, h, 4096, 200000, ARENA_KIND_BUDDY, 7);
	assert_int_equal(arena_unref(c, h), 0);
	/* bump -> fixed: beyond a chunk, AUTO's choice is the 128K class */
	h = alloc_filled(c, ARENA_KIND_BUMP, 60000, 8);
	h = grow(c, h, 60000, 70000, ARENA_KIND_FIXED, 8);
	assert_int_equal(arena_unref(c, h), 0);
	/* bump -> buddy: beyond every fixed class */
	h = alloc_filled(c, ARENA_KIND_BUMP, 1000, 9);
	h = grow(c, h, 1000, 300000, ARENA_KIND_BUDDY, 9);
	assert_int_equal(arena_unref(c, h), 0);
	tcl_disc(c);
	all_free();
}

/* ---- another process holds the old handle ---- */

struct holder {
	int to[2], from[2]; /* parent -> child, child -> parent */
	arena_handle_t h;
	size_t size;
	unsigned seed;
};

static int holder_main(void *p)
{
	struct holder *x = p;
	struct arena_client *c;
	char b = 0;
	int rc = 0;

	tstat_child_init();
	if (arena_connect(d.sock, &c) || arena_ref(c, x->h))
		return 1;
	if (write(x->from[1], "r", 1) != 1 || read(x->to[0], &b, 1) != 1)
		return 2;
	/* the parent moved its data: ours is the old block, intact */
	if (arena_size(c, x->h) < x->size)
		rc = 3;
	else if (!same(c, x->h, x->size, x->seed))
		rc = 4;
	if (!rc && arena_unref(c, x->h))
		rc = 5;
	if (!rc && arena_ptr(c, x->h)) /* that was the last reference */
		rc = 6;
	arena_disconnect(c);
	return rc;
}

static void other_holder(enum arena_kind kind, size_t size, size_t to)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct holder x = { .size = size, .seed = 11 };
	arena_handle_t n;
	pid_t pid;
	char b;

	assert_int_equal(pipe(x.to), 0);
	assert_int_equal(pipe(x.from), 0);
	x.h = alloc_filled(c, kind, size, x.seed);
	pid = harness_fork(holder_main, &x);
	assert_true(pid > 0);
	assert_int_equal(read(x.from[0], &b, 1), 1);
	n = x.h;
	assert_int_equal(arena_realloc(c, &n, to), 0);
	assert_true(n != x.h);
	assert_true(same(c, n, size, x.seed));
	memset(arena_ptr(c, n), 0, size); /* must not reach the child's */
	assert_non_null(arena_ptr(c, x.h));
	assert_int_equal(arena_unref(c, x.h), -EINVAL); /* not ours now */
	assert_int_equal(write(x.to[1], "g", 1), 1);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_null(arena_ptr(c, x.h));
	assert_int_equal(arena_unref(c, n), 0);
	close(x.to[0]);
	close(x.to[1]);
	close(x.from[0]);
	close(x.from[1]);
	tcl_disc(c);
	all_free();
}

static void holder_fixed(void **state)
{
	other_holder(ARENA_KIND_FIXED, 64, 3000);
}

static void holder_buddy(void **state)
{
	other_holder(ARENA_KIND_BUDDY, 4096, 100000);
}

static void holder_bump(void **state)
{
	other_holder(ARENA_KIND_BUMP, 500, 70000);
}

/* ---- errors: -errno, and nothing changed ---- */

static void expect_err(struct arena_client *c, arena_handle_t h, size_t to,
		       int err)
{
	struct tstat before, after;
	arena_handle_t g = h;

	assert_int_equal(tstat_get(d.sock, &before), 0);
	assert_int_equal(arena_realloc(c, &g, to), err);
	assert_int_equal(g, h);
	assert_int_equal(tstat_get(d.sock, &after), 0);
	assert_int_equal(tstat_in_use(&after), tstat_in_use(&before));
	assert_int_equal(tstat_allocs(&after), tstat_allocs(&before));
}

/* We hold it through a reference taken with arena_ref, not by allocating. */
static void ledger_holder(void **state)
{
	struct arena_client *a = tcl_conn(d.sock), *b = tcl_conn(d.sock);
	arena_handle_t h = alloc_filled(a, ARENA_KIND_FIXED, 64, 12), n = h;

	expect_err(b, h, 1000, -EINVAL); /* b holds no reference yet */
	assert_int_equal(arena_ref(b, h), 0);
	assert_int_equal(arena_realloc(b, &n, 1000), 0);
	assert_true(same(b, n, 64, 12));
	assert_true(same(a, h, 64, 12));
	assert_int_equal(arena_unref(b, h), -EINVAL);
	assert_int_equal(arena_unref(a, h), 0);
	assert_null(arena_ptr(a, h));
	assert_int_equal(arena_unref(b, n), 0);
	tcl_disc(a);
	tcl_disc(b);
	all_free();
}

static int forked_realloc(void *p)
{
	struct arena_client *c = ((void **)p)[0];
	arena_handle_t h = *(arena_handle_t *)((void **)p)[1];

	return arena_realloc(c, &h, 5000) == -ECHILD ? 0 : 1;
}

static void errors(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h = alloc_filled(c, ARENA_KIND_FIXED, 64, 13), x;
	arena_handle_t big[16];
	void *pa[2] = { c, &h };
	int n = 0;
	pid_t pid;

	assert_int_equal(arena_realloc(NULL, &h, 100), -EINVAL);
	assert_int_equal(arena_realloc(c, NULL, 100), -EINVAL);
	expect_err(c, h, 0, -EINVAL);
	expect_err(c, h ^ (63ull << 52), 100, -EINVAL); /* no such arena */
	expect_err(c, h | 0xffffffull, 100, -EINVAL);	/* past the end */
	expect_err(c, h & ~(0xfffffull << 32), 100, -EINVAL); /* gen 0 */
	expect_err(c, h, 1ull << 40, -E2BIG);
	/* the 4K class is full: growing a 64 B block there fails */
	while (n < 16 && arena_alloc(c, ARENA_KIND_FIXED, 4096, &big[n]) == 0)
		n++;
	assert_int_equal(n, 16);
	expect_err(c, h, 4096, -ENOMEM);
	while (n > 0)
		assert_int_equal(arena_unref(c, big[--n]), 0);
	assert_true(same(c, h, 64, 13));
	pid = harness_fork(forked_realloc, pa);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	x = h;
	assert_int_equal(arena_unref(c, h), 0);
	expect_err(c, x, 100, -ESTALE);
	expect_err(c, x, 5000, -ESTALE);
	/* a bump handle with an odd index is none */
	x = alloc_filled(c, ARENA_KIND_BUMP, 32, 14);
	expect_err(c, x | 1, 5000, -EINVAL);
	assert_int_equal(arena_unref(c, x), 0);
	expect_err(c, x, 5000, -ESTALE);
	tcl_disc(c);
	all_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(in_place, tcl_teardown),
		cmocka_unit_test_teardown(within_kind, tcl_teardown),
		cmocka_unit_test_teardown(across_kinds, tcl_teardown),
		cmocka_unit_test_teardown(holder_fixed, tcl_teardown),
		cmocka_unit_test_teardown(holder_buddy, tcl_teardown),
		cmocka_unit_test_teardown(holder_bump, tcl_teardown),
		cmocka_unit_test_teardown(ledger_holder, tcl_teardown),
		cmocka_unit_test_teardown(errors, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
