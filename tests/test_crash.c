// SPDX-License-Identifier: MIT
/*
 * Crash-point injection (issue 5): a client killed at any step of alloc,
 * ref, unref, free, magazine refill and drain, chunk reservation and
 * retirement, the buddy tree's splits and coalescing, bump rollback and
 * the flush at disconnect costs a live client nothing, and reclaim gives
 * back exactly the rest.
 *
 * This program is linked against the crash build of the library
 * (libarena-crash.a, proto/crashpoint.h): every ARENA_CRASHPOINT() it
 * passes is counted, and a process whose $ARENA_CRASH_AT is k kills
 * itself with SIGKILL at the k-th.  For each scenario:
 *
 *   1. a dry run: a child client runs the scenario to its end (its
 *      count armed right before it) and reports N, the crash points it
 *      passed, and where each one is (its call site);
 *   2. for k in a sample of 1..N: the test process attaches a live
 *      client L holding blocks of every arena with a pattern written in
 *      them, and forks a child client that runs the scenario with
 *      ARENA_CRASH_AT=k.  The child refs and unrefs blocks L shared with
 *      it by handle, and hands L blocks it allocated, which L refs (and
 *      writes its pattern in) while the child waits, before it goes on;
 *   3. after the child's death, once the daemon has reclaimed it (its
 *      client count drops), every arena must hold exactly what L holds:
 *      every allocated block is one of L's with exactly L's count of
 *      references, every reserved one is in L's magazines, every free
 *      fixed slot has its bitmap bit, the buddy tree is byte for byte
 *      the tree of the blocks held, every bump chunk's word says what
 *      its headers say; the statistics agree; L's patterns are intact;
 *      `arenactl audit` exits 0; and after L drops all its references
 *      and disconnects, every arena is entirely free (the buddy tree one
 *      free block of the arena's size, every bump chunk free).
 *
 * A watcher client stays attached throughout, so the daemon never sees
 * zero clients and never rebuilds the buddy tree from the words: what is
 * checked is reclaim alone, with a live client attached.
 *
 * Sampling: the scenarios pass 15 to 200 crash points each, about 650 in
 * all, and a step costs a few milliseconds (the daemon is small: 4 MiB,
 * one fixed class, a 512 KiB buddy arena, a 64 KiB bump arena of 4 KiB
 * chunks), so every k is run: a few seconds in the plain build.  Should a
 * scenario grow past CRASH_STEPS (or $ARENA_CRASH_STEPS; 0: no limit)
 * crash points, every k whose crash point is the first at its call site
 * is still run, so that every distinct site is crashed at, and the rest of
 * the budget is spread evenly over 1..N.  $ARENA_CRASH_ONLY=k runs only
 * crash point k of each scenario (for debugging one).
 */
#include <errno.h>
#include <poll.h>
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

#include "buddy.h"
#include "bump.h"
#include "crashpoint.h"
#include "handle.h"
#include "harness.h"
#include "internal.h"
#include "tstat.h"

#define WAIT_MS 10000
#define IO_MS 10000
#define CRASH_STEPS 400 /* crash points per scenario beyond its sites */
#define MAX_SITES 16384
#define MAX_HELD 64
#define FIXED_SIZE 64u
#define BUDDY_MIN 4096u
#define BUMP_CHUNK 4096u

static const char *const daemon_args[] = {
	"--size",   "4M",     "--fixed", "64:512",	  "--buddy",
	"512K:4K",  "--bump", "64K:4K",	 "--max-clients", "4",
	"--ledger", "64",     NULL
};

static struct harness_daemon d;
static struct arena_client *watcher;

/* ---- the live client's holdings ---- */

struct held {
	arena_handle_t h;
	uint32_t refs; /* references L holds */
	uint32_t seed; /* its pattern */
};

struct live {
	struct arena_client *c;
	struct held b[MAX_HELD];
	uint32_t n;
	/* L's own blocks the scenarios use, by role */
	arena_handle_t fixed, buddy, big, bump; /* shared with the child */
	arena_handle_t fixed2, big2, bump2;	/* given up to the child */
};

static struct live L;

