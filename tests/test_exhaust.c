// SPDX-License-Identifier: MIT
/*
 * Exhaustion: what a flood of connections, peers that stall half-way
 * through a message, and more clients than --max-clients do to the
 * daemon.  It must refuse cleanly, drop the stalled, stay within a bounded
 * footprint, and keep serving the well-behaved: a client in another
 * process allocates, writes and checks blocks the whole time and must
 * never see an error.
 *
 * The daemon runs with --max-clients 4 (so 68 connections at most) and
 * --idle-timeout 1.  In order:
 *
 *   flood      10,000 connection attempts: 5,000 one after another (every
 *              tenth pings), then 50 bursts of 100 at once, more than the
 *              connection cap; each ends in a PONG, a close by the daemon
 *              (over the cap), or a full listen backlog, and nothing hangs
 *   stalled    peers that send part of a header, a header and part of a
 *              payload, a byte every 250 ms, or half a message after
 *              attaching: each is closed, with a log line, between 1 and
 *              5 s after its first byte; a silent peer is left alone
 *   too_many   the fifth client gets -EUSERS and a log line, a hundred
 *              times; the four attached keep working, and an id freed is
 *              an id taken again
 *   footprint  the daemon's descriptors are back to where they were
 *              before the flood, its resident memory grew by less than a
 *              bound, and the busy client never failed
 *
 * and --idle-timeout refuses values outside 1..3600 seconds.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "rawpeer.h"
#include "tstat.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#define MAX_CLIENTS 4
#define IO_MS 10000
#define SEQUENTIAL 5000
#define BURSTS 50
#define BURST 100
#define NSTALL 8 /* stalled peers of each kind */
/*
 * Resident memory the daemon may gain over the whole file.  Plain, it
 * needs none (connection buffers are freed and reused); under a sanitizer
 * freed memory and its shadow stay resident for a while, hence a margin,
 * and ASan's quarantine of freed memory is capped for the daemon
 * (DAEMON_ASAN), or it would keep up to 256 MiB of connection buffers.
 */
#ifdef SANITIZED
#define RSS_GROWTH_KB (32 * 1024)
#else
#define RSS_GROWTH_KB (8 * 1024)
#endif
#define DAEMON_ASAN "quarantine_size_mb=8"

static struct harness_daemon d;
static pid_t busy = -1;
static int stop_pipe[2] = { -1, -1 }, report_pipe[2] = { -1, -1 };
static int fds0;
static long rss0;

/* ---- a well-behaved client in another process ---- */

