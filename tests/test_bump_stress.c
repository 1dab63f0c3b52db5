// SPDX-License-Identifier: MIT
/*
 * The bump arena under 4 processes: each allocates blocks of random sizes
 * (16 B .. 4 KiB), tags every word of each (process, sequence, word
 * index), holds them in a window of up to 16 and frees them in random
 * order after checking the tags, and now and then offers one to the
 * others through a shared table of slots.  A process that takes an offer
 * takes its own reference, checks the tags, keeps the block in its window
 * like its own and frees it later; the giver drops its reference once it
 * sees the slot emptied.  Now and then a process also opens a
 * checkpoint, makes a few private allocations and rolls them back.
 *
 * Two allocations that overlap, a chunk recycled while a handle into it
 * is live, or a reference lost on the way show up as a tag somebody else
 * wrote, or as -ESTALE.  An allocation that finds no chunk free frees one
 * block of the window and retries (counted, not an error).  When every
 * process has freed everything and detached, every chunk must be free
 * again and no byte allocated, by the daemon's statistics.
 *
 * N is $ARENA_STRESS_N operations per process, else 400,000, else 20,000
 * in a sanitizer build.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) ||           \
	__has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_N_DEFAULT 20000
#else
#define STRESS_N_DEFAULT 200000
#endif

#define NPROC 4
#define WINDOW 16
#define SLOTS 4 /* offers per process */
#define TAKING 1ull
#define CHILD_MS 240000
#define NCHUNKS 128u

static const char *const daemon_args[] = { "--size", "64M",	      "--bump",
					   "8M:64K", "--max-clients", "8",
					   NULL };

static struct harness_daemon d;
static long stress_n;

struct shared {
	uint64_t slot[NPROC][SLOTS]; /* 0, an offered handle, or TAKING */
	uint64_t stop_taking;
	uint64_t allocs[NPROC];
	uint64_t full[NPROC];
	uint64_t taken[NPROC];
};

static struct shared *sh;

static int group_setup(void **state)
{
	const char *n = getenv("ARENA_STRESS_N");

	stress_n = n ? strtol(n, NULL, 10) : STRESS_N_DEFAULT;
	if (stress_n <= 0)
		stress_n = STRESS_N_DEFAULT;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	return harness_daemon_start(&d, daemon_args) ? -1 : 0;
}