static void pattern(struct arena_client *c, const struct held *b, bool write,
		    bool *ok)
{
	uint8_t *p = arena_ptr(c, b->h);
	size_t n = arena_size(c, b->h), i;

	if (!p || !n) {
		*ok = false;
		return;
	}
	for (i = 0; i < n; i++) {
		uint8_t v = (uint8_t)(b->seed * 31u + i * 7u + (i >> 8));

		if (write)
			p[i] = v;
		else if (p[i] != v)
			*ok = false;
	}
}

static struct held *held_find(arena_handle_t h)
{
	uint32_t i;

	for (i = 0; i < L.n; i++)
		if (L.b[i].h == h && L.b[i].refs)
			return &L.b[i];
	return NULL;
}

/* L now holds one more reference to h; write its pattern if new. */
static void held_add(arena_handle_t h)
{
	struct held *b = held_find(h);
	bool ok = true;

	if (b) {
		b->refs++;
		return;
	}
	assert_true(L.n < MAX_HELD);
	b = &L.b[L.n++];
	b->h = h;
	b->refs = 1;
	b->seed = (uint32_t)(h * 2654435761u) ^ L.n;
	pattern(L.c, b, true, &ok);
	assert_true(ok);
}

static arena_handle_t live_alloc(enum arena_kind k, size_t size)
{
	arena_handle_t h;

	assert_int_equal(arena_alloc(L.c, k, size, &h), 0);
	held_add(h);
	return h;
}

static void live_unref(arena_handle_t h)
{
	struct held *b = held_find(h);

	assert_non_null(b);
	assert_int_equal(arena_unref(L.c, h), 0);
	b->refs--;
}

static void live_setup(void)
{
	memset(&L, 0, sizeof(L));
	assert_int_equal(arena_connect(d.sock, &L.c), 0);
	L.fixed = live_alloc(ARENA_KIND_FIXED, FIXED_SIZE);
	L.buddy = live_alloc(ARENA_KIND_BUDDY, BUDDY_MIN);
	L.big = live_alloc(ARENA_KIND_BUDDY, 8 * BUDDY_MIN);
	L.bump = live_alloc(ARENA_KIND_BUMP, 100);
	L.fixed2 = live_alloc(ARENA_KIND_FIXED, FIXED_SIZE);
	L.big2 = live_alloc(ARENA_KIND_BUDDY, 8 * BUDDY_MIN);
	L.bump2 = live_alloc(ARENA_KIND_BUMP, 200);
}

/* ---- talking to the child: a tag byte and a 64-bit value ---- */

struct msg {
	char tag;
	uint64_t v;
} __attribute__((packed));

struct pipes {
	int up[2];   /* child -> parent */
	int down[2]; /* parent -> child */
};

static int put(int fd, char tag, uint64_t v)
{
	struct msg m = { tag, v };

	return write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m) ? 0 : -1;
}

static int get(int fd, struct msg *m)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < sizeof(*m)) {
		if (poll(&p, 1, IO_MS) != 1)
			return -1;
		r = read(fd, (char *)m + got, sizeof(*m) - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* ---- the child's side ---- */

struct kid {
	struct arena_client *c;
	int up, down;
	struct live shared; /* L's handles, as L had them */
};

/* Hand h to L, which refs it; wait until it has. */
static int give(struct kid *k, arena_handle_t h)
{
	struct msg m;

	if (put(k->up, 'H', h) || get(k->down, &m) || m.tag != 'k')
		return -1;
	return 0;
}

/* Ask L to drop its reference to h (the child's becomes the last). */
static int give_up(struct kid *k, arena_handle_t h)
{
	struct msg m;

	if (put(k->up, 'U', h) || get(k->down, &m) || m.tag != 'k')
		return -1;
	return 0;
}

#define TRY(x)                                                                 \
	do {                                                                   \
		int err_ = (x);                                                \
		if (err_ < 0) {                                                \
			fprintf(stderr, "child %d, line %d: %s: %d\n",         \
				(int)getpid(), __LINE__, #x, err_);            \
			return 1;                                              \
		}                                                              \
	} while (0)

static int alloc_w(struct kid *k, enum arena_kind kind, size_t size,
		   arena_handle_t *h)
{
	int err = arena_alloc(k->c, kind, size, h);
	char *p;

	if (err)
		return err;
	p = arena_ptr(k->c, *h);
	if (!p)
		return -EFAULT;
	memset(p, 0xc5, size); /* the child's own data: L's must not see it */
	return 0;
}

/* Fixed alloc through a magazine refill (one bitmap word, its slots). */
static int sc_refill(struct kid *k)
{
	arena_handle_t h[3];

	TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &h[0]));
	TRY(give(k, h[0]));
	TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &h[1]));
	TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &h[2]));
	TRY(arena_unref(k->c, h[1]));
	return 0;
}

