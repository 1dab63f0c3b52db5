// SPDX-License-Identifier: MIT
/*
 * arenad --config FILE: every option of the command line from a file,
 * the command line winning, and every bad line refused with exit status
 * 64 and exactly one line "arenad: FILE:LINE: reason" that names it,
 * before anything is created.  The documented example must itself be a
 * working config file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "svc.h"

#define OUT_CAP 65536
#define START_MS 10000

struct cfg {
	char dir[256];
	char file[320]; /* dir/arenad.conf */
	char sock[320]; /* dir/arenad.sock */
	char log[320];	/* dir/arenad.log */
	char out[OUT_CAP];
	char err[OUT_CAP];
	int status;
};

static int cfg_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct cfg *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "%s/config-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	snprintf(c->file, sizeof(c->file), "%s/arenad.conf", c->dir);
	snprintf(c->sock, sizeof(c->sock), "%s/arenad.sock", c->dir);
	snprintf(c->log, sizeof(c->log), "%s/arenad.log", c->dir);
	*state = c;
	return 0;
}

static int cfg_teardown(void **state)
{
	struct cfg *c = *state;
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", c->dir);
	free(c);
	return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len || fclose(f))
		fail_msg("cannot write %s", path);
}

static const char *tool(const char *name)
{
	static char path[2][512];
	int i = !strcmp(name, "arenactl");

	snprintf(path[i], sizeof(path[i]), "%s/%s", harness_build_dir(), name);
	return path[i];
}

