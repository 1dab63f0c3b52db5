// SPDX-License-Identifier: MIT
/*
 * Zero-copy sends (lib/zc.c): what arrives is what was in the blocks, the
 * library's reference outlives the caller's until the kernel's
 * notification, and every fallback still delivers the data and says so.
 *
 * Data tests send 64 MiB of 1 MiB blocks to a receiver process, over
 * loopback TCP and as UDP datagrams, and compare SHA-256 on both sides;
 * the blocks hold a stream that is a function of its offset, so the UDP
 * receiver also checks every datagram on its own.  The reference test
 * stalls a TCP send behind a closed receive window: the socket has taken
 * every byte (the send's first CQE is in) but the pages are still queued,
 * so the notification, and with it the release of the block, must wait
 * until the receiver reads.  The fallbacks are forced: an AF_UNIX socket,
 * a child with RLIMIT_MEMLOCK 1 MiB and no CAP_IPC_LOCK, a child whose
 * seccomp filter refuses io_uring_setup, and ARENA_ZC_FORCE.  Tests that
 * need io_uring skip, with the reason, when the kernel refuses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>
#include <liburing.h>

#include <arena/arena.h>

#include "harness.h"
#include "sha256.h"
#include "tstat.h"

#define MIB (1u << 20)
#define NBLOCKS 64 /* of 1 MiB: 64 MiB in all */
#define DGRAM (32u << 10)
#define NDGRAMS (NBLOCKS * (MIB / DGRAM))
#define CREDIT 4 /* datagrams in the receiver's queue at most */
#define SMALL (64u << 10)
#define IO_MS 20000
#define MEMLOCK_LOW (1u << 20)

static struct harness_daemon d;
static const char *no_uring; /* why io_uring is unavailable, or NULL */
static char no_uring_buf[128];

static int group_setup(void **state)
{
	static const char *const args[] = {
		"--size", "96M",     "--fixed", "1M:72", "--fixed",
		"64K:64", "--fixed", "4K:64",	NULL,
	};
	struct io_uring ring;
	int err = io_uring_queue_init(4, &ring, 0);

	if (err) {
		snprintf(no_uring_buf, sizeof(no_uring_buf),
			 "io_uring unavailable: %s", strerror(-err));
		no_uring = no_uring_buf;
	} else {
		io_uring_queue_exit(&ring);
	}
	err = harness_daemon_start(&d, args);
	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "child %d, line %d: ", (int)getpid(),          \
			__LINE__);                                             \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		return 1;                                                      \
	} while (0)

/* ---- the data: a stream that is a function of its offset ---- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ x >> 27) * 0x94d049bb133111ebull;
	return x ^ x >> 31;
}

/* n bytes (a multiple of 8) of the stream from offset off (ditto). */
static void stream_fill(void *p, uint64_t off, size_t n)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < n / 8; i++)
		w[i] = mix(off / 8 + i);
}

static bool stream_ok(const void *p, uint64_t off, size_t n)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < n / 8; i++)
		if (w[i] != mix(off / 8 + i))
			return false;
	return true;
}

/* ---- sockets ---- */

