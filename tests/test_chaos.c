// SPDX-License-Identifier: MIT
/*
 * Chaos: worker processes allocate, share and drop blocks at random while
 * the parent SIGKILLs one of them at a random moment, over and over, and
 * starts another in its place.  What must hold (issue 5, DESIGN.md rule
 * 4): a live worker never sees the contents of a block it holds change
 * (that would be a block freed under it and reused), never loses a
 * reference it holds, and when every worker is gone, only the daemon
 * left, every arena is entirely free again, no channel is left, and
 * arenactl audit is clean.
 *
 * Each worker (CHAOS_WORKERS, default 6) loops over: allocate (fixed
 * 16 B .. 4 KiB, buddy 4 .. 64 KiB, bump 16 B .. 2 KiB) and fill the
 * block with a pattern that is a function of its handle alone, so that
 * any holder can check it; drop a reference; take an extra one; move one
 * into the shared channel "chaos" (arena_chan_send) or take one out
 * (arena_chan_recv, timed: a sender killed inside a send can wedge a
 * ring, and a worker must not hang on it); send a handle to another
 * worker's inbox (a datagram socket pair per worker slot, kept by the
 * parent so that a successor inherits its inbox) while keeping a
 * reference until the receiver confirms it took its own; check the
 * pattern of one block it holds, and every so often of all of them.
 *
 * A receiver's arena_ref may fail with -ESTALE only when the sender is
 * gone (the parent clears a slot's pid before it kills) or the message
 * was meant for its predecessor: otherwise the sender still holds its
 * reference and the block must be alive.  The pattern checks catch the
 * rest.
 *
 * CHAOS_KILLS (default 200) kills, CHAOS_MAX_MS (default 15) the longest
 * pause between two, CHAOS_SEED the random seed (printed).  `make chaos`
 * runs this file with CHAOS_KILLS=10000.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#define MAX_WORKERS 16
#define HELD_MAX 48
#define PEND_MAX 16
#define CHAN_CAP 64
#define VERIFY_ALL_EVERY 64
#define STOP_MS 20000

/* What every process sees: the parent's anonymous shared mapping. */
struct board {
	_Atomic int32_t pid[MAX_WORKERS]; /* 0: dying or not started */
	atomic_uint stop;
	atomic_uint bad;
	atomic_uint msg_taken;
	char msg[512];
	atomic_ulong kills, ops, allocs, chan_sent, chan_recv, sock_sent,
		confirmed, stale_ok;
};

enum cmsg_type { CM_SHARE = 1, CM_CONFIRM = 2 };

struct msg {
	uint32_t type;
	uint32_t from; /* the sender's slot */
	int32_t from_pid;
	int32_t to_pid; /* who the sender meant (the slot's pid then) */
	uint64_t seq;
	arena_handle_t h;
};

struct held {
	arena_handle_t h;
	uint32_t refs;
};

struct pend {
	arena_handle_t h;
	uint64_t seq;
	uint32_t to;
	int32_t to_pid;
};

struct worker {
	uint32_t slot, nslot;
	int32_t pid;
	uint64_t rng, seq;
	struct arena_client *c;
	struct arena_chan *ch;
	struct held held[HELD_MAX];
	uint32_t nheld;
	struct pend pend[PEND_MAX];
	uint32_t npend;
};

static struct harness_daemon dmn;
static struct board *board;
static int inbox[MAX_WORKERS][2]; /* [0]: the slot reads, [1]: others send */

