// SPDX-License-Identifier: MIT
/*
 * arena_alloc_wait(): a waiter in one process woken by a free in another
 * (also one that goes into the freeing thread's magazine), a waiter
 * timing out with -ETIMEDOUT and not before, waiters of several
 * processes served in the order they started waiting, a SIGKILLed waiter
 * that leaves nothing behind (the daemon finishes its ticket, the next
 * waiter is served), a signal ending a wait with -EINTR, -E2BIG at once
 * even behind other waiters, and bad input that changes nothing.
 *
 * Every test runs its own daemon.  Processes are ordered through the
 * region's counters: a waiter counts its wait when it first goes to
 * sleep, after it took its ticket, so waits == k means k waiters queued.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "internal.h"
#include "tstat.h"
#include "waitq.h"

#define WAIT_MS 10000
#define NFAIR 4

static struct harness_daemon d;

static void start(const char *const extra[])
{
	int err = harness_daemon_start(&d, extra);

	if (err)
		fail_msg("cannot start arenad: %s", strerror(-err));
}

static void stop(void)
{
	assert_int_equal(harness_daemon_stop(&d), 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct arena_stats stats(struct arena_client *c, unsigned idx)
{
	struct arena_stats st;

	assert_int_equal(arena_stats(c, idx, &st), 0);
	return st;
}

/* Wait until n calls have slept in arena idx. */
static void until_waits(struct arena_client *c, unsigned idx, uint64_t n)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (stats(c, idx).waits < n) {
		if (now_ms() > end)
			fail_msg("waiter %llu never went to sleep",
				 (unsigned long long)n);
		usleep(1000);
	}
}

/* Fill arena 0 with blocks of size bytes; how many. */
static unsigned fill(struct arena_client *c, size_t size, arena_handle_t *h,
		     unsigned max)
{
	unsigned n = 0;
	int err;

	while (n < max &&
	       (err = arena_alloc(c, ARENA_KIND_AUTO, size, &h[n])) == 0)
		n++;
	assert_true(n < max);
	assert_int_equal(err, -ENOMEM);
	return n;
}

static uint64_t queue_word(struct arena_client *c, unsigned idx)
{
	return __atomic_load_n(&c->wait[idx].queue, __ATOMIC_SEQ_CST);
}

/* ---- children ---- */

struct waiter_arg {
	size_t size;
	int timeout_ms;
	int fd; /* write a byte here when served, or -1 */
	char tag;
	enum arena_kind kind; /* 0: ARENA_KIND_AUTO */
};

/* Wait for a block; 0 when served (the block is freed again at once). */
static int waiter(void *p)
{
	const struct waiter_arg *w = p;
	struct arena_client *c;
	arena_handle_t h;
	int err;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 10;
	err = arena_alloc_wait(c, w->kind, w->size, w->timeout_ms, &h);
	if (err)
		return 20;
	if (w->fd >= 0 && write(w->fd, &w->tag, 1) != 1)
		return 30;
	if (arena_unref(c, h))
		return 40;
	arena_disconnect(c);
	return 0;
}

static pid_t spawn(struct waiter_arg *w)
{
	pid_t pid = harness_fork(waiter, w);

	assert_true(pid > 0);
	return pid;
}

/* ---- tests ---- */

