// SPDX-License-Identifier: MIT
/*
 * Zero-copy channels, one behaviour per test: bad input changes nothing;
 * a full channel refuses and an empty one polls, times out (never early)
 * or sleeps until a sender in another process wakes it; each producer's
 * messages arrive in order and every message exactly once; a queued
 * handle keeps its block alive after its sender died, and the daemon
 * releases what is queued once every endpoint is gone, so that all blocks
 * are back (checked through the daemon's statistics).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#define WAIT_MS 10000

static struct harness_daemon d;
static uint64_t base_in_use; /* blocks in use with no test client */

static int group_setup(void **state)
{
	static const char *const args[] = { "--channels", "6", "--chan-cells",
					    "8192", NULL };
	struct tstat s;
	int err = harness_daemon_start(&d, args);

	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	if (tstat_get(d.sock, &s))
		return -1;
	base_in_use = tstat_in_use(&s);
	return 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

static int all_back(const struct tstat *s, void *arg)
{
	return tstat_in_use(s) == base_in_use && s->nclients == 0;
}

static void expect_all_back(void)
{
	struct tstat s;

	assert_int_equal(tstat_wait(d.sock, &s, all_back, NULL, WAIT_MS), 0);
}

static struct arena_client *attach(void)
{
	struct arena_client *c = NULL;

	assert_int_equal(arena_connect(NULL, &c), 0);
	return c;
}

static arena_handle_t alloc_u64(struct arena_client *c, uint64_t v)
{
	arena_handle_t h;

	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	*(uint64_t *)arena_ptr(c, h) = v;
	return h;
}

static void bad_input(void **state)
{
	char name[64];
	struct arena_client *c = attach(), *o = attach();
	struct arena_chan *ch = NULL, *x = NULL;
	arena_handle_t h, other, stale, bump;

	assert_int_equal(arena_chan_open(NULL, "a", 4, &ch), -EINVAL);
	assert_int_equal(arena_chan_open(c, NULL, 4, &ch), -EINVAL);
	assert_int_equal(arena_chan_open(c, "a", 4, NULL), -EINVAL);
	assert_int_equal(arena_chan_open(c, "", 4, &ch), -EINVAL);
	assert_int_equal(arena_chan_open(c, "a", 0, &ch), -EINVAL);
	assert_int_equal(
		arena_chan_open(c, "a", ARENA_CHAN_CAPACITY_MAX + 1, &ch),
		-EINVAL);
	memset(name, 'n', sizeof(name));
	name[ARENA_CHAN_NAME_MAX + 1] = 0;
	assert_int_equal(arena_chan_open(c, name, 4, &ch), -ENAMETOOLONG);
	assert_null(ch);
	name[ARENA_CHAN_NAME_MAX] = 0; /* the longest allowed */
	assert_int_equal(arena_chan_open(c, name, 3, &ch), 0);
	assert_int_equal(arena_chan_capacity(ch), 4); /* rounded up */
	/* more ring cells than are left: refused, nothing taken */
	assert_int_equal(arena_chan_open(c, "big", 8192, &x), -ENOSPC);

	h = alloc_u64(c, 1);
	other = alloc_u64(o, 2);
	stale = alloc_u64(c, 3);
	assert_int_equal(arena_unref(c, stale), 0);
	assert_int_equal(arena_chan_send(NULL, h), -EINVAL);
	assert_int_equal(arena_chan_send(ch, 0), -EINVAL);
	assert_int_equal(arena_chan_send(ch, h | 1ull << 60), -EINVAL);
	assert_int_equal(arena_chan_send(ch, stale), -ESTALE);
	assert_int_equal(arena_chan_send(ch, other), -EINVAL); /* not ours */
	if (arena_alloc(c, ARENA_KIND_BUMP, 64, &bump) == 0) {
		/* bump blocks do not travel on channels (yet) */
		assert_int_equal(arena_chan_send(ch, bump), -EINVAL);
		assert_int_equal(arena_unref(c, bump), 0);
	}
	assert_int_equal(arena_chan_send_wait(ch, h, -2), -EINVAL);
	assert_int_equal(arena_chan_recv(ch, NULL, 0), -EINVAL);
	assert_int_equal(arena_chan_recv(ch, &h, -2), -EINVAL);
	assert_int_equal(arena_chan_recv(NULL, &h, 0), -EINVAL);
	/* nothing moved: the channel is empty, both still own their blocks */
	assert_int_equal(arena_chan_recv(ch, &stale, 0), -EAGAIN);
	assert_int_equal(arena_chan_send(ch, h), 0);
	assert_int_equal(arena_chan_send(ch, h), -EINVAL); /* moved already */
	assert_int_equal(arena_chan_recv(ch, &stale, 0), 0);
	assert_int_equal(stale, h);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_unref(o, other), 0);
	assert_int_equal(arena_chan_close(ch), 0);
	assert_int_equal(arena_chan_close(NULL), -EINVAL);
	arena_disconnect(o);
	arena_disconnect(c);
	expect_all_back();
}

