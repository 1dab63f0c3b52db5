// SPDX-License-Identifier: MIT
/*
 * Zeroed allocation: a block another process wrote and freed comes back
 * all zero, for fixed, buddy and bump blocks, with arena_alloc_ex's
 * ARENA_ALLOC_ZERO on a daemon that does not zero, and with plain
 * arena_alloc on one started with --init zero.  The default hands out
 * uninitialised blocks, which promises nothing, so nothing is checked
 * there.  Also: an unknown flag is -EINVAL and allocates nothing, --init
 * per kind from a config file, and the startup log naming the arenas
 * that zero.
 *
 * Every arena is small, and the writer child takes every block of its
 * kind and size, so the reader's blocks are surely ones the child wrote.
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
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tclient.h"
#include "tstat.h"

#define WAIT_MS 20000
#define MAX_BLOCKS 4096

#define LAYOUT                                                                 \
	"--size", "16M", "--fixed", "4K:64", "--fixed", "64:256", "--buddy",   \
		"256K:4K", "--bump", "256K:64K", "--max-clients", "8"

static const char *const plain_args[] = { LAYOUT, NULL };
static const char *const zero_args[] = { LAYOUT, "--init", "zero", NULL };

static struct harness_daemon plain, zeroed;

static int group_setup(void **state)
{
	int err = harness_daemon_start(&plain, plain_args);

	if (!err)
		err = harness_daemon_start(&zeroed, zero_args);
	if (err)
		fprintf(stderr, "cannot start arenad: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	int a = harness_daemon_stop(&plain), b = harness_daemon_stop(&zeroed);

	return a || b ? -1 : 0;
}

struct job {
	const char *sock;
	enum arena_kind kind;
	size_t size;
};

/* Take every block of the kind and size, fill it with 0xa5, free all. */
static int dirty_all(void *p)
{
	const struct job *j = p;
	static arena_handle_t h[MAX_BLOCKS];
	struct arena_client *c;
	int n = 0, i;

	tstat_child_init();
	if (arena_connect(j->sock, &c))
		return 1;
	while (n < MAX_BLOCKS && arena_alloc(c, j->kind, j->size, &h[n]) == 0) {
		memset(arena_ptr(c, h[n]), 0xa5, arena_size(c, h[n]));
		n++;
	}
	for (i = 0; i < n; i++)
		if (arena_unref(c, h[i]))
			return 2;
	arena_disconnect(c);
	return n ? 0 : 3;
}

static void dirty(const char *sock, enum arena_kind kind, size_t size)
{
	struct job j = { sock, kind, size };
	pid_t pid = harness_fork(dirty_all, &j);

	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Allocate every block of the kind and size (with flags), check that
 * each is zero over its usable size, free them; how many there were.
 */
static int check_zero(struct arena_client *c, enum arena_kind kind, size_t size,
		      unsigned flags)
{
	static arena_handle_t h[MAX_BLOCKS];
	size_t len;
	int n = 0, i, err;

	while (n < MAX_BLOCKS) {
		err = arena_alloc_ex(c, kind, size, flags, &h[n]);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			break;
		}
		len = arena_size(c, h[n]);
		assert_true(len >= size);
		if (kind == ARENA_KIND_BUMP)
			len = (len + 15) & ~(size_t)15;
		if (!all_zero(arena_ptr(c, h[n]), len))
			fail_msg("block %d of %zu bytes not zero", n, len);
		n++;
	}
	for (i = 0; i < n; i++)
		assert_int_equal(arena_unref(c, h[i]), 0);
	return n;
}

static void roundtrip(const struct harness_daemon *d, unsigned flags,
		      enum arena_kind kind, size_t wsize, size_t rsize)
{
	struct arena_client *c;

	dirty(d->sock, kind, wsize);
	c = tcl_conn(d->sock);
	assert_true(check_zero(c, kind, rsize, flags) > 0);
	tcl_disc(c);
}

static void flag_fixed(void **state)
{
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_FIXED, 4096, 4096);
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_FIXED, 64, 64);
}

static void flag_buddy(void **state)
{
	/* written as 4 KiB blocks, read back merged into 32 KiB ones */
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_BUDDY, 4096, 32768);
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_BUDDY, 8192, 4096);
}

static void flag_bump(void **state)
{
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_BUMP, 1000, 3000);
	roundtrip(&plain, ARENA_ALLOC_ZERO, ARENA_KIND_BUMP, 5000, 7);
}

static void init_fixed(void **state)
{
	roundtrip(&zeroed, 0, ARENA_KIND_FIXED, 4096, 4096);
	roundtrip(&zeroed, 0, ARENA_KIND_AUTO, 64, 48);
	roundtrip(&zeroed, ARENA_ALLOC_ZERO, ARENA_KIND_FIXED, 4096, 4000);
}

static void init_buddy(void **state)
{
	roundtrip(&zeroed, 0, ARENA_KIND_BUDDY, 4096, 65536);
	roundtrip(&zeroed, 0, ARENA_KIND_AUTO, 8192, 8192);
}

static void init_bump(void **state)
{
	roundtrip(&zeroed, 0, ARENA_KIND_BUMP, 1000, 3000);
	roundtrip(&zeroed, 0, ARENA_KIND_BUMP, 3000, 1);
}