/* One slot, held here; a waiter elsewhere gets it when it is freed. */
static void woken_by_free_elsewhere(void **state)
{
	const char *const args[] = { "--fixed", "64:3", NULL };
	struct waiter_arg w = { .size = 64, .timeout_ms = -1, .fd = -1 };
	arena_handle_t h[8];
	struct arena_client *c;
	unsigned n;
	pid_t pid;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	n = fill(c, 64, h, 8);
	assert_int_equal(n, 3);
	pid = spawn(&w);
	until_waits(c, 0, 1);
	assert_int_equal(arena_unref(c, h[0]), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_int_equal(stats(c, 0).waits, 1);
	assert_int_equal(stats(c, 0).fail_full, 1); /* fill()'s, not the wait */
	while (n-- > 1)
		assert_int_equal(arena_unref(c, h[n]), 0);
	arena_disconnect(c);
	stop();
}

/*
 * Slots with thread magazines: the free goes to the freeing thread's
 * magazine, and must be handed over because somebody waits.
 */
static void woken_through_magazine(void **state)
{
	const char *const args[] = { "--fixed", "64:1024", "--max-clients", "2",
				     NULL };
	struct waiter_arg w = { .size = 64, .timeout_ms = -1, .fd = -1 };
	static arena_handle_t h[1100];
	struct arena_client *c;
	unsigned n;
	pid_t pid;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_true(c->arenas[0].mag_cap > 1);
	n = fill(c, 64, h, 1100);
	assert_int_equal(n, 1024);
	pid = spawn(&w);
	until_waits(c, 0, 1);
	assert_int_equal(arena_unref(c, h[--n]), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	while (n-- > 0)
		assert_int_equal(arena_unref(c, h[n]), 0);
	arena_disconnect(c);
	stop();
}

/*
 * arena_realloc() that moves a block out of a full class frees the old
 * block like arena_unref(): counted as a free, and the waiter for that
 * class is served.
 */
static void woken_by_realloc(void **state)
{
	const char *const args[] = { "--fixed", "64:2", "--fixed", "256:2",
				     NULL };
	struct waiter_arg w = { .size = 64, .timeout_ms = -1, .fd = -1 };
	struct arena_stats before;
	arena_handle_t h[4];
	struct arena_client *c;
	unsigned n;
	pid_t pid;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	n = fill(c, 64, h, 4);
	assert_int_equal(n, 2);
	pid = spawn(&w);
	until_waits(c, 0, 1);
	before = stats(c, 0);
	assert_int_equal(arena_realloc(c, &h[0], 200), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	/* ours moved, the waiter's came and went */
	assert_int_equal(stats(c, 0).frees, before.frees + 2);
	assert_int_equal(stats(c, 0).live_blocks, 1);
	assert_int_equal(stats(c, 1).live_blocks, 1);
	assert_int_equal(arena_unref(c, h[0]), 0);
	assert_int_equal(arena_unref(c, h[1]), 0);
	arena_disconnect(c);
	stop();
}

/*
 * The one bump chunk is this thread's, all its allocations freed: a
 * waiter elsewhere has no chunk until arena_bump_reset() gives it back.
 */
static void woken_by_bump_reset(void **state)
{
	const char *const args[] = { "--fixed", "64:1", "--bump", "64K:64K",
				     NULL };
	struct waiter_arg w = {
		.size = 100, .timeout_ms = -1, .fd = -1, .kind = ARENA_KIND_BUMP
	};
	struct arena_client *c;
	arena_handle_t h;
	unsigned bi;
	pid_t pid;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	bi = c->bumpa->index;
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 100, &h), 0);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(stats(c, bi).free_bytes, 0);
	pid = spawn(&w);
	until_waits(c, bi, 1);
	assert_int_equal(arena_bump_reset(c), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_false(arena_waitq_waiting(queue_word(c, bi)));
	assert_int_equal(stats(c, bi).live_blocks, 0);
	assert_int_equal(stats(c, bi).fail_full, 0);
	arena_disconnect(c);
	stop();
}

/* Nothing is freed: -ETIMEDOUT, and only once the time has passed. */
static void times_out(void **state)
{
	const char *const args[] = { "--fixed", "64:2", NULL };
	struct arena_stats before, after;
	arena_handle_t h[4], x;
	struct arena_client *c;
	uint64_t t0, t1;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	fill(c, 64, h, 4);
	before = stats(c, 0);
	t0 = now_ms();
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 64, 300, &x),
			 -ETIMEDOUT);
	t1 = now_ms();
	assert_true(t1 - t0 >= 300);
	after = stats(c, 0);
	assert_int_equal(after.fail_full, before.fail_full + 1);
	assert_int_equal(after.waits, before.waits + 1);
	assert_true(after.wait_ns - before.wait_ns >= 300000000ull);
	assert_int_equal(after.allocs, before.allocs);
	/* 0: one try, no wait */
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 64, 0, &x),
			 -ETIMEDOUT);
	assert_int_equal(stats(c, 0).waits, after.waits);
	assert_int_equal(stats(c, 0).fail_full, after.fail_full + 1);
	assert_false(arena_waitq_waiting(queue_word(c, 0)));
	/* a free slot: served at once, whatever the timeout */
	assert_int_equal(arena_unref(c, h[0]), 0);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 64, 0, &h[0]), 0);
	assert_int_equal(arena_unref(c, h[0]), 0);
	assert_int_equal(arena_unref(c, h[1]), 0);
	arena_disconnect(c);
	stop();
}

