// SPDX-License-Identifier: MIT
/*
 * A thread that allocated through a client and exits gives the blocks
 * its cache had reserved back to the arenas (fixed and buddy), so they
 * are free for every client at once rather than waiting for another
 * thread of the same client to pick the cache up.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

static struct harness_daemon d;

static int group_setup(void **state)
{
	return harness_daemon_start(&d, NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

static uint64_t cached_total(void)
{
	struct tstat s;
	uint64_t n = 0;
	uint32_t i;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	for (i = 0; i < s.narenas; i++)
		n += s.a[i].cached;
	return n;
}

/* Allocate and free a few blocks of several sizes: caches fill up. */
static void *churn(void *p)
{
	static const size_t sizes[] = { 64, 256, 4096, 100000 };
	struct arena_client *c = p;
	arena_handle_t h[16];
	unsigned i, k;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (i = 0; i < 16; i++)
			if (arena_alloc(c, ARENA_KIND_AUTO, sizes[k], &h[i]))
				return (void *)1;
		for (i = 0; i < 16; i++)
			if (arena_unref(c, h[i]))
				return (void *)1;
	}
	return NULL;
}

static void exit_returns_cache(void **state)
{
	struct arena_client *c;
	pthread_t t;
	void *ret;

	assert_int_equal(arena_connect(NULL, &c), 0);
	assert_int_equal(pthread_create(&t, NULL, churn, c), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	/* the client is still attached: only the thread's exit flushed */
	assert_int_equal(cached_total(), 0);
	/* and a cache taken over by a new thread still works */
	assert_int_equal(pthread_create(&t, NULL, churn, c), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	assert_int_equal(cached_total(), 0);
	arena_disconnect(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_returns_cache),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
