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

static _Atomic unsigned long passed;
static unsigned long target; /* 0: never */
static atomic_bool armed;

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
	if (target && n == target)
		kill(getpid(), SIGKILL);
}
#else
typedef int arena_crashpoint_unused; /* ISO C: no empty translation unit */
#endif
