// SPDX-License-Identifier: MIT
/*
 * A scribbled region.  Clients must be able to write the region's shared
 * metadata to allocate without the daemon, so a buggy or hostile client
 * can write anything there.  DESIGN.md rule 5: the daemon never trusts
 * the region; it may report corruption and refuse to reclaim what it
 * cannot trust, but it must keep serving, never crash or hang, and never
 * write outside the region (the ASan build of this test runs the daemon
 * under ASan too).
 *
 * While a worker process allocates, frees and shares blocks between two
 * clients, this test maps the region itself (through a raw attach, which
 * hands it the region's descriptor) and writes random bytes over, in
 * turn: the region header, the arena descriptors, bitmap words, the state
 * words of blocks it holds itself, the buddy tree, and the whole table of
 * a client that is then killed (its head, counters and reference ledger),
 * once also with the header scribbled at the same time.  After every
 * round the daemon must still be running, answer STATS (over the wire and
 * through arenactl) and PING, and a new client must attach, in bounded
 * time; the reclaim of each killed client must report the damage in the
 * log instead of crashing.  The header and descriptors are the daemon's
 * alone, so it must have put them back (before the new client maps them,
 * and before a reclaim reads them); nothing else is restored.  Clients
 * may see errors after a scribble (the worker's are counted, not judged):
 * the test checks the daemon, not the scribbled data.  arenactl audit
 * runs after every round (it must answer, 0 or 1, and never bring the
 * daemon down) and at the end must report the damage: exit 1 with at
 * least one finding.  At the end the daemon must stop cleanly on SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

#include "handle.h"
#include "harness.h"
#include "rawpeer.h"
#include "tstat.h"

#define IO_MS 10000
#define ROUNDS 140 /* 20 of each target */
#define HELD 24	   /* blocks the scribbler holds */

enum target {
	T_HEADER,
	T_DESCRIPTORS,
	T_BITMAP,
	T_STATE,
	T_TREE,
	T_TABLE,
	T_TABLE_AND_HEADER,
	T_TARGETS,
};

static const char *const target_name[T_TARGETS] = {
	"region header",    "arena descriptors", "bitmap words",
	"held state words", "buddy tree",	 "a dying client's table",
	"table and header",
};

static struct harness_daemon d;
static uint8_t *base; /* the region, mapped by this process */
static uint64_t size;
static struct arena_proto_region hdr; /* the header as it was */
static struct arena_client *me;
static arena_handle_t held[HELD];
static unsigned nheld;
static uint64_t rng = 0x5851f42d4c957f2dULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void scribble(void *p, size_t len)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		__atomic_store_n(&b[i], (uint8_t)rnd(), __ATOMIC_RELAXED);
}

/* ---- the worker: two clients sharing blocks, errors counted ---- */

struct worker {
	pid_t pid;
	int stop[2];
	int report[2];
};

struct work_result {
	unsigned long rounds, errors;
};

static void work_round(struct arena_client *a, struct arena_client *b,
		       unsigned long r, struct work_result *w)
{
	arena_handle_t h[8];
	bool ok[8], shared[8];
	uint8_t *p;
	size_t sz;
	int k;

	for (k = 0; k < 8; k++) {
		sz = 1 + (r * 8 + (unsigned)k) * 977 % (k == 7 ? 300000 : 9000);
		ok[k] = !arena_alloc(a, ARENA_KIND_AUTO, sz, &h[k]);
		p = ok[k] ? arena_ptr(a, h[k]) : NULL;
		if (p)
			memset(p, k, arena_size(a, h[k]));
		shared[k] = ok[k] && k % 2 && !arena_ref(b, h[k]);
		w->errors += !ok[k] + (ok[k] && k % 2 && !shared[k]);
	}
	for (k = 0; k < 8; k++) {
		if (ok[k] && arena_unref(a, h[k]))
			w->errors++;
		if (shared[k] && arena_unref(b, h[k]))
			w->errors++;
	}
}

