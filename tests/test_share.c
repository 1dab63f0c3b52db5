// SPDX-License-Identifier: MIT
/*
 * Sharing a block between processes: a handle sent through a pipe to a
 * child that attached on its own, read and written there in place, with
 * references on both sides; the slot is freed by the last unref, on
 * whichever side.  A child that exits or is killed while holding
 * references loses exactly its own share when the daemon reclaims it:
 * the parent's references and data are untouched, and the parent's last
 * unref frees the block.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

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

/* ---- a pipe each way, with timeouts ---- */

struct chan {
	int rd, wr;
};

struct duplex {
	struct chan parent, child; /* each side's ends */
};

static void duplex_open(struct duplex *x)
{
	int a[2], b[2];

	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	x->parent = (struct chan){ b[0], a[1] };
	x->child = (struct chan){ a[0], b[1] };
}

static void duplex_close(struct duplex *x)
{
	close(x->parent.rd);
	close(x->parent.wr);
	close(x->child.rd);
	close(x->child.wr);
}

static int send_bytes(const struct chan *ch, const void *b, size_t n)
{
	return write(ch->wr, b, n) == (ssize_t)n ? 0 : -1;
}

static int recv_bytes(const struct chan *ch, void *b, size_t n)
{
	struct pollfd p = { .fd = ch->rd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (poll(&p, 1, IO_MS) != 1)
			return -1;
		r = read(ch->rd, (char *)b + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Child side: wait for the one-byte step tag want. */
static int expect(const struct chan *ch, char want)
{
	char c;

	return recv_bytes(ch, &c, 1) || c != want ? -1 : 0;
}

static void say(const struct chan *ch, char tag)
{
	assert_int_equal(send_bytes(ch, &tag, 1), 0);
}

static void hear(const struct chan *ch, char want)
{
	char c = 0;

	assert_int_equal(recv_bytes(ch, &c, 1), 0);
	assert_int_equal(c, want);
}

/* ---- statistics ---- */

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
		fail_msg("waited for in_use %llu, clients %u: got %llu, %u",
			 (unsigned long long)in_use, clients,
			 (unsigned long long)tstat_in_use(&s), s.nclients);
}

static struct tstat now(void)
{
	struct tstat s;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	return s;
}

/* ---- children ---- */

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "child %d, line %d: ", (int)getpid(),          \
			__LINE__);                                             \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		return 1;                                                      \
	} while (0)

static const char hello[] = "hello from the parent";
static const char reply[] = "and hello from the child";
static const char again[] = "written after the child's ref";

struct job {
	struct chan ch;
	int nrefs; /* references the dying child takes */
};

/* Child unrefs first; the parent's reference keeps the block. */
static int child_first(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	arena_handle_t h;
	char *p;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	if (recv_bytes(&j->ch, &h, sizeof(h)))
		FAIL("no handle");
	p = arena_ptr(c, h);
	if (!p || arena_size(c, h) != 256)
		FAIL("handle does not resolve");
	if (memcmp(p, hello, sizeof(hello)))
		FAIL("wrong bytes: %.32s", p);
	if (arena_ref(c, h))
		FAIL("ref");
	memcpy(p + 128, reply, sizeof(reply));
	if (send_bytes(&j->ch, "w", 1) || expect(&j->ch, 'x'))
		FAIL("sync w/x");
	/* the parent's write is visible here: the same memory */
	if (memcmp(p + 64, again, sizeof(again)))
		FAIL("parent's later write not seen: no shared memory?");
	if (arena_unref(c, h))
		FAIL("unref");
	if (arena_ptr(c, h) != p)
		FAIL("block gone while the parent holds it");
	if (arena_unref(c, h) != -EINVAL)
		FAIL("second unref by a child holding none");
	arena_disconnect(c);
	if (send_bytes(&j->ch, "u", 1))
		FAIL("sync u");
	return 0;
}

