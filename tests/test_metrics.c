// SPDX-License-Identifier: MIT
/*
 * Live metrics against a known workload in two processes: live blocks
 * and bytes, high-water marks, allocations and frees (also frees on the
 * magazine fast path and frees done by the daemon's reclaim of a killed
 * client), failures by cause, waits and their time, free bytes and the
 * buddy arena's largest free block, each checked exactly with
 * arena_stats() and against arenactl stats --json and --prometheus.
 *
 * Layout: arena 0 fixed 64 B x 8 and arena 1 fixed 128 B x 2048 (the
 * latter with thread magazines), arena 2 buddy 64 KiB in 4 KiB leaves
 * (with four client ids nobody gets buddy magazines, so the tree shows
 * exactly the blocks allocated).
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#define WAIT_MS 10000
#define KB 1024ull

static struct harness_daemon d;
static const char *const daemon_args[] = {
	"--fixed", "64:8",	    "--fixed", "128:2048", "--buddy",
	"64K:4K",  "--max-clients", "4",       NULL
};

/* What a test expects of one arena; largest_free for buddy computed. */
struct want {
	uint64_t live, bytes, peak, peak_bytes, allocs, frees, fail_full,
		fail_big, waits, free_bytes, largest_free;
};

static void check(struct arena_client *c, unsigned idx, const struct want *w,
		  struct arena_stats *out)
{
	struct arena_stats s;

	assert_int_equal(arena_stats(c, idx, &s), 0);
	assert_int_equal(s.index, idx);
	assert_int_equal(s.live_blocks, w->live);
	assert_int_equal(s.live_bytes, w->bytes);
	assert_int_equal(s.peak_blocks, w->peak);
	assert_int_equal(s.peak_bytes, w->peak_bytes);
	assert_int_equal(s.allocs, w->allocs);
	assert_int_equal(s.frees, w->frees);
	assert_int_equal(s.fail_full, w->fail_full);
	assert_int_equal(s.fail_big, w->fail_big);
	assert_int_equal(s.waits, w->waits);
	assert_int_equal(s.free_bytes, w->free_bytes);
	assert_int_equal(s.largest_free, w->largest_free);
	if (out)
		*out = s;
}

/* ---- arenactl ---- */

static char ctl_out[64 << 10];

static void ctl(const char *fmt)
{
	char path[512], err[4096];
	const char *argv[] = { path, "--socket", d.sock, "stats", fmt, NULL };
	int status = -1;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	assert_int_equal(harness_run(argv, &status, ctl_out, sizeof(ctl_out),
				     err, sizeof(err)),
			 0);
	if (status)
		fail_msg("arenactl stats %s: %d: %s", fmt ? fmt : "", status,
			 err);
}

static uint64_t num(const char *p, const char *end, const char *key)
{
	char pat[64];
	const char *q;
	size_t n = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", key);

	q = memmem(p, (size_t)(end - p), pat, n);
	if (!q)
		fail_msg("no %s in arenactl's metrics", key);
	return strtoull(q + n, NULL, 10);
}

/* arenactl stats --json says for arena idx exactly what s says. */
static void check_json(unsigned idx, const struct arena_stats *s)
{
	const char *p = ctl_out, *end;
	unsigned i;

	for (i = 0; i <= idx; i++) {
		p = strstr(p, "\"metrics\":{");
		assert_non_null(p);
		p += 10;
	}
	end = strchr(p, '}');
	assert_non_null(end);
	assert_int_equal(num(p, end, "live_blocks"), s->live_blocks);
	assert_int_equal(num(p, end, "live_bytes"), s->live_bytes);
	assert_int_equal(num(p, end, "peak_blocks"), s->peak_blocks);
	assert_int_equal(num(p, end, "peak_bytes"), s->peak_bytes);
	assert_int_equal(num(p, end, "allocs"), s->allocs);
	assert_int_equal(num(p, end, "frees"), s->frees);
	assert_int_equal(num(p, end, "fail_full"), s->fail_full);
	assert_int_equal(num(p, end, "fail_big"), s->fail_big);
	assert_int_equal(num(p, end, "waits"), s->waits);
	assert_int_equal(num(p, end, "wait_ns"), s->wait_ns);
	assert_int_equal(num(p, end, "free_bytes"), s->free_bytes);
	assert_int_equal(num(p, end, "largest_free"), s->largest_free);
}

/* Every arena: the library's numbers, then arenactl's --json. */
static void check_all(struct arena_client *c, const struct want w[3])
{
	struct arena_stats s[3];
	unsigned i;

	for (i = 0; i < 3; i++)
		check(c, i, &w[i], &s[i]);
	ctl("--json");
	for (i = 0; i < 3; i++)
		check_json(i, &s[i]);
}

