// SPDX-License-Identifier: MIT
/*
 * arenad and arenactl from the outside: exit statuses, what reaches
 * stdout and stderr, and what is left on disk.  Every bad command line
 * must be refused with status 64 (or 1 for a layout that cannot fit) and
 * exactly one line on stderr that names the problem, and must leave no
 * socket behind; a running daemon must survive a second one aimed at its
 * socket; a stale socket from a dead daemon is taken over.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define OUT_CAP 65536
#define MAX_ARGV 24

/* A private directory and socket path per test. */
struct cli {
	char dir[256];
	char sock[320];
	char out[OUT_CAP];
	char err[OUT_CAP];
	int status;
};

struct bad_case {
	const char *args[10]; /* after "--socket PATH" */
	int status;
	const char *needle[2]; /* words the stderr line must contain */
};

static int cli_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct cli *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "%s/cli-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	snprintf(c->sock, sizeof(c->sock), "%s/arenad.sock", c->dir);
	*state = c;
	return 0;
}

static int cli_teardown(void **state)
{
	struct cli *c = *state;

	unlink(c->sock);
	rmdir(c->dir);
	free(c);
	return 0;
}

static const char *tool(const char *name)
{
	static char path[2][512];
	int i = !strcmp(name, "arenactl");

	snprintf(path[i], sizeof(path[i]), "%s/%s", harness_build_dir(), name);
	return path[i];
}

