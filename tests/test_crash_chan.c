// SPDX-License-Identifier: MIT
/*
 * Crash-point injection on channels (lib/chan.c, proto/ring.h): for every
 * crash point k of a send (of the allocator's own reference, and of a
 * ledger reference) and of a receive, a child process kills itself at k
 * while live clients keep sending and receiving on the same channel.
 *
 * The live side is this process (a receiver, and a sender of its own) and
 * a chatter process that sends without pause.  A receiving child races
 * this process for the head; while a sending child dies, this process
 * only sends, and receives again once the daemon has reclaimed the
 * child, so that what the child queued is still queued at its reclaim.  Every message is a block
 * whose first word says who sent it and its number.  What must hold:
 *
 *  - no stall: the live receiver gets every message of the live senders
 *    (less at most one per receiver that died, which may have taken one),
 *    in order per sender, and no message twice;
 *  - exact references: a message of a dead sender arrives at most once,
 *    every unref of a received block succeeds and its data is intact,
 *    and once everything is received and dropped and every endpoint is
 *    closed, every arena is entirely free (the daemon's statistics);
 *  - `arenactl audit` exits 0 (when arenactl has the command).
 *
 * Linked against build/libarena-crash.a (see proto/crashpoint.h).
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "crashpoint.h"
#include "harness.h"
#include "tstat.h"

#define CHAN "crash"
#define CAP 128
#define INFLIGHT 32   /* chatter messages not yet received, at most */
#define MAX_POINTS 64 /* crash points of one operation, at most */
#define WAIT_MS 10000

enum sender { L_TAG = 1, S_TAG = 2, C_TAG = 3, BAIT_TAG = 4 };

enum mode { SEND_OWN, SEND_LEDGER, RECV, NMODES };

static const char *const mode_name[NMODES] = { "send (owner)", "send (ledger)",
					       "receive" };

#define TAG(who, seq) ((uint64_t)(who) << 56 | (seq))
#define WHO(t) ((unsigned)((t) >> 56))
#define SEQ(t) ((t) & ((1ull << 56) - 1))

/* Shared by every process of the test (MAP_SHARED | MAP_ANONYMOUS). */
struct shared {
	volatile int stop;	/* the chatter stops sending */
	uint64_t s_sent;	/* chatter messages sent */
	uint64_t s_taken;	/* ... received by anyone alive */
	uint64_t passed;	/* crash points the last child passed */
	uint64_t taken;		/* what a surviving receiver child took */
	uint64_t c_taken[1024]; /* every tag surviving children took */
	uint32_t nc_taken;
};

static struct harness_daemon d;
static uint64_t base_in_use;
static struct shared *sh;

static int group_setup(void **state)
{
	static const char *const args[] = { "--channels", "4", NULL };
	struct tstat s;
	int err;

	unsetenv("ARENA_CRASH_AT"); /* only the children crash */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	err = harness_daemon_start(&d, args);
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
	munmap(sh, sizeof(*sh));
	return harness_daemon_stop(&d) ? -1 : 0;
}

static int new_block(struct arena_client *c, uint64_t tag, arena_handle_t *h)
{
	int err = arena_alloc(c, ARENA_KIND_AUTO, 64, h);

	if (!err)
		*(uint64_t *)arena_ptr(c, *h) = tag;
	return err;
}

/* ---- the chatter: a live sender that never stops until told ---- */

static int chatter(void *arg)
{
	struct arena_client *c;
	struct arena_chan *q;
	arena_handle_t h;
	uint64_t i;

	if (arena_connect(d.sock, &c) || arena_chan_open(c, CHAN, CAP, &q))
		return 1;
	for (i = 0; !sh->stop; i++) {
		while (!sh->stop &&
		       __atomic_load_n(&sh->s_sent, __ATOMIC_ACQUIRE) >=
			       __atomic_load_n(&sh->s_taken, __ATOMIC_ACQUIRE) +
				       INFLIGHT)
			usleep(100);
		if (sh->stop)
			break;
		if (new_block(c, TAG(S_TAG, i), &h) ||
		    arena_chan_send_wait(q, h, WAIT_MS))
			return 2;
		__atomic_store_n(&sh->s_sent, i + 1, __ATOMIC_RELEASE);
	}
	arena_chan_close(q);
	arena_disconnect(c);
	return 0;
}

/* ---- the child that dies at crash point k ---- */

struct job {
	enum mode mode;
	unsigned k;
};