static void assert_line(const char *text, const char *line)
{
	const char *p = strstr(text, line);
	size_t n = strlen(line);

	while (p && ((p != text && p[-1] != '\n') || p[n] != '\n'))
		p = strstr(p + 1, line);
	if (!p)
		fail_msg("no line \"%s\" in:\n%s", line, text);
}

/*
 * The largest free buddy block when blocks [leaf, leaf + 1 << order)
 * are taken, in bytes: 16 leaves of 4 KiB.
 */
static uint64_t largest_free(const uint32_t *leaf, const unsigned *order,
			     unsigned n)
{
	unsigned o, k;
	uint32_t at;

	for (o = 5; o-- > 0;)
		for (at = 0; at < 16; at += 1u << o) {
			for (k = 0; k < n; k++)
				if (leaf[k] < at + (1u << o) &&
				    at < leaf[k] + (1u << order[k]))
					break;
			if (k == n)
				return (4 * KB) << o;
		}
	return 0;
}

/* ---- the second process ---- */

struct child {
	int up[2], down[2]; /* up: child -> parent */
};

static int child_step(const struct child *x, char *got)
{
	return read(x->down[0], got, 1) == 1 ? 0 : -1;
}

/*
 * Phase 1: 3 slots of arena 0 (then full: -ENOMEM, -ETIMEDOUT after a
 * wait of 100 ms, -E2BIG for 128 B of fixed), a 4 KiB buddy block (then
 * -ENOMEM for 64 KiB, -E2BIG for 128 KiB); its leaf goes up.  Phase 2:
 * two slots and the buddy block freed.  Then it waits to be killed,
 * holding the third slot.
 */
static int child_run(void *p)
{
	const struct child *x = p;
	struct arena_client *c;
	arena_handle_t k[3], kb, h;
	uint32_t leaf;
	char b;
	int i;

	tstat_child_init();
	if (arena_connect(d.sock, &c))
		return 10;
	for (i = 0; i < 3; i++)
		if (arena_alloc(c, ARENA_KIND_AUTO, 64, &k[i]))
			return 11;
	if (arena_alloc(c, ARENA_KIND_AUTO, 64, &h) != -ENOMEM ||
	    arena_alloc_wait(c, ARENA_KIND_AUTO, 64, 100, &h) != -ETIMEDOUT ||
	    arena_alloc(c, ARENA_KIND_FIXED, 128 + 64, &h) != -E2BIG)
		return 12;
	if (arena_alloc(c, ARENA_KIND_BUDDY, 4096, &kb) ||
	    arena_alloc(c, ARENA_KIND_BUDDY, 64 * KB, &h) != -ENOMEM ||
	    arena_alloc(c, ARENA_KIND_BUDDY, 128 * KB, &h) != -E2BIG)
		return 13;
	leaf = (uint32_t)kb;
	if (write(x->up[1], &leaf, sizeof(leaf)) != sizeof(leaf) ||
	    child_step(x, &b))
		return 14;
	if (arena_unref(c, k[0]) || arena_unref(c, k[1]) || arena_unref(c, kb))
		return 15;
	if (write(x->up[1], "3", 1) != 1)
		return 16;
	for (;;)
		pause();
}

static void until_clients(uint32_t n)
{
	struct tstat s;
	int i;

	for (i = 0; i < WAIT_MS; i++) {
		assert_int_equal(tstat_get(d.sock, &s), 0);
		if (s.nclients == n)
			return;
		usleep(1000);
	}
	fail_msg("%u clients, want %u", s.nclients, n);
}

