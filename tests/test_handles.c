// SPDX-License-Identifier: MIT
/*
 * Handles as untrusted input: stale handles, generations on reuse, forged
 * handles of every shape, double unref, unref by a client that holds no
 * reference, several references per client, and a full reference ledger.
 * Whatever a bad handle does, it must free nothing and leave every live
 * block, and its contents, alone.
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
#include "tclient.h"
#include "tstat.h"

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

static arena_handle_t alloc(struct arena_client *c, size_t size)
{
	arena_handle_t h = ARENA_HANDLE_NULL;

	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, size, &h), 0);
	assert_non_null(arena_ptr(c, h));
	return h;
}

static uint64_t in_use(const char *sock)
{
	struct tstat s;

	assert_int_equal(tstat_get(sock, &s), 0);
	return tstat_in_use(&s);
}

static struct arena_proto_handle unpack(arena_handle_t h)
{
	struct arena_proto_handle ph;

	arena_proto_handle_unpack(h, &ph);
	return ph;
}

static arena_handle_t pack(struct arena_proto_handle ph)
{
	return arena_proto_handle_pack(ph.region, ph.arena, ph.gen, ph.index);
}

/* A handle that must resolve to nothing and change nothing. */
static void dead(struct arena_client *c, arena_handle_t h)
{
	int r;

	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_size(c, h), 0);
	r = arena_ref(c, h);
	if (r != -EINVAL && r != -ESTALE)
		fail_msg("arena_ref(%#llx) = %d", (unsigned long long)h, r);
	r = arena_unref(c, h);
	if (r != -EINVAL && r != -ESTALE)
		fail_msg("arena_unref(%#llx) = %d", (unsigned long long)h, r);
}

/*
 * A block that holds the fill byte v all over, at address p when p is
 * given (only in the client p came from: each maps the region elsewhere).
 */
static void intact(struct arena_client *c, arena_handle_t h, void *p,
		   size_t size, int v)
{
	uint8_t *q = arena_ptr(c, h);
	size_t i;

	assert_non_null(q);
	if (p)
		assert_ptr_equal(q, p);
	assert_int_equal(arena_size(c, h), size);
	for (i = 0; i < size; i++)
		if (q[i] != (uint8_t)v)
			fail_msg("byte %zu of a live block changed", i);
}

static void stale(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	uint64_t base = in_use(d.sock);
	arena_handle_t h = alloc(c, 100);

	assert_int_equal(in_use(d.sock), base + 1);
	assert_int_equal(arena_size(c, h), 128);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(in_use(d.sock), base);
	assert_null(arena_ptr(c, h));
	assert_int_equal(arena_size(c, h), 0);
	assert_int_equal(arena_unref(c, h), -ESTALE); /* double unref */
	assert_int_equal(arena_ref(c, h), -ESTALE);
	assert_int_equal(arena_unref(c, h), -ESTALE);
	assert_int_equal(in_use(d.sock), base);
	tcl_disc(c);
}

/*
 * The same slot comes back with another generation; the old handle stays
 * dead while the new one lives, so a double unref cannot free the new
 * owner's block.  Once through this client's magazine (64 B), once
 * through the bitmap to another client (64 KiB, no magazines).
 */