/* Fixed allocs and frees past the magazine's size: drains. */
static int sc_drain(struct kid *k)
{
	arena_handle_t h[40];
	int i;

	for (i = 0; i < 40; i++)
		TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &h[i]));
	TRY(give(k, h[7]));
	for (i = 0; i < 40; i++)
		TRY(arena_unref(k->c, h[i]));
	return 0;
}

/* References to L's blocks of every kind. */
static int sc_ref(struct kid *k)
{
	TRY(arena_ref(k->c, k->shared.fixed));
	TRY(arena_ref(k->c, k->shared.buddy));
	TRY(arena_ref(k->c, k->shared.big));
	TRY(arena_ref(k->c, k->shared.bump));
	TRY(arena_ref(k->c, k->shared.fixed));
	return 0;
}

/* Refs and unrefs of blocks L keeps. */
static int sc_unref(struct kid *k)
{
	TRY(sc_ref(k));
	TRY(arena_unref(k->c, k->shared.fixed));
	TRY(arena_unref(k->c, k->shared.buddy));
	TRY(arena_unref(k->c, k->shared.big));
	TRY(arena_unref(k->c, k->shared.bump));
	TRY(arena_unref(k->c, k->shared.fixed));
	return 0;
}

/* The last reference, the child's, to blocks L allocated and gave up. */
static int sc_last(struct kid *k)
{
	arena_handle_t f, b;

	TRY(arena_ref(k->c, k->shared.fixed2));
	TRY(arena_ref(k->c, k->shared.big2));
	TRY(arena_ref(k->c, k->shared.bump2));
	TRY(give_up(k, k->shared.fixed2));
	TRY(give_up(k, k->shared.big2));
	TRY(give_up(k, k->shared.bump2));
	TRY(arena_unref(k->c, k->shared.fixed2));
	TRY(arena_unref(k->c, k->shared.big2));
	TRY(arena_unref(k->c, k->shared.bump2));
	/* and its own: L's reference outlives the child's */
	TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &f));
	TRY(alloc_w(k, ARENA_KIND_BUDDY, 16 * BUDDY_MIN, &b));
	TRY(give(k, f));
	TRY(give(k, b));
	TRY(arena_unref(k->c, f));
	TRY(arena_unref(k->c, b));
	return 0;
}

/* Buddy blocks: splits on the way in, coalescing on the way out. */
static int sc_buddy(struct kid *k)
{
	static const size_t sizes[] = { 4096, 4096,  8192, 32768,
					4096, 65536, 4096, 16384 };
	arena_handle_t h[8];
	unsigned i;

	for (i = 0; i < 8; i++)
		TRY(alloc_w(k, ARENA_KIND_BUDDY, sizes[i], &h[i]));
	TRY(give(k, h[3]));
	for (i = 0; i < 8; i++)
		TRY(arena_unref(k->c, h[8 - 1 - i]));
	return 0;
}

/* Bump allocations across chunks: reservations and retirements. */
static int sc_bump(struct kid *k)
{
	arena_handle_t h[10];
	unsigned i;

	for (i = 0; i < 10; i++)
		TRY(alloc_w(k, ARENA_KIND_BUMP, 1000, &h[i]));
	TRY(give(k, h[4]));
	TRY(arena_unref(k->c, h[0])); /* in a retired chunk */
	TRY(arena_unref(k->c, h[4]));
	TRY(arena_unref(k->c, h[9])); /* in the chunk it bumps in */
	return 0;
}

/* Checkpoint, allocations over a chunk boundary, frees, rollback. */
static int sc_rollback(struct kid *k)
{
	arena_bump_checkpoint_t cp;
	arena_handle_t h[6], keep;
	unsigned i;

	TRY(alloc_w(k, ARENA_KIND_BUMP, 1000, &keep));
	TRY(arena_bump_checkpoint(k->c, &cp));
	for (i = 0; i < 6; i++)
		TRY(alloc_w(k, ARENA_KIND_BUMP, 1000, &h[i]));
	TRY(give(k, h[2]));
	TRY(arena_unref(k->c, h[5])); /* a freed header at the tail */
	TRY(arena_unref(k->c, h[4]));
	TRY(arena_bump_rollback(k->c, cp));
	TRY(alloc_w(k, ARENA_KIND_BUMP, 500, &h[0]));
	return 0;
}