static int work(void *arg)
{
	struct worker *wk = arg;
	struct pollfd p = { .fd = wk->stop[0], .events = POLLIN };
	struct work_result w = { 0 };
	struct arena_client *a, *b;

	tstat_child_init();
	if (arena_connect(d.sock, &a) || arena_connect(d.sock, &b))
		return 2;
	while (poll(&p, 1, 0) == 0)
		work_round(a, b, w.rounds++, &w);
	arena_disconnect(b);
	arena_disconnect(a);
	return write(wk->report[1], &w, sizeof(w)) == sizeof(w) ? 0 : 3;
}

/* ---- a client to kill once its table is scribbled ---- */

struct victim {
	pid_t pid;
	unsigned id;
	int ready[2];
};

static int victim(void *arg)
{
	struct victim *v = arg;
	struct arena_client *c;
	arena_handle_t h;
	unsigned i, id;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 2;
	for (i = 0; i < 16; i++)
		if (!arena_alloc(c, ARENA_KIND_AUTO, 64 << (i % 8), &h) &&
		    i % 2)
			arena_ref(c, h); /* an entry in its ledger */
	for (i = 0; i < nheld; i++)
		arena_ref(c, held[i]); /* references to another's blocks */
	id = arena_client_id(c);
	if (write(v->ready[1], &id, sizeof(id)) != sizeof(id))
		return 3;
	poll(NULL, 0, 2 * IO_MS); /* killed before then */
	return 4;
}

/* ---- set-up ---- */

/*
 * Every damaged reclaim retires a client id for good, so the daemon gets
 * more ids than the rounds can use up.
 */
static int group_setup(void **state)
{
	static const char *const args[] = { "--max-clients", "512", NULL };
	int err = harness_daemon_start(&d, args);

	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	if (base)
		munmap(base, size);
	return d.pid > 0 ? harness_daemon_kill(&d) : 0;
}

/* Map the region through a raw attach; the connection stays open. */
static int map_region(void)
{
	struct arena_proto_welcome w;
	int s = raw_connect(d.sock, 0), fd;

	assert_true(s >= 0);
	assert_int_equal(raw_attach(s, &w, &fd, IO_MS), 0);
	size = w.region_size;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(base != MAP_FAILED);
	close(fd);
	memcpy(&hdr, base, sizeof(hdr));
	assert_int_equal(hdr.magic, ARENA_PROTO_REGION_MAGIC);
	return s;
}

static void hold_blocks(void)
{
	static const size_t sizes[] = { 64, 200, 1000, 4096, 20000, 100000 };
	unsigned i;

	assert_int_equal(arena_connect(d.sock, &me), 0);
	for (i = 0; i < HELD; i++)
		if (!arena_alloc(me, ARENA_KIND_AUTO, sizes[i % 6],
				 &held[nheld]))
			nheld++;
	assert_true(nheld > HELD / 2);
}

/* ---- the targets ---- */

static const struct arena_proto_arena *desc(uint32_t kind)
{
	uint32_t n = 0, i, pick;

	for (i = 0; i < hdr.narenas; i++)
		n += hdr.arenas[i].kind == kind;
	if (!n)
		return NULL;
	pick = (uint32_t)(rnd() % n);
	for (i = 0; i < hdr.narenas; i++)
		if (hdr.arenas[i].kind == kind && !pick--)
			return &hdr.arenas[i];
	return NULL;
}

static void scribble_header(void)
{
	size_t off = rnd() % offsetof(struct arena_proto_region, arenas);

	if (rnd() % 3 == 0)
		off = 0; /* now and then the magic too */
	scribble(base + off, 1 + rnd() % 64);
}