static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A socket of type connected to 127.0.0.1:port; -1 on failure. */
static int connect_to(int type, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, type, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int udp_bound(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* Read exactly n bytes, or fail after IO_MS without progress. */
static int read_all(int fd, void *b, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (wait_in(fd, IO_MS))
			return -1;
		r = read(fd, (char *)b + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* ---- receivers, in child processes ---- */

struct rx_report {
	uint64_t bytes;
	uint64_t units; /* datagrams */
	uint64_t bad;	/* datagrams that were not what was sent */
	uint8_t digest[SHA256_LEN];
};

struct rx_job {
	int fd;	    /* listening TCP or bound UDP socket */
	int report; /* pipe: struct rx_report */
	int credit; /* pipe: a byte per datagram taken (UDP) */
};

static int rx_tcp(void *arg)
{
	const struct rx_job *j = arg;
	struct rx_report r = { 0 };
	struct sha256 s;
	char *buf = malloc(MIB);
	ssize_t n;
	int fd;

	if (!buf || wait_in(j->fd, IO_MS))
		FAIL("no connection");
	fd = accept(j->fd, NULL, NULL);
	if (fd < 0)
		FAIL("accept: %s", strerror(errno));
	sha256_init(&s);
	while (wait_in(fd, IO_MS) == 0 && (n = read(fd, buf, MIB)) > 0) {
		sha256_update(&s, buf, (size_t)n);
		r.bytes += (uint64_t)n;
	}
	sha256_final(&s, r.digest);
	if (write(j->report, &r, sizeof(r)) != sizeof(r))
		FAIL("report");
	free(buf);
	return 0;
}

static int rx_udp(void *arg)
{
	const struct rx_job *j = arg;
	struct rx_report r = { 0 };
	struct sha256 s;
	char *buf = malloc(DGRAM + 1);
	int size = 4 << 20;
	ssize_t n;

	if (!buf)
		FAIL("malloc");
	setsockopt(j->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	sha256_init(&s);
	while (r.units < NDGRAMS && wait_in(j->fd, IO_MS) == 0) {
		n = recv(j->fd, buf, DGRAM + 1, 0);
		if (n < 0)
			FAIL("recv: %s", strerror(errno));
		if (n != DGRAM || !stream_ok(buf, r.units * DGRAM, DGRAM))
			r.bad++;
		sha256_update(&s, buf, (size_t)n);
		r.bytes += (uint64_t)n;
		r.units++;
		if (write(j->credit, "c", 1) != 1)
			FAIL("credit");
	}
	sha256_final(&s, r.digest);
	if (write(j->report, &r, sizeof(r)) != sizeof(r))
		FAIL("report");
	free(buf);
	return 0;
}

/*
 * ---- statistics ----
 *
 * The kernel tears a closed io_uring down in a work item that then runs
 * a task_work in every thread that used it (TWA_SIGNAL): a recv() with a
 * timeout that it interrupts fails with EINTR, once.  tstat's control
 * socket has one, so these retry.
 */

static int stat_get(struct tstat *s)
{
	int err, tries = 0;

	while ((err = tstat_get(d.sock, s)) == -EINTR && tries++ < 3)
		;
	return err;
}

static uint64_t in_use_now(void)
{
	struct tstat s;

	assert_int_equal(stat_get(&s), 0);
	return tstat_in_use(&s);
}

static int in_use_is(const struct tstat *s, void *arg)
{
	return tstat_in_use(s) == *(const uint64_t *)arg;
}

static void wait_in_use(uint64_t want)
{
	struct tstat s = { 0 };
	int err, tries = 0;

	while ((err = tstat_wait(d.sock, &s, in_use_is, &want, IO_MS)) ==
		       -EINTR &&
	       tries++ < 3)
		;
	if (err)
		fail_msg("in_use %llu, expected %llu",
			 (unsigned long long)tstat_in_use(&s),
			 (unsigned long long)want);
}

/* ---- results ---- */

struct tally {
	unsigned n, want_n;
	uint64_t want_res;
	unsigned bad;
	uint32_t flags_or, flags_and;
	uint8_t seen[NDGRAMS];
};

static void tally_init(struct tally *t, unsigned n, uint64_t res)
{
	memset(t, 0, sizeof(*t));
	t->want_n = n;
	t->want_res = res;
	t->flags_and = UINT32_MAX;
}

static int collect(struct arena_zc *z, struct tally *t, int ms)
{
	struct arena_zc_result r[16];
	int i, n = arena_zc_complete(z, r, 16, ms);

	for (i = 0; i < n; i++) {
		if (r[i].tag >= t->want_n || t->seen[r[i].tag]++ ||
		    r[i].res != (int64_t)t->want_res || r[i].reserved) {
			fprintf(stderr, "result tag %llu res %lld flags %#x\n",
				(unsigned long long)r[i].tag,
				(long long)r[i].res, r[i].flags);
			t->bad++;
		}
		t->flags_or |= r[i].flags;
		t->flags_and &= r[i].flags;
		t->n++;
	}
	return n;
}

/*
 * arena_zc_send, or arena_zc_queue with queue, collecting results while
 * all entries are taken.
 */
static void zsend(struct arena_zc *z, int fd, arena_handle_t h, size_t off,
		  size_t len, uint64_t tag, struct tally *t, bool queue)
{
	int (*fn)(struct arena_zc *, int, arena_handle_t, size_t, size_t,
		  uint64_t) = queue ? arena_zc_queue : arena_zc_send;
	int err;

	while ((err = fn(z, fd, h, off, len, tag)) == -EBUSY)
		assert_true(collect(z, t, IO_MS) > 0);
	assert_int_equal(err, 0);
	collect(z, t, 0);
}

static void collect_all(struct arena_zc *z, struct tally *t)
{
	while (t->n < t->want_n)
		if (collect(z, t, IO_MS) <= 0)
			fail_msg("%u of %u results", t->n, t->want_n);
	assert_int_equal(t->bad, 0);
	assert_int_equal(arena_zc_complete(z, NULL, 0, 0), 0);
}

/* The flags every result must have in mode m, and must not. */
static void check_flags(const struct tally *t, unsigned m, bool unix_sock)
{
	if (m & ARENA_ZC_MODE_COPY || unix_sock) {
		assert_true(t->flags_and & ARENA_ZC_FALLBACK);
		assert_true(t->flags_and & ARENA_ZC_COPIED);
		return;
	}
	assert_false(t->flags_or & (ARENA_ZC_FALLBACK | ARENA_ZC_SHORT));
	if (m & ARENA_ZC_MODE_ZC)
		assert_true(t->flags_and & ARENA_ZC_UNREG);
	else
		assert_false(t->flags_or & ARENA_ZC_UNREG);
	assert_true(m & (ARENA_ZC_MODE_FIXED | ARENA_ZC_MODE_ZC));
}

/* ---- blocks ---- */

static void blocks_alloc(struct arena_client *c, arena_handle_t *h, unsigned n,
			 size_t size, uint8_t digest[SHA256_LEN])
{
	struct sha256 s;
	unsigned i;

	sha256_init(&s);
	for (i = 0; i < n; i++) {
		assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, size, &h[i]),
				 0);
		assert_int_equal(arena_size(c, h[i]), size);
		stream_fill(arena_ptr(c, h[i]), (uint64_t)i * size, size);
		sha256_update(&s, arena_ptr(c, h[i]), size);
	}
	if (digest)
		sha256_final(&s, digest);
}

static void report_read(int fd, struct rx_report *r)
{
	assert_int_equal(read_all(fd, r, sizeof(*r)), 0);
}

/* ---- 64 MiB over TCP ---- */

static void tcp_stream(unsigned expect_mode)
{
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	arena_handle_t h[NBLOCKS];
	uint8_t digest[SHA256_LEN];
	static struct tally t;
	struct rx_report r;
	struct rx_job j;
	uint64_t base = in_use_now();
	int p[2], fd;
	unsigned i, m;
	uint16_t port;
	pid_t pid;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_zc_open(c, 8, &z), 0);
	m = arena_zc_mode(z);
	if (expect_mode)
		assert_int_equal(m & 0xff, expect_mode);
	blocks_alloc(c, h, NBLOCKS, MIB, digest);
	assert_int_equal(pipe(p), 0);
	j = (struct rx_job){ .fd = tcp_listener(&port), .report = p[1] };
	pid = harness_fork(rx_tcp, &j);
	assert_true(pid > 0);
	fd = connect_to(SOCK_STREAM, port);
	assert_true(fd >= 0);
	tally_init(&t, NBLOCKS, MIB);
	for (i = 0; i < NBLOCKS; i++) {
		zsend(z, fd, h[i], 0, MIB, i, &t, i & 1);  /* odd: queued */
		assert_int_equal(arena_unref(c, h[i]), 0); /* the library's */
	}
	collect_all(z, &t);
	wait_in_use(base); /* every block went back after its result */
	close(fd);
	report_read(p[0], &r);
	assert_int_equal(harness_wait(pid, IO_MS), 0);
	assert_int_equal(r.bytes, (uint64_t)NBLOCKS * MIB);
	assert_memory_equal(r.digest, digest, SHA256_LEN);
	check_flags(&t, m, false);
	if (m & (ARENA_ZC_MODE_FIXED | ARENA_ZC_MODE_ZC))
		/* loopback delivers by copying: the kernel must say so */
		assert_true(m & ARENA_ZC_MODE_NOREPORT ||
			    (t.flags_and & ARENA_ZC_COPIED &&
			     arena_zc_mode(z) & ARENA_ZC_MODE_COPIED));
	arena_zc_close(z);
	arena_disconnect(c);
	close(j.fd);
	close(p[0]);
	close(p[1]);
}

static void tcp_64mib(void **state)
{
	tcp_stream(no_uring ? ARENA_ZC_MODE_COPY : 0);
}

/* ---- 64 MiB as UDP datagrams ---- */

static void take_credits(int fd, unsigned *credits, unsigned want)
{
	char b[64];
	ssize_t n;

	while (*credits < want) {
		if (wait_in(fd, IO_MS))
			fail_msg("receiver stalled at %u datagrams", *credits);
		n = read(fd, b, sizeof(b));
		assert_true(n > 0);
		*credits += (unsigned)n;
	}
}

static void udp_datagrams(void **state)
{
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	arena_handle_t h[NBLOCKS];
	uint8_t digest[SHA256_LEN];
	static struct tally t;
	struct rx_report r;
	struct rx_job j;
	uint64_t base = in_use_now();
	unsigned k, credits = 0, per = MIB / DGRAM;
	int p[2], cr[2], fd;
	uint16_t port;
	pid_t pid;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_zc_open(c, 32, &z), 0);
	blocks_alloc(c, h, NBLOCKS, MIB, digest);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(cr), 0);
	j = (struct rx_job){ .fd = udp_bound(&port),
			     .report = p[1],
			     .credit = cr[1] };
	pid = harness_fork(rx_udp, &j);
	assert_true(pid > 0);
	fd = connect_to(SOCK_DGRAM, port);
	assert_true(fd >= 0);
	tally_init(&t, NDGRAMS, DGRAM);
	for (k = 0; k < NDGRAMS; k++) {
		if (k >= CREDIT && credits < k - CREDIT + 1) {
			assert_int_equal(arena_zc_flush(z), 0); /* the batch */
			take_credits(cr[0], &credits, k - CREDIT + 1);
		}
		zsend(z, fd, h[k / per], k % per * DGRAM, DGRAM, k, &t, true);
		if (k % per == per - 1)
			assert_int_equal(arena_unref(c, h[k / per]), 0);
	}
	collect_all(z, &t);
	wait_in_use(base);
	report_read(p[0], &r);
	assert_int_equal(harness_wait(pid, IO_MS), 0);
	assert_int_equal(r.units, NDGRAMS);
	assert_int_equal(r.bad, 0);
	assert_memory_equal(r.digest, digest, SHA256_LEN);
	check_flags(&t, arena_zc_mode(z), false);
	arena_zc_close(z);
	arena_disconnect(c);
	close(fd);
	close(j.fd);
	close(p[0]);
	close(p[1]);
	close(cr[0]);
	close(cr[1]);
}