/* Full magazines and a chunk, flushed by arena_disconnect. */
static int sc_disconnect(struct kid *k)
{
	arena_handle_t h;
	int i;

	for (i = 0; i < 5; i++)
		TRY(alloc_w(k, ARENA_KIND_FIXED, FIXED_SIZE, &h));
	TRY(give(k, h));
	TRY(arena_unref(k->c, h));
	for (i = 0; i < 3; i++)
		TRY(alloc_w(k, ARENA_KIND_BUDDY, BUDDY_MIN, &h));
	TRY(arena_unref(k->c, h));
	TRY(alloc_w(k, ARENA_KIND_BUDDY, 32768, &h));
	TRY(give(k, h));
	TRY(alloc_w(k, ARENA_KIND_BUMP, 300, &h));
	TRY(alloc_w(k, ARENA_KIND_BUMP, 300, &h));
	TRY(give(k, h));
	arena_disconnect(k->c);
	k->c = NULL;
	return 0;
}

struct scenario {
	const char *name;
	int (*run)(struct kid *k);
};

static const struct scenario scenarios[] = {
	{ "fixed alloc via magazine refill", sc_refill },
	{ "fixed alloc/free with drain", sc_drain },
	{ "ref", sc_ref },
	{ "unref of a shared block", sc_unref },
	{ "last unref", sc_last },
	{ "buddy splits and coalescing", sc_buddy },
	{ "bump chunks", sc_bump },
	{ "bump checkpoint/rollback", sc_rollback },
	{ "disconnect flush", sc_disconnect },
};

struct job {
	const struct scenario *sc;
	unsigned long at; /* 0: the dry run */
	struct pipes p;
};

static int child(void *arg)
{
	struct job *j = arg;
	struct kid k = { .up = j->p.up[1], .down = j->p.down[0] };
	unsigned long n, i;
	char at[32];

	tstat_child_init();
	close(j->p.up[0]);
	close(j->p.down[1]);
	k.shared = L; /* handles only: the parent's client is not ours */
	if (arena_connect(d.sock, &k.c))
		return 2;
	snprintf(at, sizeof(at), "%lu", j->at);
	setenv("ARENA_CRASH_AT", at, 1);
	arena_crashpoint_arm();
	if (j->sc->run(&k))
		return 3;
	n = arena_crashpoints_passed();
	if (put(k.up, 'N', n))
		return 4;
	for (i = 1; i <= n && i <= MAX_SITES; i++)
		if (put(k.up, 'S',
			(uint64_t)(uintptr_t)arena_crashpoint_site(i)))
			return 4;
	put(k.up, 'E', 0);
	_exit(0); /* no disconnect: the daemon reclaims what is left */
}

/* ---- the parent's side ---- */

struct outcome {
	unsigned long n; /* crash points passed (dry run) */
	uint64_t *sites;
	int status;
};

/* Serve the child until it ends or dies. */
static void serve(struct job *j, pid_t pid, struct outcome *o)
{
	unsigned long ns = 0;
	struct msg m;
	int err;

	while (!get(j->p.up[0], &m)) {
		if (m.tag == 'H') {
			err = arena_ref(L.c, m.v);
			assert_int_equal(err, 0); /* the child waits: alive */
			held_add(m.v);
			put(j->p.down[1], 'k', 0);
		} else if (m.tag == 'U') {
			live_unref(m.v);
			put(j->p.down[1], 'k', 0);
		} else if (m.tag == 'N') {
			o->n = m.v;
		} else if (m.tag == 'S' && o->sites && ns < MAX_SITES) {
			o->sites[ns++] = m.v;
		} else if (m.tag == 'E') {
			break;
		}
	}
	o->status = harness_wait(pid, WAIT_MS);
}

static void run_child(const struct scenario *sc, unsigned long at,
		      struct outcome *o)
{
	struct job j = { .sc = sc, .at = at };
	pid_t pid;

