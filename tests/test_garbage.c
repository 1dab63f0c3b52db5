// SPDX-License-Identifier: MIT
/*
 * Garbage on the control socket.  While a client in another process keeps
 * allocating and freeing, and while two idle connections (one silent, one
 * stuck half-way through a header) stay open, raw connections send every
 * kind of bad message.  Each must get its connection closed with a log
 * line naming its pid, and nothing else may notice: the allocating client
 * finishes without an error, the daemon leaks no descriptor, and a fresh
 * client attaches afterwards.
 *
 * Each bad connection is made by its own child process, so its pid
 * identifies its log line.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"
#include "wire.h"

#define IO_MS 10000
#define WAIT_MS 10000

static struct harness_daemon d;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, NULL);

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

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	strcpy(sa.sun_path, d.sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Read until the daemon closes: 0 at end of file (or a reset, which is
 * how a close with our bytes still unread shows), -1 on a timeout.
 * Replies before the close (an ERROR) are read and dropped.
 */
static int await_close(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, IO_MS) != 1)
			return -1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static void hdr(struct arena_proto_hdr *h, uint16_t type, uint32_t len)
{
	h->magic = ARENA_PROTO_WIRE_MAGIC;
	h->version = ARENA_PROTO_WIRE_VERSION;
	h->type = type;
	h->len = len;
	h->seq = 1;
}

struct msg {
	struct arena_proto_hdr h;
	uint8_t payload[64];
};

/* What a bad connection sends. */
enum kind {
	K_RANDOM,
	K_BAD_MAGIC,
	K_BAD_VERSION,
	K_OVERSIZED,
	K_BAD_TYPE,
	K_SERVER_TYPE,
	K_HELLO_SHORT_LEN,
	K_HELLO_RESERVED,
	K_HELLO_LAYOUT,
	K_SHORT_HEADER,
	K_TRUNCATED,
	K_SECOND_HELLO,
	K_FLOOD,
	K_COUNT,
};

static const char *const kind_name[K_COUNT] = {
	"random bytes",
	"bad magic",
	"wrong version",
	"oversized length",
	"unknown type",
	"a server-to-client type",
	"HELLO with a short payload",
	"HELLO with reserved bits set",
	"HELLO of another layout version",
	"a short header, then close",
	"a header with a truncated payload, then close",
	"a second HELLO on an attached connection",
	"a megabyte of random bytes",
};

static size_t build(enum kind k, struct msg *m, uint64_t seed)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	hdr(&m->h, ARENA_MSG_HELLO, sizeof(struct arena_proto_hello));
	((struct arena_proto_hello *)m->payload)->layout_version =
		ARENA_PROTO_LAYOUT_VERSION;
	switch (k) {
	case K_RANDOM:
		for (i = 0; i < sizeof(*m); i++) {
			seed = seed * 6364136223846793005ULL + 1;
			((uint8_t *)m)[i] = (uint8_t)(seed >> 56);
		}
		if (m->h.magic == ARENA_PROTO_WIRE_MAGIC)
			m->h.magic ^= 1; /* never the real one by chance */
		return sizeof(*m);
	case K_BAD_MAGIC:
		m->h.magic = 0x41524e41; /* byte-swapped */
		break;
	case K_BAD_VERSION:
		m->h.version = ARENA_PROTO_WIRE_VERSION + 1;
		break;
	case K_OVERSIZED:
		m->h.len = 0x7fffffff;
		return sizeof(m->h);
	case K_BAD_TYPE:
		m->h.type = 99;
		break;
	case K_SERVER_TYPE:
		hdr(&m->h, ARENA_MSG_WELCOME,
		    sizeof(struct arena_proto_welcome));
		return sizeof(m->h) + sizeof(struct arena_proto_welcome);
	case K_HELLO_SHORT_LEN:
		m->h.len = 8;
		return sizeof(m->h) + 8;
	case K_HELLO_RESERVED:
		((struct arena_proto_hello *)m->payload)->reserved[1] = 1;
		break;
	case K_HELLO_LAYOUT:
		((struct arena_proto_hello *)m->payload)->layout_version = 99;
		break;
	case K_SHORT_HEADER:
		return 7;
	case K_TRUNCATED:
		return sizeof(m->h) + 10;
	default:
		break;
	}
	return sizeof(m->h) + sizeof(struct arena_proto_hello);
}