static void reuse(struct arena_client *c, struct arena_client *second,
		  size_t size)
{
	arena_handle_t h1, h2 = 0, *held = calloc(4096, sizeof(*held));
	struct arena_proto_handle p1, p2;
	int i, n = 0;
	void *p;

	assert_non_null(held);
	h1 = alloc(c, size);
	p = arena_ptr(c, h1);
	p1 = unpack(h1);
	assert_int_equal(arena_unref(c, h1), 0);
	for (i = 0; i < 4096; i++) {
		h2 = alloc(second, size);
		p2 = unpack(h2);
		if (p2.arena == p1.arena && p2.index == p1.index)
			break;
		held[n++] = h2;
	}
	assert_true(i < 4096); /* the slot came back */
	assert_ptr_equal(arena_ptr(c, h2), p);
	assert_int_not_equal(p2.gen, p1.gen);
	assert_int_not_equal(p2.gen, 0);
	assert_int_not_equal(h2, h1);
	memset(p, 0x77, size);
	dead(c, h1);
	dead(second, h1);
	intact(c, h2, p, size, 0x77);
	intact(second, h2, NULL, size, 0x77);
	assert_int_equal(arena_unref(second, h2), 0);
	assert_null(arena_ptr(second, h2));
	for (i = 0; i < n; i++)
		assert_int_equal(arena_unref(second, held[i]), 0);
	free(held);
}

static void generation_on_reuse(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct arena_client *o = tcl_conn(d.sock);
	uint64_t base = in_use(d.sock);

	reuse(c, c, 64);
	reuse(c, o, 65536);
	assert_int_equal(in_use(d.sock), base);
	tcl_disc(o);
	tcl_disc(c);
}

/* A slot reused 2^20 + 2 times: its generation wraps and skips 0. */
static void generation_wraps(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct arena_proto_handle p0 = unpack(alloc(c, 64)), p;
	uint32_t i, prev = p0.gen, wrapped = 0;
	arena_handle_t h;

	assert_int_equal(arena_unref(c, pack(p0)), 0);
	for (i = 0; i < (1u << 20) + 2; i++) {
		assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 64, &h), 0);
		p = unpack(h);
		assert_int_equal(p.index, p0.index); /* LIFO magazine */
		assert_int_not_equal(p.gen, 0);
		assert_int_not_equal(p.gen, prev);
		wrapped += p.gen < prev;
		prev = p.gen;
		assert_int_equal(arena_unref(c, h), 0);
	}
	assert_true(wrapped >= 1);
	tcl_disc(c);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void forged(void **state)
{
	struct arena_client *c = tcl_conn(d.sock);
	struct arena_client *o = tcl_conn(d.sock);
	arena_handle_t h = alloc(c, 1000), m, x;
	struct arena_proto_handle p = unpack(h), q;
	uint8_t *ptr = arena_ptr(c, h);
	struct arena_info inf;
	unsigned n = 0;
	uint64_t base;
	int i;

	while (arena_info(c, n, &inf) == 0)
		n++;
	memset(ptr, 0x3c, 1024);
	/* a slot parked in this client's magazine, and its next handle */
	m = alloc(c, 64);
	assert_int_equal(arena_unref(c, m), 0);
	q = unpack(m);
	q.gen = arena_proto_gen_next(q.gen);
	m = pack(q);
	base = in_use(d.sock);

	for (i = 0; i < 2; i++) {
		struct arena_client *who = i ? o : c;

		dead(who, ARENA_HANDLE_NULL);
		dead(who, ~0ULL);
		for (q = p, q.region = 1; q.region < 16; q.region++)
			dead(who, pack(q));
		q = p, q.arena = n;
		dead(who, pack(q));
		q = p, q.arena = 255;
		dead(who, pack(q));
		assert_int_equal(arena_info(c, p.arena, &inf), 0);
		q = p, q.index = (uint32_t)inf.capacity;
		dead(who, pack(q));
		q = p, q.index = UINT32_MAX;
		dead(who, pack(q));
		q = p, q.gen = 0;
		dead(who, pack(q));
		q = p, q.gen = arena_proto_gen_next(p.gen);
		dead(who, pack(q));
		q = p, q.gen = p.gen - 1 ? p.gen - 1 : ARENA_HANDLE_GEN_MASK;
		dead(who, pack(q));
		dead(who, m); /* reserved in a magazine, not allocated */
		dead(who, h + 1);
	}
	for (i = 0; i < 100000; i++) {
		x = rnd();
		if (x != h)
			dead(i & 1 ? o : c, x);
	}
	/* every slot index of every arena, at a generation it never had */
	for (unsigned a = 0; a < n; a++) {
		assert_int_equal(arena_info(c, a, &inf), 0);
		for (uint32_t k = 0; k < inf.capacity; k++)
			dead(o, arena_proto_handle_pack(
					0, a, ARENA_HANDLE_GEN_MASK - 1, k));
	}
	assert_int_equal(in_use(d.sock), base);
	intact(c, h, ptr, 1024, 0x3c);
	intact(o, h, NULL, 1024, 0x3c);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(in_use(d.sock), base - 1);
	tcl_disc(o);
	tcl_disc(c);
}