static void table_full(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch[7] = { 0 }, *again;
	char name[16];
	int i;

	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(arena_chan_open(c, name, 2, &ch[i]), 0);
	}
	assert_int_equal(arena_chan_open(c, "t6", 2, &ch[6]), -ENFILE);
	/* joining an existing one needs no slot */
	assert_int_equal(arena_chan_open(c, "t0", 64, &again), 0);
	assert_int_equal(arena_chan_capacity(again), 2);
	assert_int_equal(arena_chan_close(again), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(arena_chan_close(ch[i]), 0);
	assert_int_equal(arena_chan_open(c, "t6", 2, &ch[6]), 0);
	assert_int_equal(arena_chan_close(ch[6]), 0);
	arena_disconnect(c);
	expect_all_back();
}

static void full_and_empty(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *tx, *rx;
	arena_handle_t h[5], got;
	int i;

	assert_int_equal(arena_chan_open(c, "edge", 4, &tx), 0);
	assert_int_equal(arena_chan_open(c, "edge", 4, &rx), 0);
	for (i = 0; i < 5; i++)
		h[i] = alloc_u64(c, (uint64_t)i);
	for (i = 0; i < 4; i++)
		assert_int_equal(arena_chan_send(tx, h[i]), 0);
	assert_int_equal(arena_chan_send(tx, h[4]), -EAGAIN);
	assert_int_equal(arena_chan_send_wait(tx, h[4], 0), -EAGAIN);
	for (i = 0; i < 4; i++) {
		assert_int_equal(arena_chan_recv(rx, &got, 0), 0);
		assert_int_equal(got, h[i]);
		assert_int_equal(*(uint64_t *)arena_ptr(c, got), i);
	}
	assert_int_equal(arena_chan_recv(rx, &got, 0), -EAGAIN);
	/* the refused one is still the caller's */
	assert_int_equal(arena_chan_send(tx, h[4]), 0);
	assert_int_equal(arena_chan_recv(rx, &got, 0), 0);
	assert_int_equal(got, h[4]);
	for (i = 0; i < 5; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(arena_unref(c, h[i]), -ESTALE);
	assert_int_equal(arena_chan_close(tx), 0);
	assert_int_equal(arena_chan_close(rx), 0);
	arena_disconnect(c);
	expect_all_back();
}

static void timeouts(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch;
	arena_handle_t h[3], got;
	long long t0;

	assert_int_equal(arena_chan_open(c, "slow", 2, &ch), 0);
	t0 = tstat_now_ms();
	assert_int_equal(arena_chan_recv(ch, &got, 150), -ETIMEDOUT);
	assert_true(tstat_now_ms() - t0 >= 150);
	h[0] = alloc_u64(c, 0);
	h[1] = alloc_u64(c, 1);
	h[2] = alloc_u64(c, 2);
	assert_int_equal(arena_chan_send(ch, h[0]), 0);
	assert_int_equal(arena_chan_send(ch, h[1]), 0);
	t0 = tstat_now_ms();
	assert_int_equal(arena_chan_send_wait(ch, h[2], 100), -ETIMEDOUT);
	assert_true(tstat_now_ms() - t0 >= 100);
	assert_int_equal(arena_unref(c, h[2]), 0);
	assert_int_equal(arena_chan_close(ch), 0); /* releases h[0], h[1] */
	arena_disconnect(c);
	expect_all_back();
}

/* Child: after 200 ms, send one block with value 42 on "wake". */
static int late_sender(void *arg)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, "wake", 8, &ch))
		return 1;
	tstat_sleep_ms(200);
	if (arena_alloc(c, ARENA_KIND_AUTO, 64, &h))
		return 2;
	*(uint64_t *)arena_ptr(c, h) = 42;
	if (arena_chan_send(ch, h))
		return 3;
	arena_chan_close(ch);
	arena_disconnect(c);
	return 0;
}

