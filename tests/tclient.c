// SPDX-License-Identifier: MIT
/*
 * Tracked clients for cmocka tests (see tclient.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tclient.h"

static struct arena_client *open_clients[TCL_MAX];

int tcl_teardown(void **state)
{
	unsigned i;

	for (i = 0; i < TCL_MAX; i++) {
		arena_disconnect(open_clients[i]);
		open_clients[i] = NULL;
	}
	return 0;
}

struct arena_client *tcl_conn(const char *sock)
{
	struct arena_client *c = NULL;
	unsigned i;

	assert_int_equal(arena_connect(sock, &c), 0);
	assert_non_null(c);
	for (i = 0; i < TCL_MAX && open_clients[i]; i++)
		;
	assert_true(i < TCL_MAX);
	open_clients[i] = c;
	return c;
}

void tcl_disc(struct arena_client *c)
{
	unsigned i;

	for (i = 0; i < TCL_MAX; i++)
		if (open_clients[i] == c)
			open_clients[i] = NULL;
	arena_disconnect(c);
}