static uint64_t env_num(const char *name, uint64_t def)
{
	const char *e = getenv(name);

	return e && *e ? strtoull(e, NULL, 10) : def;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- the pattern: a function of the handle alone ---- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void fill(uint8_t *p, size_t n, arena_handle_t h)
{
	uint64_t w;
	size_t i;

	for (i = 0; i < n; i += 8) {
		w = mix(h ^ i);
		memcpy(p + i, &w, n - i < 8 ? n - i : 8);
	}
}

static bool intact(const uint8_t *p, size_t n, arena_handle_t h)
{
	uint64_t w;
	size_t i;

	for (i = 0; i < n; i += 8) {
		w = mix(h ^ i);
		if (memcmp(p + i, &w, n - i < 8 ? n - i : 8))
			return false;
	}
	return true;
}

/* ---- reporting from a worker ---- */

static void bad(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad(struct worker *w, const char *fmt, ...)
{
	unsigned zero = 0;
	va_list ap;
	int n;

	atomic_fetch_add(&board->bad, 1);
	if (!atomic_compare_exchange_strong(&board->msg_taken, &zero, 1))
		return;
	n = snprintf(board->msg, sizeof(board->msg),
		     "worker %u (pid %d), after %lu kills: ", w->slot,
		     (int)w->pid, atomic_load(&board->kills));
	va_start(ap, fmt);
	vsnprintf(board->msg + n, sizeof(board->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool stopping(void)
{
	return atomic_load(&board->stop) != 0;
}

/* The block of h is alive and holds its pattern; else report. */
static bool check(struct worker *w, arena_handle_t h, const char *when)
{
	uint8_t *p = arena_ptr(w->c, h);
	size_t n = arena_size(w->c, h);

	if (!p || !n) {
		bad(w, "%s: block %#llx is gone while held (%s)", when,
		    (unsigned long long)h, p ? "size 0" : "no address");
		return false;
	}
	if (!intact(p, n, h)) {
		bad(w, "%s: block %#llx (%zu B) changed while held", when,
		    (unsigned long long)h, n);
		return false;
	}
	return true;
}

/* ---- the blocks a worker holds ---- */

static void hold(struct worker *w, arena_handle_t h)
{
	uint32_t i;

	for (i = 0; i < w->nheld; i++) {
		if (w->held[i].h == h) {
			w->held[i].refs++;
			return;
		}
	}
	w->held[w->nheld++] = (struct held){ h, 1 };
}

static void drop_ref(struct worker *w, arena_handle_t h, const char *when)
{
	int err = arena_unref(w->c, h);

	if (err)
		bad(w, "%s: unref of %#llx: %s", when, (unsigned long long)h,
		    strerror(-err));
}

static void op_alloc(struct worker *w)
{
	static const enum arena_kind kinds[] = { ARENA_KIND_FIXED,
						 ARENA_KIND_BUDDY,
						 ARENA_KIND_BUMP };
	static const size_t lo[] = { 16, 4096, 16 },
			    hi[] = { 4096, 65536, 2048 };
	unsigned k = (unsigned)(rnd(&w->rng) % 3);
	size_t sz = lo[k] + rnd(&w->rng) % (hi[k] - lo[k] + 1);
	arena_handle_t h;
	int err;

	if (w->nheld == HELD_MAX)
		return;
	err = arena_alloc(w->c, kinds[k], sz, &h);
	if (err == -ENOMEM)
		return; /* full for now: others hold it */
	if (err) {
		bad(w, "alloc %zu B of kind %d: %s", sz, (int)kinds[k],
		    strerror(-err));
		return;
	}
	fill(arena_ptr(w->c, h), arena_size(w->c, h), h);
	hold(w, h);
	atomic_fetch_add(&board->allocs, 1);
}

static void op_unref(struct worker *w)
{
	uint32_t i;

	if (!w->nheld)
		return;
	i = (uint32_t)(rnd(&w->rng) % w->nheld);
	if (!check(w, w->held[i].h, "before unref"))
		return;
	drop_ref(w, w->held[i].h, "unref");
	if (--w->held[i].refs == 0)
		w->held[i] = w->held[--w->nheld];
}

static void op_ref(struct worker *w)
{
	uint32_t i;
	int err;

	if (!w->nheld)
		return;
	i = (uint32_t)(rnd(&w->rng) % w->nheld);
	err = arena_ref(w->c, w->held[i].h);
	if (err)
		bad(w, "ref of a held block %#llx: %s",
		    (unsigned long long)w->held[i].h, strerror(-err));
	else
		w->held[i].refs++;
}

/* ---- the shared channel ---- */

static void op_chan_send(struct worker *w)
{
	arena_handle_t h;
	int err;

	if (!w->nheld || !w->ch)
		return;
	h = w->held[rnd(&w->rng) % w->nheld].h;
	err = arena_ref(w->c, h); /* the reference that travels */
	if (err) {
		bad(w, "ref before send: %s", strerror(-err));
		return;
	}
	err = arena_chan_send(w->ch, h);
	if (!err) {
		atomic_fetch_add(&board->chan_sent, 1);
		return;
	}
	/* full (or wedged by a killed sender); bump blocks do not travel */
	if (err != -EAGAIN && err != -EINVAL)
		bad(w, "chan send: %s", strerror(-err));
	drop_ref(w, h, "unsent");
}

static void op_chan_recv(struct worker *w)
{
	arena_handle_t h;
	int err;

	if (!w->ch)
		return;
	err = arena_chan_recv(w->ch, &h, rnd(&w->rng) % 4 ? 0 : 2);
	if (err == -EAGAIN || err == -ETIMEDOUT)
		return;
	if (err) {
		bad(w, "chan recv: %s", strerror(-err));
		return;
	}
	atomic_fetch_add(&board->chan_recv, 1);
	if (!check(w, h, "received from the channel"))
		return;
	if (w->nheld < HELD_MAX)
		hold(w, h);
	else
		drop_ref(w, h, "received, no room");
}

/* ---- the inboxes ---- */

static void op_sock_send(struct worker *w)
{
	struct msg m = { .type = CM_SHARE,
			 .from = w->slot,
			 .from_pid = w->pid };
	uint32_t to = (uint32_t)(rnd(&w->rng) % w->nslot);

	if (!w->nheld || w->npend == PEND_MAX || to == w->slot)
		return;
	m.to_pid = atomic_load(&board->pid[to]);
	if (!m.to_pid)
		return;
	m.h = w->held[rnd(&w->rng) % w->nheld].h;
	m.seq = ++w->seq;
	if (arena_ref(w->c, m.h)) { /* kept until the receiver confirms */
		bad(w, "ref before a socket send");
		return;
	}
	if (send(inbox[to][1], &m, sizeof(m), MSG_DONTWAIT) != sizeof(m)) {
		drop_ref(w, m.h, "unsent to a socket");
		return;
	}
	w->pend[w->npend++] = (struct pend){ m.h, m.seq, to, m.to_pid };
	atomic_fetch_add(&board->sock_sent, 1);
}

/*
 * A handle another worker sent: take a reference, check, confirm.
 * -ESTALE is right only when the sender is dying (its slot's pid
 * cleared or replaced) or did not mean us but our predecessor (and may
 * have given up on it); else the sender still holds a reference.
 */
static void got_share(struct worker *w, const struct msg *m)
{
	struct msg c = { .type = CM_CONFIRM,
			 .from = w->slot,
			 .from_pid = m->from_pid,
			 .seq = m->seq };
	int err = arena_ref(w->c, m->h);

	if (err == -ESTALE || err == -EINVAL) {
		if (m->to_pid != w->pid || stopping() ||
		    atomic_load(&board->pid[m->from]) != m->from_pid)
			atomic_fetch_add(&board->stale_ok, 1);
		else
			bad(w, "ref of %#llx from live worker %u: %s",
			    (unsigned long long)m->h, m->from, strerror(-err));
		return;
	}
	if (err) {
		bad(w, "ref of a shared handle: %s", strerror(-err));
		return;
	}
	send(inbox[m->from][1], &c, sizeof(c), MSG_DONTWAIT);
	if (!check(w, m->h, "received from a socket"))
		return;
	if (w->nheld < HELD_MAX)
		hold(w, m->h);
	else
		drop_ref(w, m->h, "shared, no room");
}

static void pend_drop(struct worker *w, uint32_t i, const char *when)
{
	if (check(w, w->pend[i].h, when))
		drop_ref(w, w->pend[i].h, when);
	w->pend[i] = w->pend[--w->npend];
}

static void got_confirm(struct worker *w, const struct msg *m)
{
	uint32_t i;

	if (m->from_pid != w->pid)
		return; /* meant for our predecessor */
	for (i = 0; i < w->npend; i++) {
		if (w->pend[i].seq == m->seq) {
			pend_drop(w, i, "confirmed");
			atomic_fetch_add(&board->confirmed, 1);
			return;
		}
	}
}

static void poll_inbox(struct worker *w)
{
	struct msg m;
	uint32_t i;
	int n;

	for (n = 0; n < 4; n++) {
		if (recv(inbox[w->slot][0], &m, sizeof(m), MSG_DONTWAIT) !=
		    sizeof(m))
			break;
		if (m.type == CM_SHARE && m.from < w->nslot)
			got_share(w, &m);
		else if (m.type == CM_CONFIRM)
			got_confirm(w, &m);
	}
	/* a receiver that is gone will never confirm */
	for (i = 0; i < w->npend; i++)
		if (atomic_load(&board->pid[w->pend[i].to]) !=
		    w->pend[i].to_pid)
			pend_drop(w, i--, "receiver gone");
}

/* ---- a worker's life ---- */

static void verify_all(struct worker *w)
{
	uint32_t i;

	for (i = 0; i < w->nheld; i++)
		check(w, w->held[i].h, "periodic check");
	for (i = 0; i < w->npend; i++)
		check(w, w->pend[i].h, "periodic check of a sent block");
}

static void step(struct worker *w)
{
	unsigned op = (unsigned)(rnd(&w->rng) % 100);

	if (op < 30)
		op_alloc(w);
	else if (op < 48)
		op_unref(w);
	else if (op < 55)
		op_ref(w);
	else if (op < 67)
		op_chan_send(w);
	else if (op < 82)
		op_chan_recv(w);
	else
		op_sock_send(w);
	poll_inbox(w);
	if (w->nheld)
		check(w, w->held[rnd(&w->rng) % w->nheld].h, "spot check");
}

/* Stop cleanly: drop everything, close, detach. */
static void worker_end(struct worker *w)
{
	uint32_t i;

	verify_all(w);
	while (w->npend)
		pend_drop(w, 0, "at the end");
	for (i = 0; i < w->nheld; i++)
		while (w->held[i].refs--)
			drop_ref(w, w->held[i].h, "at the end");
	if (w->ch)
		arena_chan_close(w->ch);
	arena_disconnect(w->c);
}

static int worker_main(uint32_t slot, uint32_t nslot, uint64_t seed)
{
	struct worker *w = calloc(1, sizeof(*w));
	unsigned long n;
	int err;

	tstat_child_init();
	if (!w)
		return 2;
	w->slot = slot;
	w->nslot = nslot;
	w->pid = getpid();
	w->rng = mix(seed ^ ((uint64_t)w->pid << 20) ^ slot) | 1;
	while (atomic_load(&board->pid[slot]) != w->pid)
		sched_yield(); /* the parent registers us first */
	err = arena_connect(dmn.sock, &w->c);
	if (err) {
		bad(w, "connect: %s", strerror(-err));
		return 1;
	}
	err = arena_chan_open(w->c, "chaos", CHAN_CAP, &w->ch);
	if (err)
		bad(w, "chan open: %s", strerror(-err));
	for (n = 1; !stopping(); n++) {
		step(w);
		if (n % VERIFY_ALL_EVERY == 0)
			verify_all(w);
		atomic_fetch_add_explicit(&board->ops, 1, memory_order_relaxed);
	}
	worker_end(w);
	return atomic_load(&board->bad) ? 1 : 0;
}

/* ---- the parent ---- */

static pid_t worker_start(uint32_t slot, uint32_t nslot, uint64_t seed)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(worker_main(slot, nslot, seed));
	atomic_store(&board->pid[slot], pid);
	return pid;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000),
			       (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One kill: clear the slot's pid first (receivers may then see -ESTALE). */
static void kill_one(pid_t *pids, uint32_t slot, uint32_t nslot, uint64_t seed)
{
	int st;

	atomic_store(&board->pid[slot], 0);
	kill(pids[slot], SIGKILL);
	atomic_fetch_add(&board->kills, 1);
	assert_int_equal(waitpid(pids[slot], &st, 0), pids[slot]);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("worker %u ended before its kill (status %#x): %s",
			 slot, st, board->msg);
	pids[slot] = worker_start(slot, nslot, seed);
}

/*
 * Nothing attached, nothing in use or cached anywhere, every bump chunk
 * free, and the buddy arena one free block of its whole size.
 */
static int all_free(const struct tstat *s, void *arg)
{
	const struct tstat_arena *a;
	uint32_t i;

	if (s->nclients)
		return 0;
	for (i = 0; i < s->narenas; i++) {
		a = &s->a[i];
		if (a->in_use || (a->cached != (uint64_t)-1 && a->cached))
			return 0;
		if (a->kind == ARENA_PROTO_KIND_BUMP &&
		    a->chunks_free != a->capacity)
			return 0;
		if (a->kind == ARENA_PROTO_KIND_BUDDY &&
		    (!s->nbuddy ||
		     s->buddy.largest_free != a->capacity * a->block_size ||
		     s->buddy.free_bytes != s->buddy.largest_free))
			return 0;
	}
	return 1;
}

static void print_stats(const struct tstat *s)
{
	uint32_t i;

	for (i = 0; i < s->narenas; i++)
		fprintf(stderr,
			"arena %u kind %u: in_use %llu cached %llu "
			"chunks_free %llu / %llu\n",
			i, s->a[i].kind, (unsigned long long)s->a[i].in_use,
			(unsigned long long)s->a[i].cached,
			(unsigned long long)s->a[i].chunks_free,
			(unsigned long long)s->a[i].capacity);
	if (s->nbuddy)
		fprintf(stderr, "buddy: free %llu held %llu largest %llu\n",
			(unsigned long long)s->buddy.free_bytes,
			(unsigned long long)s->buddy.alloc_bytes,
			(unsigned long long)s->buddy.largest_free);
}

/* Everything back, as STATS and as arenactl see it. */
static void check_all_free(void)
{
	const char *ctl[] = { NULL, "--socket", dmn.sock, "stats", NULL };
	char path[512], out[8192];
	struct tstat s;
	int st;

	if (tstat_wait(dmn.sock, &s, all_free, NULL, 10000)) {
		print_stats(&s);
		fail_msg("not everything came back with every worker gone "
			 "(%u clients)",
			 s.nclients);
	}
	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	ctl[0] = path;
	assert_int_equal(harness_run(ctl, &st, out, sizeof(out), NULL, 0), 0);
	assert_int_equal(st, 0);
	if (!strstr(out, "\nchannels: 0\n"))
		fail_msg("a channel is left:\n%s", out);
}

/* arenactl audit must pass. */
static void audit_clean(void)
{
	const char *audit[] = { NULL, "--socket", dmn.sock, "audit", NULL };
	char path[512], out[16384], err[4096];
	int st;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	audit[0] = path;
	assert_int_equal(
		harness_run(audit, &st, out, sizeof(out), err, sizeof(err)), 0);
	if (st != 0)
		fail_msg("arenactl audit exit %d:\n%s%s", st, out, err);
}

static void stop_all(pid_t *pids, uint32_t n)
{
	uint32_t i;
	int rc;

	atomic_store(&board->stop, 1);
	for (i = 0; i < n; i++) {
		rc = harness_wait(pids[i], STOP_MS);
		if (rc != 0)
			fail_msg("worker %u did not stop cleanly (%d): %s", i,
				 rc, board->msg);
	}
}

static void chaos(void **state)
{
	uint64_t kills = env_num("CHAOS_KILLS", 200);
	uint64_t max_us = env_num("CHAOS_MAX_MS", 15) * 1000 + 1;
	uint64_t seed = env_num("CHAOS_SEED", (uint64_t)time(NULL));
	uint32_t n = (uint32_t)env_num("CHAOS_WORKERS", 6), i;
	uint64_t rng = mix(seed) | 1, k;
	pid_t pids[MAX_WORKERS];
	long long t0 = tstat_now_ms();

	assert_true(n >= 2 && n <= MAX_WORKERS);
	fprintf(stderr, "chaos: %u workers, %llu kills, seed %llu\n", n,
		(unsigned long long)kills, (unsigned long long)seed);
	for (i = 0; i < n; i++)
		pids[i] = worker_start(i, n, seed);
	for (k = 0; k < kills && !atomic_load(&board->bad); k++) {
		sleep_us(rnd(&rng) % max_us);
		kill_one(pids, (uint32_t)(rnd(&rng) % n), n, seed);
	}
	stop_all(pids, n);
	fprintf(stderr,
		"chaos: %llu kills in %lld ms; %lu ops, %lu allocs, %lu "
		"channel sends, %lu receives, %lu socket shares, %lu "
		"confirmed, %lu stale after a sender's death\n",
		(unsigned long long)k, tstat_now_ms() - t0,
		atomic_load(&board->ops), atomic_load(&board->allocs),
		atomic_load(&board->chan_sent), atomic_load(&board->chan_recv),
		atomic_load(&board->sock_sent), atomic_load(&board->confirmed),
		atomic_load(&board->stale_ok));
	if (atomic_load(&board->bad))
		fail_msg("%u failures; first: %s", atomic_load(&board->bad),
			 board->msg);
	check_all_free();
	audit_clean();
}

/*
 * What the chaos run first tripped on: arena_size() of a live buddy or
 * bump block gave 0 when another holder's ref or unref moved the block's
 * word between the two reads it makes.  One thread takes and drops
 * references as fast as it can; the other asks for the size.
 */
struct churn {
	struct arena_client *c;
	arena_handle_t h;
	atomic_int stop;
	atomic_long turns;
	int err;
};

static void *churn_run(void *arg)
{
	struct churn *ch = arg;

	while (!atomic_load(&ch->stop) && !ch->err) {
		ch->err = arena_ref(ch->c, ch->h);
		if (!ch->err)
			ch->err = arena_unref(ch->c, ch->h);
		atomic_fetch_add(&ch->turns, 1);
	}
	return NULL;
}

static void size_under_refs(void **state)
{
	static const enum arena_kind kinds[] = { ARENA_KIND_FIXED,
						 ARENA_KIND_BUDDY,
						 ARENA_KIND_BUMP };
	struct churn ch = { 0 };
	pthread_t th;
	long long end;
	size_t want;
	long i, zero;
	unsigned k;

	assert_int_equal(arena_connect(dmn.sock, &ch.c), 0);
	for (k = 0; k < 3; k++) {
		assert_int_equal(arena_alloc(ch.c, kinds[k], 5000, &ch.h), 0);
		want = arena_size(ch.c, ch.h);
		assert_true(want >= 5000);
		atomic_store(&ch.stop, 0);
		atomic_store(&ch.turns, 0);
		assert_int_equal(pthread_create(&th, NULL, churn_run, &ch), 0);
		/* 200 ms with both running: enough to meet, not a time limit */
		end = tstat_now_ms() + 200;
		for (i = zero = 0;
		     tstat_now_ms() < end || !atomic_load(&ch.turns); i++)
			zero += arena_size(ch.c, ch.h) != want;
		atomic_store(&ch.stop, 1);
		pthread_join(th, NULL);
		assert_int_equal(ch.err, 0);
		if (zero)
			fail_msg("kind %d: arena_size wrong %ld times of %ld",
				 (int)kinds[k], zero, i);
		assert_int_equal(arena_unref(ch.c, ch.h), 0);
	}
	arena_disconnect(ch.c);
}

static int setup(void **state)
{
	static const char *const args[] = { "--size", "128M", NULL };
	uint32_t i;
	int err;

	board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (board == MAP_FAILED)
		return -1;
	for (i = 0; i < MAX_WORKERS; i++)
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, inbox[i]))
			return -1;
	err = harness_daemon_start(&dmn, args);
	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int teardown(void **state)
{
	return harness_daemon_stop(&dmn) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(size_under_refs),
		cmocka_unit_test(chaos),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
