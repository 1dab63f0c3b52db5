// SPDX-License-Identifier: MIT
/*
 * The bump arena through the public API, against a real daemon: sizes
 * and 16-byte alignment, chunk roll-over, -E2BIG and -ENOMEM, the chunk
 * accounting that arenactl shows, checkpoint/rollback nested three deep,
 * a rollback while another process holds one of the allocations (it
 * stays valid, the rest is reusable), stale handles into chunks that went
 * back and were reused, and a client that dies holding chunks.
 *
 * The arena is 32 chunks of 64 KiB, so that roll-over and exhaustion are
 * quick; every test ends with every chunk free again, which the next one
 * checks first.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tclient.h"
#include "tstat.h"

#define WAIT_MS 10000
#define CHUNK (64u << 10)
#define NCHUNKS 32u
#define MAX_ALLOC (CHUNK - 16u)

static const char *const daemon_args[] = { "--size", "64M",	      "--bump",
					   "2M:64K", "--max-clients", "4",
					   NULL };

static struct harness_daemon d;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, daemon_args);

	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	return harness_daemon_stop(&d) ? -1 : 0;
}

static unsigned bump_index(struct arena_client *c)
{
	struct arena_info inf;
	unsigned i;

	for (i = 0; arena_info(c, i, &inf) == 0; i++)
		if (inf.kind == ARENA_KIND_BUMP) {
			assert_int_equal(inf.block_size, CHUNK);
			assert_int_equal(inf.capacity, NCHUNKS);
			return i;
		}
	fail_msg("no bump arena");
	return 0;
}

static arena_handle_t balloc(struct arena_client *c, size_t size)
{
	arena_handle_t h = ARENA_HANDLE_NULL;
	int err = arena_alloc(c, ARENA_KIND_BUMP, size, &h);

	if (err)
		fail_msg("arena_alloc(%zu): %s", size, strerror(-err));
	assert_non_null(arena_ptr(c, h));
	return h;
}

/* The bump arena's row, over the wire and from arenactl --json alike. */
static struct tstat_arena row(void)
{
	struct tstat s, j;
	unsigned i;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(tstat_ctl(d.sock, &j), 0);
	for (i = 0; i < s.narenas; i++)
		if (s.a[i].kind == ARENA_KIND_BUMP) {
			assert_int_equal(j.a[i].chunks_free,
					 s.a[i].chunks_free);
			assert_int_equal(j.a[i].in_use, s.a[i].in_use);
			assert_int_equal(j.a[i].cached, s.a[i].cached);
			assert_int_equal(j.a[i].bytes, s.a[i].bytes);
			assert_int_equal(s.a[i].capacity, NCHUNKS);
			assert_int_equal(s.a[i].chunks_free + s.a[i].in_use +
						 s.a[i].cached,
					 NCHUNKS);
			return s.a[i];
		}
	fail_msg("no bump arena in the statistics");
	return s.a[0];
}

static void chunks_are(uint64_t free, uint64_t in_use, uint64_t retired,
		       uint64_t bytes)
{
	struct tstat_arena a = row();

	if (a.chunks_free != free || a.in_use != in_use ||
	    a.cached != retired || a.bytes != bytes)
		fail_msg("chunks free %llu in use %llu retired %llu, bytes "
			 "%llu; expected %llu %llu %llu %llu",
			 (unsigned long long)a.chunks_free,
			 (unsigned long long)a.in_use,
			 (unsigned long long)a.cached,
			 (unsigned long long)a.bytes, (unsigned long long)free,
			 (unsigned long long)in_use,
			 (unsigned long long)retired,
			 (unsigned long long)bytes);
}

