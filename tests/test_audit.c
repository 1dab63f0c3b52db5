// SPDX-License-Identifier: MIT
/*
 * arenactl audit (daemon/audit.c): clean when everything adds up, even
 * while other processes allocate, share and free as fast as they can; and
 * after each deliberate corruption of the region (made by mapping it
 * through a raw attach, as test_scribble.c does) it exits 1 naming the
 * category of the problem, while the daemon keeps serving: STATS, PING,
 * and a new client that attaches and allocates.
 *
 * The healthy runs are what guard against false positives: the audit
 * must never call a block that is merely moving a problem.  The
 * corruptions are one per invariant: a state word with no valid state, a
 * count above its holders (a leak) and below them, a free slot with a
 * count, a slot reserved for an id nobody has, a ledger entry naming a
 * free block, overlapping buddy blocks by their order bytes, a malformed
 * bump chunk word, and a header field.
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
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "bump.h"
#include "handle.h"
#include "harness.h"
#include "ledger.h"
#include "rawpeer.h"
#include "tstat.h"

#define IO_MS 10000
#define LOAD_AUDITS 40 /* audits while workers run */

static struct harness_daemon d;
static uint8_t *base; /* the region, mapped through a raw attach */
static uint64_t size;
static struct arena_proto_region hdr;
static struct arena_proto_welcome raw_w;
static int raw = -1;
static struct arena_client *me, *other;

/* ---- running arenactl audit ---- */

struct audit_out {
	int status;
	char out[16384];
	char err[4096];
};

static void audit(struct audit_out *o)
{
	char path[512];
	const char *argv[] = { path, "--socket", d.sock, "audit", NULL };

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	o->status = -1;
	assert_int_equal(harness_run(argv, &o->status, o->out, sizeof(o->out),
				     o->err, sizeof(o->err)),
			 0);
}

/* Returns the blocks the audit found busy (moving at every look). */
static unsigned long audit_clean(const char *when)
{
	struct audit_out o;
	unsigned long checked = 0, busy = 0;
	const char *sum;

	audit(&o);
	if (o.status != 0 || !strstr(o.out, " clean"))
		fail_msg("audit %s: status %d\n%s%s", when, o.status, o.out,
			 o.err);
	sum = strstr(o.out, "audit: ");
	if (!sum ||
	    sscanf(sum, "audit: %lu checked, %lu busy", &checked, &busy) != 2 ||
	    !checked)
		fail_msg("audit %s: no summary line\n%s", when, o.out);
	return busy;
}

/* The audit exits 1 and names category cat ("leak: ..."). */
static void audit_finds(const char *cat)
{
	struct audit_out o;
	char needle[64];

	audit(&o);
	snprintf(needle, sizeof(needle), "\n%s: ", cat);
	if (o.status != 1 || (strncmp(o.out, needle + 1, strlen(needle + 1)) &&
			      !strstr(o.out, needle)))
		fail_msg("audit should find '%s': status %d\n%s%s", cat,
			 o.status, o.out, o.err);
	fprintf(stderr, "%s", o.out);
}

/* ---- the daemon keeps serving ---- */

static void still_serving(void)
{
	struct arena_client *c = NULL;
	struct tstat s;
	arena_handle_t h;

	assert_int_equal(tstat_get(d.sock, &s), 0);
	assert_int_equal(raw_ping(raw, IO_MS), 0);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	if (!arena_alloc(c, ARENA_KIND_FIXED, 100, &h))
		arena_unref(c, h);
	arena_disconnect(c);
}

/* ---- set-up: a daemon per test, its region mapped here ---- */

static int setup(void **state)
{
	struct arena_proto_welcome w;
	int err = harness_daemon_start(&d, NULL), fd;

	if (err) {
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
		return -1;
	}
	raw = raw_connect(d.sock, 0);
	if (raw < 0 || raw_attach(raw, &w, &fd, IO_MS))
		return -1;
	raw_w = w;
	size = w.region_size;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return -1;
	memcpy(&hdr, base, sizeof(hdr));
	return arena_connect(d.sock, &me) ? -1 : 0;
}

/* A corrupted region may confuse a disconnect: the daemon goes first. */
static int teardown(void **state)
{
	if (base && base != MAP_FAILED)
		munmap(base, size);
	base = NULL;
	if (raw >= 0)
		close(raw);
	raw = -1;
	harness_daemon_kill(&d);
	arena_disconnect(me);
	arena_disconnect(other);
	me = other = NULL;
	return 0;
}

static uint32_t arena_of(uint32_t kind)
{
	uint32_t i;

	for (i = 0; i < hdr.narenas; i++)
		if (hdr.arenas[i].kind == kind)
			return i;
	fail_msg("no arena of kind %u", kind);
	return 0;
}

