// SPDX-License-Identifier: MIT
/*
 * Who may attach: the daemon's uid, root, and members of --group.  Run as
 * root, a child drops to nobody (65534) and must be refused with -EACCES
 * and a log line; with --group set to a group the child is in, it
 * attaches.  Not run as root, there is no other user to become: skipped.
 *
 * The daemon's socket lives in a directory nobody can enter and is mode
 * 0660, so the test opens both up: the refusal must come from the
 * daemon's SO_PEERCRED check, not from the file system (the log line
 * proves which).
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "tstat.h"

#define NOBODY 65534
#define WAIT_MS 10000

static char dir[] = "/tmp/arenad-uid-XXXXXX";
static char sock[64];

static int group_setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (!mkdtemp(dir) || chmod(dir, 0755))
		return -1;
	snprintf(sock, sizeof(sock), "%s/arenad.sock", dir);
	return 0;
}

static int group_teardown(void **state)
{
	if (geteuid() == 0) {
		unlink(sock);
		rmdir(dir);
	}
	return 0;
}

struct drop {
	gid_t gid;   /* primary group */
	gid_t extra; /* one supplementary group, or (gid_t)-1 */
	int want;    /* what arena_connect must return */
};

/* In the child: become nobody, try to attach. */
static int as_nobody(void *arg)
{
	const struct drop *dr = arg;
	struct arena_client *c = NULL;
	int err;

	tstat_child_init();
	if (setgroups(dr->extra == (gid_t)-1 ? 0 : 1, &dr->extra) ||
	    setgid(dr->gid) || setuid(NOBODY)) {
		perror("dropping privileges");
		return 2;
	}
	if (getuid() != NOBODY || geteuid() != NOBODY)
		return 3;
	err = arena_connect(sock, &c);
	if (err != dr->want) {
		fprintf(stderr,
			"uid %u gid %u: arena_connect = %d (%s), not %d\n",
			(unsigned)getuid(), (unsigned)getgid(), err,
			strerror(-err), dr->want);
		return 1;
	}
	if (!err) {
		arena_handle_t h;

		err = arena_alloc(c, ARENA_KIND_AUTO, 64, &h);
		if (!err)
			err = arena_unref(c, h);
		arena_disconnect(c);
		if (err) {
			fprintf(stderr, "attached but cannot allocate: %s\n",
				strerror(-err));
			return 1;
		}
	}
	return 0;
}

static void start(struct harness_daemon *d, const char *group)
{
	const char *args[] = { "--socket", sock, "--group", group, NULL };

	if (!group)
		args[2] = NULL;
	assert_int_equal(harness_daemon_start(d, args), 0);
	/* let anyone reach the socket: only SO_PEERCRED may refuse */
	assert_int_equal(chmod(sock, 0666), 0);
}

static void run_as_nobody(const struct drop *dr)
{
	pid_t pid = harness_fork(as_nobody, (void *)dr);

	assert_true(pid > 0);
	assert_int_equal(harness_wait(pid, WAIT_MS), 0);
}

static void refused(void **state)
{
	struct harness_daemon d;
	struct drop dr = { NOBODY, (gid_t)-1, -EACCES };
	struct arena_client *c;

	if (geteuid() != 0)
		skip(); /* needs root to become another user */
	start(&d, NULL);
	run_as_nobody(&dr);
	assert_true(harness_log_contains(&d, "uid 65534: not allowed"));
	/* root still attaches */
	assert_int_equal(arena_connect(sock, &c), 0);
	arena_disconnect(c);
	assert_int_equal(harness_daemon_stop(&d), 0);
}

/* The gid of a group, or (gid_t)-1 when it does not exist. */
static gid_t gid_of(const char *name)
{
	struct group *g = getgrnam(name);

	return g ? g->gr_gid : (gid_t)-1;
}

static void allowed_by_group(void **state)
{
	gid_t nogroup = gid_of("nogroup"), users = gid_of("users");
	struct harness_daemon d;
	struct drop dr;

	if (geteuid() != 0)
		skip();
	if (nogroup == (gid_t)-1) {
		fprintf(stderr, "no group \"nogroup\" on this system\n");
		skip();
	}
	start(&d, "nogroup");
	/* nogroup as the primary group */
	dr = (struct drop){ nogroup, (gid_t)-1, 0 };
	run_as_nobody(&dr);
	/* nogroup only as a supplementary group */
	if (users != (gid_t)-1 && users != nogroup) {
		dr = (struct drop){ users, nogroup, 0 };
		run_as_nobody(&dr);
	}
	assert_false(harness_log_contains(&d, "not allowed"));
	assert_int_equal(harness_daemon_stop(&d), 0);

	/* another group: refused again */
	if (users != (gid_t)-1 && users != nogroup) {
		start(&d, "users");
		dr = (struct drop){ nogroup, (gid_t)-1, -EACCES };
		run_as_nobody(&dr);
		assert_true(harness_log_contains(&d, "uid 65534: not allowed"));
		assert_int_equal(harness_daemon_stop(&d), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused),
		cmocka_unit_test(allowed_by_group),
	};

	if (geteuid() != 0)
		fprintf(stderr, "not root: cannot become another user\n");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