static void arm(unsigned k)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", k);
	setenv("ARENA_CRASH_AT", v, 1);
	arena_crashpoint_arm();
}

static int child_send(struct arena_client *c, struct arena_chan *q,
		      const struct job *j)
{
	arena_handle_t h;

	if (new_block(c, TAG(C_TAG, j->mode * MAX_POINTS + j->k), &h))
		return 3;
	if (j->mode == SEND_LEDGER && arena_ref(c, h))
		return 4; /* a second reference, in the ledger: that one goes */
	arm(j->k);
	if (arena_chan_send_wait(q, h, WAIT_MS))
		return 5;
	sh->passed = arena_crashpoints_passed();
	arm(0); /* only the send's own steps */
	return j->mode == SEND_LEDGER && arena_unref(c, h) ? 6 : 0;
}

static int child_recv(struct arena_client *c, struct arena_chan *q,
		      const struct job *j)
{
	arena_handle_t h;
	uint64_t t;

	arm(j->k);
	if (arena_chan_recv(q, &h, WAIT_MS))
		return 7;
	sh->passed = arena_crashpoints_passed();
	arm(0); /* only the receive's own steps */
	t = *(uint64_t *)arena_ptr(c, h);
	sh->taken = t;
	if (WHO(t) == S_TAG)
		__atomic_fetch_add(&sh->s_taken, 1, __ATOMIC_RELEASE);
	return arena_unref(c, h) ? 8 : 0;
}

static int crash_child(void *arg)
{
	const struct job *j = arg;
	struct arena_client *c;
	struct arena_chan *q;
	int rc;

	if (arena_connect(d.sock, &c) || arena_chan_open(c, CHAN, CAP, &q))
		return 2;
	rc = j->mode == RECV ? child_recv(c, q, j) : child_send(c, q, j);
	unsetenv("ARENA_CRASH_AT");
	arena_chan_close(q);
	arena_disconnect(c);
	return rc;
}

/* ---- the live receiver's books ---- */

struct books {
	struct arena_client *c;
	struct arena_chan *q;
	uint64_t l_sent;	    /* this process's own messages */
	int64_t last[BAIT_TAG + 1]; /* last seq received, per sender */
	uint64_t got[BAIT_TAG + 1]; /* messages received, per sender */
	uint8_t c_seen[NMODES * MAX_POINTS];
	unsigned dead_receivers;
};

static void take(struct books *b, arena_handle_t h)
{
	uint64_t t = *(uint64_t *)arena_ptr(b->c, h);
	unsigned who = WHO(t);

	assert_in_range(who, L_TAG, BAIT_TAG);
	if (who == L_TAG || who == S_TAG) {
		/* in order per sender, never twice */
		assert_true((int64_t)SEQ(t) > b->last[who]);
		b->last[who] = (int64_t)SEQ(t);
	}
	if (who == C_TAG) {
		assert_true(SEQ(t) < NMODES * MAX_POINTS);
		assert_int_equal(b->c_seen[SEQ(t)], 0);
		b->c_seen[SEQ(t)] = 1;
	}
	if (who == S_TAG)
		__atomic_fetch_add(&sh->s_taken, 1, __ATOMIC_RELEASE);
	b->got[who]++;
	assert_int_equal(arena_unref(b->c, h), 0);
}

/* Receive for up to ms; returns how many came. */
static int pump(struct books *b, int ms)
{
	arena_handle_t h;
	int n = 0, err;

	while ((err = arena_chan_recv(b->q, &h, ms)) == 0) {
		take(b, h);
		n++;
		ms = 0;
	}
	assert_true(err == -EAGAIN || err == -ETIMEDOUT);
	return n;
}

static void send_own(struct books *b, enum sender who)
{
	arena_handle_t h;

	assert_int_equal(new_block(b->c, TAG(who, b->l_sent), &h), 0);
	assert_int_equal(arena_chan_send_wait(b->q, h, WAIT_MS), 0);
	b->l_sent++;
}

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

static void wait_clients(uint32_t n)
{
	struct tstat s;

	assert_int_equal(tstat_wait(d.sock, &s, clients_are, &n, WAIT_MS), 0);
}

/*
 * One child dying at k (or finishing, when the operation has fewer
 * points) while this process receives and sends.  Returns true when the
 * child finished: there is no crash point k.
 */
