// SPDX-License-Identifier: MIT
/*
 * Many processes and threads allocating at once: 4 processes x 2 threads
 * x N alloc/free pairs of random sizes across every class, each thread
 * holding a random window of up to 64 live blocks so that frees
 * interleave with allocations everywhere.  Every block carries an owner
 * tag (pid, thread, sequence) at both ends, written on allocation and
 * checked before the free: a slot handed out twice, or two blocks that
 * overlap, show up as a tag someone else wrote.  Some blocks take an
 * extra reference, some are freed by the other thread of the process.
 * At the end every process detaches and the daemon's accounting must be
 * exact: nothing in use or cached, allocations == frees == the totals
 * done, no failures.
 *
 * N is $ARENA_STRESS_N, else 1,000,000 (the figure), else, in a
 * sanitizer build, 200,000: ASan and TSan make each operation 5 to 20
 * times slower, and the point there is finding races and memory errors,
 * which a fifth of the operations finds as well.
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
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||           \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_N_DEFAULT 200000
#else
#define STRESS_N_DEFAULT 1000000
#endif

#define NPROC 4
#define NTHREAD 2
#define WINDOW 64
#define NCLASS 6
#define XCHG 32
#define CHILD_MS 240000

static const uint64_t classes[NCLASS] = { 64, 256, 1024, 4096, 16384, 65536 };

/*
 * Enough slots in every class for all live windows, exchange buffers and
 * magazines at once, so an allocation never finds a class full.
 */
static const char *const daemon_args[] = {
	"--size",    "128M",	   "--fixed",	 "64:65536",  "--fixed",
	"256:32768", "--fixed",	   "1024:16384", "--fixed",   "4096:4096",
	"--fixed",   "16384:1024", "--fixed",	 "65536:640", NULL,
};

static struct harness_daemon d;
static long stress_n;

