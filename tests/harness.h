/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the test programs: a private arenad per test, running
 * other programs with their output captured, and child processes with a
 * bounded wait.  Every function returns an error instead of asserting, so
 * that the calling test decides what a failure means.
 */
#ifndef ARENA_TESTS_HARNESS_H
#define ARENA_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* The build directory: $ARENA_BUILD, else "build". */
const char *harness_build_dir(void);

struct harness_daemon {
	pid_t pid;
	char dir[256];	/* private temporary directory */
	char sock[320]; /* dir/arenad.sock, or the --socket given */
	char log[320];	/* dir/arenad.log: the daemon's stdout and stderr */
};

/*
 * Start BUILD/arenad --size 64M --socket DIR/arenad.sock plus extra_args
 * (NULL-terminated, or NULL) in a fresh directory under $TMPDIR or /tmp;
 * a --size or --socket in extra_args replaces the default one.  Waits up
 * to 10 s until the socket accepts a connection, then sets ARENA_SOCKET to
 * it.  The daemon gets SIGTERM if the calling thread exits first.
 *
 * Returns 0, or -ECHILD when the daemon exited during start-up (its log
 * is copied to stderr), -ETIMEDOUT when it never answered, -ENAMETOOLONG
 * when the socket path does not fit, or another -errno from the system.
 */
int harness_daemon_start(struct harness_daemon *d,
			 const char *const extra_args[]);

/*
 * SIGTERM the daemon, wait up to 10 s (then SIGKILL), remove its
 * directory.  Returns its exit status (0..255), or -1 when it died of a
 * signal or had to be killed.  A non-zero end copies its log to stderr.
 */
int harness_daemon_stop(struct harness_daemon *d);

/* SIGKILL the daemon, reap it, remove its directory.  Returns 0 or -errno. */
int harness_daemon_kill(struct harness_daemon *d);

/* 1 when the daemon's log contains needle, else 0. */
int harness_log_contains(const struct harness_daemon *d, const char *needle);

/*
 * Run argv[0] (looked up in PATH when it has no slash) with stdin from
 * /dev/null; capture stdout and stderr NUL-terminated into out and err
 * (either may be NULL with cap 0; longer output is truncated).  Gives up
 * after 10 s and kills it.  *status is the exit status, or 128 + signal.
 * Returns 0, -ETIMEDOUT, or -errno.
 */
int harness_run(const char *const argv[], int *status, char *out, size_t outcap,
		char *err, size_t errcap);

/*
 * Run fn(arg) in a child process, which then _exit()s with its return
 * value.  fn must not use cmocka's assertions (they would jump back into
 * the parent's test runner inside the child): return non-zero instead.
 * Returns the child's pid, or -errno.
 */
pid_t harness_fork(int (*fn)(void *), void *arg);

/*
 * Wait up to timeout_ms for a child.  Returns its exit code (0..255), or
 * -1 when it died of a signal, could not be waited for, or ran out of
 * time (it is then killed and reaped).
 */
int harness_wait(pid_t pid, int timeout_ms);

#endif
