// SPDX-License-Identifier: MIT
/*
 * arena_bump_reset: refused (-EBUSY, nothing changed) while a bump
 * allocation is referenced, by this process or another, whether through
 * the allocator's reference or one taken with arena_ref; accepted after,
 * with every chunk free.  A process that had a chunk cached before the
 * reset starts a new chunk at its next allocation, and its old chunk
 * goes back then.  A process allocating and checking its data in a loop
 * while another resets in a loop never sees its data change, and at the
 * end every chunk is free.  Also the errors of the call.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define WAIT_MS 30000
#define CHUNK (64u << 10)
#define NCHUNKS 8u

static const char *const args[] = { "--size",	     "16M",    "--fixed",
				    "64:64",	     "--bump", "512K:64K",
				    "--max-clients", "8",      NULL };
static const char *const nobump[] = { "--size", "16M", "--fixed", "64:64",
				      NULL };

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

static const struct tstat_arena *bump_row(struct tstat *s)
{
	uint32_t i;

	assert_int_equal(tstat_get(d.sock, s), 0);
	for (i = 0; i < s->narenas; i++)
		if (s->a[i].kind == ARENA_KIND_BUMP)
			return &s->a[i];
	fail_msg("no bump arena");
	return NULL;
}

static uint64_t chunks_free(void)
{
	struct tstat s;

	return bump_row(&s)->chunks_free;
}

/* Offset of a bump allocation's header within its chunk. */
static uint64_t in_chunk(arena_handle_t h)
{
	return ((uint64_t)(uint32_t)h << 3) % CHUNK;
}

static void refused_self(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h, g;
	uint64_t f;

	assert_int_equal(chunks_free(), NCHUNKS);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 100, &h), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 100, &g), 0);
	memset(arena_ptr(c, g), 7, 100);
	assert_int_equal(arena_unref(c, h), 0);
	f = chunks_free();
	assert_int_equal(arena_bump_reset(c), -EBUSY);
	assert_int_equal(chunks_free(), f);
	assert_int_equal(arena_size(c, g), 100);
	assert_int_equal(((uint8_t *)arena_ptr(c, g))[99], 7);
	/* a second reference, then only that one */
	assert_int_equal(arena_ref(c, g), 0);
	assert_int_equal(arena_unref(c, g), 0);
	assert_int_equal(arena_bump_reset(c), -EBUSY);
	assert_int_equal(arena_unref(c, g), 0);
	assert_int_equal(arena_bump_reset(c), 0);
	assert_int_equal(chunks_free(), NCHUNKS);
	/* and the next allocation starts a chunk */
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 100, &h), 0);
	assert_int_equal(in_chunk(h), 0);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_bump_reset(c), 0);
	assert_int_equal(chunks_free(), NCHUNKS);
	tcl_disc(c);
}

/* ---- another process ---- */

struct peer {
	int to[2], from[2];
	arena_handle_t h;
	int mode; /* 0: allocate and hold; 1: allocate, free, keep cached */
};

static int peer_main(void *p)
{
	struct peer *x = p;
	struct arena_client *c;
	arena_handle_t h, g;
	char b = 0;
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c) ||
	    arena_alloc(c, ARENA_KIND_BUMP, 1000, &h))
		return 1;
	memset(arena_ptr(c, h), 0x33, 1000);
	if (x->mode == 1 && arena_unref(c, h))
		return 2;
	if (write(x->from[1], &h, sizeof(h)) != sizeof(h) ||
	    read(x->to[0], &b, 1) != 1)
		return 3;
	if (x->mode == 0) {
		if (((uint8_t *)arena_ptr(c, h))[999] != 0x33 ||
		    arena_unref(c, h))
			return 4;
	} else {
		/* after the reset: a fresh chunk, and room for a full one */
		if (arena_alloc(c, ARENA_KIND_BUMP, 100, &g) || in_chunk(g))
			return 5;
		for (i = 0; i < 60; i++) {
			if (arena_alloc(c, ARENA_KIND_BUMP, 1000, &h))
				return 6;
			memset(arena_ptr(c, h), i, 1000);
			if (arena_unref(c, h))
				return 7;
		}
		if (arena_unref(c, g))
			return 8;
	}
	if (write(x->from[1], "d", 1) != 1 || read(x->to[0], &b, 1) != 1)
		return 9;
	arena_disconnect(c);
	return 0;
}

static pid_t peer_start(struct peer *x, int mode)
{
	pid_t pid;

	x->mode = mode;
	assert_int_equal(pipe(x->to), 0);
	assert_int_equal(pipe(x->from), 0);
	pid = harness_fork(peer_main, x);
	assert_true(pid > 0);
	close(x->to[0]); /* the child's ends: a child that fails is EOF */
	close(x->from[1]);
	assert_int_equal(read(x->from[0], &x->h, sizeof(x->h)), sizeof(x->h));
	return pid;
}

static void peer_end(struct peer *x, pid_t pid)
{
	char b;

	assert_int_equal(write(x->to[1], "g", 1), 1);
	if (read(x->from[0], &b, 1) == 1)
		assert_int_equal(write(x->to[1], "q", 1), 1);
	close(x->to[1]);
	close(x->from[0]);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
}

static void refused_other(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct peer x;
	pid_t pid = peer_start(&x, 0);

	assert_int_equal(arena_bump_reset(c), -EBUSY);
	/* our own reference keeps it after the peer lets go */
	assert_int_equal(arena_ref(c, x.h), 0);
	peer_end(&x, pid);
	assert_int_equal(arena_bump_reset(c), -EBUSY);
	assert_int_equal(((uint8_t *)arena_ptr(c, x.h))[0], 0x33);
	assert_int_equal(arena_unref(c, x.h), 0);
	assert_int_equal(arena_bump_reset(c), 0);
	assert_int_equal(chunks_free(), NCHUNKS);
	tcl_disc(c);
}