/* Attach properly over a raw socket: HELLO, WELCOME and the region fd. */
static int raw_attach(int fd)
{
	struct msg m;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &m,
			     sizeof(m.h) + sizeof(struct arena_proto_welcome) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	size_t n = build(K_SECOND_HELLO, &m, 0);
	int rfd;

	if (send(fd, &m, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -1;
	if (recvmsg(fd, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC) !=
	    (ssize_t)iov.iov_len)
		return -1;
	if (m.h.type != ARENA_MSG_WELCOME)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&rfd, CMSG_DATA(cm), sizeof(rfd));
	close(rfd);
	return 0;
}

static int bad_peer(void *arg)
{
	enum kind k = (enum kind)(intptr_t)arg;
	struct msg m;
	size_t n = build(k, &m, (uint64_t)getpid());
	int fd = raw_connect();
	static uint8_t big[1 << 20];

	tstat_child_init();
	if (fd < 0)
		FAIL("connect: %s", strerror(errno));
	if (k == K_SECOND_HELLO && raw_attach(fd))
		FAIL("first HELLO not welcomed");
	if (k == K_FLOOD) {
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (uint8_t)(i * 131 + 7);
		send(fd, big, sizeof(big), MSG_NOSIGNAL); /* may be cut off */
	} else if (send(fd, &m, n, MSG_NOSIGNAL) != (ssize_t)n) {
		FAIL("send: %s", strerror(errno));
	}
	if (k == K_SHORT_HEADER || k == K_TRUNCATED)
		shutdown(fd, SHUT_WR);
	if (await_close(fd))
		FAIL("%s: connection not closed", kind_name[k]);
	close(fd);
	return 0;
}

/* ---- a client that keeps allocating meanwhile ---- */

struct busy {
	int stop_rd; /* readable: time to stop */
	int report_wr;
};

static int busy_client(void *arg)
{
	const struct busy *b = arg;
	struct pollfd p = { .fd = b->stop_rd, .events = POLLIN };
	struct arena_client *c;
	arena_handle_t h[16];
	unsigned long i, rounds = 0;
	int k, err;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	for (;;) {
		for (k = 0; k < 16; k++) {
			size_t size = 1 + (rounds * 16 + (unsigned)k) % 20000;

			err = arena_alloc(c, ARENA_KIND_AUTO, size, &h[k]);
			if (err)
				FAIL("alloc: %s", strerror(-err));
			memset(arena_ptr(c, h[k]), k, size);
		}
		for (k = 0; k < 16; k++) {
			uint8_t *q = arena_ptr(c, h[k]);

			if (!q || q[0] != k)
				FAIL("block %d changed", k);
			if ((err = arena_unref(c, h[k])))
				FAIL("unref: %s", strerror(-err));
		}
		rounds++;
		if (poll(&p, 1, 0) == 1)
			break;
	}
	arena_disconnect(c);
	i = rounds;
	if (write(b->report_wr, &i, sizeof(i)) != sizeof(i))
		FAIL("report");
	return 0;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void await_log(pid_t pid, const char *what)
{
	char needle[64];
	long long end = tstat_now_ms() + WAIT_MS;

	snprintf(needle, sizeof(needle), "pid %d:", (int)pid);
	while (!harness_log_contains(&d, needle)) {
		if (tstat_now_ms() > end)
			fail_msg("no log line for %s (looked for \"%s\")", what,
				 needle);
		tstat_sleep_ms(5);
	}
}

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

static void garbage(void **state)
{
	int stop[2], report[2], idle, half, fds0, fds;
	struct arena_client *c;
	struct busy b;
	struct tstat s0, s;
	unsigned long rounds = 0;
	arena_handle_t h;
	long long end;
	pid_t busy, pid;
	int k, round;

	assert_int_equal(tstat_get(d.sock, &s0), 0);
	fds0 = count_fds(d.pid);
	assert_true(fds0 > 0);
	assert_int_equal(pipe(stop), 0);
	assert_int_equal(pipe(report), 0);
	b = (struct busy){ stop[0], report[1] };
	busy = harness_fork(busy_client, &b);
	assert_true(busy > 0);

	/* two connections that never finish a message stay open throughout */
	idle = raw_connect();
	half = raw_connect();
	assert_true(idle >= 0 && half >= 0);
	assert_int_equal(send(half, "ARN", 3, MSG_NOSIGNAL), 3);

	for (round = 0; round < 3; round++) {
		for (k = 0; k < K_COUNT; k++) {
			pid = harness_fork(bad_peer, (void *)(intptr_t)k);
			assert_true(pid > 0);
			if (harness_wait(pid, 2 * IO_MS))
				fail_msg(
					"round %d: %s: see the child's message",
					round, kind_name[k]);
			await_log(pid, kind_name[k]);
		}
	}

	/* everyone else carried on */
	assert_int_equal(write(stop[1], "x", 1), 1);
	assert_int_equal(harness_wait(busy, WAIT_MS), 0);
	assert_int_equal(read(report[0], &rounds, sizeof(rounds)),
			 sizeof(rounds));
	assert_true(rounds > 0);
	c = NULL;
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 100, &h), 0);
	assert_int_equal(arena_unref(c, h), 0);
	arena_disconnect(c);

	/* the idle connections are still open and still served */
	{
		struct arena_proto_hdr q;

		hdr(&q, ARENA_MSG_PING, 0);
		assert_int_equal(send(idle, &q, sizeof(q), MSG_NOSIGNAL),
				 sizeof(q));
		assert_int_equal(recv(idle, &q, sizeof(q), MSG_WAITALL),
				 sizeof(q));
		assert_int_equal(q.type, ARENA_MSG_PONG);
	}
	close(idle);
	close(half);

	/* nothing leaked: clients, blocks, descriptors */
	assert_int_equal(
		tstat_wait(d.sock, &s, clients_are, &s0.nclients, WAIT_MS), 0);
	assert_int_equal(tstat_in_use(&s), tstat_in_use(&s0));
	end = tstat_now_ms() + WAIT_MS;
	/* (fds0 may count a connection of the harness not yet closed) */
	while ((fds = count_fds(d.pid)) > fds0 && tstat_now_ms() < end)
		tstat_sleep_ms(10);
	assert_in_range(fds, 1, fds0);
	assert_int_equal(kill(d.pid, 0), 0);
	close(stop[0]);
	close(stop[1]);
	close(report[0]);
	close(report[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
