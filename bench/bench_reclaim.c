// SPDX-License-Identifier: MIT
/*
 * Reclaim speed (issue 5): "reclaiming a client that held 100,000 blocks
 * takes under 10 ms".
 *
 * A real arenad --size 1G (tests/harness.c starts it), and this process
 * attached to it as a live client all along, as in any real deployment
 * (so the daemon never takes the shortcut of an empty region).  A child
 * connects, allocates N blocks (--blocks, default 100,000), reports ready
 * and is SIGKILLed.  Two cases:
 *
 *   fixed  N blocks of 64 B
 *   mixed  N blocks: fixed slots of 16 B .. 4 KiB, 4 and 8 KiB buddy
 *          blocks and 64 B bump allocations; every 100th one is shared
 *          with this (live) process, which takes a reference before the
 *          kill and must keep the block
 *
 * Times, best of --reps:
 *
 *   reclaim    reclaim_client() inside the daemon, as its detach log line
 *              reports it ("reclaimed N blocks in U us")
 *   kill->gone from the SIGKILL until a STATS reply shows the client gone
 *              (the daemon drops it in the same step as the reclaim):
 *              process teardown, EOF, reclaim, the STATS round trip
 *   self-unref baseline: the same child dropping its N blocks itself
 *   free()     baseline: glibc free() of N malloc()s of the same sizes
 *
 * and the ratios of reclaim to the baselines.  Every run is also
 * checked: after the reclaim every arena is back where it was, but for
 * the shared blocks, which go when this process drops them.  A missed
 * target prints MISS; the exit status is non-zero only when something
 * failed to run or a check failed.
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

#include "harness.h"
#include "tstat.h"

#define SHARE_EVERY 100
#define TARGET_MS 10.0

enum bench_case { CASE_FIXED, CASE_MIXED };

static const char *const case_name[] = { "fixed", "mixed" };

static struct harness_daemon dmn;
static long nblocks = 100000;

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The kind and size of block i of a case. */
static void shape(enum bench_case bc, long i, enum arena_kind *k, size_t *sz)
{
	static const size_t fixed[] = { 16, 48, 64, 100, 200, 500, 1000, 4096 };
	long r = (i * 2654435761u) % 100;

	*k = ARENA_KIND_FIXED;
	*sz = 64;
	if (bc == CASE_FIXED)
		return;
	if (r < 70) {
		*sz = fixed[i % 8];
	} else if (r < 80) {
		*k = ARENA_KIND_BUDDY;
		*sz = i % 2 ? 4096 : 8192;
	} else {
		*k = ARENA_KIND_BUMP;
	}
}

static int io_full(int fd, void *b, size_t n, bool wr)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = wr ? write(fd, (char *)b + done, n - done)
		       : read(fd, (char *)b + done, n - done);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

struct child_msg {
	int err;	  /* 0, or the step that failed */
	uint32_t nshared; /* handles that follow */
	double unref_ms;  /* self-unref mode: the time it took */
};

/* Allocate the case's blocks; touch each, as a real client would. */
static int child_alloc(struct arena_client *c, enum bench_case bc,
		       arena_handle_t *h)
{
	enum arena_kind k;
	size_t sz;
	long i;

	for (i = 0; i < nblocks; i++) {
		shape(bc, i, &k, &sz);
		if (arena_alloc(c, k, sz, &h[i]))
			return 1;
		*(volatile uint8_t *)arena_ptr(c, h[i]) = 1;
	}
	return 0;
}

/*
 * The child: allocate, then either drop everything itself and report the
 * time (self_unref), or hand the shared handles over and wait for death.
 */
static int child_run(enum bench_case bc, bool self_unref, int wfd, int rfd)
{
	struct child_msg m = { 0 };
	struct arena_client *c;
	arena_handle_t *h = calloc((size_t)nblocks, sizeof(*h));
	double t0;
	long i;
	char go;

	if (!h || arena_connect(dmn.sock, &c))
		return 1;
	m.err = child_alloc(c, bc, h) ? 2 : 0;
	if (!m.err && self_unref) {
		t0 = now_ms();
		for (i = 0; i < nblocks && !m.err; i++)
			m.err = arena_unref(c, h[i]) ? 3 : 0;
		m.unref_ms = now_ms() - t0;
	}
	if (bc == CASE_MIXED && !self_unref)
		m.nshared =
			(uint32_t)((nblocks + SHARE_EVERY - 1) / SHARE_EVERY);
	if (io_full(wfd, &m, sizeof(m), true))
		return 4;
	for (i = 0; i < (long)m.nshared; i++)
		if (io_full(wfd, &h[i * SHARE_EVERY], sizeof(*h), true))
			return 5;
	if (io_full(rfd, &go, 1, false)) /* the parent: "shared" or "done" */
		return 6;
	if (!self_unref)
		pause(); /* to be SIGKILLed */
	arena_disconnect(c);
	return m.err;
}