#define CHILD_FAIL(...)                                                        \
	do {                                                                   \
		fprintf(stderr, "busy client: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                           \
		return 1;                                                      \
	} while (0)

static int busy_round(struct arena_client *c, unsigned long round)
{
	arena_handle_t h[16];
	uint8_t *p;
	size_t size;
	int k, err;

	for (k = 0; k < 16; k++) {
		size = 1 + (round * 16 + (unsigned)k) % 20000;
		err = arena_alloc(c, ARENA_KIND_AUTO, size, &h[k]);
		if (err)
			CHILD_FAIL("alloc %zu: %s", size, strerror(-err));
		memset(arena_ptr(c, h[k]), k, size);
	}
	for (k = 0; k < 16; k++) {
		p = arena_ptr(c, h[k]);
		if (!p || p[0] != k)
			CHILD_FAIL("block %d changed", k);
		err = arena_unref(c, h[k]);
		if (err)
			CHILD_FAIL("unref: %s", strerror(-err));
	}
	return 0;
}

static int busy_client(void *arg)
{
	struct pollfd p = { .fd = stop_pipe[0], .events = POLLIN };
	struct arena_client *c;
	unsigned long rounds = 0;
	int err;

	tstat_child_init();
	err = arena_connect(d.sock, &c);
	if (err)
		CHILD_FAIL("connect: %s", strerror(-err));
	while (poll(&p, 1, 0) == 0) {
		if (busy_round(c, rounds++))
			return 1;
	}
	arena_disconnect(c);
	if (write(report_pipe[1], &rounds, sizeof(rounds)) != sizeof(rounds))
		CHILD_FAIL("report");
	return 0;
}

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

static int group_setup(void **state)
{
	static const char *const args[] = { "--max-clients", "4",
					    "--idle-timeout", "1", NULL };
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[512];
	uint32_t one = 1;
	struct tstat s;
	int err;

	snprintf(opts, sizeof(opts), "%s%s" DAEMON_ASAN, asan ? asan : "",
		 asan && *asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1); /* read by the daemon at its start */
	err = harness_daemon_start(&d, args);
	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	if (pipe(stop_pipe) || pipe(report_pipe))
		return -1;
	busy = harness_fork(busy_client, NULL);
	if (busy < 0 || tstat_wait(d.sock, &s, clients_are, &one, IO_MS))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	if (busy > 0) {
		(void)!write(stop_pipe[1], "x", 1);
		harness_wait(busy, IO_MS);
	}
	return harness_daemon_stop(&d) ? -1 : 0;
}

/* ---- flood ---- */

struct tally {
	unsigned pong, closed, refused, backlog;
};

static void sequential(struct tally *t)
{
	int i, s, err;

	for (i = 0; i < SEQUENTIAL; i++) {
		s = raw_connect(d.sock, 0);
		if (s < 0)
			fail_msg("connection %d: %s", i, strerror(-s));
		if (i % 10 == 0) {
			err = raw_ping(s, IO_MS);
			if (err)
				fail_msg("ping %d: %s", i, strerror(-err));
			t->pong++;
		} else {
			t->closed++; /* by us, at once */
		}
		close(s);
	}
}

/* One connection of a burst: PONG, or closed by the daemon. */
static void burst_answer(int s, struct tally *t)
{
	int err = raw_ping(s, IO_MS);

	if (!err)
		t->pong++;
	else if (err == -ECONNRESET)
		t->refused++; /* over the connection cap */
	else
		fail_msg("burst connection: %s", strerror(-err));
}

static void burst(struct tally *t)
{
	int fds[BURST], i, n = 0;

	for (i = 0; i < BURST; i++) {
		fds[n] = raw_connect(d.sock, 1);
		if (fds[n] >= 0)
			n++;
		else if (fds[n] == -EAGAIN)
			t->backlog++;
		else
			fail_msg("burst connect: %s", strerror(-fds[n]));
	}
	for (i = 0; i < n; i++)
		burst_answer(fds[i], t);
	for (i = 0; i < n; i++)
		close(fds[i]);
}

static void fds_settle(int want)
{
	long long end = tstat_now_ms() + IO_MS;
	int n;

	while ((n = proc_fd_count(d.pid)) > want && tstat_now_ms() < end)
		tstat_sleep_ms(10);
	if (n > want)
		fail_msg("the daemon holds %d descriptors, %d before", n, want);
}

static void flood(void **state)
{
	struct tally t = { 0 };
	long long start = tstat_now_ms();
	struct tstat s;
	int i;

	/* a baseline after some warm-up: buffers, stats scans */
	for (i = 0; i < 100; i++)
		close(raw_connect(d.sock, 0));
	assert_int_equal(tstat_get(d.sock, &s), 0);
	fds_settle(proc_fd_count(d.pid));
	fds0 = proc_fd_count(d.pid);
	rss0 = proc_status_kb(d.pid, "VmRSS");
	assert_true(fds0 > 0 && rss0 > 0);

	sequential(&t);
	for (i = 0; i < BURSTS; i++)
		burst(&t);
	fprintf(stderr,
		"10000 attempts in %lld ms: %u answered, %u closed at once, "
		"%u refused over the cap, %u found the backlog full\n",
		tstat_now_ms() - start, t.pong, t.closed, t.refused, t.backlog);
	assert_int_equal(t.pong + t.closed + t.refused + t.backlog,
			 SEQUENTIAL + BURSTS * BURST);
	assert_true(t.pong >= SEQUENTIAL / 10 + BURSTS);
	/* the cap was reached, and said so */
	assert_true(t.refused > 0);
	assert_true(harness_log_contains(&d, "refusing a connection"));
	fds_settle(fds0);
	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(s.nclients, 1);
}

/* ---- stalled peers ---- */

enum stall {
	ST_HEADER,   /* 7 bytes of a header */
	ST_PAYLOAD,  /* a HELLO header and 10 bytes of its payload */
	ST_DRIP,     /* a byte every 250 ms, never a whole message */
	ST_ATTACHED, /* attached, then half a PING header */
	ST_KINDS,
};

struct staller {
	int fd;
	enum stall kind;
	long long first; /* ms of its first byte */
	long long closed;
	size_t sent;
};

static const uint8_t *hello_bytes(void)
{
	static uint8_t m[sizeof(struct arena_proto_hdr) +
			 sizeof(struct arena_proto_hello)];
	struct arena_proto_hello h = { .layout_version =
					       ARENA_PROTO_LAYOUT_VERSION };

	arena_proto_hdr_encode((void *)m, ARENA_MSG_HELLO, sizeof(h), 1);
	memcpy(m + sizeof(struct arena_proto_hdr), &h, sizeof(h));
	return m;
}

static void stall_start(struct staller *st, enum stall kind)
{
	static const size_t first[ST_KINDS] = { 7, 26, 1, 8 };
	struct arena_proto_welcome w;
	int rfd;

	st->kind = kind;
	st->fd = raw_connect(d.sock, 0);
	assert_true(st->fd >= 0);
	if (kind == ST_ATTACHED) {
		assert_int_equal(raw_attach(st->fd, &w, &rfd, IO_MS), 0);
		close(rfd);
	}
	st->sent = first[kind];
	assert_int_equal(send(st->fd, hello_bytes(), st->sent, MSG_NOSIGNAL),
			 (ssize_t)st->sent);
	st->first = tstat_now_ms();
	st->closed = 0;
}

/* Feed the drippers, note who was closed; how many are still open. */
static int stall_step(struct staller *st, int n)
{
	int i, open = 0;

	for (i = 0; i < n; i++) {
		if (st[i].closed)
			continue;
		if (!raw_await_close(st[i].fd, 0)) {
			st[i].closed = tstat_now_ms();
			continue;
		}
		open++;
		if (st[i].kind == ST_DRIP && st[i].sent < 39 &&
		    send(st[i].fd, hello_bytes() + st[i].sent, 1,
			 MSG_NOSIGNAL) == 1)
			st[i].sent++;
	}
	return open;
}

static void stalled(void **state)
{
	struct staller st[NSTALL * ST_KINDS];
	long long end, dt;
	int i, n = NSTALL * ST_KINDS, silent;

	silent = raw_connect(d.sock, 0);
	assert_true(silent >= 0);
	for (i = 0; i < n; i++) /* two attached: client ids are few */
		stall_start(&st[i],
			    i % ST_KINDS == ST_ATTACHED && i >= 2 * ST_KINDS
				    ? ST_HEADER
				    : (enum stall)(i % ST_KINDS));
	end = tstat_now_ms() + 5000;
	while (stall_step(st, n) && tstat_now_ms() < end)
		tstat_sleep_ms(250);
	for (i = 0; i < n; i++) {
		if (!st[i].closed)
			fail_msg("stalled peer %d (kind %d) still open after "
				 "5 s",
				 i, st[i].kind);
		dt = st[i].closed - st[i].first;
		if (dt < 900)
			fail_msg("stalled peer %d closed after %lld ms, "
				 "before its second",
				 i, dt);
		close(st[i].fd);
	}
	assert_true(harness_log_contains(&d, "message incomplete for 1 s"));
	/* a silent connection has no message under way: still served */
	assert_int_equal(raw_ping(silent, IO_MS), 0);
	close(silent);
}

/* ---- more clients than --max-clients ---- */

static void too_many(void **state)
{
	struct arena_client *c[MAX_CLIENTS], *extra = NULL;
	arena_handle_t h[MAX_CLIENTS];
	uint32_t one = 1;
	struct tstat s;
	uint8_t *p;
	int i, k;

	/* the busy client holds one id; three more fill the table */
	for (i = 0; i < MAX_CLIENTS - 1; i++) {
		assert_int_equal(arena_connect(d.sock, &c[i]), 0);
		assert_int_equal(arena_alloc(c[i], ARENA_KIND_AUTO, 256, &h[i]),
				 0);
		memset(arena_ptr(c[i], h[i]), 0x40 + i, 256);
	}
	for (k = 0; k < 100; k++)
		assert_int_equal(arena_connect(d.sock, &extra), -EUSERS);
	assert_true(harness_log_contains(&d, "all 4 client ids in use"));
	for (i = 0; i < MAX_CLIENTS - 1; i++) {
		p = arena_ptr(c[i], h[i]);
		assert_non_null(p);
		for (k = 0; k < 256; k++)
			assert_int_equal(p[k], 0x40 + i);
		assert_int_equal(arena_unref(c[i], h[i]), 0);
		assert_int_equal(arena_alloc(c[i], ARENA_KIND_AUTO, 64, &h[i]),
				 0);
	}
	/* an id given back is an id taken again */
	arena_disconnect(c[0]);
	assert_int_equal(arena_connect(d.sock, &c[0]), 0);
	assert_int_equal(arena_alloc(c[0], ARENA_KIND_AUTO, 64, &h[0]), 0);
	for (i = 0; i < MAX_CLIENTS - 1; i++)
		arena_disconnect(c[i]);
	assert_int_equal(tstat_wait(d.sock, &s, clients_are, &one, IO_MS), 0);
}

/* ---- the footprint, and the busy client ---- */

static void footprint(void **state)
{
	unsigned long rounds = 0;
	long rss;

	fds_settle(fds0);
	rss = proc_status_kb(d.pid, "VmRSS");
	fprintf(stderr, "daemon: %d descriptors; VmRSS %ld kB, %ld before\n",
		proc_fd_count(d.pid), rss, rss0);
	if (rss - rss0 > RSS_GROWTH_KB)
		fail_msg("the daemon grew by %ld kB (VmRSS %ld kB)", rss - rss0,
			 rss);
	assert_int_equal(write(stop_pipe[1], "x", 1), 1);
	assert_int_equal(harness_wait(busy, IO_MS), 0);
	busy = -1;
	assert_int_equal(read(report_pipe[0], &rounds, sizeof(rounds)),
			 sizeof(rounds));
	fprintf(stderr, "busy client: %lu rounds, no error\n", rounds);
	assert_true(rounds > 0);
}

/* --idle-timeout takes whole seconds in 1..3600, nothing else. */
static void idle_timeout_option(void **state)
{
	static const char *const bad[] = {
		"0", "3601", "1.5", "-1", "", "10s", "99999999999999999999"
	};
	char path[512], err[512];
	const char *argv[] = { path,	       "--size",
			       "64M",	       "--socket",
			       "/nonexistent", "--idle-timeout",
			       NULL,	       NULL };
	unsigned i;
	int status;

	snprintf(path, sizeof(path), "%s/arenad", harness_build_dir());
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		argv[6] = bad[i];
		assert_int_equal(
			harness_run(argv, &status, NULL, 0, err, sizeof(err)),
			0);
		assert_int_equal(status, 64);
		if (!strstr(err, "--idle-timeout"))
			fail_msg("--idle-timeout '%s': %s", bad[i], err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flood),
		cmocka_unit_test(stalled),
		cmocka_unit_test(too_many),
		cmocka_unit_test(footprint),
		cmocka_unit_test(idle_timeout_option),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