static void scribble_bitmap(void)
{
	const struct arena_proto_arena *a = desc(ARENA_PROTO_KIND_FIXED);
	struct arena_proto_bitmap_word *bm;
	unsigned k;

	bm = (void *)(base + a->bitmap_off);
	for (k = 0; k < 16; k++)
		scribble(&bm[rnd() % a->nwords], sizeof(bm[0]));
}

static void scribble_held_states(void)
{
	struct arena_proto_handle p;
	uint64_t *st;
	unsigned i;

	for (i = 0; i < nheld; i += 1 + (unsigned)(rnd() % 3)) {
		arena_proto_handle_unpack(held[i], &p);
		st = (uint64_t *)(base + hdr.arenas[p.arena].state_off);
		__atomic_store_n(&st[p.index], rnd(), __ATOMIC_RELAXED);
	}
}

static void scribble_tree(void)
{
	const struct arena_proto_arena *a = desc(ARENA_PROTO_KIND_BUDDY);
	unsigned k;

	if (!a) {
		scribble_bitmap(); /* no buddy arena here */
		return;
	}
	for (k = 0; k < 32; k++)
		scribble(base + a->tree_off + rnd() % a->tree_len, 1);
}

static void scribble_table(unsigned id)
{
	uint8_t *t =
		base + hdr.clients_off + (uint64_t)(id - 1) * hdr.client_stride;

	if (rnd() % 2)
		scribble(t, hdr.client_stride); /* the whole table */
	else
		scribble(t + hdr.ledger_off + (rnd() % 64) * 64, 512);
}

/* ---- what must hold after each round ---- */