static void blocking_wakeup(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch;
	arena_handle_t h;
	pid_t pid;

	assert_int_equal(arena_chan_open(c, "wake", 8, &ch), 0);
	pid = harness_fork(late_sender, NULL);
	assert_true(pid > 0);
	assert_int_equal(arena_chan_recv(ch, &h, -1), 0);
	assert_int_equal(*(uint64_t *)arena_ptr(c, h), 42);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	/* the sender is gone; the reference it sent is ours */
	assert_int_equal(*(uint64_t *)arena_ptr(c, h), 42);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_chan_close(ch), 0);
	arena_disconnect(c);
	expect_all_back();
}

#define ORDER_N 20000

/* Child: send ORDER_N blocks holding (producer << 32 | i), waiting. */
static int producer(void *arg)
{
	uint64_t who = (uint64_t)(uintptr_t)arg, i;
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, "order", 64, &ch))
		return 1;
	for (i = 0; i < ORDER_N; i++) {
		if (arena_alloc(c, ARENA_KIND_AUTO, 64, &h))
			return 2;
		*(uint64_t *)arena_ptr(c, h) = who << 32 | i;
		if (arena_chan_send_wait(ch, h, WAIT_MS))
			return 3;
	}
	arena_chan_close(ch);
	arena_disconnect(c);
	return 0;
}

static void order_exactly_once(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch;
	uint64_t next[2] = { 0, 0 }, v;
	arena_handle_t h;
	pid_t p0, p1;
	int i;

	assert_int_equal(arena_chan_open(c, "order", 64, &ch), 0);
	p0 = harness_fork(producer, (void *)0);
	p1 = harness_fork(producer, (void *)1);
	assert_true(p0 > 0 && p1 > 0);
	for (i = 0; i < 2 * ORDER_N; i++) {
		assert_int_equal(arena_chan_recv(ch, &h, WAIT_MS), 0);
		v = *(uint64_t *)arena_ptr(c, h);
		assert_true((v >> 32) < 2);
		/* in order per producer, none lost, none twice */
		assert_int_equal(v & 0xffffffff, next[v >> 32]);
		next[v >> 32]++;
		assert_int_equal(arena_unref(c, h), 0);
	}
	assert_int_equal(arena_chan_recv(ch, &h, 0), -EAGAIN);
	assert_int_equal(harness_wait(p0, WAIT_MS), 0);
	assert_int_equal(harness_wait(p1, WAIT_MS), 0);
	assert_int_equal(arena_chan_close(ch), 0);
	arena_disconnect(c);
	expect_all_back();
}

/*
 * Child: queue 10 blocks on the channel named by arg, keeping a second
 * reference to each (so that its death makes the daemon reconcile them
 * against what the channel holds), then hang.
 */
static int doomed_sender(void *arg)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;
	int i;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, arg, 16, &ch))
		return 1;
	for (i = 0; i < 10; i++) {
		if (arena_alloc(c, ARENA_KIND_AUTO, 4096, &h))
			return 2;
		memset(arena_ptr(c, h), 'a' + i, 4096);
		if (arena_ref(c, h) || arena_chan_send(ch, h))
			return 3;
	}
	if (write(STDOUT_FILENO, "", 0) < 0)
		return 4;
	pause();
	return 0;
}

static int depth_is(const struct tstat *s, void *arg)
{
	return tstat_in_use(s) == base_in_use + (uint64_t)(uintptr_t)arg;
}

/* The sender dies; the queued references outlive it. */
static void sender_death_keeps_queue(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch;
	struct tstat s;
	arena_handle_t h;
	uint8_t *p;
	pid_t pid;
	int i, j;

	assert_int_equal(arena_chan_open(c, "keep", 16, &ch), 0);
	pid = harness_fork(doomed_sender, "keep");
	assert_true(pid > 0);
	assert_int_equal(tstat_wait(d.sock, &s, depth_is, (void *)10, WAIT_MS),
			 0);
	kill(pid, SIGKILL);
	assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	for (i = 0; i < 10; i++) {
		assert_int_equal(arena_chan_recv(ch, &h, WAIT_MS), 0);
		p = arena_ptr(c, h);
		assert_non_null(p);
		for (j = 0; j < 4096; j++)
			assert_int_equal(p[j], 'a' + i);
		assert_int_equal(arena_unref(c, h), 0);
	}
	assert_int_equal(arena_chan_close(ch), 0);
	arena_disconnect(c);
	expect_all_back();
}