static uint64_t *word(arena_handle_t h)
{
	struct arena_proto_handle p;

	arena_proto_handle_unpack(h, &p);
	return (uint64_t *)(base + hdr.arenas[p.arena].state_off) + p.index;
}

static void word_set(uint64_t *w, uint64_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
}

/* A fixed slot no one uses: the last of arena 0. */
static uint64_t *spare_slot(void)
{
	uint32_t a = arena_of(ARENA_PROTO_KIND_FIXED);
	uint64_t *w = (uint64_t *)(base + hdr.arenas[a].state_off) +
		      hdr.arenas[a].nblocks - 1;

	assert_int_equal(arena_bs_state(*w), ARENA_BS_FREE);
	return w;
}

/* ---- healthy regions ---- */

struct pair {
	int hand[2]; /* handles from A to B */
	int ready[2];
	int stop[2];
};

static int await_stop(struct pair *p)
{
	char x;

	return read(p->stop[0], &x, 1) == 1 ? 0 : 9;
}

/*
 * A: blocks of every kind, some sent to B, some queued in a channel,
 * some shared with itself through a second client.
 */
static int holder_a(void *arg)
{
	struct pair *p = arg;
	struct arena_client *a, *a2;
	struct arena_chan *ch;
	arena_handle_t h;
	int i, k = 0;

	tstat_child_init();
	if (arena_connect(d.sock, &a) || arena_connect(d.sock, &a2) ||
	    arena_chan_open(a, "audit-q", 64, &ch))
		return 2;
	for (i = 0; i < 60; i++) {
		static const enum arena_kind kinds[] = { ARENA_KIND_FIXED,
							 ARENA_KIND_BUDDY,
							 ARENA_KIND_BUMP };
		if (arena_alloc(a, kinds[i % 3], 100 + 997 * (size_t)i, &h))
			return 3;
		if (i % 4 == 1 && arena_ref(a2, h))
			return 4;
		if (i % 5 == 0 && write(p->hand[1], &h, sizeof(h)) != sizeof(h))
			return 5;
		if (i % 3 != 2 && i % 7 == 3 && arena_chan_send(ch, h))
			return 6;
	}
	if (write(p->ready[1], &k, 1) != 1)
		return 7;
	return await_stop(p);
}

/* B: takes a reference to every handle A passes. */
static int holder_b(void *arg)
{
	struct pair *p = arg;
	struct arena_client *b;
	arena_handle_t h;
	int i, k = 0;

	tstat_child_init();
	if (arena_connect(d.sock, &b))
		return 2;
	for (i = 0; i < 12; i++)
		if (read(p->hand[0], &h, sizeof(h)) != sizeof(h) ||
		    arena_ref(b, h))
			return 3;
	if (write(p->ready[1], &k, 1) != 1)
		return 4;
	return await_stop(p);
}

static void pair_open(struct pair *p)
{
	assert_int_equal(pipe(p->hand), 0);
	assert_int_equal(pipe(p->ready), 0);
	assert_int_equal(pipe(p->stop), 0);
}

static void mixed_clean(void **state)
{
	struct pair p;
	pid_t a, b;
	char x;

	pair_open(&p);
	a = harness_fork(holder_a, &p);
	b = harness_fork(holder_b, &p);
	assert_true(a > 0 && b > 0);
	assert_int_equal(read(p.ready[0], &x, 1), 1);
	assert_int_equal(read(p.ready[0], &x, 1), 1);
	audit_clean("with two processes holding shared blocks");
	assert_int_equal(write(p.stop[1], "xx", 2), 2);
	assert_int_equal(harness_wait(b, IO_MS), 0);
	audit_clean("after B detached");
	kill(a, SIGKILL);
	harness_wait(a, IO_MS);
	still_serving();
	audit_clean("after A was killed");
	/* nobody attached: the checks that need quiet are exact now */
	arena_disconnect(me);
	me = NULL;
	close(raw);
	raw = -1;
	tstat_sleep_ms(100);
	audit_clean("with no client attached");
}

/* ---- audits while everyone works ---- */

struct worker {
	int role;
	int stop[2];
};

static bool stopped(const struct worker *w)
{
	struct pollfd p = { .fd = w->stop[0], .events = POLLIN };

	return poll(&p, 1, 0) != 0;
}