static void daemon_running(const char *after)
{
	int st;

	if (waitpid(d.pid, &st, WNOHANG) == d.pid) {
		d.pid = -1;
		fail_msg("the daemon died after %s: %s %d", after,
			 WIFSIGNALED(st) ? "signal" : "exit status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
}

static void arenactl_stats(const char *after)
{
	char path[512], out[4096], err[4096];
	const char *argv[] = { path, "--socket", d.sock, "stats", NULL };
	int status = -1;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	if (harness_run(argv, &status, out, sizeof(out), err, sizeof(err)) ||
	    status != 0)
		fail_msg("arenactl stats after %s: status %d: %s", after,
			 status, err);
}

/*
 * arenactl audit answers, clean (0) or not (1); returns the status and
 * keeps the output in out.
 */
static int arenactl_audit(const char *after, char *out, size_t cap)
{
	char path[512], err[4096];
	const char *argv[] = { path, "--socket", d.sock, "audit", NULL };
	int status = -1;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	if (harness_run(argv, &status, out, cap, err, sizeof(err)) ||
	    (status != 0 && status != 1))
		fail_msg("arenactl audit after %s: status %d: %s", after,
			 status, err);
	return status;
}

/* A new client attaches (and may allocate), within 10 s. */
static void newcomer(const char *after)
{
	long long start = tstat_now_ms();
	struct arena_client *c = NULL;
	arena_handle_t h;
	int err = arena_connect(d.sock, &c);

	if (err)
		fail_msg("arena_connect after %s: %s", after, strerror(-err));
	if (!arena_alloc(c, ARENA_KIND_AUTO, 100, &h))
		arena_unref(c, h);
	arena_disconnect(c);
	if (tstat_now_ms() - start > IO_MS)
		fail_msg("arena_connect after %s took %lld ms", after,
			 tstat_now_ms() - start);
}

static void still_serving(int raw, const char *after)
{
	static char out[16384];
	struct tstat s;

	daemon_running(after);
	if (tstat_get(d.sock, &s))
		fail_msg("no STATS after %s", after);
	if (raw_ping(raw, IO_MS))
		fail_msg("no PONG after %s", after);
	arenactl_audit(after, out, sizeof(out));
	daemon_running(after);
	newcomer(after);
	daemon_running(after);
}

/* Wait for the daemon's log to say needle; fail after 10 s. */
static void await_log(const char *needle, const char *after)
{
	long long end = tstat_now_ms() + IO_MS;

	while (!harness_log_contains(&d, needle)) {
		daemon_running(after);
		if (tstat_now_ms() > end)
			fail_msg("after %s: no \"%s\" in the log", after,
				 needle);
		tstat_sleep_ms(10);
	}
}

/* Start a victim, scribble its table (and the header), kill it. */
static void table_round(int with_header)
{
	struct victim v;
	char needle[64];

	assert_int_equal(pipe(v.ready), 0);
	v.pid = harness_fork(victim, &v);
	assert_true(v.pid > 0);
	assert_int_equal(read(v.ready[0], &v.id, sizeof(v.id)), sizeof(v.id));
	assert_in_range(v.id, 1, hdr.max_clients);
	scribble_table(v.id);
	if (with_header)
		scribble_header();
	kill(v.pid, SIGKILL);
	assert_int_equal(harness_wait(v.pid, IO_MS), -1);
	snprintf(needle, sizeof(needle), "(pid %d) detached", (int)v.pid);
	await_log(needle, target_name[T_TABLE]);
	/* the header is put back first: the reclaim sees the table */
	snprintf(needle, sizeof(needle), "client %u: table overwritten", v.id);
	await_log(needle, target_name[T_TABLE]);
	close(v.ready[0]);
	close(v.ready[1]);
}

static void round_run(enum target t, int raw)
{
	switch (t) {
	case T_HEADER:
		scribble_header();
		break;
	case T_DESCRIPTORS:
		scribble(base + offsetof(struct arena_proto_region, arenas) +
				 rnd() % (hdr.narenas * sizeof(hdr.arenas[0])),
			 1 + rnd() % 32);
		break;
	case T_BITMAP:
		scribble_bitmap();
		break;
	case T_STATE:
		scribble_held_states();
		break;
	case T_TREE:
		scribble_tree();
		break;
	default:
		table_round(t == T_TABLE_AND_HEADER);
		break;
	}
	still_serving(raw, target_name[t]);
	if (memcmp(base, &hdr, sizeof(hdr)))
		fail_msg("after %s: the header was not put back",
			 target_name[t]);
}

/* After all that, the audit must say what is wrong, one line each. */
static void audit_reports_damage(void)
{
	static char out[16384];
	int st = arenactl_audit("the scribbles", out, sizeof(out));

	fprintf(stderr, "audit after the scribbles (status %d): %s\n", st,
		strstr(out, "audit: ") ? strstr(out, "audit: ") : out);
	if (st != 1 || !strstr(out, ": ") || !strstr(out, "audit: "))
		fail_msg("the audit did not report the damage: status %d", st);
}

static void scribbled(void **state)
{
	struct worker wk;
	struct work_result w = { 0 };
	int raw, r;

	raw = map_region();
	hold_blocks();
	assert_int_equal(pipe(wk.stop), 0);
	assert_int_equal(pipe(wk.report), 0);
	wk.pid = harness_fork(work, &wk);
	assert_true(wk.pid > 0);
	for (r = 0; r < ROUNDS; r++) {
		round_run((enum target)(r % T_TARGETS), raw);
		if (r % 6 == 5)
			arenactl_stats(target_name[r % T_TARGETS]);
	}
	assert_int_equal(write(wk.stop[1], "x", 1), 1);
	r = harness_wait(wk.pid, IO_MS);
	if (r < 0)
		fail_msg("the worker crashed or hung");
	if (!r)
		assert_int_equal(read(wk.report[0], &w, sizeof(w)), sizeof(w));
	fprintf(stderr, "worker: exit %d, %lu rounds, %lu errors\n", r,
		w.rounds, w.errors);
	assert_int_equal(r, 0);
	assert_true(harness_log_contains(&d, "reclaim failed"));
	assert_true(harness_log_contains(&d, "region header overwritten"));
	audit_reports_damage();
	arena_disconnect(me);
	still_serving(raw, "the end");
	close(raw);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scribbled),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