static void foreign_unref(void **state)
{
	struct arena_client *a = tcl_conn(d.sock), *b = tcl_conn(d.sock);
	uint64_t base = in_use(d.sock);
	arena_handle_t h = alloc(a, 64);
	void *p = arena_ptr(a, h);

	memset(p, 0x11, 64);
	/* b holds nothing: refused, a's block untouched */
	assert_int_equal(arena_unref(b, h), -EINVAL);
	assert_int_equal(arena_unref(b, h), -EINVAL);
	intact(a, h, p, 64, 0x11);
	assert_int_equal(in_use(d.sock), base + 1);

	/* b takes and drops one; a second drop by b is refused again */
	assert_int_equal(arena_ref(b, h), 0);
	assert_int_equal(arena_unref(b, h), 0);
	assert_int_equal(arena_unref(b, h), -EINVAL);
	intact(a, h, p, 64, 0x11);

	/* b holds one, a lets go: b keeps it; a cannot drop b's */
	assert_int_equal(arena_ref(b, h), 0);
	assert_int_equal(arena_unref(a, h), 0);
	assert_int_equal(arena_unref(a, h), -EINVAL);
	intact(b, h, NULL, 64, 0x11);
	assert_int_equal(in_use(d.sock), base + 1);
	assert_int_equal(arena_unref(b, h), 0);
	assert_null(arena_ptr(a, h));
	assert_int_equal(arena_unref(b, h), -ESTALE);
	assert_int_equal(arena_unref(a, h), -ESTALE);
	assert_int_equal(in_use(d.sock), base);
	tcl_disc(b);
	tcl_disc(a);
}

static void many_refs(void **state)
{
	struct arena_client *a = tcl_conn(d.sock), *b = tcl_conn(d.sock);
	uint64_t base = in_use(d.sock);
	arena_handle_t h = alloc(a, 64);
	void *p = arena_ptr(a, h);
	int i;

	memset(p, 0x22, 64);
	for (i = 0; i < 3; i++)
		assert_int_equal(arena_ref(a, h), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(arena_unref(a, h), 0);
		intact(a, h, p, 64, 0x22);
		assert_int_equal(in_use(d.sock), base + 1);
	}
	assert_int_equal(arena_unref(a, h), 0);
	assert_null(arena_ptr(a, h));
	assert_int_equal(arena_unref(a, h), -ESTALE);
	assert_int_equal(in_use(d.sock), base);

	/* two holders with several each: freed at the very last unref */
	h = alloc(a, 64);
	p = arena_ptr(a, h);
	memset(p, 0x33, 64);
	assert_int_equal(arena_ref(b, h), 0);
	assert_int_equal(arena_ref(a, h), 0);
	assert_int_equal(arena_ref(b, h), 0);
	assert_int_equal(arena_unref(a, h), 0);
	assert_int_equal(arena_unref(a, h), 0);
	assert_int_equal(arena_unref(a, h), -EINVAL); /* a has none left */
	intact(b, h, NULL, 64, 0x33);
	assert_int_equal(arena_unref(b, h), 0);
	intact(b, h, NULL, 64, 0x33);
	assert_int_equal(in_use(d.sock), base + 1);
	assert_int_equal(arena_unref(b, h), 0);
	assert_null(arena_ptr(b, h));
	assert_int_equal(in_use(d.sock), base);

	/* the most references a block can count */
	h = alloc(a, 64);
	for (i = 1; i < 65535; i++)
		assert_int_equal(arena_ref(i & 1 ? a : b, h), 0);
	assert_int_equal(arena_ref(a, h), -EOVERFLOW);
	assert_int_equal(arena_ref(b, h), -EOVERFLOW);
	for (i = 1; i < 65535; i++)
		assert_int_equal(arena_unref(i & 1 ? a : b, h), 0);
	assert_non_null(arena_ptr(a, h));
	assert_int_equal(arena_unref(b, h), -EINVAL);
	assert_int_equal(arena_unref(a, h), 0);
	assert_null(arena_ptr(a, h));
	assert_int_equal(in_use(d.sock), base);
	tcl_disc(b);
	tcl_disc(a);
}

