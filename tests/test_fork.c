// SPDX-License-Identifier: MIT
/*
 * A client does not survive fork(): the child's copy of the parent's
 * client refuses to allocate, ref or unref (-ECHILD), so two processes can
 * never pop the same slots from one thread cache, while a client the child
 * connects itself works normally.  The parent's client and its blocks are
 * untouched by anything the child does with its copy.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"

static struct harness_daemon d;

static int group_setup(void **state)
{
	return harness_daemon_start(&d, NULL) ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

struct fork_arg {
	struct arena_client *parent;
	arena_handle_t h;
};

/* Child: exit code is the number of expectations that failed. */
static int child(void *p)
{
	struct fork_arg *a = p;
	struct arena_client *mine;
	arena_handle_t h2;
	int bad = 0;

	bad += arena_alloc(a->parent, ARENA_KIND_FIXED, 64, &h2) != -ECHILD;
	bad += arena_ref(a->parent, a->h) != -ECHILD;
	bad += arena_unref(a->parent, a->h) != -ECHILD;
	bad += strcmp(arena_ptr(a->parent, a->h), "parent's") != 0;
	arena_disconnect(a->parent); /* releases only the child's copy */
	if (arena_connect(NULL, &mine))
		return 100;
	bad += arena_alloc(mine, ARENA_KIND_FIXED, 64, &h2) != 0;
	bad += arena_unref(mine, h2) != 0;
	arena_disconnect(mine);
	return bad;
}

static void inherited_client_refuses(void **state)
{
	struct fork_arg a;
	arena_handle_t h;
	pid_t pid;
	int i;

	assert_int_equal(arena_connect(NULL, &a.parent), 0);
	/* warm the thread cache so the child inherits a full magazine */
	for (i = 0; i < 8; i++) {
		assert_int_equal(
			arena_alloc(a.parent, ARENA_KIND_FIXED, 64, &h), 0);
		assert_int_equal(arena_unref(a.parent, h), 0);
	}
	assert_int_equal(arena_alloc(a.parent, ARENA_KIND_FIXED, 64, &a.h), 0);
	strcpy(arena_ptr(a.parent, a.h), "parent's");
	pid = harness_fork(child, &a);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, 10000), 0);
	/* the parent's client and block are as they were */
	assert_string_equal(arena_ptr(a.parent, a.h), "parent's");
	assert_int_equal(arena_alloc(a.parent, ARENA_KIND_FIXED, 64, &h), 0);
	assert_int_equal(arena_unref(a.parent, h), 0);
	assert_int_equal(arena_unref(a.parent, a.h), 0);
	assert_int_equal(arena_unref(a.parent, a.h), -ESTALE);
	arena_disconnect(a.parent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inherited_client_refuses),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