/* Waiters in four processes get the one slot in the order they queued. */
static void served_in_order(void **state)
{
	const char *const args[] = { "--fixed", "64:1", NULL };
	struct waiter_arg w[NFAIR];
	struct arena_client *c;
	pid_t pid[NFAIR];
	char got[NFAIR + 1] = { 0 };
	arena_handle_t h;
	int fds[2], i;

	start(args);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	for (i = 0; i < NFAIR; i++) {
		w[i] = (struct waiter_arg){ 64, -1, fds[1], (char)('a' + i),
					    ARENA_KIND_AUTO };
		pid[i] = spawn(&w[i]);
		until_waits(c, 0, (uint64_t)i + 1);
	}
	assert_int_equal(arena_unref(c, h), 0);
	for (i = 0; i < NFAIR; i++)
		assert_int_equal(harness_wait(pid[i], WAIT_MS), 0);
	assert_int_equal(read(fds[0], got, NFAIR), NFAIR);
	assert_string_equal(got, "abcd");
	assert_false(arena_waitq_waiting(queue_word(c, 0)));
	assert_int_equal(stats(c, 0).live_blocks, 0);
	close(fds[0]);
	close(fds[1]);
	arena_disconnect(c);
	stop();
}

/* Wait for the daemon to see n clients attached. */
static void until_clients(uint32_t n)
{
	uint64_t end = now_ms() + WAIT_MS;
	struct tstat s;

	for (;;) {
		assert_int_equal(tstat_get(d.sock, &s), 0);
		if (s.nclients == n)
			return;
		if (now_ms() > end)
			fail_msg("%u clients, want %u", s.nclients, n);
		usleep(1000);
	}
}

/*
 * The first of two waiters is SIGKILLed: the daemon finishes its ticket
 * (the head moves past it with nothing freed), it held no block, and
 * the second waiter is served by the next free.
 */
static void killed_waiter_leaves_nothing(void **state)
{
	const char *const args[] = { "--fixed", "64:1", NULL };
	struct waiter_arg a = { 64, -1, -1, 'a', ARENA_KIND_AUTO },
			  b = { 64, -1, -1, 'b', ARENA_KIND_AUTO };
	struct arena_client *c;
	arena_handle_t h;
	pid_t pa, pb;
	uint64_t q;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	pa = spawn(&a);
	until_waits(c, 0, 1);
	pb = spawn(&b);
	until_waits(c, 0, 2);
	q = queue_word(c, 0);
	assert_int_equal(arena_waitq_tail(q) - arena_waitq_head(q), 2);
	assert_int_equal(kill(pa, SIGKILL), 0);
	assert_int_equal(harness_wait(pa, WAIT_MS), -1);
	until_clients(2);
	q = queue_word(c, 0);
	assert_int_equal(arena_waitq_tail(q) - arena_waitq_head(q), 1);
	assert_int_equal(stats(c, 0).live_blocks, 1); /* ours alone */
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(harness_wait(pb, WAIT_MS), 0);
	assert_false(arena_waitq_waiting(queue_word(c, 0)));
	assert_int_equal(stats(c, 0).live_blocks, 0);
	arena_disconnect(c);
	stop();
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* A waiter whose sleep a signal handler interrupts: -EINTR, no ticket. */
static int eintr_waiter(void *p)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct arena_client *c;
	arena_handle_t h;
	int err;

	(void)p;
	tstat_child_init();
	sigaction(SIGUSR1, &sa, NULL);
	if (arena_connect(d.sock, &c))
		return 10;
	err = arena_alloc_wait(c, ARENA_KIND_AUTO, 64, -1, &h);
	arena_disconnect(c);
	return err == -EINTR ? 0 : 20;
}