/* Two clients of one process: allocate, share, free, every kind. */
static void share_round(struct arena_client *a, struct arena_client *b,
			unsigned long r)
{
	static const enum arena_kind kinds[] = { ARENA_KIND_FIXED,
						 ARENA_KIND_BUDDY,
						 ARENA_KIND_BUMP };
	arena_handle_t h[6];
	bool ok[6], sh[6];
	int k;

	for (k = 0; k < 6; k++) {
		ok[k] = !arena_alloc(a, kinds[(r + k) % 3],
				     16 + (r * 6 + k) * 331 % 20000, &h[k]);
		sh[k] = ok[k] && k % 2 && !arena_ref(b, h[k]);
	}
	for (k = 0; k < 6; k++) {
		if (sh[k])
			arena_unref(k % 4 == 1 ? a : b, h[k]);
		if (ok[k])
			arena_unref(k % 4 == 1 ? b : a, h[k]);
	}
}

static int sharer(struct worker *w)
{
	struct arena_client *a, *b;
	unsigned long r = 0;

	if (arena_connect(d.sock, &a) || arena_connect(d.sock, &b))
		return 2;
	while (!stopped(w))
		share_round(a, b, r++);
	return 0;
}

/* Producer (role 1) and consumer (role 2) of a channel. */
static int piper(struct worker *w)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;
	unsigned long r = 0;

	if (arena_connect(d.sock, &c) ||
	    arena_chan_open(c, "audit-load", 256, &ch))
		return 2;
	while (!stopped(w)) {
		r++;
		if (w->role == 2) {
			if (!arena_chan_recv(ch, &h, 1))
				arena_unref(c, h);
			continue;
		}
		if (arena_alloc(c, r % 2 ? ARENA_KIND_FIXED : ARENA_KIND_BUDDY,
				64 + r % 9000, &h))
			continue;
		if (arena_chan_send(ch, h))
			arena_unref(c, h);
	}
	return 0;
}

static int work(void *arg)
{
	struct worker *w = arg;

	tstat_child_init();
	return w->role ? piper(w) : sharer(w);
}

static void show_log(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "grep 'audit:' %s >&2", d.log);
	if (system(cmd))
		fprintf(stderr, "no audit lines in %s\n", d.log);
}

static void load_clean(void **state)
{
	struct worker w[4] = {
		{ .role = 0 }, { .role = 0 }, { .role = 1 }, { .role = 2 }
	};
	unsigned long busy = 0;
	pid_t pid[4];
	int i, n;

	for (i = 0; i < 4; i++) {
		assert_int_equal(pipe(w[i].stop), 0);
		pid[i] = harness_fork(work, &w[i]);
		assert_true(pid[i] > 0);
	}
	tstat_sleep_ms(100);
	for (n = 0; n < LOAD_AUDITS; n++)
		busy += audit_clean(
			"while four processes allocate, share and free");
	fprintf(stderr, "%d audits under load: %lu blocks busy in all\n",
		LOAD_AUDITS, busy);
	for (i = 0; i < 4; i++) {
		assert_int_equal(write(w[i].stop[1], "x", 1), 1);
		assert_int_equal(harness_wait(pid[i], IO_MS), 0);
	}
	audit_clean("after the workers left");
	if (getenv("AUDIT_TEST_LOG")) /* how much moved under the audits */
		show_log();
}

/* ---- corruptions, one per invariant ---- */

static arena_handle_t fixed_block(void)
{
	arena_handle_t h;

	assert_int_equal(arena_alloc(me, ARENA_KIND_FIXED, 100, &h), 0);
	audit_clean("before the corruption");
	return h;
}

static void bogus_state(void **state)
{
	uint64_t *w = word(fixed_block());

	word_set(w, *w | 3ull << 28);
	audit_finds("state");
	still_serving();
}

static void count_high(void **state)
{
	uint64_t *w = word(fixed_block());

	word_set(w, *w + 1);
	audit_finds("leak");
	still_serving();
}

static void count_low(void **state)
{
	arena_handle_t h = fixed_block();
	uint64_t *w = word(h);

	assert_int_equal(arena_connect(d.sock, &other), 0);
	assert_int_equal(arena_ref(other, h), 0);
	audit_clean("with a shared block");
	word_set(w, *w - 1);
	audit_finds("count-low");
	still_serving();
}

static void free_with_count(void **state)
{
	uint64_t *w = spare_slot();

	word_set(w, *w | 3);
	audit_finds("state");
	still_serving();
}

static void mag_unused_id(void **state)
{
	uint64_t *w = spare_slot();

	word_set(w, arena_bs_make(arena_bs_gen(*w), 1, ARENA_BS_MAG,
				  hdr.max_clients, 0));
	audit_finds("state");
	still_serving();
}