/* ---- the reference outlives the caller's until the notification ---- */

struct stall {
	int lfd, tx, rx;
};

/* A connection whose receiver takes ~4 KiB before its window closes. */
static void stall_open(struct stall *s)
{
	int small = 4096, big = 1 << 20;
	uint16_t port;

	s->lfd = tcp_listener(&port);
	assert_int_equal(setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &small,
				    sizeof(small)),
			 0);
	s->tx = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->tx >= 0);
	assert_int_equal(
		setsockopt(s->tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	close(s->tx);
	s->tx = connect_to(SOCK_STREAM, port);
	assert_true(s->tx >= 0);
	assert_int_equal(
		setsockopt(s->tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	s->rx = accept(s->lfd, NULL, NULL);
	assert_true(s->rx >= 0);
}

static void stall_close(struct stall *s)
{
	close(s->tx);
	close(s->rx);
	close(s->lfd);
}

/*
 * Connect and open; with need_ring, skip (cleanly, with the reason) when
 * the sends would not be asynchronous zero-copy ones.
 */
static void zc_setup(struct arena_client **c, struct arena_zc **z,
		     unsigned entries, bool need_ring)
{
	unsigned m;

	assert_int_equal(arena_connect(d.sock, c), 0);
	assert_int_equal(arena_zc_open(*c, entries, z), 0);
	m = arena_zc_mode(*z);
	if (!need_ring || m & (ARENA_ZC_MODE_FIXED | ARENA_ZC_MODE_ZC))
		return;
	fprintf(stderr, "skipped: no zero-copy sends here (mode %#x)%s%s\n", m,
		no_uring ? ": " : "", no_uring ? no_uring : "");
	arena_zc_close(*z);
	arena_disconnect(*c);
	skip();
}

static void ref_held_until_notification(void **state)
{
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	struct arena_zc_result res;
	uint64_t base = in_use_now();
	struct stall s;
	struct tstat st;
	arena_handle_t h;
	char *buf;

	zc_setup(&c, &z, 4, true);
	buf = malloc(SMALL);
	assert_non_null(buf);
	stall_open(&s);
	blocks_alloc(c, &h, 1, SMALL, NULL);
	assert_int_equal(arena_zc_send(z, s.tx, h, 0, SMALL, 7), 0);
	assert_int_equal(arena_unref(c, h), 0); /* the caller's: gone */
	/* the socket took it all, the receiver did not: not done */
	assert_int_equal(arena_zc_complete(z, &res, 1, 300), 0);
	assert_non_null(arena_ptr(c, h));
	assert_int_equal(in_use_now(), base + 1);
	assert_int_equal(tstat_ctl(d.sock, &st), 0); /* arenactl says so too */
	assert_int_equal(tstat_in_use(&st), base + 1);
	/* the receiver reads: ACKs free the pages, the notification comes */
	assert_int_equal(read_all(s.rx, buf, SMALL), 0);
	assert_true(stream_ok(buf, 0, SMALL));
	assert_int_equal(arena_zc_complete(z, &res, 1, IO_MS), 1);
	assert_int_equal(res.tag, 7);
	assert_int_equal(res.res, SMALL);
	assert_null(arena_ptr(c, h));
	assert_int_equal(in_use_now(), base);
	assert_int_equal(arena_unref(c, h), -ESTALE);
	arena_zc_close(z);
	stall_close(&s);
	arena_disconnect(c);
	free(buf);
}

/* Close with a send stuck in the kernel: the reset frees it, close waits. */
static void close_waits_for_kernel(void **state)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	struct arena_zc_result res;
	uint64_t base = in_use_now();
	struct stall s;
	arena_handle_t h;

	zc_setup(&c, &z, 4, true);
	stall_open(&s);
	blocks_alloc(c, &h, 1, SMALL, NULL);
	assert_int_equal(arena_zc_send(z, s.tx, h, 0, SMALL, 1), 0);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_zc_complete(z, &res, 1, 100), 0);
	assert_int_equal(in_use_now(), base + 1);
	assert_int_equal(
		setsockopt(s.rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(s.rx); /* a reset: the sender's queue is purged */
	s.rx = -1;
	arena_zc_close(z);
	assert_null(arena_ptr(c, h));
	assert_int_equal(in_use_now(), base);
	stall_close(&s);
	arena_disconnect(c);
}

/* A peer that resets midway: every send gets its result, no ref stays. */
static void peer_resets_midway(void **state)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	struct arena_zc_result res[8];
	uint64_t base = in_use_now();
	arena_handle_t h[8];
	struct stall s;
	int i, n, got = 0;

	zc_setup(&c, &z, 8, true); /* send(2) would block on the stall */
	stall_open(&s);
	blocks_alloc(c, h, 8, MIB, NULL);
	for (i = 0; i < 8; i++) {
		if (i == 4) {
			setsockopt(s.rx, SOL_SOCKET, SO_LINGER, &lg,
				   sizeof(lg));
			close(s.rx);
			s.rx = -1;
		}
		n = arena_zc_send(z, s.tx, h[i], 0, MIB, (uint64_t)i);
		assert_int_equal(n, 0);
		assert_int_equal(arena_unref(c, h[i]), 0);
	}
	while (got < 8) {
		n = arena_zc_complete(z, res, 8, IO_MS);
		assert_true(n > 0);
		for (i = 0; i < n; i++) {
			assert_true(res[i].res < 0 || res[i].res <= MIB);
			assert_true(res[i].res == MIB || res[i].res <= 0 ||
				    res[i].flags & ARENA_ZC_SHORT);
		}
		got += n;
	}
	assert_int_equal(in_use_now(), base);
	arena_zc_close(z);
	stall_close(&s);
	arena_disconnect(c);
}

/* ---- fallbacks ---- */

static void unix_socket_fallback(void **state)
{
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	uint64_t base = in_use_now();
	static struct tally t;
	arena_handle_t h[3];
	int sp[2], dp[2], i;
	char *buf = malloc(3 * SMALL);
	unsigned m;

	assert_non_null(buf);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_zc_open(c, 8, &z), 0);
	m = arena_zc_mode(z);
	blocks_alloc(c, h, 3, SMALL, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dp), 0);
	tally_init(&t, 4, SMALL);
	for (i = 0; i < 3; i++)
		zsend(z, sp[0], h[i], 0, SMALL, (uint64_t)i, &t, false);
	zsend(z, dp[0], h[1], 0, SMALL, 3, &t, true);
	for (i = 0; i < 3; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	collect_all(z, &t);
	wait_in_use(base);
	assert_int_equal(read_all(sp[1], buf, 3 * SMALL), 0);
	assert_true(stream_ok(buf, 0, 3 * SMALL));
	assert_int_equal(recv(dp[1], buf, 2 * SMALL, 0), SMALL);
	assert_true(stream_ok(buf, SMALL, SMALL));
	check_flags(&t, m, true);
	/* said once more by the mode, which keeps its base way */
	assert_int_equal(arena_zc_mode(z) & 0xff, m & 0xff);
	if (m & (ARENA_ZC_MODE_FIXED | ARENA_ZC_MODE_ZC))
		assert_true(arena_zc_mode(z) & ARENA_ZC_MODE_SOCK_COPY);
	arena_zc_close(z);
	arena_disconnect(c);
	close(sp[0]);
	close(sp[1]);
	close(dp[0]);
	close(dp[1]);
	free(buf);
}

/* One block over loopback TCP from a child; 0 when all went right. */
static int child_sends(unsigned want_mode, uint32_t want_flags)
{
	struct arena_client *c;
	struct arena_zc *z;
	struct arena_zc_result res;
	arena_handle_t h;
	char *buf = malloc(SMALL);
	int lfd, tx, rx, err;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (!buf || lfd < 0 || bind(lfd, (struct sockaddr *)&a, len) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &len))
		FAIL("listener");
	tx = connect_to(SOCK_STREAM, ntohs(a.sin_port));
	rx = accept(lfd, NULL, NULL);
	if (tx < 0 || rx < 0)
		FAIL("connection");
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	err = arena_zc_open(c, 4, &z);
	if (err)
		FAIL("arena_zc_open: %s", strerror(-err));
	if (arena_zc_mode(z) != want_mode)
		FAIL("mode %#x, expected %#x", arena_zc_mode(z), want_mode);
	if (arena_alloc(c, ARENA_KIND_FIXED, SMALL, &h))
		FAIL("alloc");
	stream_fill(arena_ptr(c, h), 0, SMALL);
	err = arena_zc_send(z, tx, h, 0, SMALL, 5);
	if (err || arena_unref(c, h))
		FAIL("send: %s", strerror(-err));
	if (read_all(rx, buf, SMALL) || !stream_ok(buf, 0, SMALL))
		FAIL("data");
	if (arena_zc_complete(z, &res, 1, IO_MS) != 1)
		FAIL("no result");
	if (res.tag != 5 || res.res != SMALL ||
	    (res.flags & want_flags) != want_flags)
		FAIL("result %lld flags %#x", (long long)res.res, res.flags);
	if (arena_ptr(c, h))
		FAIL("block not freed");
	arena_zc_close(z);
	arena_disconnect(c);
	free(buf);
	return 0;
}

