// SPDX-License-Identifier: MIT
/*
 * Channels under load: producers and consumers in separate processes
 * (one and one, then two and two) exchange 1,000,000 handles over one
 * channel.  Every block carries a payload of 64 to 4096 bytes derived
 * from (producer, sequence) and a checksum over it; consumers check the
 * checksum in place, that each producer's messages reach them in the
 * order sent, and count every message in shared memory, so that the
 * parent can check that each was delivered exactly once.  Afterwards
 * every block is back in its arena (the daemon's statistics say so).
 *
 * Under sanitizers (ASan/UBSan, TSan) the count is 100,000: the same
 * code paths, a tenth of the run time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define TOTAL 100000u
#else
#define TOTAL 1000000u
#endif
#define WAIT_MS 120000
#define CAP 1024

static struct harness_daemon d;
static uint64_t base_in_use;
static _Atomic uint8_t *seen; /* [producer][seq], shared with children */

struct role {
	unsigned who;	   /* producer or consumer number */
	unsigned nprod;	   /* producers */
	unsigned per_prod; /* messages each producer sends */
	unsigned to_recv;  /* messages this consumer takes */
	const char *name;  /* channel */
};

static int group_setup(void **state)
{
	struct tstat s;

	if (harness_daemon_start(&d, NULL))
		return -1;
	if (tstat_get(d.sock, &s))
		return -1;
	base_in_use = tstat_in_use(&s);
	seen = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return seen == MAP_FAILED ? -1 : 0;
}

static int group_teardown(void **state)
{
	munmap((void *)seen, TOTAL);
	return harness_daemon_stop(&d) ? -1 : 0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Payload: [0] producer << 32 | seq, [1] length, [2] checksum, bytes. */
static size_t length_of(uint64_t tag)
{
	return 64 + (size_t)(mix(tag) % (4096 - 64 + 1));
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void fill(uint64_t *w, uint64_t tag, size_t n)
{
	uint8_t *b = (uint8_t *)(w + 3);
	uint64_t x = mix(tag + 1);
	size_t i;

	for (i = 0; i < n - 24; i++) {
		b[i] = (uint8_t)x;
		x = x >> 8 | x << 56;
		if ((i & 7) == 7)
			x = mix(x);
	}
	w[0] = tag;
	w[1] = n;
	w[2] = checksum(b, n - 24);
}

static int producer(void *arg)
{
	const struct role *r = arg;
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;
	uint64_t tag;
	unsigned i;
	size_t n;
	int err;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, r->name, CAP, &ch))
		return 1;
	for (i = 0; i < r->per_prod; i++) {
		tag = (uint64_t)r->who << 32 | i;
		n = length_of(tag);
		while ((err = arena_alloc(c, ARENA_KIND_AUTO, n, &h)) ==
		       -ENOMEM)
			tstat_sleep_ms(1);
		if (err)
			return 2;
		fill(arena_ptr(c, h), tag, n);
		if (arena_chan_send_wait(ch, h, WAIT_MS))
			return 3;
	}
	arena_chan_close(ch);
	arena_disconnect(c);
	return 0;
}

static int consumer(void *arg)
{
	const struct role *r = arg;
	struct arena_client *c;
	struct arena_chan *ch;
	int64_t last[4] = { -1, -1, -1, -1 };
	arena_handle_t h;
	uint64_t *w;
	unsigned i, p, seq;

	tstat_child_init();
	if (arena_connect(NULL, &c) || arena_chan_open(c, r->name, CAP, &ch))
		return 1;
	for (i = 0; i < r->to_recv; i++) {
		if (arena_chan_recv(ch, &h, WAIT_MS))
			return 2;
		w = arena_ptr(c, h);
		if (!w)
			return 3;
		p = (unsigned)(w[0] >> 32);
		seq = (unsigned)w[0];
		if (p >= r->nprod || seq >= r->per_prod)
			return 4;
		if (w[1] != length_of(w[0]) || w[1] > arena_size(c, h) ||
		    checksum((uint8_t *)(w + 3), w[1] - 24) != w[2])
			return 5; /* payload damaged */
		if ((int64_t)seq <= last[p])
			return 6; /* out of order for its producer */
		last[p] = seq;
		atomic_fetch_add(&seen[(size_t)p * r->per_prod + seq], 1);
		if (arena_unref(c, h))
			return 7;
	}
	arena_chan_close(ch);
	arena_disconnect(c);
	return 0;
}

static int all_back(const struct tstat *s, void *arg)
{
	return tstat_in_use(s) == base_in_use && s->nclients == 0;
}

static void run(unsigned nprod, unsigned ncons, const char *name)
{
	struct role pr[2], cr[2];
	pid_t pid[4];
	struct tstat s;
	unsigned i, np = 0;
	long long t0 = tstat_now_ms();

	memset((void *)seen, 0, TOTAL);
	for (i = 0; i < nprod; i++) {
		pr[i] = (struct role){ .who = i,
				       .nprod = nprod,
				       .per_prod = TOTAL / nprod,
				       .name = name };
		pid[np++] = harness_fork(producer, &pr[i]);
	}
	for (i = 0; i < ncons; i++) {
		cr[i] = (struct role){ .who = i,
				       .nprod = nprod,
				       .per_prod = TOTAL / nprod,
				       .to_recv = TOTAL / ncons,
				       .name = name };
		pid[np++] = harness_fork(consumer, &cr[i]);
	}
	for (i = 0; i < np; i++) {
		assert_true(pid[i] > 0);
		assert_int_equal(harness_wait(pid[i], WAIT_MS), 0);
	}
	for (i = 0; i < TOTAL; i++)
		if (seen[i] != 1)
			fail_msg("message %u delivered %u times", i,
				 (unsigned)seen[i]);
	assert_int_equal(tstat_wait(d.sock, &s, all_back, NULL, 10000), 0);
	print_message("%u handles, %u+%u processes: %lld ms\n", TOTAL, nprod,
		      ncons, tstat_now_ms() - t0);
}

static void two_processes(void **state)
{
	run(1, 1, "stress2");
}

static void four_processes(void **state)
{
	run(2, 2, "stress4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_processes),
		cmocka_unit_test(four_processes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