	assert_int_equal(pipe(j.p.up), 0);
	assert_int_equal(pipe(j.p.down), 0);
	pid = harness_fork(child, &j);
	assert_true(pid > 0);
	close(j.p.up[1]);
	close(j.p.down[0]);
	serve(&j, pid, o);
	close(j.p.up[0]);
	close(j.p.down[1]);
}

/* ---- checks ---- */

static int clients_are(const struct tstat *s, void *arg)
{
	return s->nclients == *(uint32_t *)arg;
}

static void wait_clients(uint32_t n)
{
	struct tstat s;

	if (tstat_wait(d.sock, &s, clients_are, &n, WAIT_MS))
		fail_msg("waited for %u clients, have %u", n, s.nclients);
}

/* References L holds to the block at (arena ai, index idx), 0: none. */
static uint32_t live_refs(uint32_t ai, uint32_t idx)
{
	struct arena_proto_handle ph;
	uint32_t i;

	for (i = 0; i < L.n; i++) {
		arena_proto_handle_unpack(L.b[i].h, &ph);
		if (L.b[i].refs && ph.arena == ai && ph.index == idx)
			return L.b[i].refs;
	}
	return 0;
}

#define BAD(...)                                                               \
	do {                                                                   \
		snprintf(why, cap, __VA_ARGS__);                               \
		return false;                                                  \
	} while (0)

/*
 * One block's word against what L holds: allocated with exactly L's
 * count, reserved by L (who), or free.
 */
static bool word_ok(uint64_t s, uint32_t ai, uint32_t idx, uint32_t who,
		    char *why, size_t cap)
{
	uint32_t want = live_refs(ai, idx);

	switch (arena_bs_state(s)) {
	case ARENA_BS_ALLOC:
		if (arena_bs_count(s) != want)
			BAD("arena %u block %u: count %u, L holds %u", ai, idx,
			    arena_bs_count(s), want);
		if (arena_bs_owner(s) && arena_bs_owner(s) != who)
			BAD("arena %u block %u: owner %u is gone", ai, idx,
			    arena_bs_owner(s));
		return true;
	case ARENA_BS_MAG:
		if (!who || arena_bs_owner(s) != who)
			BAD("arena %u block %u: reserved by %u", ai, idx,
			    arena_bs_owner(s));
		/* fall through */
	case ARENA_BS_FREE:
		if (want)
			BAD("arena %u block %u: L holds it, its word says %s",
			    ai, idx, arena_bs_state(s) ? "MAG" : "FREE");
		return true;
	default:
		BAD("arena %u block %u: bad word %#llx", ai, idx,
		    (unsigned long long)s);
	}
}

static bool fixed_ok(const struct lib_arena *a, uint32_t who, char *why,
		     size_t cap)
{
	uint64_t s, bits;
	uint32_t i;

	for (i = 0; i < a->nblocks; i++) {
		s = atomic_load(&a->state[i]);
		if (!word_ok(s, a->index, i, who, why, cap))
			return false;
		bits = __atomic_load_n(&a->bitmap[i / 64].bits,
				       __ATOMIC_ACQUIRE);
		if (arena_bs_state(s) == ARENA_BS_FREE &&
		    !(bits >> (i % 64) & 1))
			BAD("fixed arena %u slot %u: free, its bit clear",
			    a->index, i);
	}
	return true;
}

static bool buddy_ok(const struct lib_arena *a, uint32_t who, char *why,
		     size_t cap)
{
	const struct arena_buddy_geom g = { .max_order = a->max_order };
	uint64_t len = arena_buddy_tree_len(&g), s, i;
	uint8_t *t = calloc(1, len);
	bool ok = true;

	assert_non_null(t);
	for (i = 0; i < a->nblocks && ok; i++) {
		s = atomic_load(&a->state[i]);
		ok = word_ok(s, a->index, (uint32_t)i, who, why, cap);
		if (ok && arena_bs_state(s) != ARENA_BS_FREE &&
		    arena_buddy_mark(t, &g, (uint32_t)i, a->order[i])) {
			snprintf(why, cap, "buddy block %llu overlaps",
				 (unsigned long long)i);
			ok = false;
		}
	}
	for (i = 1; i < len && ok; i++) {
		if (a->tree[i] == t[i])
			continue;
		snprintf(why, cap,
			 "buddy tree node %llu is %#x, the blocks held say "
			 "%#x",
			 (unsigned long long)i, a->tree[i], t[i]);
		ok = false;
	}
	free(t);
	return ok;
}