static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hd = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct cd[2];

	if (syscall(SYS_capget, &hd, cd))
		return -1;
	cd[0].effective &= ~(1u << CAP_IPC_LOCK);
	cd[0].permitted &= ~(1u << CAP_IPC_LOCK);
	return syscall(SYS_capset, &hd, cd) ? -1 : 0;
}

static int child_no_memlock(void *arg)
{
	/* room for the ring's own pages (6.x charges them), not the region */
	struct rlimit rl = { MEMLOCK_LOW, MEMLOCK_LOW };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || drop_ipc_lock())
		FAIL("cannot lower the memlock limit: %s", strerror(errno));
	return child_sends(ARENA_ZC_MODE_ZC, ARENA_ZC_UNREG);
}

static void registration_refused(void **state)
{
	uint64_t base = in_use_now();
	pid_t pid;

	if (no_uring) {
		fprintf(stderr, "skipped: %s\n", no_uring);
		skip();
	}
	pid = harness_fork(child_no_memlock, NULL);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, IO_MS), 0);
	wait_in_use(base);
}

/* io_uring_setup fails with ENOSYS, as under many container runtimes. */
static int no_io_uring_filter(void)
{
	struct sock_filter f[] = {
#if defined(__x86_64__) || defined(__aarch64__)
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(f) / sizeof(f[0]),
		.filter = f,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int child_no_uring(void *arg)
{
	if (no_io_uring_filter())
		FAIL("seccomp: %s", strerror(errno));
	return child_sends(ARENA_ZC_MODE_COPY | ARENA_ZC_MODE_NORING,
			   ARENA_ZC_FALLBACK | ARENA_ZC_COPIED);
}

static void io_uring_refused(void **state)
{
	pid_t pid = harness_fork(child_no_uring, NULL);

	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, IO_MS), 0);
}

