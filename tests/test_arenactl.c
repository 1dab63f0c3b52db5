// SPDX-License-Identifier: MIT
/*
 * arenactl as a monitoring tool sees it: stats --prometheus must be valid
 * text exposition format (HELP and TYPE before a metric's samples, one
 * family's samples together, labels arena, kind and block_size) with
 * numbers that match the daemon; ping and version answer; with no daemon
 * every command fails with status 1 and one line saying so, and prints
 * nothing on stdout that a scraper could take for data.
 */
#include <ctype.h>
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

#include <arena/arena.h>

#include "harness.h"

#define OUT_CAP 65536
#define MAX_FAMILIES 64

struct ctl {
	char out[OUT_CAP];
	char err[OUT_CAP];
	int status;
};

static struct ctl ctl;

/* BUILD/arenactl with args (NULL-terminated) into ctl. */
static void run(const char *const args[])
{
	char path[512];
	const char *argv[16];
	int n = 0, ret;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	argv[n++] = path;
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	ret = harness_run(argv, &ctl.status, ctl.out, sizeof(ctl.out), ctl.err,
			  sizeof(ctl.err));
	if (ret)
		fail_msg("running arenactl: %s", strerror(-ret));
}

static void assert_line(const char *text, const char *line)
{
	size_t len = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[len] == '\n')
			return;
		p += len;
	}
	fail_msg("no line '%s' in:\n%s", line, text);
}

/* ---- the exposition format, checked line by line ---- */

struct families {
	char name[MAX_FAMILIES][64];
	int n;
	char current[64]; /* family of the last sample */
};

static int metric_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || len >= 64 || isdigit((unsigned char)s[0]))
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
			return 0;
	return 1;
}

static int family_known(const struct families *f, const char *name)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->name[i], name))
			return 1;
	return 0;
}

/* "# HELP name text" then "# TYPE name gauge|counter" for a new family. */
static void check_comment(struct families *f, const char *line)
{
	char name[64], type[16];

	if (!strncmp(line, "# HELP ", 7)) {
		if (sscanf(line + 7, "%63s", name) != 1 ||
		    family_known(f, name) || f->n == MAX_FAMILIES)
			fail_msg("bad or repeated HELP line: %s", line);
		snprintf(f->name[f->n++], sizeof(f->name[0]), "%s", name);
		return;
	}
	if (sscanf(line, "# TYPE %63s %15s", name, type) != 2 ||
	    strcmp(name, f->name[f->n - 1]) ||
	    (strcmp(type, "gauge") && strcmp(type, "counter")))
		fail_msg("bad TYPE line (after its HELP): %s", line);
}

/* name{k="v",...} value, of the family announced last. */
static void check_sample(struct families *f, const char *line)
{
	size_t len = strcspn(line, "{ ");
	const char *p = line + len;
	char name[64];

	if (!metric_name_ok(line, len))
		fail_msg("bad metric name: %s", line);
	snprintf(name, sizeof(name), "%.*s", (int)len, line);
	if (!f->n || strcmp(name, f->name[f->n - 1]))
		fail_msg("sample outside its family's block: %s", line);
	if (*p == '{') {
		p = strchr(p, '}');
		if (!p)
			fail_msg("unclosed labels: %s", line);
		p++;
	}
	if (*p != ' ' || !isdigit((unsigned char)p[1]) ||
	    strspn(p + 1, "0123456789") != strlen(p + 1))
		fail_msg("bad value: %s", line);
}

static void check_exposition(char *text)
{
	static struct families f;
	char *line, *save = NULL;

	memset(&f, 0, sizeof(f));
	if (!*text || text[strlen(text) - 1] != '\n')
		fail_msg("output does not end with a newline:\n%s", text);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			check_comment(&f, line);
		else
			check_sample(&f, line);
	}
}

static void prometheus_metrics(void **state)
{
	const char *const extra[] = { "--fixed", "64:100", "--fixed", "4K:10",
				      NULL };
	const char *const args[] = { "stats", "--prometheus", NULL };
	struct harness_daemon d;
	struct arena_client *c;
	arena_handle_t h;

	assert_int_equal(harness_daemon_start(&d, extra), 0);
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 50, &h), 0);
	run(args);
	assert_int_equal(ctl.status, 0);
	assert_string_equal(ctl.err, "");
	assert_line(ctl.out, "# TYPE arenad_clients gauge");
	assert_line(ctl.out, "arenad_clients 1");
	assert_line(ctl.out, "arenad_arenas 2");
	assert_line(ctl.out, "# TYPE arenad_arena_allocs_total counter");
	assert_line(ctl.out, "arenad_arena_capacity_blocks{arena=\"0\","
			     "kind=\"fixed\",block_size=\"64\"} 100");
	assert_line(ctl.out, "arenad_arena_capacity_blocks{arena=\"1\","
			     "kind=\"fixed\",block_size=\"4096\"} 10");
	assert_line(ctl.out, "arenad_arena_in_use_blocks{arena=\"0\","
			     "kind=\"fixed\",block_size=\"64\"} 1");
	assert_line(ctl.out, "arenad_arena_free_blocks{arena=\"1\","
			     "kind=\"fixed\",block_size=\"4096\"} 10");
	assert_line(ctl.out, "arenad_arena_alloc_failures_total{arena=\"0\","
			     "kind=\"fixed\",block_size=\"64\","
			     "reason=\"too_big\"} 0");
	check_exposition(ctl.out);
	assert_int_equal(arena_unref(c, h), 0);
	arena_disconnect(c);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

static void ping_and_version(void **state)
{
	const char *const ping[] = { "ping", NULL };
	const char *const version[] = { "version", NULL };
	char want[64];
	struct harness_daemon d;

	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	run(ping); /* ARENA_SOCKET, set by the harness */
	assert_int_equal(ctl.status, 0);
	assert_non_null(strstr(ctl.out, "alive"));
	assert_int_equal(harness_daemon_stop(&d), 0);
	run(version); /* needs no daemon */
	assert_int_equal(ctl.status, 0);
	snprintf(want, sizeof(want), "arenactl %s ", arena_version());
	assert_non_null(strstr(ctl.out, want));
}

static void no_daemon(void **state)
{
	static const char *const cmds[][4] = {
		{ "stats", NULL },
		{ "stats", "--json", NULL },
		{ "stats", "--prometheus", NULL },
		{ "ping", NULL },
	};
	const char *args[8] = { "--socket", "./nobody-here.sock" };
	size_t i, j;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (j = 0; cmds[i][j]; j++)
			args[2 + j] = cmds[i][j];
		args[2 + j] = NULL;
		run(args);
		if (ctl.status != 1 || strcmp(ctl.out, "") ||
		    !strstr(ctl.err, "cannot reach") ||
		    strchr(ctl.err, '\n') != ctl.err + strlen(ctl.err) - 1)
			fail_msg("arenactl %s %s: status %d, stdout '%s', "
				 "stderr '%s'",
				 cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
				 ctl.status, ctl.out, ctl.err);
	}
}

static void format_usage(void **state)
{
	const char *const both[] = { "stats", "--json", "--prometheus", NULL };
	const char *const ping[] = { "ping", "--prometheus", NULL };

	run(both);
	assert_int_equal(ctl.status, 64);
	assert_non_null(strstr(ctl.err, "one format"));
	run(ping);
	assert_int_equal(ctl.status, 64);
	assert_non_null(strstr(ctl.err, "do not apply to 'ping'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prometheus_metrics),
		cmocka_unit_test(ping_and_version),
		cmocka_unit_test(no_daemon),
		cmocka_unit_test(format_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