static bool chunk_ok(const struct lib_arena *a, uint32_t ci, uint32_t who,
		     char *why, size_t cap)
{
	uint64_t w = atomic_load((_Atomic uint64_t *)&a->bump->chunks[ci].word);
	uint64_t base = (uint64_t)ci << a->shift, off, next, s;
	uint64_t walked = 0, live = 0;
	uint32_t gen = arena_bump_gen(w);

	if (arena_bump_state(w) == ARENA_BUMP_FREE)
		return true;
	for (off = 0; arena_bump_header(a->data + base, off, a->block_size, gen,
					&s, &next);
	     off = next, walked++) {
		if (!word_ok(s, a->index, (uint32_t)((base + off) >> 3), who,
			     why, cap))
			return false;
		if (arena_bs_state(s) == ARENA_BS_ALLOC)
			live++;
	}
	if (arena_bump_state(w) == ARENA_BUMP_RETIRED &&
	    arena_bump_count(w) != live)
		BAD("bump chunk %u: retired with %llu live, its headers say "
		    "%llu",
		    ci, (unsigned long long)arena_bump_count(w),
		    (unsigned long long)live);
	if (arena_bump_state(w) == ARENA_BUMP_OWNED &&
	    (arena_bump_owner(w) != who ||
	     arena_bump_count(w) != walked - live))
		BAD("bump chunk %u: owned by %u with %llu frees; %llu "
		    "headers, %llu live",
		    ci, arena_bump_owner(w),
		    (unsigned long long)arena_bump_count(w),
		    (unsigned long long)walked, (unsigned long long)live);
	return true;
}

/* Every arena holds exactly what L holds (who: L's id, or 0: nothing). */
static bool region_ok(struct arena_client *c, uint32_t who, char *why,
		      size_t cap)
{
	const struct lib_arena *a;
	uint32_t i, ci;

	for (i = 0; i < c->narenas; i++) {
		a = &c->arenas[i];
		if (a->kind == ARENA_PROTO_KIND_FIXED &&
		    !fixed_ok(a, who, why, cap))
			return false;
		if (a->kind == ARENA_PROTO_KIND_BUDDY &&
		    !buddy_ok(a, who, why, cap))
			return false;
		if (a->kind != ARENA_PROTO_KIND_BUMP)
			continue;
		for (ci = 0; ci < a->nwords; ci++)
			if (!chunk_ok(a, ci, who, why, cap))
				return false;
	}
	return true;
}

/* The statistics count L's blocks, by arena. */
static void stats_check(const char *what)
{
	struct arena_proto_handle ph;
	uint64_t want[ARENA_PROTO_MAX_ARENAS] = { 0 };
	const struct lib_arena *a;
	struct tstat s;
	uint32_t i;

	for (i = 0; i < L.n; i++) {
		if (!L.b[i].refs)
			continue;
		arena_proto_handle_unpack(L.b[i].h, &ph);
		a = &L.c->arenas[ph.arena];
		if (a->kind == ARENA_PROTO_KIND_BUDDY)
			want[ph.arena] += arena_size(L.c, L.b[i].h) / BUDDY_MIN;
		else if (a->kind == ARENA_PROTO_KIND_FIXED)
			want[ph.arena]++;
	}
	assert_int_equal(tstat_get(d.sock, &s), 0);
	for (i = 0; i < s.narenas; i++) {
		if (s.a[i].kind == ARENA_PROTO_KIND_BUMP)
			continue;
		if (s.a[i].in_use != want[i])
			fail_msg("%s: arena %u in use %llu, L holds %llu", what,
				 i, (unsigned long long)s.a[i].in_use,
				 (unsigned long long)want[i]);
	}
}

static void audit_check(const char *what)
{
	const char *argv[] = { NULL, "--socket", d.sock, "audit", NULL };
	char path[512], out[4096], err[4096];
	int st;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	argv[0] = path;
	assert_int_equal(
		harness_run(argv, &st, out, sizeof(out), err, sizeof(err)), 0);
	if (st != 0)
		fail_msg("%s: arenactl audit exited %d:\n%s%s", what, st, out,
			 err);
}