static void all_free(void)
{
	chunks_are(NCHUNKS, 0, 0, 0);
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

/* ---- sizes, alignment, limits ---- */

static void sizes_and_alignment(void **state)
{
	static const size_t sizes[] = { 1,    15,   16,	  17,	 31,
					32,   33,   64,	  100,	 1000,
					4095, 4096, 4097, 12345, MAX_ALLOC };
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[sizeof(sizes) / sizeof(sizes[0])], x;
	uint8_t *p[sizeof(sizes) / sizeof(sizes[0])];
	uint64_t bytes = 0;
	size_t i, k;

	bump_index(c);
	all_free();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		h[i] = balloc(c, sizes[i]);
		p[i] = arena_ptr(c, h[i]);
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		assert_int_equal(arena_size(c, h[i]), sizes[i]);
		memset(p[i], (int)i + 1, sizes[i]);
		bytes += (sizes[i] + 15) & ~(size_t)15;
	}
	/* nothing overlaps: every byte still says whose it is */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (k = 0; k < sizes[i]; k++)
			if (p[i][k] != (uint8_t)(i + 1))
				fail_msg("allocation %zu byte %zu overwritten",
					 i, k);
	assert_int_equal(row().bytes, bytes);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, MAX_ALLOC + 1, &x),
			 -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, CHUNK, &x), -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, SIZE_MAX, &x), -E2BIG);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 0, &x), -EINVAL);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(arena_unref(c, h[i]), 0);
		assert_int_equal(arena_unref(c, h[i]), -ESTALE);
	}
	tcl_disc(c);
	all_free();
}

/* Allocations of 1000 B roll over from chunk to chunk; memory by chunk. */
static void roll_over(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	const uint32_t per = CHUNK / 1024; /* 16 B header + 1008 */
	arena_handle_t h[300];
	uint64_t chunk, prev = UINT64_MAX;
	uint32_t i, jumps = 0;

	for (i = 0; i < 300; i++) {
		h[i] = balloc(c, 1000);
		/* the index is the header's offset in 8-byte units */
		chunk = (uint64_t)(uint32_t)h[i] * 8 / CHUNK;
		if (prev != UINT64_MAX && chunk != prev)
			jumps++;
		prev = chunk;
	}
	assert_int_equal(jumps, 300 / per); /* a new chunk every 64 */
	/* 4 chunks retired (all referenced), the 5th in use */
	chunks_are(NCHUNKS - 5, 1, 4, 300 * 1008ull);
	/* free the first chunk's allocations: it goes back at once */
	for (i = 0; i < per; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	chunks_are(NCHUNKS - 4, 1, 3, (300 - per) * 1008ull);
	/* the current chunk's allocations: it stays in use */
	for (i = 4 * per; i < 300; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	chunks_are(NCHUNKS - 4, 1, 3, (4 * per - per) * 1008ull);
	for (i = per; i < 4 * per; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	chunks_are(NCHUNKS - 1, 1, 0, 0);
	tcl_disc(c); /* the current chunk is retired empty: free */
	all_free();
}

/* Every chunk taken: -ENOMEM, and the memory comes back by chunk. */
static void exhaustion(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h[NCHUNKS], x;
	uint8_t *p3;
	uint32_t i;

	for (i = 0; i < NCHUNKS; i++)
		h[i] = balloc(c, MAX_ALLOC);
	chunks_are(0, 1, NCHUNKS - 1, (uint64_t)NCHUNKS * MAX_ALLOC);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, 16, &x), -ENOMEM);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUMP, MAX_ALLOC, &x),
			 -ENOMEM);
	/* the full chunk was retired on the way */
	chunks_are(0, 0, NCHUNKS, (uint64_t)NCHUNKS * MAX_ALLOC);
	p3 = arena_ptr(c, h[3]);
	assert_int_equal(arena_unref(c, h[3]), 0);
	x = balloc(c, 100); /* h[3]'s chunk again, its generation moved on */
	assert_ptr_equal(arena_ptr(c, x), p3);
	assert_int_equal((uint32_t)x, (uint32_t)h[3]); /* same header */
	assert_null(arena_ptr(c, h[3]));
	assert_int_equal(arena_unref(c, h[3]), -ESTALE);
	for (i = 0; i < NCHUNKS; i++)
		if (i != 3)
			assert_int_equal(arena_unref(c, h[i]), 0);
	assert_int_equal(arena_unref(c, x), 0);
	tcl_disc(c);
	all_free();
}

/* ---- checkpoint and rollback ---- */