static void child_unrefs_first(void **state)
{
	struct arena_client *c = NULL;
	struct tstat s0 = now();
	struct duplex x;
	struct job j;
	arena_handle_t h;
	pid_t pid;
	char *p;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 200, &h), 0);
	p = arena_ptr(c, h);
	memset(p, 0, 256);
	memcpy(p, hello, sizeof(hello));
	duplex_open(&x);
	j = (struct job){ .ch = x.child };
	pid = harness_fork(child_first, &j);
	assert_true(pid > 0);
	assert_int_equal(send_bytes(&x.parent, &h, sizeof(h)), 0);
	hear(&x.parent, 'w');
	assert_string_equal(p + 128, reply);
	memcpy(p + 64, again, sizeof(again));
	say(&x.parent, 'x');
	hear(&x.parent, 'u');
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	/* the child is gone and detached: the block is the parent's still */
	wait_for(tstat_in_use(&s0) + 1, s0.nclients + 1);
	assert_ptr_equal(arena_ptr(c, h), p);
	assert_string_equal(p, hello);
	assert_string_equal(p + 128, reply);
	assert_int_equal(arena_unref(c, h), 0);
	assert_null(arena_ptr(c, h));
	wait_for(tstat_in_use(&s0), s0.nclients + 1);
	arena_disconnect(c);
	duplex_close(&x);
}

/* Parent unrefs first; the child's reference keeps the block. */
static int child_last(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	arena_handle_t h;
	char *p;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	if (recv_bytes(&j->ch, &h, sizeof(h)))
		FAIL("no handle");
	if (arena_ref(c, h))
		FAIL("ref");
	p = arena_ptr(c, h);
	if (!p || memcmp(p, hello, sizeof(hello)))
		FAIL("wrong bytes");
	if (send_bytes(&j->ch, "r", 1) || expect(&j->ch, 'g'))
		FAIL("sync r/g");
	if (arena_ptr(c, h) != p || memcmp(p, hello, sizeof(hello)))
		FAIL("block lost after the parent's unref");
	if (memcmp(p + 64, again, sizeof(again)))
		FAIL("parent's write not seen");
	if (arena_unref(c, h))
		FAIL("last unref");
	if (arena_ptr(c, h) || arena_size(c, h))
		FAIL("block alive after the last unref");
	if (arena_unref(c, h) != -ESTALE)
		FAIL("double unref not stale");
	if (send_bytes(&j->ch, "f", 1))
		FAIL("sync f");
	arena_disconnect(c);
	return 0;
}

static void parent_unrefs_first(void **state)
{
	struct arena_client *c = NULL;
	struct tstat s0 = now(), s;
	struct duplex x;
	struct job j;
	arena_handle_t h;
	pid_t pid;
	char *p;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 200, &h), 0);
	p = arena_ptr(c, h);
	memcpy(p, hello, sizeof(hello));
	duplex_open(&x);
	j = (struct job){ .ch = x.child };
	pid = harness_fork(child_last, &j);
	assert_true(pid > 0);
	assert_int_equal(send_bytes(&x.parent, &h, sizeof(h)), 0);
	hear(&x.parent, 'r');
	memcpy(p + 64, again, sizeof(again));
	assert_int_equal(arena_unref(c, h), 0);
	assert_ptr_equal(arena_ptr(c, h), p); /* the child holds it */
	assert_int_equal(arena_unref(c, h), -EINVAL);
	s = now();
	assert_int_equal(tstat_in_use(&s), tstat_in_use(&s0) + 1);
	say(&x.parent, 'g');
	hear(&x.parent, 'f');
	assert_null(arena_ptr(c, h));
	s = now();
	assert_int_equal(tstat_in_use(&s), tstat_in_use(&s0));
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	wait_for(tstat_in_use(&s0), s0.nclients + 1);
	arena_disconnect(c);
	duplex_close(&x);
}

/*
 * A child that takes nrefs references to the parent's block, allocates
 * blocks of its own (one of them handed to the parent), and then dies
 * with all of that held, by exit (die 0) or by waiting to be killed.
 */
#define OWN 5

static const char gift[] = "allocated by the child";

