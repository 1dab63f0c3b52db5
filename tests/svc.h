/* SPDX-License-Identifier: MIT */
/*
 * Daemons started the way a service manager starts them, for the tests of
 * the systemd protocols and of config files: an exact command line (the
 * harness adds --size and --socket, these add nothing), extra environment
 * variables, and optionally a socket passed as fd 3 with LISTEN_PID and
 * LISTEN_FDS set for the new process.
 */
#ifndef ARENA_TESTS_SVC_H
#define ARENA_TESTS_SVC_H

#include <stdio.h>
#include <sys/types.h>

struct svc {
	pid_t pid;     /* -1 once reaped */
	int status;    /* exit code once reaped; -1 for a signal */
	char log[320]; /* stdout and stderr of the process */
};

/*
 * Start argv (argv[0] is looked up in PATH when it has no slash) with
 * env ("NAME=value" strings, NULL-terminated, or NULL) added to the
 * environment and its output appended to log.  With fd3 >= 0, that
 * descriptor becomes fd 3 and LISTEN_PID / LISTEN_FDS=1 announce it.
 * The process gets SIGTERM if the calling thread exits first.  Returns 0
 * or a negative errno.
 */
int svc_start(struct svc *s, const char *const argv[], const char *const env[],
	      const char *log, int fd3);

/*
 * Wait up to ms until sock accepts a connection.  Returns 0; -ECHILD when
 * the process exited first (its log is copied to stderr); -ETIMEDOUT.
 */
int svc_await(struct svc *s, const char *sock, int ms);

/* Wait up to ms for the process to exit (then SIGKILL it).  Its status. */
int svc_wait(struct svc *s, int ms);

/*
 * SIGTERM, then svc_wait for 10 s.  Returns the exit code, or -1 when it
 * died of a signal or had to be killed; a non-zero end copies the log to
 * stderr.
 */
int svc_stop(struct svc *s);

/* 1 when the log contains needle. */
int svc_log_contains(const struct svc *s, const char *needle);

/* Copy the log to stderr, after a line saying why. */
void svc_log_dump(const struct svc *s, const char *why);

/*
 * Skip the calling cmocka test and say why: tests/run.sh shows the
 * reason next to the SKIP line.  Only for tests whose cmocka name is the
 * function's name.
 */
#define SKIP_BECAUSE(...)                                                      \
	do {                                                                   \
		fprintf(stderr, "skipped %s: ", __func__);                     \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		skip();                                                        \
	} while (0)

#endif