/* Run BUILD/name with args (NULL-terminated) into c. */
static void run(struct cfg *c, const char *name, const char *const args[])
{
	const char *argv[24];
	int n = 0, ret;

	argv[n++] = tool(name);
	while (args && *args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	ret = harness_run(argv, &c->status, c->out, sizeof(c->out), c->err,
			  sizeof(c->err));
	if (ret)
		fail_msg("running %s: %s", argv[0], strerror(-ret));
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("'%s' unexpectedly in:\n%s", needle, hay);
}

/* Exactly one line on stderr, which starts with prefix. */
static void assert_one_line(const char *s, const char *prefix)
{
	size_t len = strlen(s);
	const char *nl = strchr(s, '\n');

	if (!nl || nl != s + len - 1)
		fail_msg("expected exactly one line on stderr, got:\n%s", s);
	if (strncmp(s, prefix, strlen(prefix)))
		fail_msg("expected a line starting with '%s', got:\n%s", prefix,
			 s);
}

static void assert_no_file(const char *path)
{
	if (access(path, F_OK) == 0 || errno != ENOENT)
		fail_msg("%s was left behind", path);
}

/* Start arenad with exactly args; its socket is sock. */
static void start(struct cfg *c, struct svc *d, const char *sock,
		  const char *const args[])
{
	const char *argv[24];
	int n = 0, ret;

	argv[n++] = tool("arenad");
	while (args && *args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	ret = svc_start(d, argv, NULL, c->log, -1);
	if (!ret)
		ret = svc_await(d, sock, START_MS);
	if (ret)
		fail_msg("arenad did not start: %s", strerror(-ret));
}

static void stats(struct cfg *c, const char *sock)
{
	const char *const args[] = { "--socket", sock, "stats", "--json",
				     NULL };

	run(c, "arenactl", args);
	if (c->status)
		fail_msg("arenactl stats: status %d:\n%s", c->status, c->err);
}

/* The text of a test config file, its socket being sock. */
static void conf_write(struct cfg *c, const char *sock)
{
	char text[1024];
	int n;

	n = snprintf(text, sizeof(text),
		     "# a test configuration\n"
		     "\n"
		     "   # indented comment\n"
		     "socket = %s\n"
		     "size 32M\n"
		     "fixed 64:100   # trailing comment\n"
		     "fixed=128:50\r\n"
		     "\tmax-clients\t8\n"
		     "log-level debug",
		     sock);
	write_file(c->file, text, (size_t)n);
}

static void file_sets_options(void **state)
{
	struct cfg *c = *state;
	const char *const args[] = { "--config", c->file, NULL };
	struct svc d;

	conf_write(c, c->sock);
	start(c, &d, c->sock, args);
	stats(c, c->sock);
	assert_contains(c->out, "\"block_size\":64,\"capacity\":100,");
	assert_contains(c->out, "\"block_size\":128,\"capacity\":50,");
	assert_lacks(c->out, "\"block_size\":256");
	assert_int_equal(svc_stop(&d), 0);
	assert_true(svc_log_contains(&d, ": debug: "));
	assert_true(svc_log_contains(&d, "64 B slots x 100"));
	assert_true(svc_log_contains(&d, "8 client tables"));
	assert_no_file(c->sock);
}

static void command_line_wins(void **state)
{
	struct cfg *c = *state;
	char sock2[340];
	const char *args[] = { "--fixed",     "256:10",	  "--config",
			       c->file,	      "--socket", sock2,
			       "--log-level", "warn",	  NULL };
	struct svc d;

	snprintf(sock2, sizeof(sock2), "%s/other.sock", c->dir);
	conf_write(c, c->sock);
	start(c, &d, sock2, args);
	stats(c, sock2);
	assert_contains(c->out, "\"block_size\":256,\"capacity\":10,");
	assert_lacks(c->out, "\"block_size\":64,");
	assert_lacks(c->out, "\"block_size\":128,");
	assert_no_file(c->sock);
	assert_int_equal(svc_stop(&d), 0);
	assert_false(svc_log_contains(&d, ": info: "));
	assert_false(svc_log_contains(&d, ": debug: "));
}

/* ---- bad lines: exit 64, "arenad: FILE:LINE: ..." naming the problem ---- */

struct bad_line {
	const char *name;
	const char *text;
	unsigned line;
	const char *needle;
};

static const struct bad_line bad_lines[] = {
	{ "unknown_option", "size 64M\nsise 1G\n", 2, "unknown option 'sise'" },
	{ "dashes", "--size 64M\n", 1, "unknown option '--size'" },
	{ "bad_size", "# first\n\nsize 12Q\n", 3, "size '12Q'" },
	{ "bad_fixed", "size 64M\nfixed 100:10\n", 2, "multiple of 16" },
	{ "fixed_twice", "size 64M\nfixed 64:10\nfixed = 64:20\n", 3,
	  "given twice" },
	{ "no_value", "size\n", 1, "'size' needs a value" },
	{ "empty_value", "size =   \n", 1, "'size' needs a value" },
	{ "no_name", "= 64M\n", 1, "expected 'option value'" },
	{ "help", "size 64M\nhelp\n", 2, "'help' cannot be used" },
	{ "version", "version\n", 1, "'version' cannot be used" },
	{ "nested_config", "config /etc/other.conf\n", 1,
	  "'config' cannot be used" },
	{ "log_level", "log-level = loud\n", 1, "log-level 'loud'" },
	{ "group", "size 64M\ngroup no-such-group-here\n", 2, "no such group" },
	{ "max_clients", "max-clients 0\n", 1, "max-clients '0'" },
	{ "ledger", "ledger 100\n", 1, "ledger '100'" },
};

#define NBAD (sizeof(bad_lines) / sizeof(bad_lines[0]))

static void bad_line(void **state)
{
	void **pair = *state;
	struct cfg *c = pair[0];
	const struct bad_line *b = pair[1];
	const char *const args[] = { "--config", c->file, "--socket", c->sock,
				     NULL };
	char prefix[400];

	write_file(c->file, b->text, strlen(b->text));
	run(c, "arenad", args);
	if (c->status != 64)
		fail_msg("exit status %d, expected 64; stderr:\n%s", c->status,
			 c->err);
	snprintf(prefix, sizeof(prefix), "arenad: %s:%u: ", c->file, b->line);
	assert_one_line(c->err, prefix);
	assert_contains(c->err, b->needle);
	assert_string_equal(c->out, "");
	assert_no_file(c->sock);
}

/* One run of arenad that must fail with 64 and one line holding needle. */
static void refused(struct cfg *c, const char *const args[], const char *needle)
{
	run(c, "arenad", args);
	if (c->status != 64)
		fail_msg("exit status %d, expected 64; stderr:\n%s", c->status,
			 c->err);
	assert_one_line(c->err, "arenad: ");
	assert_contains(c->err, needle);
	assert_no_file(c->sock);
}

static void bad_files(void **state)
{
	struct cfg *c = *state;
	char missing[340];
	const char *const nofile[] = { "--config", missing, NULL };
	const char *const dir[] = { "--config", c->dir, NULL };
	const char *const twice[] = { "--config", c->file, "--config", c->file,
				      NULL };
	const char *const plain[] = { "--config", c->file, "--socket", c->sock,
				      NULL };

	snprintf(missing, sizeof(missing), "%s/missing.conf", c->dir);
	refused(c, nofile, "missing.conf: cannot open");
	refused(c, dir, "not a regular file");
	write_file(c->file, "size 64M\n", 9);
	refused(c, twice, "only one config file");
	write_file(c->file, "size 6\0M\n", 9);
	refused(c, plain, "NUL byte");
	write_file(c->file, "# nothing\n", 10);
	refused(c, plain, "--size is required");
}

/* The example under systemd/ starts a daemon (with a group that exists). */
static void example_works(void **state)
{
	struct cfg *c = *state;
	const char *src = getenv("ARENA_SRCDIR");
	char path[512], text[8192], *p;
	const char *const args[] = { "--config", c->file, NULL };
	struct harness_daemon d;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/systemd/arenad.conf.example",
		 src && *src ? src : ".");
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	p = strstr(text, "\ngroup arenad\n");
	assert_non_null(p);
	memcpy(p + 1, "group root  ", 12);
	write_file(c->file, text, n);
	/* the harness adds --size 64M: the command line wins over 1G */
	assert_int_equal(harness_daemon_start(&d, args), 0);
	stats(c, d.sock); /* an answer: the start-up lines are logged */
	assert_true(harness_log_contains(&d, "region 64.0 MiB"));
	assert_true(harness_log_contains(&d, "and group root"));
	assert_int_equal(harness_daemon_stop(&d), 0);
}

static void help_mentions_config(void **state)
{
	struct cfg *c = *state;
	const char *const args[] = { "--help", NULL };

	run(c, "arenad", args);
	assert_int_equal(c->status, 0);
	assert_contains(c->out, "--config FILE");
}

#define CFG_TEST(f) cmocka_unit_test_setup_teardown(f, cfg_setup, cfg_teardown)

static void *bad_state[NBAD][2];

static int bad_setup(void **state)
{
	void **pair = *state;

	return cfg_setup(&pair[0]);
}

static int bad_teardown(void **state)
{
	void **pair = *state;

	return cfg_teardown(&pair[0]);
}

int main(void)
{
	struct CMUnitTest tests[NBAD + 5];
	char names[NBAD][64];
	size_t i, n = 0;

	for (i = 0; i < NBAD; i++) {
		snprintf(names[i], sizeof(names[i]), "bad_%s",
			 bad_lines[i].name);
		bad_state[i][1] = (void *)&bad_lines[i];
		tests[n++] = (struct CMUnitTest){ names[i], bad_line, bad_setup,
						  bad_teardown, bad_state[i] };
	}
	tests[n++] = (struct CMUnitTest)CFG_TEST(file_sets_options);
	tests[n++] = (struct CMUnitTest)CFG_TEST(command_line_wins);
	tests[n++] = (struct CMUnitTest)CFG_TEST(bad_files);
	tests[n++] = (struct CMUnitTest)CFG_TEST(example_works);
	tests[n++] = (struct CMUnitTest)CFG_TEST(help_mentions_config);
	if (n != sizeof(tests) / sizeof(tests[0]))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
