// SPDX-License-Identifier: MIT
/*
 * Deaths on either side of the control socket.
 *
 * A client's death: the daemon watches the client's process through a
 * pidfd, so a client killed while a copy of its socket lives on in
 * another process (a fork()ed child that keeps running, a descriptor
 * passed over SCM_RIGHTS) is still reclaimed, with that other process
 * alive.  A client that exits normally is reclaimed once, not once per
 * sign of its death; a client that disconnected and lives on cannot take
 * a later client with its id down when it exits; and a pid reused by
 * another process does not keep a dead connector's client alive.
 *
 * The daemon's death: clients keep their blocks readable and writable
 * and their data path working, and every control call returns
 * -ESHUTDOWN, also one that was waiting for its answer when the daemon
 * died.  A stopped daemon gets the usual timeout, and its late answer
 * does not confuse the next call.  Hangs are caught by alarm() and
 * harness_wait(), never by timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "internal.h" /* the client's socket, to pass it on */
#include "rawpeer.h"
#include "tstat.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define WAIT_MS 10000
#define NBLOCKS 100
#define ALARM_S 60 /* a control call that hangs ends the test */

static struct harness_daemon d;
static uint64_t base_in_use; /* blocks in use with no test client */

static int group_setup(void **state)
{
	struct tstat s;
	int err;

	/* grandchildren whose parent died are reaped here */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	err = harness_daemon_start(&d, NULL);
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

struct want {
	uint64_t in_use;
	uint32_t clients;
};

static int reached(const struct tstat *s, void *arg)
{
	const struct want *w = arg;

	return tstat_in_use(s) == w->in_use && s->nclients == w->clients;
}

static void wait_for(uint64_t in_use, uint32_t clients)
{
	struct want w = { in_use, clients };
	struct tstat s;
	int err = tstat_wait(d.sock, &s, reached, &w, WAIT_MS);

	if (err)
		fprintf(stderr,
			"waited for %llu in use, %u clients; have "
			"%llu, %u\n",
			(unsigned long long)in_use, clients,
			(unsigned long long)tstat_in_use(&s), s.nclients);
	assert_int_equal(err, 0);
}

/* Read exactly n bytes from fd within WAIT_MS. */
static int read_wait(int fd, void *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (poll(&p, 1, WAIT_MS) != 1)
			return -1;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

/* How many lines of the daemon's log contain needle. */
static int log_count(const char *needle)
{
	char line[512];
	FILE *f = fopen(d.log, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

static int alloc_some(struct arena_client *c, int n)
{
	arena_handle_t h;
	int i;

	for (i = 0; i < n; i++)
		if (arena_alloc(c, ARENA_KIND_AUTO, 64, &h))
			return -1;
	return 0;
}

/* ---- a client's socket outlives it in a running child ---- */

struct heir_ctx {
	int ready_w; /* the client writes the heir's pid here */
	int hold_r;  /* the heir lives until this pipe closes */
	int hold_w;
};

static int heir_client(void *arg)
{
	struct heir_ctx *x = arg;
	struct arena_client *c;
	pid_t g;
	char b;

	if (arena_connect(NULL, &c) || alloc_some(c, NBLOCKS))
		return 1;
	close(x->hold_w);
	g = fork();
	if (g < 0)
		return 2;
	if (g == 0) {
		/* every descriptor of the client, its socket too, lives on */
		while (read(x->hold_r, &b, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	if (write(x->ready_w, &g, sizeof(g)) != sizeof(g))
		return 3;
	pause(); /* until killed */
	return 4;
}

static void socket_kept_by_child(void **state)
{
	int ready[2], hold[2];
	struct heir_ctx x;
	pid_t a, g;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	x = (struct heir_ctx){ ready[1], hold[0], hold[1] };
	a = harness_fork(heir_client, &x);
	assert_true(a > 0);
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read_wait(ready[0], &g, sizeof(g)), 0);
	wait_for(base_in_use + NBLOCKS, 1);
	kill(a, SIGKILL);
	assert_int_equal(harness_wait(a, WAIT_MS), -1);
	/* no EOF can come: the heir holds the socket; the pidfd tells */
	wait_for(base_in_use, 0);
	assert_int_equal(kill(g, 0), 0);
	assert_true(log_count(" exited") >= 1);
	close(hold[1]);
	assert_int_equal(harness_wait(g, WAIT_MS), 0);
	close(ready[0]);
}

/* ---- a client's socket passed to another process ---- */

static int send_fd(int over, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char b = 'f';
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(over, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int over)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char b;
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(over, &m, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static int passing_client(void *arg)
{
	int over = *(int *)arg;
	struct arena_client *c;

	if (arena_connect(NULL, &c) || alloc_some(c, NBLOCKS))
		return 1;
	if (send_fd(over, c->sock))
		return 2;
	pause(); /* until killed */
	return 3;
}

static void socket_passed_away(void **state)
{
	int sp[2], fd;
	pid_t a;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	a = harness_fork(passing_client, &sp[1]);
	assert_true(a > 0);
	close(sp[1]);
	fd = recv_fd(sp[0]);
	assert_true(fd >= 0);
	wait_for(base_in_use + NBLOCKS, 1);
	kill(a, SIGKILL);
	assert_int_equal(harness_wait(a, WAIT_MS), -1);
	wait_for(base_in_use, 0); /* while this process holds the socket */
	close(fd);
	close(sp[0]);
}

/* ---- normal ends: once, and never someone else's ---- */

static int exiting_client(void *arg)
{
	struct arena_client *c;

	if (arena_connect(NULL, &c) || alloc_some(c, NBLOCKS))
		return 1;
	return 0; /* exits holding everything, connected */
}

static void exit_reclaimed_once(void **state)
{
	char needle[64];
	pid_t a = harness_fork(exiting_client, NULL);

	assert_true(a > 0);
	assert_int_equal(harness_wait(a, WAIT_MS), 0);
	wait_for(base_in_use, 0);
	/* socket EOF and pidfd both fired: one detach, one reclaim */
	snprintf(needle, sizeof(needle), "(pid %d) detached", (int)a);
	assert_int_equal(log_count(needle), 1);
}

struct leaver_ctx {
	int id_w; /* the id it had */
	int go_r; /* exit when a byte comes */
	int go_w;
};

static int leaving_client(void *arg)
{
	struct leaver_ctx *x = arg;
	struct arena_client *c;
	unsigned id;
	char b;

	close(x->go_w);
	if (arena_connect(NULL, &c) || alloc_some(c, NBLOCKS))
		return 1;
	id = arena_client_id(c);
	arena_disconnect(c);
	if (write(x->id_w, &id, sizeof(id)) != sizeof(id))
		return 2;
	return read(x->go_r, &b, 1) == 1 ? 0 : 3;
}

static void id_reuse_survives_exit(void **state)
{
	int idp[2], go[2];
	struct leaver_ctx x;
	struct arena_client *b;
	struct arena_chan *q;
	arena_handle_t h;
	struct tstat s;
	unsigned id;
	pid_t a;

	assert_int_equal(pipe(idp), 0);
	assert_int_equal(pipe(go), 0);
	x = (struct leaver_ctx){ idp[1], go[0], go[1] };
	a = harness_fork(leaving_client, &x);
	assert_true(a > 0);
	close(idp[1]);
	close(go[0]);
	assert_int_equal(read_wait(idp[0], &id, sizeof(id)), 0);
	wait_for(base_in_use, 0);
	/* the id is free again: the next client gets it */
	assert_int_equal(arena_connect(d.sock, &b), 0);
	assert_int_equal(arena_client_id(b), id);
	assert_int_equal(arena_alloc(b, ARENA_KIND_AUTO, 64, &h), 0);
	strcpy(arena_ptr(b, h), "still mine");
	write_all(go[1], "x", 1);
	assert_int_equal(harness_wait(a, WAIT_MS), 0);
	/* two round trips: the daemon has seen the old process's exit */
	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(s.nclients, 1);
	assert_int_equal(tstat_in_use(&s), base_in_use + 1);
	assert_string_equal(arena_ptr(b, h), "still mine");
	assert_int_equal(arena_chan_open(b, "alive", 2, &q), 0);
	assert_int_equal(arena_chan_close(q), 0);
	assert_int_equal(arena_unref(b, h), 0);
	arena_disconnect(b);
	wait_for(base_in_use, 0);
	close(idp[0]);
	close(go[1]);
}

/* ---- the connector dies and its pid is reused ---- */

static bool peerpidfd_supported(void)
{
	int sp[2], fd = -1;
	socklen_t len = sizeof(fd);
	bool ok;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		return false;
	ok = !getsockopt(sp[0], SOL_SOCKET, SO_PEERPIDFD, &fd, &len);
	if (ok)
		close(fd);
	close(sp[0]);
	close(sp[1]);
	return ok;
}

/* A process with pid want that sleeps until hold closes, or -1. */
static pid_t spawn_with_pid(pid_t want, int hold_r, int hold_w)
{
	char buf[32];
	int i, fd, n;
	pid_t p;

	for (i = 0; i < 50; i++) {
		fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		if (fd < 0)
			return -1;
		n = snprintf(buf, sizeof(buf), "%d", (int)want - 1);
		if (write(fd, buf, (size_t)n) != n) {
			close(fd);
			return -1;
		}
		close(fd);
		p = fork();
		if (p == 0) {
			close(hold_w);
			while (read(hold_r, buf, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		if (p == want)
			return p;
		if (p > 0) {
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
		}
	}
	return -1;
}

struct connector_ctx {
	int pid_w; /* the heir's pid */
	int go_r;  /* the heir says HELLO when a byte comes */
	int go_w;
};

/*
 * Connect and leave at once; a child of ours keeps the socket and says
 * HELLO on it later.  It exits 0 when the daemon then closes the
 * connection.
 */
static int connector(void *arg)
{
	struct connector_ctx *x = arg;
	struct arena_proto_welcome w;
	int s = raw_connect(d.sock, 0), fd;
	pid_t g;
	char b;

	close(x->go_w);
	if (s < 0)
		return 1;
	g = fork();
	if (g < 0)
		return 2;
	if (g == 0) {
		if (read(x->go_r, &b, 1) != 1)
			_exit(3);
		if (!raw_attach(s, &w, &fd, WAIT_MS))
			close(fd);
		_exit(raw_await_close(s, WAIT_MS) ? 4 : 0);
	}
	return write(x->pid_w, &g, sizeof(g)) == sizeof(g) ? 0 : 5;
}

static void pid_reused(void **state)
{
	int pp[2], go[2], hold[2];
	struct connector_ctx x;
	pid_t a, g, r;

	if (!peerpidfd_supported() ||
	    access("/proc/sys/kernel/ns_last_pid", W_OK)) {
		fprintf(stderr, "skipped pid_reused: needs SO_PEERPIDFD and "
				"a writable ns_last_pid (root)\n");
		skip();
	}
	assert_int_equal(pipe(pp), 0);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(hold), 0);
	x = (struct connector_ctx){ pp[1], go[0], go[1] };
	a = harness_fork(connector, &x);
	assert_true(a > 0);
	close(pp[1]);
	close(go[0]);
	assert_int_equal(harness_wait(a, WAIT_MS), 0);
	assert_int_equal(read_wait(pp[0], &g, sizeof(g)), 0);
	/* the connector's pid now names another, living process */
	r = spawn_with_pid(a, hold[0], hold[1]);
	close(hold[0]);
	if (r < 0) {
		close(hold[1]);
		write_all(go[1], "x", 1);
		harness_wait(g, WAIT_MS);
		fprintf(stderr, "skipped pid_reused: pid %d not reusable\n",
			(int)a);
		skip();
	}
	write_all(go[1], "x", 1);
	/* the client is the connector's: dead, whoever has its pid */
	assert_int_equal(harness_wait(g, 2 * WAIT_MS), 0);
	assert_int_equal(kill(r, 0), 0);
	wait_for(base_in_use, 0);
	close(hold[1]);
	assert_int_equal(harness_wait(r, WAIT_MS), 0);
	close(pp[0]);
	close(go[1]);
}

/* ---- the daemon dies ---- */

/* A daemon of this test's own; later tests still find the group's. */
static void start_own(struct harness_daemon *k)
{
	assert_int_equal(harness_daemon_start(k, NULL), 0);
	setenv("ARENA_SOCKET", d.sock, 1);
}

static void fill(struct arena_client *c, const arena_handle_t *h, int n,
		 char tag)
{
	int i;

	for (i = 0; i < n; i++)
		memset(arena_ptr(c, h[i]), tag + i, 64);
}

static void check(struct arena_client *c, const arena_handle_t *h, int n,
		  char tag)
{
	const char *p;
	int i, j;

	for (i = 0; i < n; i++) {
		p = arena_ptr(c, h[i]);
		assert_non_null(p);
		for (j = 0; j < 64; j++)
			assert_int_equal(p[j], (char)(tag + i));
	}
}

static void daemon_killed(void **state)
{
	struct harness_daemon k;
	struct arena_client *c;
	struct arena_chan *q, *q2 = NULL;
	arena_handle_t h[16], got, more;
	int i;

	start_own(&k);
	assert_int_equal(arena_connect(k.sock, &c), 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h[i]), 0);
	fill(c, h, 16, 'a');
	assert_int_equal(arena_chan_open(c, "dd", 8, &q), 0);
	assert_int_equal(arena_chan_send(q, h[0]), 0);
	assert_int_equal(harness_daemon_kill(&k), 0);

	alarm(ALARM_S);
	check(c, h, 16, 'a');
	fill(c, h, 16, 'A'); /* still writable */
	check(c, h, 16, 'A');
	assert_int_equal(arena_chan_open(c, "new", 4, &q2), -ESHUTDOWN);
	assert_null(q2);
	assert_int_equal(arena_chan_open(c, "dd", 8, &q2), -ESHUTDOWN);
	/* the data path needs no daemon */
	assert_int_equal(arena_chan_recv(q, &got, 0), 0);
	assert_int_equal(got, h[0]);
	assert_int_equal(arena_unref(c, got), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &more), 0);
	assert_int_equal(arena_unref(c, more), 0);
	assert_int_equal(arena_chan_close(q), -ESHUTDOWN);
	alarm(0);
	for (i = 1; i < 16; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	arena_disconnect(c);
}

struct opener {
	struct arena_client *c;
	struct arena_chan *q;
	int rc;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	o->rc = arena_chan_open(o->c, "late", 4, &o->q);
	return NULL;
}

static void daemon_killed_mid_call(void **state)
{
	struct harness_daemon k;
	struct opener o = { 0 };
	pthread_t t;

	start_own(&k);
	assert_int_equal(arena_connect(k.sock, &o.c), 0);
	kill(k.pid, SIGSTOP);
	alarm(ALARM_S);
	assert_int_equal(pthread_create(&t, NULL, open_thread, &o), 0);
	tstat_sleep_ms(200); /* most likely waiting for its answer now */
	assert_int_equal(harness_daemon_kill(&k), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* not the 10 s timeout: the death itself ended the wait */
	assert_int_equal(o.rc, -ESHUTDOWN);
	alarm(0);
	arena_disconnect(o.c);
}

static void daemon_stopped(void **state)
{
	struct harness_daemon k;
	struct arena_client *c;
	struct arena_chan *q = NULL, *q2;
	arena_handle_t h, got;

	start_own(&k);
	assert_int_equal(arena_connect(k.sock, &c), 0);
	kill(k.pid, SIGSTOP);
	alarm(ALARM_S);
	assert_int_equal(arena_chan_open(c, "slow", 4, &q), -ETIMEDOUT);
	assert_null(q);
	kill(k.pid, SIGCONT);
	/* its late answer to the first call is not taken for this one's */
	assert_int_equal(arena_chan_open(c, "quick", 2, &q2), 0);
	assert_int_equal(arena_chan_capacity(q2), 2);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
	assert_int_equal(arena_chan_send(q2, h), 0);
	assert_int_equal(arena_chan_recv(q2, &got, 0), 0);
	assert_int_equal(got, h);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_chan_close(q2), 0);
	alarm(0);
	arena_disconnect(c);
	assert_int_equal(harness_daemon_stop(&k), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(socket_kept_by_child),
		cmocka_unit_test(socket_passed_away),
		cmocka_unit_test(exit_reclaimed_once),
		cmocka_unit_test(id_reuse_survives_exit),
		cmocka_unit_test(pid_reused),
		cmocka_unit_test(daemon_killed),
		cmocka_unit_test(daemon_killed_mid_call),
		cmocka_unit_test(daemon_stopped),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