struct child {
	pid_t pid;
	int rfd; /* from the child */
	int wfd; /* to the child */
};

static int child_start(struct child *ch, enum bench_case bc, bool self_unref)
{
	int up[2], down[2];

	if (pipe(up) || pipe(down))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(child_run(bc, self_unref, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	ch->rfd = up[0];
	ch->wfd = down[1];
	return 0;
}

static void child_end(struct child *ch)
{
	close(ch->rfd);
	close(ch->wfd);
}

/* The daemon's own time for the last reclaim, from its log; < 0: none. */
static double logged_reclaim_ms(long *blocks)
{
	static const char key[] = "detached, reclaimed ";
	char buf[1 << 16], *p, *last = NULL;
	unsigned long long us;
	FILE *f = fopen(dmn.log, "r");
	size_t n;

	if (!f)
		return -1;
	/* the log is short: its last 64 KiB hold the last line */
	fseek(f, 0, SEEK_END);
	if (ftell(f) > (long)sizeof(buf) - 1)
		fseek(f, -(long)sizeof(buf) + 1, SEEK_END);
	else
		fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (p = strstr(buf, key); p; p = strstr(p + 1, key))
		last = p;
	if (!last || sscanf(last + sizeof(key) - 1, "%ld blocks in %llu us",
			    blocks, &us) != 2)
		return -1;
	return (double)us / 1e3;
}

static int clients_gone(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

struct result {
	double reclaim; /* ms, daemon-reported */
	double gone;	/* ms, kill to STATS */
	double self;	/* ms, self-unref */
	double libc;	/* ms, free() */
};

/* Arenas equal but for what the shared blocks hold. */
static bool stats_back(const struct tstat *a, const struct tstat *b)
{
	uint32_t i;

	for (i = 0; i < a->narenas; i++)
		if (a->a[i].in_use != b->a[i].in_use ||
		    a->a[i].bytes != b->a[i].bytes)
			return false;
	return a->nbuddy == b->nbuddy &&
	       (!a->nbuddy || a->buddy.free_bytes == b->buddy.free_bytes);
}

/* Take the child's shared handles; returns how many, or -1. */
static int take_shared(struct arena_client *c, const struct child *ch,
		       uint32_t n, arena_handle_t *out)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (io_full(ch->rfd, &out[i], sizeof(*out), false) ||
		    arena_ref(c, out[i]))
			return -1;
	return (int)n;
}

/* One kill of a child holding the case's blocks; fills r. */
static int one_kill(struct arena_client *c, enum bench_case bc,
		    struct result *r)
{
	static arena_handle_t shared[100000 / SHARE_EVERY + 1];
	struct tstat before, after, end;
	struct child_msg m;
	struct child ch;
	uint32_t want;
	double t0;
	long blocks = 0;
	int i, n = 0, st;

	if (tstat_get(dmn.sock, &before) || child_start(&ch, bc, false))
		return -1;
	want = before.nclients;
	if (io_full(ch.rfd, &m, sizeof(m), false) || m.err ||
	    m.nshared > sizeof(shared) / sizeof(shared[0]))
		goto fail;
	n = take_shared(c, &ch, m.nshared, shared);
	if (n < 0 || io_full(ch.wfd, "s", 1, true))
		goto fail;
	t0 = now_ms();
	kill(ch.pid, SIGKILL);
	if (tstat_wait(dmn.sock, &after, clients_gone, &want, 10000))
		goto fail;
	r->gone = now_ms() - t0;
	waitpid(ch.pid, &st, 0);
	child_end(&ch);
	r->reclaim = logged_reclaim_ms(&blocks);
	if (r->reclaim < 0 || blocks != nblocks - n)
		return -1;
	for (i = 0; i < n; i++)
		if (arena_unref(c, shared[i]))
			return -1;
	if (tstat_get(dmn.sock, &end) || !stats_back(&before, &end))
		return -1;
	return 0;
fail:
	kill(ch.pid, SIGKILL);
	waitpid(ch.pid, &st, 0);
	child_end(&ch);
	return -1;
}

/* The child drops its own blocks; its time into r->self. */
static int one_self(enum bench_case bc, struct result *r)
{
	struct child_msg m;
	struct child ch;
	int st, ok;

	if (child_start(&ch, bc, true))
		return -1;
	ok = !io_full(ch.rfd, &m, sizeof(m), false) && !m.err &&
	     !io_full(ch.wfd, "d", 1, true);
	waitpid(ch.pid, &st, 0);
	child_end(&ch);
	if (!ok || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	r->self = m.unref_ms;
	return 0;
}

/* glibc: free() of nblocks malloc()s of the case's sizes. */
static int one_libc(enum bench_case bc, struct result *r)
{
	void **p = calloc((size_t)nblocks, sizeof(*p));
	enum arena_kind k;
	size_t sz;
	double t0;
	long i;

	if (!p)
		return -1;
	for (i = 0; i < nblocks; i++) {
		shape(bc, i, &k, &sz);
		p[i] = malloc(k == ARENA_KIND_BUMP ? 64 : sz);
		if (!p[i])
			return -1;
		*(volatile char *)p[i] = 1;
	}
	t0 = now_ms();
	for (i = 0; i < nblocks; i++)
		free(p[i]);
	r->libc = now_ms() - t0;
	free(p);
	return 0;
}

static void keep_best(struct result *best, const struct result *r, int rep)
{
	if (!rep || r->reclaim < best->reclaim)
		best->reclaim = r->reclaim;
	if (!rep || r->gone < best->gone)
		best->gone = r->gone;
	if (!rep || r->self < best->self)
		best->self = r->self;
	if (!rep || r->libc < best->libc)
		best->libc = r->libc;
}

static int run_case(struct arena_client *c, enum bench_case bc, int reps,
		    struct result *best)
{
	struct result r;
	int rep;

	for (rep = 0; rep < reps; rep++) {
		if (one_kill(c, bc, &r) || one_self(bc, &r) ||
		    one_libc(bc, &r)) {
			fprintf(stderr, "bench_reclaim: %s case failed\n",
				case_name[bc]);
			return -1;
		}
		keep_best(best, &r, rep);
	}
	return 0;
}

static void report(const struct result *res)
{
	int i;

	printf("Reclaim of a SIGKILLed client holding %ld blocks (issue 5), "
	       "ms, best of the runs\n",
	       nblocks);
	printf("%-6s %9s %11s %11s %9s %13s %10s\n", "case", "reclaim",
	       "kill->gone", "self-unref", "free()", "/self-unref", "/free()");
	for (i = 0; i < 2; i++)
		printf("%-6s %9.3f %11.3f %11.3f %9.3f %12.2fx %9.2fx\n",
		       case_name[i], res[i].reclaim, res[i].gone, res[i].self,
		       res[i].libc, res[i].reclaim / res[i].self,
		       res[i].reclaim / res[i].libc);
	printf("mixed: 70%% fixed 16 B..4 KiB, 10%% buddy 4/8 KiB, 20%% bump "
	       "64 B; 1 in %d shared with a live client\n",
	       SHARE_EVERY);
	for (i = 0; i < 2; i++)
		printf("target: reclaim of %ld blocks (%s) <= %.0f ms "
		       "(%.3f ms): %s\n",
		       nblocks, case_name[i], TARGET_MS, res[i].reclaim,
		       res[i].reclaim <= TARGET_MS ? "PASS" : "MISS");
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--size", "1G", NULL };
	struct result res[2] = { 0 };
	struct arena_client *c;
	int i, reps = 5, bad = 0;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--reps"))
			reps = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--blocks"))
			nblocks = atol(argv[i + 1]);
	}
	if (reps < 1 || nblocks < SHARE_EVERY || nblocks > 100000) {
		fprintf(stderr, "usage: bench_reclaim [--reps N] "
				"[--blocks 100..100000]\n");
		return 2;
	}
	if (harness_daemon_start(&dmn, args)) {
		fprintf(stderr, "bench_reclaim: cannot start arenad\n");
		return 1;
	}
	if (arena_connect(dmn.sock, &c)) {
		harness_daemon_stop(&dmn);
		return 1;
	}
	for (i = 0; i < 2 && !bad; i++)
		bad = run_case(c, (enum bench_case)i, reps, &res[i]) ? 1 : 0;
	arena_disconnect(c);
	if (harness_daemon_stop(&dmn))
		bad = 1;
	if (!bad)
		report(res);
	return bad;
}