static void signal_interrupts(void **state)
{
	const char *const args[] = { "--fixed", "64:1", NULL };
	struct arena_client *c;
	arena_handle_t h;
	pid_t pid;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	pid = harness_fork(eintr_waiter, NULL);
	assert_true(pid > 0);
	until_waits(c, 0, 1);
	assert_int_equal(kill(pid, SIGUSR1), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_false(arena_waitq_waiting(queue_word(c, 0)));
	assert_int_equal(stats(c, 0).fail_full, 0);
	assert_int_equal(arena_unref(c, h), 0);
	arena_disconnect(c);
	stop();
}

/* A size no arena holds fails at once, also behind a queue. */
static void too_big_at_once(void **state)
{
	const char *const args[] = { "--fixed", "64:1", "--buddy", "64K:4K",
				     NULL };
	struct waiter_arg w = { 64, -1, -1, 'a', ARENA_KIND_AUTO };
	struct arena_client *c;
	arena_handle_t h, x;
	pid_t pid;
	unsigned bi;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	bi = c->buddy->index;
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	pid = spawn(&w);
	until_waits(c, 0, 1);
	/* the queue of arena 0 is not empty: still no wait */
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_FIXED, 128, -1, &x),
			 -E2BIG);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 1 << 20, -1, &x),
			 -E2BIG);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_BUDDY, 1 << 17, -1, &x),
			 -E2BIG);
	assert_int_equal(stats(c, 0).fail_big, 1);
	assert_int_equal(stats(c, bi).fail_big, 2);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	arena_disconnect(c);
	stop();
}

/* Bad arguments: -EINVAL or -ENOTSUP, counted nowhere. */
static void bad_input(void **state)
{
	const char *const args[] = { "--fixed", "64:1", NULL };
	struct arena_stats before, after;
	struct arena_client *c;
	arena_handle_t x = 0;

	start(args);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	before = stats(c, 0);
	assert_int_equal(arena_alloc_wait(NULL, ARENA_KIND_AUTO, 64, -1, &x),
			 -EINVAL);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 64, -1, NULL),
			 -EINVAL);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 0, -1, &x),
			 -EINVAL);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_AUTO, 64, -2, &x),
			 -EINVAL);
	assert_int_equal(arena_alloc_wait(c, (enum arena_kind)99, 64, -1, &x),
			 -EINVAL);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_BUDDY, 64, -1, &x),
			 -ENOTSUP);
	assert_int_equal(arena_alloc_wait(c, ARENA_KIND_BUMP, 64, -1, &x),
			 -ENOTSUP);
	assert_int_equal(x, 0);
	after = stats(c, 0);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(arena_stats(NULL, 0, &after), -EINVAL);
	assert_int_equal(arena_stats(c, 0, NULL), -EINVAL);
	assert_int_equal(arena_stats(c, 1, &after), -ENOENT);
	assert_false(arena_waitq_waiting(queue_word(c, 0)));
	arena_disconnect(c);
	stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(woken_by_free_elsewhere),
		cmocka_unit_test(woken_through_magazine),
		cmocka_unit_test(woken_by_realloc),
		cmocka_unit_test(woken_by_bump_reset),
		cmocka_unit_test(times_out),
		cmocka_unit_test(served_in_order),
		cmocka_unit_test(killed_waiter_leaves_nothing),
		cmocka_unit_test(signal_interrupts),
		cmocka_unit_test(too_big_at_once),
		cmocka_unit_test(bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
