// SPDX-License-Identifier: MIT
/*
 * Zeroed against uninitialised allocation of 4 KiB blocks (issue 10).
 *
 * Nanoseconds per allocation + free pair, best of several repetitions,
 * all in one run: libarena's fixed-slot class uninitialised, with
 * ARENA_ALLOC_ZERO, and from a daemon started with --init zero; the
 * baselines malloc+free, calloc+free and malloc+memset+free of the same
 * size.  Every pair writes one byte through the pointer, so that no
 * variant gets away without touching its block.  The claim to check:
 * zeroing costs the memset and nothing more, i.e. (zero - uninit) is
 * about (malloc+memset - malloc).
 *
 * The program starts two daemons of its own (--arenad, default
 * ../arenad next to this binary), --size 256M each, one of them with
 * --init zero.  Output: a table on stdout, then "result" lines.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arena/arena.h>

#define SIZE 4096u
#define NVAR 6

struct daemon {
	pid_t pid;
	char dir[128];
	char sock[192];
};

static struct daemon plain, zeroed;
static struct arena_client *cp, *cz;
static unsigned ms = 200, reps = 5;

static void sink(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int pairs_malloc(uint64_t n, int how)
{
	uint8_t *p;

	while (n--) {
		p = how == 1 ? calloc(1, SIZE) : malloc(SIZE);
		if (!p)
			return -ENOMEM;
		if (how == 2)
			memset(p, 0, SIZE);
		p[SIZE - 1] = 1;
		sink(p);
		free(p);
	}
	return 0;
}

static int pairs_arena(struct arena_client *c, uint64_t n, unsigned flags)
{
	arena_handle_t h;
	uint8_t *p;
	int err;

	while (n--) {
		err = arena_alloc_ex(c, ARENA_KIND_FIXED, SIZE, flags, &h);
		if (err)
			return err;
		p = arena_ptr(c, h);
		p[SIZE - 1] = 1;
		sink(p);
		err = arena_unref(c, h);
		if (err)
			return err;
	}
	return 0;
}

static const char *const names[NVAR] = {
	"malloc+free",	"calloc+free",	   "malloc+memset",
	"arena uninit", "arena ZERO flag", "arena --init zero",
};

static int run_one(int v, uint64_t n)
{
	switch (v) {
	case 0:
	case 1:
	case 2:
		return pairs_malloc(n, v);
	case 3:
		return pairs_arena(cp, n, 0);
	case 4:
		return pairs_arena(cp, n, ARENA_ALLOC_ZERO);
	default:
		return pairs_arena(cz, n, 0);
	}
}

/* Best ns per pair of variant v over reps runs of about ms each. */
static double measure(int v)
{
	uint64_t n = 1000, t, best = UINT64_MAX;
	unsigned r;

	for (;;) { /* calibrate */
		t = now_ns();
		if (run_one(v, n))
			return -1;
		t = now_ns() - t;
		if (t > (uint64_t)ms * 1000000u / 4)
			break;
		n *= 2;
	}
	n = n * 4 * ((uint64_t)ms * 1000000u) / (4 * (t ? t : 1));
	for (r = 0; r < reps; r++) {
		t = now_ns();
		if (run_one(v, n))
			return -1;
		t = now_ns() - t;
		if (t < best)
			best = t;
	}
	return (double)best / (double)n;
}

static int daemon_start(struct daemon *d, const char *arenad, bool zero)
{
	struct arena_client *c;
	int i;

	snprintf(d->dir, sizeof(d->dir), "%s/arena-bz.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/arenad.sock", d->dir);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		freopen("/dev/null", "w", stderr);
		execl(arenad, arenad, "--size", "256M", "--socket", d->sock,
		      "--log-level", "warn", zero ? "--init" : NULL, "zero",
		      NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if (arena_connect(d->sock, &c) == 0) {
			arena_disconnect(c);
			return 0;
		}
		usleep(20000);
	}
	return -ETIMEDOUT;
}

static void daemon_stop(struct daemon *d)
{
	char path[256];

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	unlink(d->sock);
	snprintf(path, sizeof(path), "%s", d->dir);
	rmdir(path);
}

static const char *default_arenad(const char *argv0)
{
	static char buf[4096];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", argv0);
	slash = strrchr(buf, '/');
	if (!slash)
		return "arenad";
	strcpy(slash, "/../arenad");
	return buf;
}

static void report(const double *ns)
{
	int v;

	printf("zeroed vs uninitialised %u B allocation + free, best of %u x "
	       "~%u ms, ns per pair\n",
	       SIZE, reps, ms);
	for (v = 0; v < NVAR; v++)
		printf("  %-18s %8.1f ns  %5.2fx malloc+free\n", names[v],
		       ns[v], ns[v] / ns[0]);
	printf("  memset cost (malloc+memset - malloc):  %6.1f ns\n",
	       ns[2] - ns[0]);
	printf("  ZERO flag cost (flag - uninit):        %6.1f ns "
	       "(%.2fx uninit)\n",
	       ns[4] - ns[3], ns[4] / ns[3]);
	printf("  --init zero cost (init - uninit):      %6.1f ns "
	       "(%.2fx uninit)\n",
	       ns[5] - ns[3], ns[5] / ns[3]);
	printf("  zeroed arena vs malloc+memset: flag %.2fx, --init %.2fx; "
	       "vs calloc: %.2fx, %.2fx\n",
	       ns[4] / ns[2], ns[5] / ns[2], ns[4] / ns[1], ns[5] / ns[1]);
	for (v = 0; v < NVAR; v++)
		printf("result bench=zero size=%u variant=\"%s\" ns=%.1f "
		       "ratio_malloc=%.3f\n",
		       SIZE, names[v], ns[v], ns[v] / ns[0]);
}

int main(int argc, char **argv)
{
	const char *arenad = default_arenad(argv[0]);
	double ns[NVAR];
	int i, v, rc = 1;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--arenad"))
			arenad = argv[i + 1];
		else if (!strcmp(argv[i], "--ms"))
			ms = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--reps"))
			reps = (unsigned)atoi(argv[i + 1]);
	}
	if (!ms || !reps || daemon_start(&plain, arenad, false) ||
	    daemon_start(&zeroed, arenad, true)) {
		fprintf(stderr, "bench_zero: cannot start %s\n", arenad);
		goto out;
	}
	if (arena_connect(plain.sock, &cp) || arena_connect(zeroed.sock, &cz))
		goto out;
	for (v = 0; v < NVAR; v++) {
		ns[v] = measure(v);
		if (ns[v] < 0) {
			fprintf(stderr, "bench_zero: %s failed\n", names[v]);
			goto out;
		}
	}
	report(ns);
	rc = 0;
out:
	arena_disconnect(cp);
	arena_disconnect(cz);
	daemon_stop(&plain);
	daemon_stop(&zeroed);
	return rc;
}