/* After the child is gone: exactly L's, intact; then entirely free. */
static void after_death(const char *what)
{
	char why[256] = "";
	bool ok = true;
	uint32_t i;

	wait_clients(2);
	if (!region_ok(L.c, L.c->id, why, sizeof(why)))
		fail_msg("%s: %s", what, why);
	stats_check(what);
	for (i = 0; i < L.n; i++)
		if (L.b[i].refs)
			pattern(L.c, &L.b[i], false, &ok);
	if (!ok)
		fail_msg("%s: the live client's data changed", what);
	audit_check(what);
	for (i = 0; i < L.n; i++)
		while (L.b[i].refs)
			live_unref(L.b[i].h);
	arena_disconnect(L.c);
	L.c = NULL;
	wait_clients(1);
	if (!region_ok(watcher, 0, why, sizeof(why)))
		fail_msg("%s, all dropped: %s", what, why);
	audit_check(what);
}

static bool site_new(const uint64_t *sites, unsigned long k)
{
	unsigned long i;

	for (i = 0; i + 1 < k; i++)
		if (sites[i] == sites[k - 1])
			return false;
	return true;
}

static unsigned long steps_budget(void)
{
	const char *s = getenv("ARENA_CRASH_STEPS");

	return s ? strtoul(s, NULL, 10) : CRASH_STEPS;
}

/* Crash at k (or run to the end for k 0) and check. */
static void one(const struct scenario *sc, unsigned long k, struct outcome *o)
{
	char what[128];

	snprintf(what, sizeof(what), "%s, crash point %lu", sc->name, k);
	live_setup();
	run_child(sc, k, o);
	if (k && o->status != -1)
		fail_msg("%s: the child did not die there (status %d)", what,
			 o->status);
	if (!k && o->status != 0)
		fail_msg("%s: the dry run failed (status %d)", what, o->status);
	after_death(what);
}

static void crash_scenario(void **state)
{
	const struct scenario *sc = *state;
	struct outcome dry = { 0 }, o = { 0 };
	unsigned long n, k, budget = steps_budget(), runs = 0, sites = 0;

	dry.sites = calloc(MAX_SITES, sizeof(*dry.sites));
	assert_non_null(dry.sites);
	one(sc, 0, &dry);
	n = dry.n < MAX_SITES ? dry.n : MAX_SITES;
	assert_true(n > 0);
	for (k = 1; k <= n; k++) {
		bool fresh = site_new(dry.sites, k);

		if (getenv("ARENA_CRASH_ONLY") &&
		    strtoul(getenv("ARENA_CRASH_ONLY"), NULL, 10) != k)
			continue;

		sites += fresh;
		if (!fresh && budget && n > budget &&
		    (k * budget) / n == ((k - 1) * budget) / n)
			continue;
		one(sc, k, &o);
		runs++;
	}
	fprintf(stderr, "  %s: %lu crash points at %lu sites, %lu crashed at\n",
		sc->name, n, sites, runs);
	free(dry.sites);
}

/* A test that failed left L attached: let the next one start clean. */
static int test_setup(void **state)
{
	if (L.c) {
		arena_disconnect(L.c);
		L.c = NULL;
	}
	return 0;
}

static int group_setup(void **state)
{
	int err;

	unsetenv("ARENA_CRASH_AT");
	signal(SIGPIPE, SIG_IGN);
	err = harness_daemon_start(&d, daemon_args);
	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	return arena_connect(d.sock, &watcher) ? -1 : 0;
}

static int group_teardown(void **state)
{
	int repaired = harness_log_contains(&d, "buddy tree repaired");

	arena_disconnect(watcher);
	if (repaired)
		fprintf(stderr, "the daemon had to repair the buddy tree\n");
	return harness_daemon_stop(&d) || repaired ? -1 : 0;
}

#define SCENARIO(name, i)                                                      \
	{                                                                      \
		name, crash_scenario, test_setup, NULL, (void *)&scenarios[i]  \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		SCENARIO("refill", 0),	   SCENARIO("drain", 1),
		SCENARIO("ref", 2),	   SCENARIO("unref", 3),
		SCENARIO("last_unref", 4), SCENARIO("buddy", 5),
		SCENARIO("bump", 6),	   SCENARIO("rollback", 7),
		SCENARIO("disconnect", 8),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