static void nested_rollback(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_bump_checkpoint_t cp0, cp1, cp2, bad;
	arena_handle_t keep, a[40], b[200], e[10], x;
	uint8_t *first_b, *first_e;
	int i;

	keep = balloc(c, 64);
	memset(arena_ptr(c, keep), 0x33, 64);
	assert_int_equal(arena_bump_checkpoint(c, &cp0), 0);
	for (i = 0; i < 40; i++)
		a[i] = balloc(c, 48);
	assert_int_equal(arena_bump_checkpoint(c, &cp1), 0);
	first_b = NULL;
	for (i = 0; i < 200; i++) { /* 200 x 1 KiB: over three chunks */
		b[i] = balloc(c, 1024);
		if (!first_b)
			first_b = arena_ptr(c, b[i]);
	}
	assert_int_equal(arena_bump_checkpoint(c, &cp2), 0);
	for (i = 0; i < 10; i++)
		e[i] = balloc(c, 200);
	first_e = arena_ptr(c, e[0]);
	chunks_are(NCHUNKS - 4, 1, 3, 64 + 40 * 48 + 200 * 1024 + 10 * 208);

	/* innermost: the cursor moves back, the same memory comes again */
	assert_int_equal(arena_bump_rollback(c, cp2), 0);
	for (i = 0; i < 10; i++)
		assert_null(arena_ptr(c, e[i]));
	x = balloc(c, 200);
	assert_ptr_equal(arena_ptr(c, x), first_e);
	assert_int_equal(arena_unref(c, x), 0);
	assert_int_equal(arena_bump_rollback(c, cp2), 0);

	/* middle: whole chunks reserved since go back */
	assert_int_equal(arena_bump_rollback(c, cp1), 0);
	for (i = 0; i < 200; i++)
		assert_null(arena_ptr(c, b[i]));
	chunks_are(NCHUNKS - 1, 1, 0, 64 + 40 * 48); /* back in the first */
	for (i = 0; i < 40; i++)
		assert_non_null(arena_ptr(c, a[i]));
	x = balloc(c, 1024);
	assert_ptr_equal(arena_ptr(c, x), first_b);

	/* outermost */
	assert_int_equal(arena_bump_rollback(c, cp0), 0);
	assert_null(arena_ptr(c, x));
	for (i = 0; i < 40; i++)
		assert_null(arena_ptr(c, a[i]));
	chunks_are(NCHUNKS - 1, 1, 0, 64);
	assert_memory_equal(arena_ptr(c, keep),
			    (uint8_t[64]){ [0 ... 63] = 0x33 }, 64);

	/* a checkpoint that is not one of this thread's */
	bad.v[0] = 1000;
	bad.v[1] = 0;
	assert_int_equal(arena_bump_rollback(c, bad), -EINVAL);
	bad = cp0;
	bad.v[1] += 8;
	assert_int_equal(arena_bump_rollback(c, bad), -EINVAL);
	assert_int_equal(arena_bump_checkpoint(c, NULL), -EINVAL);
	assert_int_equal(arena_bump_checkpoint(NULL, &bad), -EINVAL);
	assert_int_equal(arena_bump_rollback(NULL, cp0), -EINVAL);

	assert_int_equal(arena_unref(c, keep), 0);
	tcl_disc(c);
	all_free();
}

/* A checkpoint before the thread's first chunk rolls everything back. */
static void rollback_from_nothing(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_bump_checkpoint_t cp;
	int i;

	assert_int_equal(arena_bump_checkpoint(c, &cp), 0);
	for (i = 0; i < 100; i++)
		balloc(c, 2000);
	assert_int_equal(arena_bump_rollback(c, cp), 0);
	all_free();
	tcl_disc(c);
	all_free();
}

/* ---- sharing with another process ---- */

struct pipes {
	int up[2], down[2];
};

/* Takes a reference to the handle it is sent, checks it, drops it. */
static int child_shares(void *arg)
{
	struct pipes *pp = arg;
	struct arena_client *c;
	arena_handle_t h;
	uint8_t *p;
	char go;
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 2;
	if (read(pp->down[0], &h, sizeof(h)) != sizeof(h))
		return 3;
	if (arena_ref(c, h))
		return 4;
	if (write(pp->up[1], "r", 1) != 1)
		return 5;
	if (read(pp->down[0], &go, 1) != 1) /* the parent rolled back */
		return 6;
	p = arena_ptr(c, h);
	if (!p || arena_size(c, h) != 500)
		return 7;
	for (i = 0; i < 500; i++)
		if (p[i] != 0x5c)
			return 8;
	if (arena_unref(c, h) || arena_unref(c, h) != -ESTALE)
		return 9;
	arena_disconnect(c);
	return 0;
}