static int group_teardown(void **state)
{
	munmap(sh, sizeof(*sh));
	return harness_daemon_stop(&d) ? -1 : 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void tag(uint64_t *p, size_t size, uint64_t t)
{
	size_t i;

	for (i = 0; i < size / 8; i++)
		p[i] = t ^ i;
}

/* The block's tags are intact: 0, or which word is wrong plus one. */
static size_t tag_bad(const uint64_t *p, size_t size)
{
	size_t i;

	for (i = 1; i < size / 8; i++)
		if (p[i] != (p[0] ^ i))
			return i + 1;
	return 0;
}

struct proc {
	struct arena_client *c;
	uint32_t me;
	uint64_t seed, seq;
	arena_handle_t win[WINDOW];
	uint32_t n;
	arena_handle_t gift[SLOTS]; /* what our slot k was given */
};

static int drop(struct proc *p, uint32_t k)
{
	arena_handle_t h = p->win[k];
	void *q = arena_ptr(p->c, h);

	if (!q)
		return 10;
	if (tag_bad(q, arena_size(p->c, h) & ~(size_t)7))
		return 11;
	if (arena_unref(p->c, h))
		return 12;
	p->win[k] = p->win[--p->n];
	return 0;
}

static int alloc_one(struct proc *p, arena_handle_t *out)
{
	size_t size = 16 + (rnd(&p->seed) % 4081);
	int err, tries;

	size &= ~(size_t)7;
	for (tries = 0;; tries++) {
		err = arena_alloc(p->c, ARENA_KIND_BUMP, size, out);
		if (err != -ENOMEM || p->n == 0 || tries > WINDOW)
			break;
		__atomic_fetch_add(&sh->full[p->me], 1, __ATOMIC_RELAXED);
		if ((err = drop(p, 0)))
			return err;
	}
	if (err)
		return 20;
	tag(arena_ptr(p->c, *out), size, (uint64_t)p->me << 56 | ++p->seq << 8);
	__atomic_fetch_add(&sh->allocs[p->me], 1, __ATOMIC_RELAXED);
	return 0;
}

/* Gifts whose slot was emptied by a taker: our reference goes. */
static int gifts_settle(struct proc *p, bool all)
{
	uint64_t *s, v;
	uint32_t k;

	for (k = 0; k < SLOTS; k++) {
		if (!p->gift[k])
			continue;
		s = &sh->slot[p->me][k];
		v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
		if (v == p->gift[k] && all &&
		    __atomic_compare_exchange_n(s, &v, 0, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			v = 0; /* taken back */
		if (v != 0)
			continue;
		if (arena_unref(p->c, p->gift[k]))
			return 30;
		p->gift[k] = 0;
	}
	return 0;
}

static int offer(struct proc *p)
{
	uint32_t k = (uint32_t)(rnd(&p->seed) % SLOTS);
	arena_handle_t h;

	if (p->gift[k] || p->n == 0)
		return 0;
	h = p->win[--p->n]; /* leaves the window, still referenced */
	p->gift[k] = h;
	__atomic_store_n(&sh->slot[p->me][k], h, __ATOMIC_RELEASE);
	return 0;
}

static int take(struct proc *p)
{
	uint32_t from = (uint32_t)(rnd(&p->seed) % NPROC);
	uint32_t k = (uint32_t)(rnd(&p->seed) % SLOTS);
	uint64_t *s = &sh->slot[from][k], v;
	void *q;
	int err;

	if (from == p->me || p->n == WINDOW)
		return 0;
	v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
	if (v == 0 || v == TAKING ||
	    !__atomic_compare_exchange_n(s, &v, TAKING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0;
	err = arena_ref(p->c, v);
	__atomic_store_n(s, 0, __ATOMIC_RELEASE); /* the giver may let go */
	if (err)
		return 40;
	q = arena_ptr(p->c, v);
	if (!q || tag_bad(q, arena_size(p->c, v) & ~(size_t)7))
		return 41;
	p->win[p->n++] = v;
	__atomic_fetch_add(&sh->taken[p->me], 1, __ATOMIC_RELAXED);
	return 0;
}

/* A private scope: a few allocations, checked, rolled back. */
static int scope(struct proc *p)
{
	arena_bump_checkpoint_t cp;
	arena_handle_t h[8];
	int i, err;

	if (arena_bump_checkpoint(p->c, &cp))
		return 50;
	for (i = 0; i < 8; i++) {
		err = arena_alloc(p->c, ARENA_KIND_BUMP, 64, &h[i]);
		if (err == -ENOMEM)
			break;
		if (err)
			return 51;
		tag(arena_ptr(p->c, h[i]), 64, (uint64_t)p->me << 56 | 0xff);
	}
	while (i-- > 0)
		if (tag_bad(arena_ptr(p->c, h[i]), 64))
			return 52;
	err = arena_bump_rollback(p->c, cp);
	if (err)
		fprintf(stderr, "rollback: %s\n", strerror(-err));
	return err ? 53 : 0;
}

static int child(void *arg)
{
	struct proc p = { .me = (uint32_t)(uintptr_t)arg };
	arena_handle_t h;
	long i;
	int err = 0, r;

	tstat_child_init();
	p.seed = 0x9e3779b97f4a7c15ull * (p.me + 1);
	if (arena_connect(d.sock, &p.c))
		return 2;
	for (i = 0; i < stress_n && !err; i++) {
		r = (int)(rnd(&p.seed) % 100);
		if (r < 45 && p.n < WINDOW) {
			err = alloc_one(&p, &h);
			if (!err)
				p.win[p.n++] = h;
		} else if (r < 80 && p.n) {
			err = drop(&p, (uint32_t)(rnd(&p.seed) % p.n));
		} else if (r < 88) {
			err = offer(&p);
		} else if (r < 97) {
			err = take(&p);
		} else {
			err = scope(&p);
		}
		if (!err && i % 64 == 0)
			err = gifts_settle(&p, false);
	}
	while (!err && p.n)
		err = drop(&p, p.n - 1);
	/* offers nobody took are taken back; wait for takers under way */
	for (i = 0; !err && i < 100000; i++) {
		err = gifts_settle(&p, true);
		for (r = 0; r < SLOTS && !p.gift[r]; r++)
			;
		if (r == SLOTS)
			break;
		usleep(100);
	}
	if (err)
		fprintf(stderr, "process %u: error %d at op %ld\n", p.me, err,
			i);
	arena_disconnect(p.c);
	return err;
}

static int all_gone(const struct tstat *s, void *arg)
{
	return s->nclients == 0;
}

static void four_processes(void **state)
{
	pid_t pid[NPROC];
	struct tstat s;
	uint64_t allocs = 0;
	uint32_t i, b = 0;

	for (i = 0; i < NPROC; i++) {
		pid[i] = harness_fork(child, (void *)(uintptr_t)i);
		assert_true(pid[i] > 0);
	}
	for (i = 0; i < NPROC; i++)
		assert_int_equal(harness_wait(pid[i], CHILD_MS), 0);
	assert_int_equal(tstat_wait(d.sock, &s, all_gone, NULL, 10000), 0);
	for (i = 0; i < s.narenas; i++)
		if (s.a[i].kind == ARENA_KIND_BUMP)
			b = i;
	assert_int_equal(s.a[b].kind, ARENA_KIND_BUMP);
	assert_int_equal(s.a[b].capacity, NCHUNKS);
	assert_int_equal(s.a[b].chunks_free, NCHUNKS);
	assert_int_equal(s.a[b].in_use, 0);
	assert_int_equal(s.a[b].cached, 0);
	assert_int_equal(s.a[b].bytes, 0);
	for (i = 0; i < NPROC; i++) {
		allocs += sh->allocs[i];
		assert_true(sh->taken[i] > 0);
	}
	/* the scopes' allocations are counted by the daemon too */
	assert_true(s.a[b].allocs >= allocs);
	assert_int_equal(s.a[b].frees, s.a[b].allocs);
	fprintf(stderr,
		"bump stress: %ld ops x %d processes, %llu allocations, "
		"%llu taken from others, %llu -ENOMEM retries\n",
		stress_n, NPROC, (unsigned long long)allocs,
		(unsigned long long)(sh->taken[0] + sh->taken[1] +
				     sh->taken[2] + sh->taken[3]),
		(unsigned long long)(sh->full[0] + sh->full[1] + sh->full[2] +
				     sh->full[3]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(four_processes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
