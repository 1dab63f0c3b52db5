// SPDX-License-Identifier: MIT
/*
 * Service-style daemons for the tests: exact command lines, extra
 * environment, and socket activation by hand.
 *
 * The environment is built before fork(), since a child of a process
 * with threads (the sanitizers' runtimes have some) may only do
 * async-signal-safe things before exec; the one value that can only be
 * known in the child, LISTEN_PID, is written there into a buffer set
 * aside for it, digit by digit.  Waiting polls waitpid(WNOHANG) against a
 * deadline, like the harness, so a hung daemon fails its test instead of
 * the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "svc.h"

#define MAX_ENV 512
#define STOP_MS 10000

extern char **environ;

struct spawn {
	const char *const *argv;
	const char *log;
	int fd3;
	pid_t parent;
	char *envp[MAX_ENV + 4];
	char listen_pid[32]; /* "LISTEN_PID=" and the child's pid */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* environ without LISTEN_*, then env, then the activation variables. */
static int env_build(struct spawn *sp, const char *const env[])
{
	size_t n = 0, i;

	for (i = 0; environ[i]; i++)
		if (strncmp(environ[i], "LISTEN_", 7) && n < MAX_ENV)
			sp->envp[n++] = environ[i];
	for (i = 0; env && env[i]; i++)
		if (n < MAX_ENV)
			sp->envp[n++] = (char *)env[i];
	if (n >= MAX_ENV)
		return -E2BIG;
	if (sp->fd3 >= 0) {
		sp->envp[n++] = "LISTEN_FDS=1";
		sp->envp[n++] = sp->listen_pid;
	}
	sp->envp[n] = NULL;
	return 0;
}

/* In the child: "LISTEN_PID=<pid>" without stdio. */
static void listen_pid_write(char *buf)
{
	char digits[16];
	int n = 0, v = (int)getpid();

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(digits));
	memcpy(buf, "LISTEN_PID=", 11);
	buf += 11;
	while (n)
		*buf++ = digits[--n];
	*buf = '\0';
}

/* fd 3 first, so that the log cannot land on it. */
static void fds_place(const struct spawn *sp)
{
	int fd;

	if (sp->fd3 >= 0 &&
	    (sp->fd3 == 3 ? fcntl(3, F_SETFD, 0) : dup2(sp->fd3, 3)) < 0)
		_exit(127);
	fd = open(sp->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(127);
	dup2(fd, 1);
	dup2(fd, 2);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
}

static void child_exec(struct spawn *sp)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != sp->parent)
		_exit(127);
	if (sp->fd3 >= 0)
		listen_pid_write(sp->listen_pid);
	fds_place(sp);
	execvpe(sp->argv[0], (char *const *)sp->argv, sp->envp);
	(void)!write(2, "svc: cannot execute ", 20);
	(void)!write(2, sp->argv[0], strlen(sp->argv[0]));
	(void)!write(2, "\n", 1);
	_exit(127);
}

int svc_start(struct svc *s, const char *const argv[], const char *const env[],
	      const char *log, int fd3)
{
	static struct spawn sp;
	int n;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	n = snprintf(s->log, sizeof(s->log), "%s", log);
	if (n < 0 || (size_t)n >= sizeof(s->log))
		return -ENAMETOOLONG;
	memset(&sp, 0, sizeof(sp));
	sp.argv = argv;
	sp.log = s->log;
	sp.fd3 = fd3;
	sp.parent = getpid();
	if (env_build(&sp, env))
		return -E2BIG;
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0)
		child_exec(&sp);
	return 0;
}

/* Reaped: 1 (status saved), not yet: 0. */
static int reaped(struct svc *s)
{
	int st;

	if (s->pid <= 0)
		return 1;
	if (waitpid(s->pid, &st, WNOHANG) != s->pid)
		return 0;
	s->pid = -1;
	s->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return 1;
}

static int connects(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, ok;

	if (strlen(path) >= sizeof(a.sun_path))
		return 0;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ok = !connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return ok;
}

int svc_await(struct svc *s, const char *sock, int ms)
{
	long long end = now_ms() + ms;

	while (now_ms() < end) {
		if (reaped(s)) {
			svc_log_dump(s, "exited during start-up");
			return -ECHILD;
		}
		if (connects(sock))
			return 0;
		sleep_ms(5);
	}
	svc_log_dump(s, "did not answer in time");
	return -ETIMEDOUT;
}

int svc_wait(struct svc *s, int ms)
{
	long long end = now_ms() + ms;
	int st;

	while (!reaped(s)) {
		if (now_ms() >= end) {
			kill(s->pid, SIGKILL);
			while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
				;
			s->pid = -1;
			s->status = -1;
			break;
		}
		sleep_ms(5);
	}
	return s->status;
}

int svc_stop(struct svc *s)
{
	if (s->pid > 0)
		kill(s->pid, SIGTERM);
	if (svc_wait(s, STOP_MS))
		svc_log_dump(s, "ended badly after SIGTERM");
	return s->status;
}

int svc_log_contains(const struct svc *s, const char *needle)
{
	char line[4096];
	FILE *f = fopen(s->log, "r");
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

void svc_log_dump(const struct svc *s, const char *why)
{
	char buf[4096];
	FILE *f = fopen(s->log, "r");
	size_t n;

	fprintf(stderr, "svc: the process %s; its log %s:\n", why, s->log);
	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	if (f)
		fclose(f);
}
