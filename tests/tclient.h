/* SPDX-License-Identifier: MIT */
/*
 * Clients a test attached, kept so that a failed test (whose assertion
 * jumps out past its arena_disconnect) leaves no magazines behind to skew
 * the next test's counts: use tcl_teardown as the cmocka teardown.
 */
#ifndef ARENA_TESTS_TCLIENT_H
#define ARENA_TESTS_TCLIENT_H

#include <arena/arena.h>

#define TCL_MAX 16

/* arena_connect that must succeed; the client is tracked. */
struct arena_client *tcl_conn(const char *sock);

/* Disconnect a tracked client now. */
void tcl_disc(struct arena_client *c);

/* Disconnect whatever the test left attached. */
int tcl_teardown(void **state);

#endif