static bool one_death(struct books *b, enum mode m, unsigned k)
{
	struct job j = { m, k };
	long long end;
	int status;
	pid_t p, r;

	sh->passed = 0;
	sh->taken = 0;
	if (m == RECV)
		send_own(b, BAIT_TAG);
	p = harness_fork(crash_child, &j);
	assert_true(p > 0);
	end = tstat_now_ms() + 2 * WAIT_MS;
	while ((r = waitpid(p, &status, WNOHANG)) == 0 &&
	       tstat_now_ms() < end) {
		if (m == RECV)
			pump(b, 1); /* races the dying receiver */
		else
			tstat_sleep_ms(1);
	}
	if (r == 0)
		harness_wait(p, 0);
	assert_int_equal(r, p);
	/*
	 * A dead sender's message stays queued until its reclaim is over:
	 * the daemon must count it as the channel's, not the dead's.
	 */
	if (m != RECV)
		wait_clients(2);
	send_own(b, L_TAG);
	send_own(b, L_TAG);
	pump(b, 0);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		if (m == RECV)
			b->dead_receivers++;
		return false;
	}
	if (WEXITSTATUS(status))
		fprintf(stderr, "%s, crash point %u: child exit status %d\n",
			mode_name[m], k, WEXITSTATUS(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	if (m == RECV) {
		assert_true(sh->nc_taken < 1024);
		sh->c_taken[sh->nc_taken++] = sh->taken;
	}
	return sh->passed < k;
}

/* ---- the end: everything received, dropped, closed; all free ---- */

static uint64_t c_took(enum sender who)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < sh->nc_taken; i++)
		n += WHO(sh->c_taken[i]) == who;
	return n;
}

static int all_free(const struct tstat *s, void *arg)
{
	return tstat_in_use(s) == base_in_use && s->nclients == 0;
}

static void audit_clean(void)
{
	char path[512], out[8192], err[4096];
	const char *argv[] = { path, "--socket", d.sock, "audit", NULL };
	int status = -1;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	assert_int_equal(
		harness_run(argv, &status, out, sizeof(out), err, sizeof(err)),
		0);
	if (status)
		fprintf(stderr, "arenactl audit: %d\n%s%s", status, out, err);
	assert_int_equal(status, 0);
}

static void drain_all(struct books *b, pid_t s)
{
	uint64_t lost, want, have;
	long long end;

	sh->stop = 1;
	assert_int_equal(harness_wait(s, WAIT_MS), 0);
	/* the live senders' messages, less what receivers took */
	want = sh->s_sent + b->l_sent;
	end = tstat_now_ms() + WAIT_MS;
	do {
		pump(b, 10);
		have = b->got[S_TAG] + b->got[L_TAG] + b->got[BAIT_TAG] +
		       c_took(S_TAG) + c_took(L_TAG) + c_took(BAIT_TAG);
	} while (have + b->dead_receivers < want && tstat_now_ms() < end);
	pump(b, 100); /* nothing more may come */
	have = b->got[S_TAG] + b->got[L_TAG] + b->got[BAIT_TAG] +
	       c_took(S_TAG) + c_took(L_TAG) + c_took(BAIT_TAG);
	lost = want - have;
	fprintf(stderr,
		"live messages %llu, received %llu, taken by children that "
		"died %llu (at most %u)\n",
		(unsigned long long)want, (unsigned long long)have,
		(unsigned long long)lost, b->dead_receivers);
	assert_true(have <= want);
	assert_true(lost <= b->dead_receivers);
}

static void crash_every_point(void **state)
{
	struct books b = { 0 };
	unsigned k, deaths[NMODES] = { 0 };
	enum mode m;
	struct tstat s;
	pid_t chat;

	memset(b.last, 0xff, sizeof(b.last)); /* -1: nothing yet */
	assert_int_equal(arena_connect(d.sock, &b.c), 0);
	assert_int_equal(arena_chan_open(b.c, CHAN, CAP, &b.q), 0);
	chat = harness_fork(chatter, NULL);
	assert_true(chat > 0);
	for (m = 0; m < NMODES; m++) {
		for (k = 1; k < MAX_POINTS && !one_death(&b, m, k); k++)
			deaths[m]++;
		assert_true(k < MAX_POINTS);
		fprintf(stderr, "%s: %u crash points, each one died at\n",
			mode_name[m], deaths[m]);
		assert_true(deaths[m] >= 3);
	}
	drain_all(&b, chat);
	assert_int_equal(arena_chan_close(b.q), 0);
	arena_disconnect(b.c);
	assert_int_equal(tstat_wait(d.sock, &s, all_free, NULL, WAIT_MS), 0);
	audit_clean();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crash_every_point),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