static void cached_chunk(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h;
	struct peer x;
	pid_t pid = peer_start(&x, 1);

	/* the peer bumps in a chunk, everything in it freed */
	assert_int_equal(chunks_free(), NCHUNKS - 1);
	assert_int_equal(arena_bump_reset(c), 0);
	/* ours is taken from the rest while the peer's is still its own */
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 200, &h), 0);
	assert_int_equal(in_chunk(h), 0);
	memset(arena_ptr(c, h), 0x77, 200);
	peer_end(&x, pid);
	assert_int_equal(((uint8_t *)arena_ptr(c, h))[199], 0x77);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_bump_reset(c), 0);
	assert_int_equal(chunks_free(), NCHUNKS);
	tcl_disc(c);
}

/* ---- a reset loop against allocators, in other processes and threads ---- */

#define ROUNDS 8192

static bool filled(const uint8_t *p, size_t n, uint8_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* The byte a kept allocation is filled with: from its handle. */
static uint8_t mark(arena_handle_t h)
{
	return (uint8_t)(h ^ h >> 8 ^ h >> 32);
}

/*
 * Allocate, fill, keep for a few rounds, check, free.  A reset that took
 * a chunk this process still bumps in, or that let another process's
 * allocation land on a kept one, shows as a changed byte.
 */
static int churn(struct arena_client *c, unsigned seed)
{
	arena_handle_t keep[4] = { 0 };
	unsigned i, k;
	size_t n;
	void *p;

	for (i = 0; i < ROUNDS; i++) {
		k = i % 4;
		if (keep[k]) {
			p = arena_ptr(c, keep[k]);
			n = arena_size(c, keep[k]);
			if (!p || !filled(p, n, mark(keep[k])))
				return 10;
			if (arena_unref(c, keep[k]))
				return 11;
			keep[k] = 0;
		}
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 3000;
		if (arena_alloc(c, ARENA_KIND_BUMP, n, &keep[k])) {
			keep[k] = 0; /* full for now: the others hold chunks */
			continue;
		}
		memset(arena_ptr(c, keep[k]), mark(keep[k]), n);
		if ((i / 256) % 2 == 0)
			continue; /* a phase of holding blocks */
		/* one of holding none between rounds: resets may pass */
		sched_yield();
		if (!filled(arena_ptr(c, keep[k]), n, mark(keep[k])) ||
		    arena_unref(c, keep[k]))
			return 13;
		keep[k] = 0;
	}
	for (k = 0; k < 4; k++)
		if (keep[k] && arena_unref(c, keep[k]))
			return 12;
	return 0;
}

static int churn_main(void *p)
{
	struct arena_client *c;
	int rc;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 1;
	rc = churn(c, (unsigned)getpid());
	arena_disconnect(c);
	return rc;
}

static atomic_int stop;

static void *resetter(void *p)
{
	struct arena_client *c = p;
	int err, ok = 0;

	while (!atomic_load(&stop)) {
		err = arena_bump_reset(c);
		if (err && err != -EBUSY)
			return (void *)1;
		ok += !err;
	}
	fprintf(stderr, "%d resets passed\n", ok); /* how much it raced */
	return NULL;
}

static void *churn_thread(void *p)
{
	return (void *)(intptr_t)churn(p, (unsigned)(uintptr_t)&p);
}

static void reset_race(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	pthread_t r, t;
	pid_t pid[2];
	void *rr, *tr;
	int i;

	atomic_store(&stop, 0);
	for (i = 0; i < 2; i++) {
		pid[i] = harness_fork(churn_main, NULL);
		assert_true(pid[i] > 0);
	}
	assert_int_equal(pthread_create(&r, NULL, resetter, c), 0);
	assert_int_equal(pthread_create(&t, NULL, churn_thread, c), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(harness_wait(pid[i], WAIT_MS), 0);
	assert_int_equal(pthread_join(t, &tr), 0);
	atomic_store(&stop, 1);
	assert_int_equal(pthread_join(r, &rr), 0);
	assert_null(tr);
	assert_null(rr);
	assert_int_equal(arena_bump_reset(c), 0);
	tcl_disc(c); /* the churn thread's cache goes back with it */
	assert_int_equal(chunks_free(), NCHUNKS);
}

static int forked_reset(void *p)
{
	return arena_bump_reset(p) == -ECHILD ? 0 : 1;
}

static void errors(void **state)
{
	struct harness_daemon nb;
	struct arena_client *c;
	pid_t pid;

	assert_int_equal(arena_bump_reset(NULL), -EINVAL);
	c = tcl_conn(d.sock);
	pid = harness_fork(forked_reset, c);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	tcl_disc(c);
	assert_int_equal(harness_daemon_start(&nb, nobump), 0);
	c = tcl_conn(nb.sock);
	assert_int_equal(arena_bump_reset(c), -ENOTSUP);
	tcl_disc(c);
	assert_int_equal(harness_daemon_stop(&nb), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(refused_self, tcl_teardown),
		cmocka_unit_test_teardown(refused_other, tcl_teardown),
		cmocka_unit_test_teardown(cached_chunk, tcl_teardown),
		cmocka_unit_test_teardown(reset_race, tcl_teardown),
		cmocka_unit_test_teardown(errors, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