/* An entry in the raw client's own ledger, which nothing else touches. */
static void ledger_free_block(void **state)
{
	uint32_t a = arena_of(ARENA_PROTO_KIND_FIXED);
	uint64_t *l = (uint64_t *)(base + hdr.clients_off +
				   (uint64_t)(raw_w.client_id - 1) *
					   hdr.client_stride +
				   hdr.ledger_off);

	audit_clean("before the corruption");
	word_set(&l[5],
		 arena_ledger_key(a, (uint32_t)hdr.arenas[a].nblocks - 1) |
			 ARENA_LEDGER_COUNT_ONE);
	audit_finds("orphan");
	still_serving();
}

/* Two buddy leaves L, L + 1 (L even) held; L's order byte says 1. */
static void buddy_overlap(void **state)
{
	uint32_t a = arena_of(ARENA_PROTO_KIND_BUDDY), i, j;
	struct arena_proto_handle p[64];
	arena_handle_t h;

	for (i = 0; i < 64; i++) {
		assert_int_equal(arena_alloc(me, ARENA_KIND_BUDDY, 4096, &h),
				 0);
		arena_proto_handle_unpack(h, &p[i]);
	}
	audit_clean("before the corruption");
	for (i = 0; i < 64; i++)
		for (j = 0; j < 64; j++)
			if (!(p[i].index & 1) && p[j].index == p[i].index + 1)
				goto found;
	fail_msg("no two adjacent buddy blocks among 64");
found:
	__atomic_store_n(base + hdr.arenas[a].order_off + p[i].index, 1,
			 __ATOMIC_RELEASE);
	audit_finds("overlap");
	still_serving();
}

static void bump_chunk(void **state)
{
	uint32_t a = arena_of(ARENA_PROTO_KIND_BUMP);
	struct arena_bump_hdr *b = (void *)(base + hdr.arenas[a].bump_off);
	struct arena_proto_handle p;
	arena_handle_t h;
	uint64_t ci, w;

	assert_int_equal(arena_alloc(me, ARENA_KIND_BUMP, 1000, &h), 0);
	audit_clean("before the corruption");
	arena_proto_handle_unpack(h, &p);
	ci = (uint64_t)p.index * 8 / hdr.arenas[a].block_size;
	w = __atomic_load_n(&b->chunks[ci].word, __ATOMIC_ACQUIRE);
	assert_int_equal(arena_bump_state(w), ARENA_BUMP_OWNED);
	__atomic_store_n(&b->chunks[ci].word,
			 arena_bump_word(arena_bump_gen(w), 3, 0, 0),
			 __ATOMIC_RELEASE);
	audit_finds("state");
	still_serving();
}

/* The header is the daemon's: an attach puts it back, and then clean. */
static void header_field(void **state)
{
	struct arena_proto_region *r = (void *)base;

	audit_clean("before the corruption");
	__atomic_store_n(&r->ledger_entries, r->ledger_entries * 2,
			 __ATOMIC_RELEASE);
	audit_finds("header");
	still_serving(); /* its attach restores the header */
	audit_clean("after the header was put back");
}

/* --json, usage errors and an absent daemon, by arenactl's conventions. */
static void cli(void **state)
{
	char path[512], out[4096], err[4096], gone[400];
	const char *json[] = {
		path, "--socket", d.sock, "audit", "--json", NULL
	};
	const char *prom[] = { path, "audit", "--prometheus", NULL };
	const char *none[] = { path, "--socket", gone, "audit", NULL };
	int st;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	snprintf(gone, sizeof(gone), "%s.gone", d.sock);
	assert_int_equal(
		harness_run(json, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "{\"clean\":true,\"checked\":"));
	assert_non_null(strstr(out, "\"findings\":[],\"unlisted\":0}"));
	assert_int_equal(
		harness_run(prom, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 64);
	assert_non_null(strstr(err, "--prometheus does not apply"));
	assert_int_equal(
		harness_run(none, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 1);
	assert_non_null(strstr(err, "cannot reach"));
	word_set(spare_slot(), arena_bs_make(1, 1, ARENA_BS_FREE, 0, 7));
	assert_int_equal(
		harness_run(json, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 1);
	assert_non_null(strstr(out, "\"clean\":false"));
	assert_non_null(strstr(out, "{\"category\":\"state\",\"text\":"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(mixed_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(load_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(bogus_state, setup, teardown),
		cmocka_unit_test_setup_teardown(count_high, setup, teardown),
		cmocka_unit_test_setup_teardown(count_low, setup, teardown),
		cmocka_unit_test_setup_teardown(free_with_count, setup,
						teardown),
		cmocka_unit_test_setup_teardown(mag_unused_id, setup, teardown),
		cmocka_unit_test_setup_teardown(ledger_free_block, setup,
						teardown),
		cmocka_unit_test_setup_teardown(buddy_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(bump_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(header_field, setup, teardown),
		cmocka_unit_test_setup_teardown(cli, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