/* Per process, thread and class: what was done (shared with the parent). */
struct done {
	uint64_t allocs[NPROC][NTHREAD][NCLASS];
	uint64_t frees[NPROC][NTHREAD][NCLASS];
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

struct tag {
	uint32_t pid;
	uint32_t thread;
	uint64_t seq;
	arena_handle_t h;
};

struct live {
	arena_handle_t h;
	uint8_t *p;
	uint64_t size;
	struct tag tag;
	int cls;
	int refs; /* references held: 1, or 2 with an extra arena_ref */
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

static void tag_put(struct live *b)
{
	memcpy(b->p, &b->tag, sizeof(b->tag));
	memcpy(b->p + b->size - sizeof(b->tag), &b->tag, sizeof(b->tag));
}

static int tag_ok(const struct live *b)
{
	return !memcmp(b->p, &b->tag, sizeof(b->tag)) &&
	       !memcmp(b->p + b->size - sizeof(b->tag), &b->tag,
		       sizeof(b->tag));
}

static int bad(struct worker *w, const char *what, const struct live *b)
{
	struct tag head, tail;

	if (w->err[0])
		return -1;
	memcpy(&head, b->p, sizeof(head));
	memcpy(&tail, b->p + b->size - sizeof(tail), sizeof(tail));
	snprintf(w->err, sizeof(w->err),
		 "%s: handle %#llx of %d/%d seq %llu; head says %u/%u seq "
		 "%llu, tail says %u/%u seq %llu",
		 what, (unsigned long long)b->h, (int)b->tag.pid,
		 (int)b->tag.thread, (unsigned long long)b->tag.seq, head.pid,
		 head.thread, (unsigned long long)head.seq, tail.pid,
		 tail.thread, (unsigned long long)tail.seq);
	w->pr->stop = 1;
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

static int do_alloc(struct worker *w, uint64_t seq)
{
	struct live *b = &w->win[w->n];
	int cls = (int)(rnd(w) % NCLASS), err;
	uint64_t lo = cls ? classes[cls - 1] : 0;
	size_t size = (size_t)(lo + 1 + rnd(w) % (classes[cls] - lo));

	err = arena_alloc(w->pr->c, ARENA_KIND_AUTO, size, &b->h);
	if (err)
		return failed(w, "arena_alloc", err);
	b->p = arena_ptr(w->pr->c, b->h);
	b->size = arena_size(w->pr->c, b->h);
	b->cls = cls;
	if (!b->p || b->size != classes[cls])
		return failed(w, "handle of a new block does not resolve",
			      -EBADMSG);
	b->tag = (struct tag){ (uint32_t)getpid(), (uint32_t)w->t, seq, b->h };
	tag_put(b);
	b->refs = 1;
	if (seq % 8 == 3) {
		err = arena_ref(w->pr->c, b->h);
		if (err)
			return failed(w, "arena_ref", err);
		b->refs = 2;
	}
	done->allocs[w->pr->p][w->t][cls]++;
	w->n++;
	return 0;
}

/* Drop every reference to b, checking its tag before each. */
static int do_free(struct worker *w, struct live *b)
{
	int err;

	while (b->refs) {
		if (arena_ptr(w->pr->c, b->h) != b->p)
			return bad(w, "live block no longer resolves", b);
		if (!tag_ok(b))
			return bad(w, "slot handed out twice", b);
		err = arena_unref(w->pr->c, b->h);
		if (err)
			return failed(w, "arena_unref", err);
		b->refs--;
	}
	if (arena_ptr(w->pr->c, b->h) != NULL)
		return bad(w, "block still resolves after its last unref", b);
	done->frees[w->pr->p][w->t][b->cls]++;
	return 0;
}

/* Hand b to the other thread: 0 when taken, 1 when the exchange is full. */
static int give(struct worker *w, const struct live *b)
{
	struct proc *pr = w->pr;
	int taken = 0;

	pthread_mutex_lock(&pr->lock);
	if (pr->nx < XCHG) {
		pr->xchg[pr->nx++] = *b;
		taken = 1;
	}
	pthread_mutex_unlock(&pr->lock);
	return !taken;
}

/* Take a block the other thread gave; 1 when there was one. */
static int take(struct worker *w, struct live *b)
{
	struct proc *pr = w->pr;
	int i, got = 0;

	pthread_mutex_lock(&pr->lock);
	for (i = 0; i < pr->nx; i++) {
		if (pr->xchg[i].tag.thread == (uint32_t)w->t)
			continue;
		*b = pr->xchg[i];
		pr->xchg[i] = pr->xchg[--pr->nx];
		got = 1;
		break;
	}
	pthread_mutex_unlock(&pr->lock);
	return got;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t seq = 0;
	struct live b;
	int i;

	while (seq < (uint64_t)stress_n && !w->pr->stop) {
		if (w->n < WINDOW && (w->n == 0 || rnd(w) % 2)) {
			if (do_alloc(w, seq++))
				break;
			continue;
		}
		i = (int)(rnd(w) % (uint64_t)w->n);
		b = w->win[i];
		w->win[i] = w->win[--w->n];
		/* one in eight is freed by the other thread */
		if ((rnd(w) % 8 || give(w, &b)) && do_free(w, &b))
			break;
		if (take(w, &b) && do_free(w, &b))
			break;
	}
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

static int all_detached(const struct tstat *s, void *arg)
{
	return s->nclients == 0;
}

static void stress(void **state)
{
	uint64_t want_alloc[NCLASS] = { 0 }, want_free[NCLASS] = { 0 };
	uint64_t total = 0;
	struct tstat s;
	pid_t pid[NPROC];
	int p, t, k, rc, failed = 0;

	memset(done, 0, sizeof(*done));
	for (p = 0; p < NPROC; p++) {
		pid[p] = harness_fork(child_run, (void *)(intptr_t)p);
		assert_true(pid[p] > 0);
	}
	for (p = 0; p < NPROC; p++) {
		rc = harness_wait(pid[p], CHILD_MS);
		if (rc) {
			fprintf(stderr, "process %d ended with %d\n", p, rc);
			failed++;
		}
	}
	assert_int_equal(failed, 0);

	for (p = 0; p < NPROC; p++)
		for (t = 0; t < NTHREAD; t++)
			for (k = 0; k < NCLASS; k++) {
				want_alloc[k] += done->allocs[p][t][k];
				want_free[k] += done->frees[p][t][k];
			}
	for (k = 0; k < NCLASS; k++) {
		assert_int_equal(want_alloc[k], want_free[k]);
		total += want_alloc[k];
	}
	assert_int_equal(total, (uint64_t)NPROC * NTHREAD * stress_n);

	assert_int_equal(tstat_wait(d.sock, &s, all_detached, NULL, 10000), 0);
	assert_int_equal(s.narenas, NCLASS);
	for (k = 0; k < NCLASS; k++) {
		assert_int_equal(s.a[k].block_size, classes[k]);
		assert_int_equal(s.a[k].in_use, 0);
		assert_int_equal(s.a[k].cached, 0);
		assert_int_equal(s.a[k].allocs, want_alloc[k]);
		assert_int_equal(s.a[k].frees, want_free[k]);
		assert_int_equal(s.a[k].failures, 0);
	}
	assert_int_equal(tstat_allocs(&s), total);
	assert_int_equal(tstat_frees(&s), total);
	/* what arenactl shows agrees */
	assert_int_equal(tstat_ctl(d.sock, &s), 0);
	assert_int_equal(tstat_in_use(&s), 0);
	assert_int_equal(tstat_allocs(&s), total);
	assert_int_equal(tstat_frees(&s), total);
	assert_int_equal(tstat_failures(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stress),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
