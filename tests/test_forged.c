// SPDX-License-Identifier: MIT
/*
 * Forged handles, ten million of them.  A handle is a plain 64-bit value
 * that any process can make up, so arena_ptr, arena_size, arena_ref and
 * arena_unref must take every value without crashing, resolve only the
 * handles of blocks that are allocated, and free nothing.
 *
 * One client holds real blocks in every arena (fixed classes and buddy
 * blocks of several orders), a few of them with extra references in its
 * ledger, and has free slots parked in its magazines.  Values come from a
 * fixed seed, in families: plain random; the right region and arena bits
 * with random index and generation; a real block's arena and index with a
 * random generation; index = nblocks; generation 0; a real handle with
 * one bit flipped; a real block's neighbours (inside a buddy block too);
 * and now and then a real handle itself.  Each goes through two clients
 * (the holder and one that holds nothing).  A value equal to a real
 * handle must resolve to its block, and a reference taken on it is
 * dropped again (the client that holds nothing is then refused a second
 * drop); any other value must give NULL, 0, and -EINVAL or -ESTALE.
 * Every million values, and at the end, the daemon's in_use count must
 * be what it was, and every real block must still hold its pattern.
 *
 * ARENA_FORGED_COUNT overrides the number of values.  Under a sanitizer
 * the default is one million: ASan and TSan make each call several times
 * slower, and the property checked does not depend on the count; the
 * plain build runs the full ten million.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "handle.h"
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
#define DEFAULT_COUNT 1000000ULL
#else
#define DEFAULT_COUNT 10000000ULL
#endif

#define PER_ARENA 8   /* real blocks per fixed arena */
#define MAX_REAL 1024 /* real blocks in all */
#define TABLE 4096    /* hash table of real handles, a power of two */
#define CHECK_EVERY 1000000ULL
#define FAMILIES 8

struct real {
	arena_handle_t h;
	uint8_t *p;
	size_t size;
	uint8_t fill;
};

static struct harness_daemon d;
static struct arena_client *holder, *other;
static struct real real[MAX_REAL];
static unsigned nreal;
static struct real *table[TABLE];
static struct arena_info arenas[ARENA_PROTO_MAX_ARENAS];
static unsigned narenas;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned slot_of(arena_handle_t h)
{
	return (unsigned)((h * 0xff51afd7ed558ccdULL) >> 52) & (TABLE - 1);
}

static struct real *lookup(arena_handle_t h)
{
	unsigned i = slot_of(h);

	while (table[i] && table[i]->h != h)
		i = (i + 1) & (TABLE - 1);
	return table[i];
}

static void add_real(arena_handle_t h, size_t size)
{
	struct real *r = &real[nreal++];
	unsigned i = slot_of(h);

	r->h = h;
	r->p = arena_ptr(holder, h);
	assert_non_null(r->p);
	r->size = arena_size(holder, h);
	assert_true(r->size >= size);
	r->fill = (uint8_t)(0x11 + nreal);
	memset(r->p, r->fill, r->size);
	while (table[i])
		i = (i + 1) & (TABLE - 1);
	table[i] = r;
}

static void alloc_real(enum arena_kind kind, size_t size)
{
	arena_handle_t h;

	assert_true(nreal < MAX_REAL);
	assert_int_equal(arena_alloc(holder, kind, size, &h), 0);
	add_real(h, size);
}

/* Real blocks everywhere, some with ledger references, parked slots. */
static void hold_blocks(void)
{
	static const size_t buddy[] = { 4096, 8192, 65536, 1 << 20, 3 << 20 };
	arena_handle_t parked;
	unsigned a, k;

	while (arena_info(holder, narenas, &arenas[narenas]) == 0)
		narenas++;
	assert_true(narenas > 0);
	for (a = 0; a < narenas; a++) {
		if (arenas[a].kind != ARENA_KIND_FIXED)
			continue;
		for (k = 0; k < PER_ARENA; k++)
			alloc_real(ARENA_KIND_FIXED, arenas[a].block_size);
		/* a freed slot waits in the magazine, its next gen ahead */
		assert_int_equal(arena_alloc(holder, ARENA_KIND_FIXED,
					     arenas[a].block_size, &parked),
				 0);
		assert_int_equal(arena_unref(holder, parked), 0);
	}
	for (k = 0; k < sizeof(buddy) / sizeof(buddy[0]); k++) {
		arena_handle_t h;

		if (arena_alloc(holder, ARENA_KIND_BUDDY, buddy[k], &h))
			continue; /* no buddy arena, or not that large */
		add_real(h, buddy[k]);
	}
	for (k = 0; k < nreal; k += 5) /* references in the ledger */
		assert_int_equal(arena_ref(holder, real[k].h), 0);
}

static int group_setup(void **state)
{
	int err = harness_daemon_start(&d, NULL);

	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	arena_disconnect(other);
	arena_disconnect(holder);
	return harness_daemon_stop(&d) ? -1 : 0;
}

