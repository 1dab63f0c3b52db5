// SPDX-License-Identifier: MIT
/*
 * The buddy arena under many processes and threads: 4 processes x 2
 * threads x N operations on blocks of random sizes from the minimum block
 * to 1/16 of the arena (orders drawn evenly, so that small and large
 * blocks are both common), each held for a random number of operations in
 * a window of up to 8 blocks, some for a little while asleep.  Every
 * byte of every block carries its owner's tag (process, thread, sequence
 * and offset), written on allocation and checked in full before the
 * free: two blocks that overlap anywhere show up as a word somebody else
 * wrote.  Some blocks take a second reference through the ledger, some
 * are freed by the other thread of the process (into its magazines).
 * An allocation that finds no block of its order free is not an error:
 * the thread frees one of its own and goes on, and the count of those is
 * compared with the daemon's.
 *
 * Before anyone frees what it still holds, with every thread parked, the
 * tree's free bytes plus the bytes the state words hold must be exactly
 * the arena; when everybody has freed everything and detached, the tree
 * must show the whole arena as one free block (complete coalescing), and
 * the daemon's counts must match what was done.  The parent stays
 * attached throughout, so the daemon never rebuilds the tree: what is
 * checked is the tree's own coalescing.
 *
 * N is $ARENA_STRESS_N, else 50,000 per thread (about 5 s on 2 cores:
 * every block written and read in full, 160 KiB on average), else 8,000
 * in a sanitizer build, which makes every byte checked 3 to 20 times
 * slower; races and overlaps show with fewer operations as well.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

/*
 * TSan sees the atomics of this process only.  A block this thread frees
 * may be taken and freed by another process before a sibling thread takes
 * it: the chain of release and acquire that orders the two threads runs
 * through the other process, invisible to TSan, which then reports the
 * sibling's first write as a race with this thread's last read.  Tell it
 * about that edge: a release before each unref, an acquire after each
 * allocation, on one sync object (blocks change size and start, so no
 * per-block address would do).
 */
#if defined(__SANITIZE_THREAD__)
#define TSAN_ON 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_ON 1
#endif
#endif
#ifdef TSAN_ON
#include <sanitizer/tsan_interface.h>
static char tsan_sync;
#define CROSS_PROCESS_RELEASE() __tsan_release(&tsan_sync)
#define CROSS_PROCESS_ACQUIRE() __tsan_acquire(&tsan_sync)
#else
#define CROSS_PROCESS_RELEASE() ((void)0)
#define CROSS_PROCESS_ACQUIRE() ((void)0)
#endif

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||           \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_N_DEFAULT 8000
#else
#define STRESS_N_DEFAULT 50000
#endif

#define NPROC 4
#define NTHREAD 2
#define WINDOW 8
#define XCHG 8
#define MIN_BLOCK 256u
#define ARENA_BYTES (16u << 20)
#define MAX_ORDER 16u		  /* 65536 leaves */
#define TOP_ORDER (MAX_ORDER - 4) /* 1/16 of the arena */
#define CHILD_MS 240000
#define PARK_MS 120000

static const char *const daemon_args[] = {
	"--size",  "64M",	    "--fixed", "64:64", "--buddy",
	"16M:256", "--max-clients", "16",      NULL,
};

static struct harness_daemon d;
static long stress_n;

/* Shared with the parent: what was done, and the rendezvous. */
struct done {
	uint64_t allocs[NPROC][NTHREAD];
	uint64_t frees[NPROC][NTHREAD];
	uint64_t full[NPROC][NTHREAD]; /* -ENOMEM answers */
	int parked;
	int go;
};

static struct done *done;