static void rollback_shared(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_bump_checkpoint_t cp;
	arena_handle_t a, b, e, x;
	uint8_t *pe;
	struct pipes pp;
	char r;
	pid_t pid;

	assert_int_equal(pipe(pp.up), 0);
	assert_int_equal(pipe(pp.down), 0);
	pid = harness_fork(child_shares, &pp);
	assert_true(pid > 0);
	assert_int_equal(arena_bump_checkpoint(c, &cp), 0);
	a = balloc(c, 300);
	b = balloc(c, 500);
	memset(arena_ptr(c, b), 0x5c, 500);
	e = balloc(c, 700);
	pe = arena_ptr(c, e);
	assert_int_equal(write(pp.down[1], &b, sizeof(b)), sizeof(b));
	assert_int_equal(read(pp.up[0], &r, 1), 1);
	assert_int_equal(arena_bump_rollback(c, cp), 0);
	/* ours are gone; the shared one is the child's now */
	assert_null(arena_ptr(c, a));
	assert_null(arena_ptr(c, e));
	assert_non_null(arena_ptr(c, b));
	assert_int_equal(arena_unref(c, b), -EINVAL); /* not ours any more */
	chunks_are(NCHUNKS - 1, 1, 0, 512);
	/* what came after it is reusable at once */
	x = balloc(c, 700);
	assert_ptr_equal(arena_ptr(c, x), pe);
	assert_int_equal(write(pp.down[1], "g", 1), 1);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_null(arena_ptr(c, b));
	chunks_are(NCHUNKS - 1, 1, 0, 704);
	assert_int_equal(arena_unref(c, x), 0);
	tcl_disc(c);
	all_free();
	close(pp.up[0]);
	close(pp.up[1]);
	close(pp.down[0]);
	close(pp.down[1]);
}

/* ---- stale handles ---- */

static void stale_handles(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h, forged, more[NCHUNKS * 2];
	uint32_t i, n = 0;

	h = balloc(c, 100);
	/* a forged handle into the middle of an allocation (odd index) */
	forged = h + 1;
	assert_null(arena_ptr(c, forged));
	assert_int_equal(arena_ref(c, forged), -EINVAL);
	assert_int_equal(arena_unref(c, forged), -EINVAL);
	/* roll over, then free: the chunk goes back, h is stale */
	more[n++] = balloc(c, MAX_ALLOC);
	assert_int_equal(arena_unref(c, h), 0);
	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_size(c, h), 0);
	assert_int_equal(arena_ref(c, h), -ESTALE);
	assert_int_equal(arena_unref(c, h), -ESTALE);
	/* take every chunk, the recycled one included: still stale */
	while (n < NCHUNKS * 2 &&
	       arena_alloc(c, ARENA_KIND_BUMP, MAX_ALLOC, &more[n]) == 0) {
		memset(arena_ptr(c, more[n]), 0xff, MAX_ALLOC);
		n++;
	}
	assert_int_equal(n, NCHUNKS);
	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_ref(c, h), -ESTALE);
	assert_int_equal(arena_unref(c, h), -ESTALE);
	for (i = 0; i < n; i++)
		assert_int_equal(arena_unref(c, more[i]), 0);
	tcl_disc(c);
	all_free();
}

/*
 * A handle into a chunk that went back and was reused, where the new
 * contents happen to look like the old header: the chunk's generation
 * still says stale.
 */