/* Every endpoint dies with messages queued: the daemon frees them. */
static void all_endpoints_dead(void **state)
{
	struct tstat s;
	pid_t pid;

	pid = harness_fork(doomed_sender, "orphan");
	assert_true(pid > 0);
	assert_int_equal(tstat_wait(d.sock, &s, depth_is, (void *)10, WAIT_MS),
			 0);
	kill(pid, SIGKILL);
	assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	expect_all_back();
	assert_true(harness_log_contains(&d, "channel 'orphan' released: 10 "
					     "queued references dropped"));
}

/* A receiver that holds references and dies loses only its own. */
static int doomed_receiver(void *arg)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, "recv", 16, &ch))
		return 1;
	if (arena_chan_recv(ch, &h, WAIT_MS))
		return 2;
	if (write(*(int *)arg, "r", 1) != 1) /* tell the parent */
		return 3;
	pause();
	return 0;
}

static int one_client(const struct tstat *s, void *arg)
{
	return s->nclients == 1;
}

static void receiver_death(void **state)
{
	struct arena_client *c = attach();
	struct tstat s;
	struct arena_chan *ch;
	arena_handle_t h, mine;
	char got = 0;
	int fd[2];
	pid_t pid;

	assert_int_equal(arena_chan_open(c, "recv", 16, &ch), 0);
	h = alloc_u64(c, 7);
	mine = h;
	assert_int_equal(arena_ref(c, h), 0); /* one to keep, one to send */
	assert_int_equal(arena_chan_send(ch, h), 0);
	assert_int_equal(pipe(fd), 0);
	pid = harness_fork(doomed_receiver, &fd[1]);
	assert_true(pid > 0);
	close(fd[1]);
	if (read(fd[0], &got, 1) != 1) /* the child holds the reference */
		kill(pid, SIGKILL);
	close(fd[0]);
	assert_int_equal(got, 'r');
	kill(pid, SIGKILL);
	assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	/* the daemon has reclaimed the child once it is detached */
	assert_int_equal(tstat_wait(d.sock, &s, one_client, NULL, WAIT_MS), 0);
	assert_int_equal(*(uint64_t *)arena_ptr(c, mine), 7);
	assert_int_equal(arena_unref(c, mine), 0);
	assert_int_equal(arena_unref(c, mine), -ESTALE);
	assert_int_equal(arena_chan_close(ch), 0);
	arena_disconnect(c);
	expect_all_back();
}

static void stats_list_channels(void **state)
{
	struct arena_client *c = attach();
	struct arena_chan *ch;
	char out[8192], err[1024], ctl[512];
	const char *argv[] = { ctl, "--socket", d.sock, "stats", NULL };
	arena_handle_t h;
	int st;

	snprintf(ctl, sizeof(ctl), "%s/arenactl", harness_build_dir());
	assert_int_equal(arena_chan_open(c, "listed", 8, &ch), 0);
	h = alloc_u64(c, 1);
	assert_int_equal(arena_chan_send(ch, h), 0);
	assert_int_equal(
		harness_run(argv, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "channels: 1"));
	/* name, capacity, depth, sends, receives, endpoints */
	assert_non_null(strstr(out, "listed"));
	assert_non_null(strstr(out, "       8        1            1            "
				    "0         1"));
	assert_int_equal(arena_chan_close(ch), 0);
	arena_disconnect(c);
	expect_all_back();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_input),
		cmocka_unit_test(table_full),
		cmocka_unit_test(full_and_empty),
		cmocka_unit_test(timeouts),
		cmocka_unit_test(blocking_wakeup),
		cmocka_unit_test(order_exactly_once),
		cmocka_unit_test(sender_death_keeps_queue),
		cmocka_unit_test(all_endpoints_dead),
		cmocka_unit_test(receiver_death),
		cmocka_unit_test(stats_list_channels),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