static int group_setup(void **state)
{
	const char *env = getenv("ARENA_STRESS_N");
	int err;

	stress_n = env && *env ? strtol(env, NULL, 10) : STRESS_N_DEFAULT;
	if (stress_n <= 0) {
		fprintf(stderr, "ARENA_STRESS_N must be positive\n");
		return -1;
	}
	done = mmap(NULL, sizeof(*done), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (done == MAP_FAILED)
		return -1;
	err = harness_daemon_start(&d, daemon_args);
	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	munmap(done, sizeof(*done));
	return harness_daemon_stop(&d) ? -1 : 0;
}

/* ---- the workers (in child processes: no cmocka here) ---- */

struct live {
	arena_handle_t h;
	uint64_t *p;
	uint64_t size;
	uint64_t tag;
	int refs; /* 1, or 2 with an extra arena_ref */
	int t;	  /* the thread that allocated it */
};

struct proc;

struct worker {
	struct proc *pr;
	int t;
	uint64_t rng;
	struct live win[WINDOW];
	int n;
	char err[256];
};

struct proc {
	struct arena_client *c;
	int p;
	pthread_mutex_t lock; /* guards the exchange: test-private memory */
	struct live xchg[XCHG];
	int nx;
	volatile int stop;
	struct worker w[NTHREAD];
};

static uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* Word i of a block tagged tag. */
static inline uint64_t word(uint64_t tag, uint64_t i)
{
	return tag ^ (i * 0x9e3779b97f4a7c15ULL);
}

static void tag_put(struct live *b)
{
	uint64_t i;

	for (i = 0; i < b->size / 8; i++)
		b->p[i] = word(b->tag, i);
}

/* The first word that is not the block's own, or -1. */
static int64_t tag_bad(const struct live *b)
{
	uint64_t i;

	for (i = 0; i < b->size / 8; i++)
		if (b->p[i] != word(b->tag, i))
			return (int64_t)i;
	return -1;
}

static int failed(struct worker *w, const char *what, int err)
{
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err), "%s: %s", what,
			 strerror(-err));
	w->pr->stop = 1;
	return -1;
}

static int bad(struct worker *w, const char *what, const struct live *b,
	       int64_t at)
{
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err),
			 "%s: handle %#llx (%llu B, tag %#llx), word %lld is "
			 "%#llx",
			 what, (unsigned long long)b->h,
			 (unsigned long long)b->size,
			 (unsigned long long)b->tag, (long long)at,
			 at >= 0 ? (unsigned long long)b->p[at] : 0ULL);
	w->pr->stop = 1;
	return -1;
}

/* A size of an order drawn evenly from 0 .. TOP_ORDER. */
static size_t pick_size(struct worker *w, unsigned *order)
{
	unsigned o = (unsigned)(rnd(w) % (TOP_ORDER + 1));
	size_t hi = (size_t)MIN_BLOCK << o, lo = o ? hi / 2 : 0;

	*order = o;
	return lo + 1 + (size_t)(rnd(w) % (hi - lo));
}

static int do_free(struct worker *w, struct live *b);

/* 1 when allocated, 0 when the arena had no block (one freed instead). */
static int do_alloc(struct worker *w, uint64_t seq)
{
	struct live *b = &w->win[w->n];
	unsigned o;
	size_t size = pick_size(w, &o);
	int err;

	err = arena_alloc(w->pr->c, ARENA_KIND_BUDDY, size, &b->h);
	if (err == -ENOMEM) {
		done->full[w->pr->p][w->t]++;
		if (w->n && do_free(w, &w->win[--w->n]))
			return -1;
		return 0;
	}
	if (err)
		return failed(w, "arena_alloc", err);
	CROSS_PROCESS_ACQUIRE();
	b->p = arena_ptr(w->pr->c, b->h);
	b->size = arena_size(w->pr->c, b->h);
	if (!b->p || b->size != (size_t)MIN_BLOCK << o ||
	    (uintptr_t)b->p % b->size)
		return failed(w, "new block: bad pointer, size or alignment",
			      -EBADMSG);
	b->tag = (uint64_t)getpid() << 40 | (uint64_t)w->t << 32 | seq;
	b->t = w->t;
	tag_put(b);
	b->refs = 1;
	if (seq % 16 == 5) {
		err = arena_ref(w->pr->c, b->h);
		if (err)
			return failed(w, "arena_ref", err);
		b->refs = 2;
	}
	done->allocs[w->pr->p][w->t]++;
	w->n++;
	return 1;
}