static int child_forced(void *arg)
{
	const char *how = arg;

	if (setenv("ARENA_ZC_FORCE", how, 1))
		FAIL("setenv");
	if (!strcmp(how, "copy"))
		return child_sends(ARENA_ZC_MODE_COPY | ARENA_ZC_MODE_NORING,
				   ARENA_ZC_FALLBACK | ARENA_ZC_COPIED);
	if (!strcmp(how, "nozc"))
		return child_sends(ARENA_ZC_MODE_COPY,
				   ARENA_ZC_FALLBACK | ARENA_ZC_COPIED);
	return child_sends(ARENA_ZC_MODE_ZC, ARENA_ZC_UNREG);
}

static void forced_fallbacks(void **state)
{
	static const char *const how[] = { "copy", "nozc", "unreg" };
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	unsigned i;
	pid_t pid;

	for (i = 0; i < (no_uring ? 1 : 3); i++) {
		pid = harness_fork(child_forced, (void *)how[i]);
		assert_true(pid > 0);
		if (harness_wait(pid, IO_MS))
			fail_msg("ARENA_ZC_FORCE=%s failed", how[i]);
	}
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(setenv("ARENA_ZC_FORCE", "sometimes", 1), 0);
	assert_int_equal(arena_zc_open(c, 4, &z), -EINVAL);
	assert_int_equal(unsetenv("ARENA_ZC_FORCE"), 0);
	arena_disconnect(c);
}