static int child_dies(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	arena_handle_t h, g, own[OWN];
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	if (recv_bytes(&j->ch, &h, sizeof(h)))
		FAIL("no handle");
	for (i = 0; i < j->nrefs; i++)
		if (arena_ref(c, h))
			FAIL("ref %d", i);
	for (i = 0; i < OWN; i++) {
		if (arena_alloc(c, ARENA_KIND_AUTO, 64u << i, &own[i]))
			FAIL("alloc");
		if (i & 1 && arena_ref(c, own[i]))
			FAIL("ref own");
	}
	if (arena_alloc(c, ARENA_KIND_AUTO, 100, &g))
		FAIL("alloc gift");
	memcpy(arena_ptr(c, g), gift, sizeof(gift));
	if (send_bytes(&j->ch, &g, sizeof(g)) || expect(&j->ch, 'k'))
		FAIL("sync g/k");
	if (send_bytes(&j->ch, "z", 1))
		FAIL("sync z");
	if (expect(&j->ch, 'e'))
		for (;;)
			pause(); /* waits for SIGKILL */
	return 0;		 /* exits holding everything, still attached */
}

static void child_dies_holding(int nrefs, bool kill9)
{
	struct arena_client *c = NULL;
	struct tstat s0 = now(), s;
	struct duplex x;
	struct job j;
	arena_handle_t h, g;
	pid_t pid;
	char *p, *q;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 4000, &h), 0);
	p = arena_ptr(c, h);
	memset(p, 0x5d, 4096);
	duplex_open(&x);
	j = (struct job){ .ch = x.child, .nrefs = nrefs };
	pid = harness_fork(child_dies, &j);
	assert_true(pid > 0);
	assert_int_equal(send_bytes(&x.parent, &h, sizeof(h)), 0);
	assert_int_equal(recv_bytes(&x.parent, &g, sizeof(g)), 0);
	assert_int_equal(arena_ref(c, g), 0);
	q = arena_ptr(c, g);
	assert_non_null(q);
	say(&x.parent, 'k');
	hear(&x.parent, 'z');
	s = now();
	assert_int_equal(tstat_in_use(&s), tstat_in_use(&s0) + 2 + OWN);
	assert_int_equal(s.nclients, s0.nclients + 2);
	if (kill9) {
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	} else {
		say(&x.parent, 'e');
		assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	}
	/* reclaimed: the child's own blocks go, the parent's two stay */
	wait_for(tstat_in_use(&s0) + 2, s0.nclients + 1);
	assert_true(harness_log_contains(&d, "reclaim") ||
		    harness_log_contains(&d, "Reclaim"));
	assert_ptr_equal(arena_ptr(c, h), p);
	for (size_t i = 0; i < 4096; i++)
		if ((uint8_t)p[i] != 0x5d)
			fail_msg("byte %zu of the parent's block changed", i);
	assert_ptr_equal(arena_ptr(c, g), q);
	assert_string_equal(q, gift);
	/* exactly one reference each is left: the parent's */
	assert_int_equal(arena_unref(c, h), 0);
	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_unref(c, h), -ESTALE);
	assert_int_equal(arena_unref(c, g), 0);
	assert_null(arena_ptr(c, g));
	assert_int_equal(arena_unref(c, g), -ESTALE);
	wait_for(tstat_in_use(&s0), s0.nclients + 1);
	arena_disconnect(c);
	wait_for(tstat_in_use(&s0), s0.nclients);
	duplex_close(&x);
}

static void child_exits_holding(void **state)
{
	child_dies_holding(1, false);
	child_dies_holding(3, false);
}

static void child_killed_holding(void **state)
{
	child_dies_holding(1, true);
	child_dies_holding(3, true);
}

/*
 * A child hammering ref/unref on the parent's block and alloc/free of its
 * own is killed at an arbitrary instruction.  Whatever it was doing, the
 * reclaim leaves exactly the parent's one reference.
 */
static int child_churns(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	arena_handle_t h, o;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	if (recv_bytes(&j->ch, &h, sizeof(h)))
		FAIL("no handle");
	if (send_bytes(&j->ch, "s", 1))
		FAIL("sync s");
	for (unsigned long i = 0;; i++) {
		if (arena_ref(c, h) || (i & 1 && arena_ref(c, h)))
			FAIL("ref");
		if (arena_alloc(c, ARENA_KIND_AUTO, 64 + (i % 300), &o))
			FAIL("alloc");
		if (arena_unref(c, h) || (i & 1 && arena_unref(c, h)))
			FAIL("unref");
		if (arena_unref(c, o))
			FAIL("free");
	}
	return 0;
}

