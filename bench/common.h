/* SPDX-License-Identifier: MIT */
/*
 * Pieces every multi-process benchmark needs: a private arenad to run
 * against, CPU pinning, which malloc a process really got, and how a
 * target reads.  Linked into every bench/bench_* program.
 */
#ifndef ARENA_BENCH_COMMON_H
#define ARENA_BENCH_COMMON_H

#include <limits.h>
#include <sys/types.h>

struct bench_daemon {
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	pid_t pid;
};

/*
 * arenad --size 1G in a fresh directory $TMPDIR/arena-bench-TAG.XXXXXX,
 * its stderr in arenad.log there; returns once a client can attach.
 * Returns 0, -ETIMEDOUT (10 s without an answer) or -errno.
 */
int bench_daemon_start(struct bench_daemon *d, const char *arenad,
		       const char *tag);

/* SIGTERM it, reap it, remove its directory. */
void bench_daemon_stop(struct bench_daemon *d);

/* Pin the calling process to CPU i modulo the online CPUs (best effort). */
void bench_pin_cpu(unsigned i);

/* The file that provides malloc in this process ("?" if unknown). */
const char *bench_malloc_impl(void);

/* How a target line reads. */
static inline const char *bench_verdict(int ok)
{
	return ok ? "PASS" : "MISS";
}

#endif