/* The whole 64 MiB over TCP once more without io_uring at all. */
static void tcp_64mib_copy(void **state)
{
	assert_int_equal(setenv("ARENA_ZC_FORCE", "copy", 1), 0);
	tcp_stream(ARENA_ZC_MODE_COPY);
	assert_int_equal(unsetenv("ARENA_ZC_FORCE"), 0);
}

/* ---- bad input ---- */

static void bad_open(struct arena_client *c)
{
	struct arena_zc *z = NULL;

	assert_int_equal(arena_zc_open(NULL, 4, &z), -EINVAL);
	assert_int_equal(arena_zc_open(c, 4, NULL), -EINVAL);
	assert_int_equal(arena_zc_open(c, 0, &z), -EINVAL);
	assert_int_equal(arena_zc_open(c, ARENA_ZC_MAX_ENTRIES + 1, &z),
			 -EINVAL);
	assert_null(z);
	assert_int_equal(arena_zc_mode(NULL), 0);
	assert_int_equal(arena_zc_complete(NULL, NULL, 0, 0), -EINVAL);
	assert_int_equal(arena_zc_flush(NULL), -EINVAL);
	assert_int_equal(arena_zc_queue(NULL, 0, 1, 0, 1, 0), -EINVAL);
	arena_zc_close(NULL);
}