/* A block this process wrote and freed, then took again at once. */
static void init_same_thread(void **state)
{
	struct arena_client *c = tcl_conn(zeroed.sock);
	arena_handle_t h, g;

	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 4096, &h), 0);
	memset(arena_ptr(c, h), 0x5a, 4096);
	assert_int_equal(arena_unref(c, h), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_FIXED, 4096, &g), 0);
	assert_true((uint32_t)g == (uint32_t)h); /* the magazine's last */
	assert_true(all_zero(arena_ptr(c, g), 4096));
	assert_int_equal(arena_unref(c, g), 0);
	tcl_disc(c);
}

static void bad_flags(void **state)
{
	struct arena_client *c = tcl_conn(plain.sock);
	arena_handle_t h = 12345;
	struct tstat before, after;

	assert_int_equal(tstat_get(plain.sock, &before), 0);
	assert_int_equal(arena_alloc_ex(c, ARENA_KIND_FIXED, 64, 2, &h),
			 -EINVAL);
	assert_int_equal(arena_alloc_ex(c, ARENA_KIND_FIXED, 64, ~0u, &h),
			 -EINVAL);
	assert_int_equal(h, 12345);
	assert_int_equal(tstat_get(plain.sock, &after), 0);
	assert_int_equal(tstat_allocs(&after), tstat_allocs(&before));
	assert_int_equal(arena_alloc_ex(NULL, ARENA_KIND_FIXED, 64,
					ARENA_ALLOC_ZERO, &h),
			 -EINVAL);
	assert_int_equal(
		arena_alloc_ex(c, ARENA_KIND_FIXED, 0, ARENA_ALLOC_ZERO, &h),
		-EINVAL);
	assert_int_equal(arena_alloc_ex(c, ARENA_KIND_FIXED, 1 << 20,
					ARENA_ALLOC_ZERO, &h),
			 -E2BIG);
	tcl_disc(c);
}

static void startup_log(void **state)
{
	assert_true(harness_log_contains(&zeroed, "fixed 4.0 KiB slots"));
	assert_true(harness_log_contains(&zeroed, "init zero"));
	assert_false(harness_log_contains(&zeroed, "init none"));
	assert_true(harness_log_contains(&plain, "init none"));
	assert_false(harness_log_contains(&plain, "init zero"));
}

/* --init from a config file, per kind and per class, later items win. */
static void config_per_kind(void **state)
{
	char path[] = "/tmp/arena-zero-XXXXXX";
	const char *const args[] = { LAYOUT, "--config", path, NULL };
	const char text[] = "init = zero,bump=none\n"
			    "init 64=none # the small class stays as it is\n";
	struct harness_daemon d;
	struct arena_client *c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1),
			 (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(harness_daemon_start(&d, args), 0);
	unlink(path);
	assert_true(harness_log_contains(
		&d, "fixed 4.0 KiB slots x 64 (256.0 KiB of data"));
	assert_true(harness_log_contains(&d, "64 B slots x 256"));
	assert_true(harness_log_contains(&d, "init none"));
	assert_true(harness_log_contains(&d, "bump 256.0 KiB in 4 chunks of "
					     "64.0 KiB, init none"));
	assert_true(harness_log_contains(&d, "4.0 KiB and up (data at"));
	dirty(d.sock, ARENA_KIND_BUDDY, 4096);
	c = tcl_conn(d.sock);
	assert_true(check_zero(c, ARENA_KIND_BUDDY, 4096, 0) > 0);
	tcl_disc(c);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

/* Bad --init values: one line, usage exit, no daemon. */
static void bad_init(void **state)
{
	const char *bad[] = { "zeroes",	 "fixed=",  "slab=zero",
			      "5K=zero", "12=zero", "" };
	char arg[64], err[512];
	size_t i;
	int status;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = { NULL,   "--size", "16M",	 "--fixed",
				       "4K:8", "--init", bad[i], NULL };

		snprintf(arg, sizeof(arg), "%s/arenad", harness_build_dir());
		argv[0] = arg;
		assert_int_equal(
			harness_run(argv, &status, NULL, 0, err, sizeof(err)),
			0);
		assert_int_equal(status, 64);
		assert_non_null(strstr(err, "--init"));
		assert_non_null(strchr(err, '\n'));
		assert_true(strchr(err, '\n')[1] == '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(flag_fixed, tcl_teardown),
		cmocka_unit_test_teardown(flag_buddy, tcl_teardown),
		cmocka_unit_test_teardown(flag_bump, tcl_teardown),
		cmocka_unit_test_teardown(init_fixed, tcl_teardown),
		cmocka_unit_test_teardown(init_buddy, tcl_teardown),
		cmocka_unit_test_teardown(init_bump, tcl_teardown),
		cmocka_unit_test_teardown(init_same_thread, tcl_teardown),
		cmocka_unit_test_teardown(bad_flags, tcl_teardown),
		cmocka_unit_test(startup_log),
		cmocka_unit_test_teardown(config_per_kind, tcl_teardown),
		cmocka_unit_test(bad_init),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