static void killed_mid_operation(void **state)
{
	struct arena_client *c = NULL;
	struct tstat s0 = now();
	struct duplex x;
	struct job j;
	arena_handle_t h;
	pid_t pid;
	int round;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	for (round = 0; round < 10; round++) {
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h), 0);
		*(uint64_t *)arena_ptr(c, h) = 0xfeedfacecafebeefULL;
		duplex_open(&x);
		j = (struct job){ .ch = x.child };
		pid = harness_fork(child_churns, &j);
		assert_true(pid > 0);
		assert_int_equal(send_bytes(&x.parent, &h, sizeof(h)), 0);
		hear(&x.parent, 's');
		tstat_sleep_ms(1 + round * 3);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(harness_wait(pid, WAIT_MS), -1);
		wait_for(tstat_in_use(&s0) + 1, s0.nclients + 1);
		assert_int_equal(*(uint64_t *)arena_ptr(c, h),
				 0xfeedfacecafebeefULL);
		assert_int_equal(arena_unref(c, h), 0);
		assert_null(arena_ptr(c, h));
		wait_for(tstat_in_use(&s0), s0.nclients + 1);
		duplex_close(&x);
	}
	arena_disconnect(c);
}

/*
 * A client inherited through fork() belongs to the parent: in the child
 * the data path refuses with -ECHILD (from any thread), lookups still
 * work, and arena_disconnect releases only the child's copy: the
 * parent's magazines and blocks are untouched, and the child can attach
 * a client of its own.
 */
struct inherit {
	struct arena_client *c;
	arena_handle_t h[5];
};

static void *inherited_alloc(void *arg)
{
	struct inherit *in = arg;
	arena_handle_t x = 0;

	return (void *)(intptr_t)arena_alloc(in->c, ARENA_KIND_AUTO, 64, &x);
}

static int child_inherits(void *arg)
{
	struct inherit *in = arg;
	struct arena_client *own;
	arena_handle_t x = 7, y;
	pthread_t t;
	void *ret;
	int i, err;

	tstat_child_init();
	if ((err = arena_alloc(in->c, ARENA_KIND_AUTO, 64, &x)) != -ECHILD)
		FAIL("alloc on an inherited client: %d", err);
	if ((err = arena_alloc(in->c, ARENA_KIND_AUTO, 5000, &x)) != -ECHILD)
		FAIL("alloc (another class) on an inherited client: %d", err);
	if (x != 7)
		FAIL("*out changed");
	if (pthread_create(&t, NULL, inherited_alloc, in) ||
	    pthread_join(t, &ret))
		FAIL("thread");
	if ((intptr_t)ret != -ECHILD)
		FAIL("alloc from a new thread: %d", (int)(intptr_t)ret);
	for (i = 0; i < 5; i++) {
		uint64_t *p = arena_ptr(in->c, in->h[i]);

		if (!p || *p != (uint64_t)i ||
		    arena_size(in->c, in->h[i]) != 64)
			FAIL("lookup on an inherited client");
		if ((err = arena_ref(in->c, in->h[i])) != -ECHILD)
			FAIL("ref on an inherited client: %d", err);
		if ((err = arena_unref(in->c, in->h[i])) != -ECHILD)
			FAIL("unref on an inherited client: %d", err);
	}
	arena_disconnect(in->c);
	if (arena_connect(d.sock, &own))
		FAIL("connect");
	if (arena_alloc(own, ARENA_KIND_AUTO, 64, &y) || arena_unref(own, y))
		FAIL("own client");
	arena_disconnect(own);
	return 0;
}