static void forged_header(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t a, b, more[NCHUNKS];
	uint64_t word, size, *p;
	uint32_t i, n = 0;

	a = balloc(c, 64); /* header at the chunk's start */
	b = balloc(c, 64); /* header 80 bytes in */
	p = arena_ptr(c, b);
	word = ((uint64_t *)p)[-2];
	size = ((uint64_t *)p)[-1];
	more[n++] = balloc(c, MAX_ALLOC); /* moves on to another chunk */
	assert_int_equal(arena_unref(c, a), 0);
	assert_int_equal(arena_unref(c, b), 0); /* a's chunk goes back */
	while (n < NCHUNKS) {
		more[n] = balloc(c, MAX_ALLOC);
		if ((uint32_t)more[n++] == (uint32_t)a)
			break;
	}
	assert_int_equal((uint32_t)more[n - 1], (uint32_t)a);
	/* the new allocation's bytes where b's header was */
	p = (uint64_t *)((uint8_t *)arena_ptr(c, more[n - 1]) + 64);
	p[0] = word;
	p[1] = size;
	assert_null(arena_ptr(c, b));
	assert_int_equal(arena_ref(c, b), -ESTALE);
	assert_int_equal(arena_unref(c, b), -ESTALE);
	for (i = 0; i < n; i++)
		assert_int_equal(arena_unref(c, more[i]), 0);
	tcl_disc(c);
	all_free();
}

/* ---- a client that dies holding chunks ---- */

static int child_dies(void *arg)
{
	struct pipes *pp = arg;
	struct arena_client *c;
	arena_handle_t h, gift;
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 2;
	for (i = 0; i < 100; i++) /* two retired chunks and a current one */
		if (arena_alloc(c, ARENA_KIND_BUMP, 1500, &h))
			return 3;
	if (arena_alloc(c, ARENA_KIND_BUMP, 256, &gift))
		return 4;
	memset(arena_ptr(c, gift), 0x77, 256);
	if (write(pp->up[1], &gift, sizeof(gift)) != sizeof(gift))
		return 5;
	for (;;)
		pause();
}

static void dead_client(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t gift;
	struct pipes pp;
	uint8_t *p;
	pid_t pid;
	int i;

	assert_int_equal(pipe(pp.up), 0);
	assert_int_equal(pipe(pp.down), 0);
	pid = harness_fork(child_dies, &pp);
	assert_true(pid > 0);
	assert_int_equal(read(pp.up[0], &gift, sizeof(gift)), sizeof(gift));
	assert_int_equal(arena_ref(c, gift), 0);
	chunks_are(NCHUNKS - 3, 1, 2, 100 * 1504ull + 256);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	wait_clients(1);
	/* only the gift's chunk is left, retired, with the gift intact */
	chunks_are(NCHUNKS - 1, 0, 1, 256);
	p = arena_ptr(c, gift);
	assert_non_null(p);
	for (i = 0; i < 256; i++)
		assert_int_equal(p[i], 0x77);
	assert_int_equal(arena_unref(c, gift), 0);
	assert_null(arena_ptr(c, gift));
	all_free();
	tcl_disc(c);
	for (i = 0; i < 2; i++) {
		close(pp.up[i]);
		close(pp.down[i]);
	}
}

/* A client copied by fork() refuses in the child. */
static int child_of_fork(void *arg)
{
	struct arena_client *c = arg;
	arena_bump_checkpoint_t cp = { { 0, 0 } };
	arena_handle_t x;
	int bad = 0;

	tstat_child_init();
	bad += arena_alloc(c, ARENA_KIND_BUMP, 16, &x) != -ECHILD;
	bad += arena_bump_checkpoint(c, &cp) != -ECHILD;
	bad += arena_bump_rollback(c, cp) != -ECHILD;
	return bad;
}

static void forked_copy(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	arena_handle_t h = balloc(c, 32);
	pid_t pid = harness_fork(child_of_fork, c);

	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
	assert_non_null(arena_ptr(c, h));
	assert_int_equal(arena_unref(c, h), 0);
	tcl_disc(c);
	all_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(sizes_and_alignment, tcl_teardown),
		cmocka_unit_test_teardown(roll_over, tcl_teardown),
		cmocka_unit_test_teardown(exhaustion, tcl_teardown),
		cmocka_unit_test_teardown(nested_rollback, tcl_teardown),
		cmocka_unit_test_teardown(rollback_from_nothing, tcl_teardown),
		cmocka_unit_test_teardown(rollback_shared, tcl_teardown),
		cmocka_unit_test_teardown(stale_handles, tcl_teardown),
		cmocka_unit_test_teardown(forged_header, tcl_teardown),
		cmocka_unit_test_teardown(dead_client, tcl_teardown),
		cmocka_unit_test_teardown(forked_copy, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