static const struct real *pick_real(void)
{
	return &real[rnd() % nreal];
}

static struct arena_proto_handle unpack(arena_handle_t h)
{
	struct arena_proto_handle p;

	arena_proto_handle_unpack(h, &p);
	return p;
}

static arena_handle_t pack(struct arena_proto_handle p)
{
	return arena_proto_handle_pack(p.region, p.arena, p.gen, p.index);
}

/* The next forged value of family f. */
static arena_handle_t forge(unsigned f)
{
	struct arena_proto_handle p = unpack(pick_real()->h);
	uint64_t r = rnd();
	unsigned a = (unsigned)(r % (narenas + 2));

	switch (f) {
	case 0:
		return r;
	case 1: /* right region and arena bits, random index and gen */
		p.arena = a;
		p.index =
			(uint32_t)((r >> 8) %
				   (a < narenas ? arenas[a].capacity + 2 : 64));
		p.gen = (uint32_t)(r >> 40);
		break;
	case 2: /* a real block's arena and index, any generation */
		p.gen = (uint32_t)(r >> 8);
		break;
	case 3: /* one past the last index */
		p.arena = a % narenas;
		p.index = (uint32_t)arenas[p.arena].capacity;
		p.gen = (uint32_t)(r >> 8);
		break;
	case 4:
		p.gen = 0;
		break;
	case 5: /* a real handle, one bit off */
		return pack(p) ^ (1ULL << (r % 64));
	case 6: /* the neighbours of a real block, its generation */
		p.index += (uint32_t)(r % 33) - 16;
		break;
	default: /* now and then a real handle, else another index */
		if (r % 8)
			p.index =
				(uint32_t)((r >> 8) % arenas[p.arena].capacity);
		break;
	}
	return pack(p);
}

/* One value through one client; fails the test on a wrong answer. */
static void probe(struct arena_client *c, arena_handle_t x)
{
	const struct real *r = lookup(x);
	void *p = arena_ptr(c, x);
	size_t size = arena_size(c, x);
	int ref = arena_ref(c, x), unref;

	if (r) {
		if (!p || (c == holder && p != r->p) || size != r->size || ref)
			fail_msg("real handle %#llx: ptr %p size %zu ref %d",
				 (unsigned long long)x, p, size, ref);
		unref = arena_unref(c, x);
		if (unref)
			fail_msg("real handle %#llx: unref after ref %d",
				 (unsigned long long)x, unref);
		/* one that holds no reference cannot drop one */
		if (c == other && arena_unref(c, x) != -EINVAL)
			fail_msg("real handle %#llx: unref by a non-holder",
				 (unsigned long long)x);
		return;
	}
	unref = arena_unref(c, x);
	if (p || size || (ref != -EINVAL && ref != -ESTALE) ||
	    (unref != -EINVAL && unref != -ESTALE))
		fail_msg("forged %#llx resolved: ptr %p size %zu ref %d "
			 "unref %d",
			 (unsigned long long)x, p, size, ref, unref);
}

static void blocks_intact(void)
{
	unsigned i;
	size_t k;

	for (i = 0; i < nreal; i++) {
		if (arena_ptr(holder, real[i].h) != real[i].p)
			fail_msg("real block %u no longer resolves", i);
		for (k = 0; k < real[i].size; k++)
			if (real[i].p[k] != real[i].fill)
				fail_msg("byte %zu of real block %u changed", k,
					 i);
	}
}

static uint64_t in_use(void)
{
	struct tstat s;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	return tstat_in_use(&s);
}

static unsigned long long count_wanted(void)
{
	const char *e = getenv("ARENA_FORGED_COUNT");

	return e && *e ? strtoull(e, NULL, 10) : DEFAULT_COUNT;
}

static void forged(void **state)
{
	unsigned long long i, n = count_wanted(), hits = 0;
	uint64_t base;
	arena_handle_t x;

	assert_int_equal(arena_connect(d.sock, &holder), 0);
	assert_int_equal(arena_connect(d.sock, &other), 0);
	hold_blocks();
	base = in_use();
	assert_true(base >= nreal); /* buddy blocks count in leaves */
	for (i = 0; i < n; i++) {
		x = forge((unsigned)(i % FAMILIES));
		hits += lookup(x) != NULL;
		probe(i & 1 ? other : holder, x);
		if ((i + 1) % CHECK_EVERY == 0)
			assert_int_equal(in_use(), base);
	}
	assert_int_equal(in_use(), base);
	blocks_intact();
	fprintf(stderr, "%llu values, %llu of them real handles, %u blocks\n",
		n, hits, nreal);
	assert_true(hits > 0); /* the "real handle" path ran too */
	for (i = 0; i < nreal; i += 5)
		assert_int_equal(arena_unref(holder, real[i].h), 0);
	for (i = 0; i < nreal; i++)
		assert_int_equal(arena_unref(holder, real[i].h), 0);
	assert_int_equal(in_use(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forged),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