static void inherited_client(void **state)
{
	struct tstat s0 = now(), s1, s;
	struct inherit in = { 0 };
	arena_handle_t more[5];
	pid_t pid;
	int i;

	assert_int_equal(arena_connect(d.sock, &in.c), 0);
	/* five held, five freed into this thread's magazine */
	for (i = 0; i < 5; i++) {
		assert_int_equal(
			arena_alloc(in.c, ARENA_KIND_AUTO, 64, &in.h[i]), 0);
		*(uint64_t *)arena_ptr(in.c, in.h[i]) = (uint64_t)i;
		assert_int_equal(
			arena_alloc(in.c, ARENA_KIND_AUTO, 64, &more[i]), 0);
	}
	for (i = 0; i < 5; i++)
		assert_int_equal(arena_unref(in.c, more[i]), 0);
	s1 = now();
	assert_int_equal(tstat_in_use(&s1), tstat_in_use(&s0) + 5);

	pid = harness_fork(child_inherits, &in);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	wait_for(tstat_in_use(&s1), s1.nclients);
	s = now();
	for (i = 0; i < (int)s.narenas; i++)
		assert_int_equal(s.a[i].cached, s1.a[i].cached);

	/* the parent's magazine and blocks are as they were */
	for (i = 0; i < 5; i++) {
		assert_int_equal(
			arena_alloc(in.c, ARENA_KIND_AUTO, 64, &more[i]), 0);
		assert_int_equal(*(uint64_t *)arena_ptr(in.c, in.h[i]), i);
	}
	for (i = 0; i < 5; i++) {
		assert_int_equal(arena_unref(in.c, more[i]), 0);
		assert_int_equal(arena_unref(in.c, in.h[i]), 0);
	}
	s = now();
	assert_int_equal(tstat_in_use(&s), tstat_in_use(&s0));
	arena_disconnect(in.c);
	wait_for(tstat_in_use(&s0), s0.nclients);
}

/*
 * The reclaim of a dead holder while the parent keeps taking and dropping
 * references to the same block: the daemon must settle exactly the dead
 * child's share however the parent's operations interleave with it.
 */
struct churn {
	struct arena_client *c;
	arena_handle_t h;
	atomic_int stop;
	int err;
};

static void *parent_churns(void *arg)
{
	struct churn *ch = arg;

	while (!atomic_load(&ch->stop)) {
		if (arena_ref(ch->c, ch->h) || arena_unref(ch->c, ch->h)) {
			ch->err = 1;
			break;
		}
	}
	return NULL;
}

static int child_holds(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	arena_handle_t h;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		FAIL("connect");
	if (recv_bytes(&j->ch, &h, sizeof(h)))
		FAIL("no handle");
	for (int i = 0; i < j->nrefs; i++)
		if (arena_ref(c, h))
			FAIL("ref");
	if (send_bytes(&j->ch, "s", 1))
		FAIL("sync s");
	for (;;)
		pause();
	return 0;
}

static void reclaim_while_busy(void **state)
{
	struct arena_client *c = NULL;
	struct tstat s0 = now();
	struct churn ch;
	struct duplex x;
	struct job j;
	pthread_t t;
	pid_t pid;
	int round;

	assert_int_equal(arena_connect(d.sock, &c), 0);
	for (round = 0; round < 60; round++) {
		ch = (struct churn){ .c = c };
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &ch.h), 0);
		duplex_open(&x);
		j = (struct job){ .ch = x.child, .nrefs = round % 4 ? 1 : 3 };
		pid = harness_fork(child_holds, &j);
		assert_true(pid > 0);
		assert_int_equal(send_bytes(&x.parent, &ch.h, sizeof(ch.h)), 0);
		hear(&x.parent, 's');
		assert_int_equal(pthread_create(&t, NULL, parent_churns, &ch),
				 0);
		tstat_sleep_ms(1);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(harness_wait(pid, WAIT_MS), -1);
		wait_for(tstat_in_use(&s0) + 1, s0.nclients + 1);
		atomic_store(&ch.stop, 1);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(ch.err, 0);
		/*
		 * The parent's one reference is the last: once the reclaim
		 * (perhaps deferred while the block was busy) is through,
		 * the parent's unref frees the block.
		 */
		assert_non_null(arena_ptr(c, ch.h));
		assert_int_equal(arena_unref(c, ch.h), 0);
		wait_for(tstat_in_use(&s0), s0.nclients + 1);
		assert_null(arena_ptr(c, ch.h));
		duplex_close(&x);
	}
	arena_disconnect(c);
	assert_false(harness_log_contains(&d, "reclaim failed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(child_unrefs_first),
		cmocka_unit_test(parent_unrefs_first),
		cmocka_unit_test(child_exits_holding),
		cmocka_unit_test(child_killed_holding),
		cmocka_unit_test(killed_mid_operation),
		cmocka_unit_test(inherited_client),
		cmocka_unit_test(reclaim_while_busy),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
