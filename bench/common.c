// SPDX-License-Identifier: MIT
/* Shared benchmark pieces; see common.h. */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arena/arena.h>

#include "common.h"

int bench_daemon_start(struct bench_daemon *d, const char *arenad,
		       const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char logpath[PATH_MAX + 16];
	struct arena_client *c;
	int i;

	d->pid = 0;
	snprintf(d->dir, sizeof(d->dir), "%s/arena-bench-%s.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", tag);
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/arenad.sock", d->dir);
	snprintf(logpath, sizeof(logpath), "%s/arenad.log", d->dir);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		if (!freopen(logpath, "w", stderr))
			_exit(127);
		execl(arenad, arenad, "--size", "1G", "--socket", d->sock,
		      (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if (arena_connect(d->sock, &c) == 0) {
			arena_disconnect(c);
			return 0;
		}
		usleep(50000);
	}
	return -ETIMEDOUT;
}

void bench_daemon_stop(struct bench_daemon *d)
{
	char path[PATH_MAX + 16];

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	snprintf(path, sizeof(path), "%s/arenad.log", d->dir);
	unlink(path);
	unlink(d->sock);
	rmdir(d->dir);
}

void bench_pin_cpu(unsigned i)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (ncpu < 1)
		return;
	CPU_ZERO(&set);
	CPU_SET(i % (unsigned)ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

const char *bench_malloc_impl(void)
{
	void *(*volatile fn)(size_t) = malloc;
	Dl_info info;

	if (!dladdr((void *)fn, &info) || !info.dli_fname)
		return "?";
	return info.dli_fname;
}