/* Drop every reference to b, checking every word before each. */
static int do_free(struct worker *w, struct live *b)
{
	int64_t at;
	int err;

	while (b->refs) {
		if ((void *)arena_ptr(w->pr->c, b->h) != b->p)
			return bad(w, "live block no longer resolves", b, -1);
		at = tag_bad(b);
		if (at >= 0)
			return bad(w, "block overlapped", b, at);
		CROSS_PROCESS_RELEASE();
		err = arena_unref(w->pr->c, b->h);
		if (err)
			return failed(w, "arena_unref", err);
		b->refs--;
	}
	if (arena_ptr(w->pr->c, b->h) != NULL)
		return bad(w, "block still resolves after its last unref", b,
			   -1);
	done->frees[w->pr->p][w->t]++;
	return 0;
}

/* Hand b to the other thread: 0 when taken, 1 when the exchange is full. */
static int give(struct worker *w, const struct live *b)
{
	struct proc *pr = w->pr;
	int full = 1;

	pthread_mutex_lock(&pr->lock);
	if (pr->nx < XCHG) {
		pr->xchg[pr->nx++] = *b;
		full = 0;
	}
	pthread_mutex_unlock(&pr->lock);
	return full;
}

/* A block the other thread gave; 1 when there was one. */
static int take(struct worker *w, struct live *b)
{
	struct proc *pr = w->pr;
	int i, got = 0;

	pthread_mutex_lock(&pr->lock);
	for (i = 0; i < pr->nx && !got; i++) {
		if (pr->xchg[i].t == w->t)
			continue;
		*b = pr->xchg[i];
		pr->xchg[i] = pr->xchg[--pr->nx];
		got = 1;
	}
	pthread_mutex_unlock(&pr->lock);
	return got;
}

static void nap(struct worker *w)
{
	struct timespec ts = { 0, (long)(rnd(w) % 50) * 1000 };

	nanosleep(&ts, NULL);
}

static int step(struct worker *w, uint64_t *seq)
{
	struct live b;
	int i;

	if (w->n < WINDOW && (w->n == 0 || rnd(w) % 2))
		return do_alloc(w, (*seq)++) < 0 ? -1 : 0;
	if (rnd(w) % 64 == 0)
		nap(w); /* hold the window a while */
	i = (int)(rnd(w) % (uint64_t)w->n);
	b = w->win[i];
	w->win[i] = w->win[--w->n];
	/* one in eight is freed by the other thread */
	if ((rnd(w) % 8 || give(w, &b)) && do_free(w, &b))
		return -1;
	if (take(w, &b) && do_free(w, &b))
		return -1;
	return 0;
}

static void park(void)
{
	long long end = tstat_now_ms() + PARK_MS;

	__atomic_fetch_add(&done->parked, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&done->go, __ATOMIC_ACQUIRE) &&
	       tstat_now_ms() < end)
		tstat_sleep_ms(1);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t seq = 0;
	long k;

	for (k = 0; k < stress_n && !w->pr->stop; k++)
		if (step(w, &seq))
			break;
	park(); /* everything still held while the parent looks */
	while (w->n > 0 && !w->pr->stop)
		if (do_free(w, &w->win[--w->n]))
			break;
	return NULL;
}

static int child_run(void *arg)
{
	struct proc *pr = calloc(1, sizeof(*pr));
	pthread_t th[NTHREAD];
	int t, err, ret = 0;

	tstat_child_init();
	if (!pr)
		return 2;
	pr->p = (int)(intptr_t)arg;
	pthread_mutex_init(&pr->lock, NULL);
	err = arena_connect(d.sock, &pr->c);
	if (err) {
		fprintf(stderr, "process %d: arena_connect: %s\n", pr->p,
			strerror(-err));
		return 3;
	}
	for (t = 0; t < NTHREAD; t++) {
		pr->w[t] = (struct worker){ .pr = pr, .t = t };
		pr->w[t].rng =
			0x9e3779b97f4a7c15ULL * (uint64_t)(pr->p * 8 + t + 1);
		if (pthread_create(&th[t], NULL, worker_run, &pr->w[t]))
			return 4;
	}
	for (t = 0; t < NTHREAD; t++)
		pthread_join(th[t], NULL);
	while (!pr->stop && pr->nx > 0)
		do_free(&pr->w[0], &pr->xchg[--pr->nx]);
	for (t = 0; t < NTHREAD; t++) {
		if (pr->w[t].err[0]) {
			fprintf(stderr, "process %d thread %d: %s\n", pr->p, t,
				pr->w[t].err);
			ret = 1;
		}
	}
	arena_disconnect(pr->c);
	free(pr);
	return ret;
}