static void bad_sends(struct arena_zc *z, int fd, arena_handle_t h,
		      arena_handle_t stale)
{
	int p[2], closed;

	assert_int_equal(pipe(p), 0);
	closed = dup(fd);
	assert_true(closed >= 0);
	close(closed);
	assert_int_equal(arena_zc_send(z, -1, h, 0, 1, 0), -EBADF); /* first */
	assert_int_equal(arena_zc_send(NULL, fd, h, 0, 1, 0), -EINVAL);
	assert_int_equal(arena_zc_send(z, fd, h, 0, 0, 0), -EINVAL);
	assert_int_equal(arena_zc_send(z, fd, ARENA_HANDLE_NULL, 0, 1, 0),
			 -EINVAL);
	assert_int_equal(arena_zc_send(z, fd, h ^ (1ull << 59), 0, 1, 0),
			 -EINVAL);
	assert_int_equal(arena_zc_send(z, fd, stale, 0, 1, 0), -ESTALE);
	assert_int_equal(arena_zc_send(z, fd, h, 0, SMALL + 1, 0), -ERANGE);
	assert_int_equal(arena_zc_send(z, fd, h, SMALL, 1, 0), -ERANGE);
	assert_int_equal(arena_zc_send(z, fd, h, 1, SMALL, 0), -ERANGE);
	assert_int_equal(arena_zc_send(z, fd, h, SIZE_MAX, 2, 0), -ERANGE);
	assert_int_equal(arena_zc_send(z, -1, h, 0, 1, 0), -EBADF);
	assert_int_equal(arena_zc_send(z, closed, h, 0, 1, 0), -EBADF);
	assert_int_equal(arena_zc_send(z, p[1], h, 0, 1, 0), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
}

struct other {
	struct arena_zc *z;
	int fd;
	arena_handle_t h;
	int send, queue, flush, complete;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct arena_zc_result r;

	o->send = arena_zc_send(o->z, o->fd, o->h, 0, 1, 9);
	o->queue = arena_zc_queue(o->z, o->fd, o->h, 0, 1, 9);
	o->flush = arena_zc_flush(o->z);
	o->complete = arena_zc_complete(o->z, &r, 1, 0);
	return NULL;
}

/* An arena_zc belongs to the thread that opened it. */
static void other_thread_refused(struct arena_zc *z, int fd, arena_handle_t h)
{
	struct other o = { .z = z, .fd = fd, .h = h };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, other_thread, &o), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(o.send, -EPERM);
	assert_int_equal(o.queue, -EPERM);
	assert_int_equal(o.flush, -EPERM);
	assert_int_equal(o.complete, -EPERM);
}

