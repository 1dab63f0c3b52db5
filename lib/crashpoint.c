// SPDX-License-Identifier: MIT
/*
 * The crash-point counter of the test build (see proto/crashpoint.h).
 * Empty in a normal build.
 */
#include "crashpoint.h"

#ifdef ARENA_CRASHPOINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define SITES_MAX 16384

static _Atomic unsigned long passed;
static unsigned long target; /* 0: never */
static atomic_bool armed;
static const void *sites[SITES_MAX]; /* where each was, for the tests */

__attribute__((visibility("default"))) void arena_crashpoint_arm(void)
{
	const char *s = getenv("ARENA_CRASH_AT");

	target = s ? strtoul(s, NULL, 10) : 0;
	atomic_store(&passed, 0);
	atomic_store(&armed, true);
}

__attribute__((visibility("default"))) unsigned long
arena_crashpoints_passed(void)
{
	return atomic_load(&passed);
}

__attribute__((visibility("default"))) void arena_crashpoint(void)
{
	unsigned long n;

	if (!atomic_load_explicit(&armed, memory_order_acquire))
		arena_crashpoint_arm();
	n = atomic_fetch_add(&passed, 1) + 1;
	if (n <= SITES_MAX)
		sites[n - 1] = __builtin_return_address(0);
	if (target && n == target)
		kill(getpid(), SIGKILL);
}

__attribute__((visibility("default"))) const void *
arena_crashpoint_site(unsigned long n)
{
	return n >= 1 && n <= SITES_MAX ? sites[n - 1] : NULL;
}
#else
typedef int arena_crashpoint_unused; /* ISO C: no empty translation unit */
#endif