/*
 * --ledger 64: a client can hold references to 64 distinct blocks it did
 * not allocate; the 65th is refused with -ENOSPC and changes nothing.
 * Dropping one makes room again.
 */
static void ledger_full(void **state)
{
	static const char *const args[] = { "--ledger", "64", NULL };
	struct harness_daemon e;
	struct arena_client *a, *b;
	arena_handle_t h[100];
	int i, took = 0;

	assert_int_equal(harness_daemon_start(&e, args), 0);
	a = tcl_conn(e.sock);
	b = tcl_conn(e.sock);
	for (i = 0; i < 100; i++)
		h[i] = alloc(a, 64);
	for (i = 0; i < 100; i++) {
		int r = arena_ref(b, h[i]);

		if (r == 0) {
			assert_int_equal(i,
					 took); /* no hole before a refusal */
			took++;
		} else {
			assert_int_equal(r, -ENOSPC);
		}
	}
	assert_int_equal(took, 64);
	/* more references to a block b already holds need no new entry */
	assert_int_equal(arena_ref(b, h[0]), 0);
	assert_int_equal(arena_unref(b, h[0]), 0);
	/* a refused reference was never taken: a's unref frees the block */
	assert_int_equal(arena_unref(a, h[70]), 0);
	assert_null(arena_ptr(a, h[70]));
	assert_int_equal(arena_unref(b, h[71]), -EINVAL);
	/* dropping one makes room for another block */
	assert_int_equal(arena_unref(b, h[5]), 0);
	assert_int_equal(arena_ref(b, h[80]), 0);
	assert_int_equal(arena_ref(b, h[81]), -ENOSPC);
	/* the references b holds keep blocks alive past a's unref */
	for (i = 0; i < 100; i++)
		if (i != 70)
			assert_int_equal(arena_unref(a, h[i]), 0);
	assert_non_null(arena_ptr(b, h[0]));
	assert_non_null(arena_ptr(b, h[80]));
	assert_null(arena_ptr(b, h[5]));
	assert_null(arena_ptr(b, h[81]));
	assert_int_equal(in_use(e.sock), 64);
	for (i = 0; i < 64; i++)
		if (i != 5)
			assert_int_equal(arena_unref(b, h[i]), 0);
	assert_int_equal(arena_unref(b, h[80]), 0);
	assert_int_equal(in_use(e.sock), 0);
	tcl_disc(b);
	tcl_disc(a);
	assert_int_equal(harness_daemon_stop(&e), 0);
	assert_int_equal(setenv("ARENA_SOCKET", d.sock, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(stale, tcl_teardown),
		cmocka_unit_test_teardown(generation_on_reuse, tcl_teardown),
		cmocka_unit_test_teardown(generation_wraps, tcl_teardown),
		cmocka_unit_test_teardown(forged, tcl_teardown),
		cmocka_unit_test_teardown(foreign_unref, tcl_teardown),
		cmocka_unit_test_teardown(many_refs, tcl_teardown),
		cmocka_unit_test_teardown(ledger_full, tcl_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