/* Run name with args (NULL-terminated) into c; fails the test on error. */
static void run(struct cli *c, const char *name, const char *const args[])
{
	const char *argv[MAX_ARGV + 2];
	int n = 0, ret;

	argv[n++] = tool(name);
	while (args && *args && n <= MAX_ARGV)
		argv[n++] = *args++;
	argv[n] = NULL;
	ret = harness_run(argv, &c->status, c->out, sizeof(c->out), c->err,
			  sizeof(c->err));
	if (ret == -ETIMEDOUT)
		fail_msg("%s did not exit within 10 s; stderr:\n%s", argv[0],
			 c->err);
	if (ret)
		fail_msg("running %s: %s", argv[0], strerror(-ret));
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_one_line(const char *s)
{
	size_t len = strlen(s);

	if (len < 2 || s[len - 1] != '\n' || count_lines(s) != 1)
		fail_msg("expected exactly one line on stderr, got:\n%s", s);
}

static void assert_no_file(const char *path)
{
	if (access(path, F_OK) == 0 || errno != ENOENT)
		fail_msg("%s was left behind", path);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

/* ---- bad command lines ---- */

static void bad_command_line(void **state)
{
	void **pair = *state;
	struct cli *c = pair[0];
	const struct bad_case *bc = pair[1];
	const char *args[16] = { "--socket", c->sock };
	int i;

	for (i = 0; bc->args[i]; i++)
		args[i + 2] = bc->args[i];
	run(c, "arenad", args);
	if (c->status != bc->status)
		fail_msg("exit status %d, expected %d; stderr:\n%s", c->status,
			 bc->status, c->err);
	assert_one_line(c->err);
	for (i = 0; i < 2 && bc->needle[i]; i++)
		assert_contains(c->err, bc->needle[i]);
	assert_string_equal(c->out, "");
	assert_no_file(c->sock);
}

static const struct bad_case bad_cases[] = {
	{ { "--size", "64M", "--bogus", NULL }, 64, { "--bogus" } },
	{ { NULL }, 64, { "--size" } },
	{ { "--size", "0", NULL }, 64, { "size", "0" } },
	{ { "--size", "12Q", NULL }, 64, { "size", "12Q" } },
	{ { "--size", "-5", NULL }, 64, { "size", "-5" } },
	{ { "--size", "99999999999T", NULL }, 64, { "size", "99999999999T" } },
	{ { "--size", "64M", "--fixed", "100:10", NULL },
	  64,
	  { "fixed", "100:10" } },
	{ { "--size", "64M", "--fixed", "64:0", NULL },
	  64,
	  { "fixed", "64:0" } },
	{ { "--size", "64M", "--fixed", "64:10", "--fixed", "64:20", NULL },
	  64,
	  { "fixed", "64" } },
	{ { "--size", "64M", "--log-level", "loud", NULL },
	  64,
	  { "log-level", "loud" } },
	{ { "--size", "64M", "--max-clients", "0", NULL },
	  64,
	  { "max-clients", "0" } },
	{ { "--size", "1M", "--fixed", "65536:100", NULL }, 1, { NULL } },
};

/* ---- --help, --version ---- */

static void help_and_version(void **state)
{
	struct cli *c = *state;
	static const char *const help[] = { "--help", NULL };
	static const char *const version[] = { "--version", NULL };

	run(c, "arenad", help);
	assert_int_equal(c->status, 0);
	assert_contains(c->out, "--size");
	assert_contains(c->out, "--fixed");
	assert_string_equal(c->err, "");
	run(c, "arenad", version);
	assert_int_equal(c->status, 0);
	assert_contains(c->out, "arenad");
	assert_string_equal(c->err, "");
}

/* ---- against a running daemon ---- */

static void ctl(struct cli *c, const char *sock, const char *cmd,
		const char *flag)
{
	const char *const args[] = { "--socket", sock, cmd, flag, NULL };

	run(c, "arenactl", args);
}

static void start(struct harness_daemon *d, const char *sock)
{
	const char *const args[] = { "--socket", sock, NULL };
	int ret = harness_daemon_start(d, sock ? args : NULL);

	if (ret)
		fail_msg("arenad did not start: %s", strerror(-ret));
}

static void stop_ok(struct harness_daemon *d)
{
	assert_int_equal(harness_daemon_stop(d), 0);
}

static void second_daemon_refused(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;
	const char *args[] = { "--size", "64M", "--socket", NULL, NULL };

	start(&d, NULL);
	args[3] = d.sock;
	run(c, "arenad", args);
	assert_int_equal(c->status, 1);
	assert_one_line(c->err);
	assert_int_equal(access(d.sock, F_OK), 0);
	ctl(c, d.sock, "stats", NULL);
	assert_int_equal(c->status, 0);
	ctl(c, d.sock, "ping", NULL);
	assert_int_equal(c->status, 0);
	stop_ok(&d);
}

/* Child: bind a socket at arg and exit without unlinking it. */
static int bind_and_die(void *arg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strncpy(sa.sun_path, arg, sizeof(sa.sun_path) - 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 1;
	return listen(fd, 1) ? 2 : 0;
}

static void stale_socket_replaced(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;

	assert_int_equal(
		harness_wait(harness_fork(bind_and_die, c->sock), 5000), 0);
	assert_int_equal(access(c->sock, F_OK), 0);
	start(&d, c->sock);
	ctl(c, c->sock, "ping", NULL);
	assert_int_equal(c->status, 0);
	stop_ok(&d);
	assert_no_file(c->sock);
}

static void sigterm_exits_clean(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;

	start(&d, c->sock);
	stop_ok(&d);
	assert_no_file(c->sock);
}

static void sigint_exits_clean(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;

	start(&d, c->sock);
	assert_int_equal(kill(d.pid, SIGINT), 0);
	assert_int_equal(harness_wait(d.pid, 10000), 0);
	d.pid = -1;
	harness_daemon_stop(&d); /* only cleans up now */
	assert_no_file(c->sock);
}

/* Names in /dev/shm, one per line, into buf. */
static void list_shm(char *buf, size_t cap)
{
	DIR *dir = opendir("/dev/shm");
	struct dirent *e;
	size_t len = 0;

	buf[0] = 0;
	while (dir && len < cap && (e = readdir(dir)))
		len += snprintf(buf + len, cap - len, "\n%s\n", e->d_name);
	if (dir)
		closedir(dir);
	if (len >= cap)
		fail_msg("too many entries in /dev/shm");
}

/* Entries of after not in before that could be the daemon's. */
static void assert_no_new_shm(const char *before, const char *after, pid_t pid)
{
	char name[300], spid[32];
	const char *p = after, *nl;

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	while ((p = strchr(p, '\n')) && (nl = strchr(p + 1, '\n'))) {
		snprintf(name, sizeof(name), "%.*s", (int)(nl - p + 1), p);
		p = nl + 1;
		if (strstr(before, name))
			continue;
		if (strstr(name, "arena") || strstr(name, spid))
			fail_msg("left in /dev/shm: %s", name + 1);
	}
}

static void sigkill_leaves_no_shm(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;
	pid_t pid;

	if (access("/dev/shm", F_OK)) {
		skip();
		return;
	}
	list_shm(c->out, sizeof(c->out));
	start(&d, NULL);
	pid = d.pid;
	ctl(c, d.sock, "stats", NULL);
	assert_int_equal(c->status, 0);
	assert_int_equal(harness_daemon_kill(&d), 0);
	list_shm(c->err, sizeof(c->err));
	assert_no_new_shm(c->out, c->err, pid);
}

static void ctl_no_daemon(void **state)
{
	struct cli *c = *state;
	const char *const args[] = { "stats", NULL };

	ctl(c, c->sock, "stats", NULL);
	assert_int_not_equal(c->status, 0);
	assert_contains(c->err, "cannot reach");
	ctl(c, c->sock, "ping", NULL);
	assert_int_not_equal(c->status, 0);
	assert_contains(c->err, "cannot reach");
	setenv("ARENA_SOCKET", c->sock, 1);
	run(c, "arenactl", args);
	unsetenv("ARENA_SOCKET");
	assert_int_not_equal(c->status, 0);
	assert_contains(c->err, "cannot reach");
	assert_no_file(c->sock);
}

/* Brackets balance outside strings; one top-level object. */
static int json_shape_ok(const char *s)
{
	char stack[64];
	int depth = 0, in_str = 0, tops = 0;

	for (; *s; s++) {
		if (in_str) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				in_str = 0;
		} else if (*s == '"') {
			in_str = 1;
		} else if (*s == '{' || *s == '[') {
			if (depth == (int)sizeof(stack))
				return 0;
			tops += depth == 0;
			stack[depth++] = *s == '{' ? '}' : ']';
		} else if (*s == '}' || *s == ']') {
			if (!depth || stack[--depth] != *s)
				return 0;
		} else if (!depth && *s != ' ' && *s != '\n' && *s != '\t') {
			return 0;
		}
	}
	return !depth && !in_str && tops == 1;
}

static void ctl_stats(void **state)
{
	struct cli *c = *state;
	struct harness_daemon d;
	const char *p;

	start(&d, NULL);
	ctl(c, d.sock, "stats", NULL);
	assert_int_equal(c->status, 0);
	assert_true(strlen(c->out) > 0);
	ctl(c, d.sock, "stats", "--json");
	assert_int_equal(c->status, 0);
	if (!json_shape_ok(c->out))
		fail_msg("not a JSON object:\n%s", c->out);
	p = strstr(c->out, "\"arenas\"");
	assert_non_null(p);
	p += strlen("\"arenas\"");
	p += strspn(p, " \t\n");
	assert_int_equal(*p, ':');
	ctl(c, d.sock, "version", NULL);
	assert_int_equal(c->status, 0);
	assert_true(strlen(c->out) > 0);
	stop_ok(&d);
}

#define CLI_TEST(f) cmocka_unit_test_setup_teardown(f, cli_setup, cli_teardown)

/* One named cmocka test per bad command line. */
static void *bad_state[sizeof(bad_cases) / sizeof(bad_cases[0])][2];

static int bad_setup(void **state)
{
	void **pair = *state;

	return cli_setup(&pair[0]);
}

static int bad_teardown(void **state)
{
	void **pair = *state;

	return cli_teardown(&pair[0]);
}

#define BAD(i, name)                                                           \
	{                                                                      \
		"bad_" name, bad_command_line, bad_setup, bad_teardown,        \
			bad_state[i]                                           \
	}

int main(void)
{
	size_t i;
	const struct CMUnitTest tests[] = {
		BAD(0, "unknown_option"),
		BAD(1, "missing_size"),
		BAD(2, "size_zero"),
		BAD(3, "size_bad_suffix"),
		BAD(4, "size_negative"),
		BAD(5, "size_overflow"),
		BAD(6, "fixed_not_multiple_of_16"),
		BAD(7, "fixed_zero_count"),
		BAD(8, "fixed_duplicate"),
		BAD(9, "log_level"),
		BAD(10, "max_clients_zero"),
		BAD(11, "layout_does_not_fit"),
		CLI_TEST(help_and_version),
		CLI_TEST(second_daemon_refused),
		CLI_TEST(stale_socket_replaced),
		CLI_TEST(sigterm_exits_clean),
		CLI_TEST(sigint_exits_clean),
		CLI_TEST(sigkill_leaves_no_shm),
		CLI_TEST(ctl_no_daemon),
		CLI_TEST(ctl_stats),
	};

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		bad_state[i][1] = (void *)&bad_cases[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