static void known_workload(void **state)
{
	struct want w[3] = { { 0 } };
	arena_handle_t h[5], hb, m[10];
	uint32_t leaf[2];
	unsigned order[2] = { 2, 0 };
	struct arena_client *c;
	struct child x;
	struct arena_stats s;
	char b;
	int i;
	pid_t pid;

	assert_int_equal(harness_daemon_start(&d, daemon_args), 0);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 64, &h[i]), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 100, &m[i]),
				 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_BUDDY, 16 * KB, &hb), 0);
	leaf[0] = (uint32_t)hb;
	assert_int_equal(pipe(x.up), 0);
	assert_int_equal(pipe(x.down), 0);
	pid = harness_fork(child_run, &x);
	assert_true(pid > 0);
	assert_int_equal(read(x.up[0], &leaf[1], sizeof(leaf[1])),
			 sizeof(leaf[1]));

	/* the peak: both processes hold everything */
	w[0] = (struct want){ 8, 512, 8, 512, 8, 0, 2, 0, 1, 0, 0 };
	w[1] = (struct want){ 10, 1280, 10, 1280,	10, 0,
			      0,  1,	0,  2038 * 128, 128 };
	w[2] = (struct want){ 2,
			      20 * KB,
			      2,
			      20 * KB,
			      2,
			      0,
			      1,
			      1,
			      0,
			      44 * KB,
			      largest_free(leaf, order, 2) };
	check_all(c, w);
	assert_int_equal(arena_stats(c, 0, &s), 0);
	assert_true(s.wait_ns >= 100000000ull);

	/* fewer held: peaks stay; frees on the fast path (magazines) too */
	assert_int_equal(write(x.down[1], "2", 1), 1);
	assert_int_equal(read(x.up[0], &b, 1), 1);
	assert_int_equal(arena_unref(c, h[0]), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(arena_unref(c, m[i]), 0);
	w[0] = (struct want){ 5, 320, 8, 512, 8, 3, 2, 0, 1, 192, 64 };
	w[1] = (struct want){
		6, 768, 10, 1280, 10, 4, 0, 1, 0, 2042 * 128, 128
	};
	w[2] = (struct want){ 1,
			      16 * KB,
			      2,
			      20 * KB,
			      2,
			      1,
			      1,
			      1,
			      0,
			      48 * KB,
			      largest_free(leaf, order, 1) };
	check_all(c, w);

	/* the child killed holding a slot: the daemon's reclaim frees it */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), -1);
	until_clients(1);
	w[0] = (struct want){ 4, 256, 8, 512, 8, 4, 2, 0, 1, 256, 64 };
	check_all(c, w);

	ctl("--prometheus");
	assert_line(ctl_out, "arenad_arena_live_blocks{arena=\"0\","
			     "kind=\"fixed\",block_size=\"64\"} 4");
	assert_line(ctl_out, "arenad_arena_peak_bytes{arena=\"2\","
			     "kind=\"buddy\",block_size=\"4096\"} 20480");
	assert_line(ctl_out, "arenad_arena_waits_total{arena=\"0\","
			     "kind=\"fixed\",block_size=\"64\"} 1");
	ctl(NULL);
	assert_non_null(strstr(ctl_out, "largest_free"));

	/* everything back: nothing live, every allocation freed */
	for (i = 1; i < 5; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	for (i = 4; i < 10; i++)
		assert_int_equal(arena_unref(c, m[i]), 0);
	assert_int_equal(arena_unref(c, hb), 0);
	w[0] = (struct want){ 0, 0, 8, 512, 8, 8, 2, 0, 1, 512, 64 };
	w[1] = (struct want){
		0, 0, 10, 1280, 10, 10, 0, 1, 0, 2048 * 128, 128
	};
	w[2] = (struct want){
		0, 0, 2, 20 * KB, 2, 2, 1, 1, 0, 64 * KB, 64 * KB
	};
	check_all(c, w);
	arena_disconnect(c);
	close(x.up[0]);
	close(x.up[1]);
	close(x.down[0]);
	close(x.down[1]);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

/* A departed client's counts stay: folded by the daemon into the region. */
static void departed_counts_stay(void **state)
{
	struct arena_client *a, *b;
	arena_handle_t h;
	struct arena_stats s;

	assert_int_equal(harness_daemon_start(&d, daemon_args), 0);
	assert_int_equal(arena_connect(d.sock, &a), 0);
	assert_int_equal(arena_connect(d.sock, &b), 0);
	assert_int_equal(arena_alloc(b, ARENA_KIND_BUDDY, 8 * KB, &h), 0);
	assert_int_equal(arena_alloc(b, ARENA_KIND_FIXED, 4096, &h), -E2BIG);
	assert_int_equal(arena_stats(a, 2, &s), 0); /* the peak, seen */
	arena_disconnect(b); /* holding the buddy block: the daemon frees it */
	until_clients(1);
	assert_int_equal(arena_stats(a, 2, &s), 0);
	assert_int_equal(s.allocs, 1);
	assert_int_equal(s.frees, 1);
	assert_int_equal(s.live_blocks, 0);
	assert_int_equal(s.live_bytes, 0);
	assert_int_equal(s.peak_bytes, 8 * KB);
	assert_int_equal(arena_stats(a, 1, &s), 0);
	assert_int_equal(s.fail_big, 1);
	arena_disconnect(a);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_workload),
		cmocka_unit_test(departed_counts_stay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
