// SPDX-License-Identifier: MIT
/*
 * The test harness tested: if it misreports a status, loses output or
 * leaves a daemon running, every other test's verdict is worthless.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void build_dir(void **state)
{
	char *saved =
		getenv("ARENA_BUILD") ? strdup(getenv("ARENA_BUILD")) : NULL;

	setenv("ARENA_BUILD", "/some/where", 1);
	assert_string_equal(harness_build_dir(), "/some/where");
	unsetenv("ARENA_BUILD");
	assert_string_equal(harness_build_dir(), "build");
	if (saved)
		setenv("ARENA_BUILD", saved, 1);
	free(saved);
}

static void assert_gone(const char *path)
{
	if (access(path, F_OK) == 0 || errno != ENOENT)
		fail_msg("%s still exists", path);
}

/* The daemon's command line, NULs turned into spaces. */
static void cmdline(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	FILE *f;
	size_t n, i;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	for (i = 0; i < n; i++)
		buf[i] = buf[i] ? buf[i] : ' ';
	buf[n] = 0;
}

static void daemon_start_stop(void **state)
{
	struct harness_daemon d;
	char cmd[1024];
	FILE *f;

	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	assert_true(d.pid > 0);
	assert_string_equal(getenv("ARENA_SOCKET"), d.sock);
	assert_int_equal(access(d.sock, F_OK), 0);
	cmdline(d.pid, cmd, sizeof(cmd));
	assert_non_null(strstr(cmd, "--size 64M"));
	f = fopen(d.log, "a");
	assert_non_null(f);
	fputs("harness-marker-42\n", f);
	fclose(f);
	assert_int_equal(harness_log_contains(&d, "harness-marker-42"), 1);
	assert_int_equal(harness_log_contains(&d, "harness-marker-43"), 0);
	assert_int_equal(harness_daemon_stop(&d), 0);
	assert_gone(d.dir);
	assert_null(getenv("ARENA_SOCKET"));
	assert_int_equal(harness_log_contains(&d, "harness-marker-42"), 0);
}

static void daemon_extra_args(void **state)
{
	static const char *const args[] = { "--size", "8M", "--log-level",
					    "debug", NULL };
	struct harness_daemon d;
	char cmd[1024];

	assert_int_equal(harness_daemon_start(&d, args), 0);
	cmdline(d.pid, cmd, sizeof(cmd));
	assert_null(strstr(cmd, "64M"));
	assert_non_null(strstr(cmd, "--size 8M"));
	assert_non_null(strstr(cmd, "--log-level debug"));
	assert_int_equal(harness_daemon_stop(&d), 0);
}

static void daemon_kill(void **state)
{
	struct harness_daemon d;
	pid_t pid;

	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	pid = d.pid;
	assert_int_equal(harness_daemon_kill(&d), 0);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_gone(d.dir);
}

static void daemon_start_fails(void **state)
{
	static const char *const args[] = { "--no-such-option", NULL };
	struct harness_daemon d;

	assert_int_equal(harness_daemon_start(&d, args), -ECHILD);
	assert_gone(d.dir);
	assert_true(d.pid <= 0);
}

static void run_captures(void **state)
{
	const char *const argv[] = { "sh", "-c",
				     "echo out; echo err >&2; exit 3", NULL };
	char out[64], err[64];
	int st = -1;

	assert_int_equal(
		harness_run(argv, &st, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(st, 3);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");
}

static void run_truncates(void **state)
{
	const char *const argv[] = { "sh", "-c", "printf 0123456789", NULL };
	char out[5];
	int st = -1;

	assert_int_equal(harness_run(argv, &st, out, sizeof(out), NULL, 0), 0);
	assert_int_equal(st, 0);
	assert_string_equal(out, "0123");
}

static void run_large_output(void **state)
{
	const char *const argv[] = { "sh", "-c",
				     "head -c 300000 /dev/zero; head -c 300000 "
				     "/dev/zero >&2; exit 5",
				     NULL };
	int st = -1;

	assert_int_equal(harness_run(argv, &st, NULL, 0, NULL, 0), 0);
	assert_int_equal(st, 5);
}

static void run_signal_and_missing(void **state)
{
	const char *const killed[] = { "sh", "-c", "kill -9 $$", NULL };
	const char *const missing[] = { "/nonexistent/program", NULL };
	char err[256];
	int st = -1;

	assert_int_equal(harness_run(killed, &st, NULL, 0, NULL, 0), 0);
	assert_int_equal(st, 128 + SIGKILL);
	assert_int_equal(harness_run(missing, &st, NULL, 0, err, sizeof(err)),
			 0);
	assert_int_equal(st, 127);
	assert_non_null(strstr(err, "/nonexistent/program"));
}

static int child_returns(void *arg)
{
	return *(int *)arg;
}

static int child_dies(void *arg)
{
	raise(SIGKILL);
	return 0;
}

static int child_sleeps(void *arg)
{
	sleep(10);
	return 0;
}

static void fork_and_wait(void **state)
{
	int seven = 7, zero = 0;
	pid_t pid;

	assert_int_equal(
		harness_wait(harness_fork(child_returns, &seven), 5000), 7);
	assert_int_equal(harness_wait(harness_fork(child_returns, &zero), 5000),
			 0);
	assert_int_equal(harness_wait(harness_fork(child_dies, NULL), 5000),
			 -1);
	pid = harness_fork(child_sleeps, NULL);
	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, 100), -1);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped */
	assert_int_equal(errno, ECHILD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(build_dir),
		cmocka_unit_test(daemon_start_stop),
		cmocka_unit_test(daemon_extra_args),
		cmocka_unit_test(daemon_kill),
		cmocka_unit_test(daemon_start_fails),
		cmocka_unit_test(run_captures),
		cmocka_unit_test(run_truncates),
		cmocka_unit_test(run_large_output),
		cmocka_unit_test(run_signal_and_missing),
		cmocka_unit_test(fork_and_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