/* ---- the test ---- */

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

/* With every thread parked: the tree and the words account for it all. */
static void parked_check(void)
{
	long long end = tstat_now_ms() + PARK_MS;
	struct tstat s;
	uint64_t held;

	int parked, err;

	while ((parked = __atomic_load_n(&done->parked, __ATOMIC_ACQUIRE)) <
		       NPROC * NTHREAD &&
	       tstat_now_ms() < end)
		tstat_sleep_ms(5);
	err = tstat_get(d.sock, &s);
	__atomic_store_n(&done->go, 1, __ATOMIC_RELEASE);
	assert_int_equal(parked, NPROC * NTHREAD);
	assert_int_equal(err, 0);
	assert_int_equal(s.nbuddy, 1);
	held = (s.a[s.buddy.index].in_use + s.a[s.buddy.index].cached) *
	       MIN_BLOCK;
	assert_int_equal(s.buddy.alloc_bytes, held);
	assert_true(held > 0);
	assert_int_equal(s.buddy.free_bytes + s.buddy.alloc_bytes, ARENA_BYTES);
}

static void final_check(uint64_t allocs, uint64_t full)
{
	uint32_t one = 1;
	struct tstat s, j;
	unsigned ai, o;

	assert_int_equal(tstat_wait(d.sock, &s, clients_are, &one, 10000), 0);
	assert_int_equal(tstat_ctl(d.sock, &j), 0);
	assert_int_equal(s.nbuddy, 1);
	ai = s.buddy.index;
	assert_int_equal(s.a[ai].in_use, 0);
	assert_int_equal(s.a[ai].cached, 0);
	assert_int_equal(s.a[ai].allocs, allocs);
	assert_int_equal(s.a[ai].frees, allocs);
	assert_int_equal(s.a[ai].failures, full);
	assert_int_equal(s.buddy.alloc_bytes, 0);
	assert_int_equal(s.buddy.free_bytes, ARENA_BYTES);
	assert_int_equal(s.buddy.largest_free, ARENA_BYTES);
	for (o = 0; o < MAX_ORDER; o++)
		assert_int_equal(s.buddy.free_blocks[o], 0);
	assert_int_equal(s.buddy.free_blocks[MAX_ORDER], 1);
	assert_int_equal(s.buddy.splits, s.buddy.coalesces);
	assert_memory_equal(&j.buddy, &s.buddy, sizeof(s.buddy));
	assert_false(harness_log_contains(&d, "buddy tree repaired"));
}

static void stress(void **state)
{
	struct arena_client *keeper;
	uint64_t allocs = 0, frees = 0, full = 0;
	pid_t pid[NPROC];
	int p, t, rc, bad = 0;

	memset(done, 0, sizeof(*done));
	assert_int_equal(arena_connect(d.sock, &keeper), 0);
	for (p = 0; p < NPROC; p++) {
		pid[p] = harness_fork(child_run, (void *)(intptr_t)p);
		assert_true(pid[p] > 0);
	}
	parked_check();
	for (p = 0; p < NPROC; p++) {
		rc = harness_wait(pid[p], CHILD_MS);
		if (rc) {
			fprintf(stderr, "process %d ended with %d\n", p, rc);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	for (p = 0; p < NPROC; p++)
		for (t = 0; t < NTHREAD; t++) {
			allocs += done->allocs[p][t];
			frees += done->frees[p][t];
			full += done->full[p][t];
		}
	fprintf(stderr, "%llu blocks allocated and freed, %llu -ENOMEM\n",
		(unsigned long long)allocs, (unsigned long long)full);
	assert_int_equal(allocs, frees);
	assert_true(allocs > (uint64_t)stress_n);
	final_check(allocs, full);
	arena_disconnect(keeper);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stress),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