static void bad_input(void **state)
{
	struct arena_client *c = NULL;
	struct arena_zc *z = NULL;
	struct arena_zc_result res[4];
	uint64_t base = in_use_now();
	arena_handle_t h, stale;
	int sp[2], i, n, k;
	char buf[16];

	assert_int_equal(arena_connect(d.sock, &c), 0);
	bad_open(c);
	assert_int_equal(arena_zc_open(c, 2, &z), 0);
	assert_int_equal(arena_zc_complete(z, NULL, 1, 0), -EINVAL);
	assert_int_equal(arena_zc_complete(z, res, 4, 0), 0); /* none */
	assert_int_equal(arena_zc_complete(z, res, 0, 0), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	blocks_alloc(c, &stale, 1, SMALL, NULL);
	assert_int_equal(arena_unref(c, stale), 0);
	blocks_alloc(c, &h, 1, SMALL, NULL);
	bad_sends(z, sp[0], h, stale);
	other_thread_refused(z, sp[0], h);
	/* both entries hold results not yet collected: busy, nothing kept */
	assert_int_equal(arena_zc_send(z, sp[0], h, 0, 8, 1), 0);
	assert_int_equal(arena_zc_send(z, sp[0], h, 8, 8, 2), 0);
	assert_int_equal(arena_zc_send(z, sp[0], h, 16, 8, 3), -EBUSY);
	for (i = 0; i < 2; i++)
		assert_int_equal(recv(sp[1], buf, sizeof(buf), 0), 8);
	for (n = 0; n < 2; n += k) {
		k = arena_zc_complete(z, res + n, 4 - (unsigned)n, IO_MS);
		assert_true(k > 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(res[i].tag, i + 1);
		assert_int_equal(res[i].res, 8);
	}
	assert_int_equal(arena_zc_send(z, sp[0], h, 16, 8, 3), 0);
	assert_int_equal(recv(sp[1], buf, sizeof(buf), 0), 8);
	assert_int_equal(arena_zc_complete(z, res, 4, IO_MS), 1);
	arena_zc_close(z);
	/* the caller's one reference is the only one left */
	assert_int_equal(arena_unref(c, h), 0);
	assert_null(arena_ptr(c, h));
	assert_int_equal(in_use_now(), base);
	arena_disconnect(c);
	close(sp[0]);
	close(sp[1]);
}

static void sha256_vectors(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		      "7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410f"
			 "f61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419d"
		  "b06c1" },
	};
	uint8_t out[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	struct sha256 s;
	unsigned i, k;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sha256_init(&s);
		for (k = 0; v[i].in[k]; k++) /* byte by byte: buffering */
			sha256_update(&s, v[i].in + k, 1);
		sha256_final(&s, out);
		for (k = 0; k < SHA256_LEN; k++)
			snprintf(hex + 2 * k, 3, "%02x", out[k]);
		assert_string_equal(hex, v[i].hex);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sha256_vectors),
		cmocka_unit_test(tcp_64mib),
		cmocka_unit_test(udp_datagrams),
		cmocka_unit_test(ref_held_until_notification),
		cmocka_unit_test(close_waits_for_kernel),
		cmocka_unit_test(peer_resets_midway),
		cmocka_unit_test(unix_socket_fallback),
		cmocka_unit_test(registration_refused),
		cmocka_unit_test(io_uring_refused),
		cmocka_unit_test(forced_fallbacks),
		cmocka_unit_test(tcp_64mib_copy),
		cmocka_unit_test(bad_input),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
