// SPDX-License-Identifier: MIT
/*
 * Test harness: a private daemon per test, captured runs of programs, and
 * children with bounded waits.
 *
 * Waiting is done by polling waitpid(WNOHANG) against a deadline, never
 * by a blocking wait, so a hung child fails its test instead of the whole
 * run.  Everything a forked child does before exec is async-signal-safe
 * (argv is built before fork), because the tests are multi-threaded.
 * Linked into every test binary; it also makes stdout line-buffered so
 * that tests/run.sh sees each result when it happens.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
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

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define RUN_TIMEOUT_MS 10000
#define MAX_ARGS 64

__attribute__((constructor)) static void harness_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

const char *harness_build_dir(void)
{
	const char *b = getenv("ARENA_BUILD");

	return b && *b ? b : "build";
}

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

/* Reap pid within timeout_ms.  Returns 0 with *status set, or -ETIMEDOUT. */
static int reap(pid_t pid, int timeout_ms, int *status)
{
	long long end = now_ms() + timeout_ms;
	int ms = 1;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		sleep_ms(ms);
		ms = ms < 16 ? ms * 2 : ms;
	}
}

static void kill_reap(pid_t pid, int *status)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/* Exit code of a wait status, or -1 for a signal. */
static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int harness_wait(pid_t pid, int timeout_ms)
{
	int status = 0, ret;

	if (pid <= 0) /* never a process group, never ourselves */
		return -1;
	ret = reap(pid, timeout_ms, &status);
	if (ret == -ETIMEDOUT) {
		kill_reap(pid, &status);
		return -1;
	}
	return ret ? -1 : exit_code(status);
}

/*
 * cmocka catches crash signals and longjmps back into its runner; a forked
 * child must die of them instead, or it would go on running the parent's
 * tests in a copy of the runner.
 */
static void crash_signals_default(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	unsigned i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

pid_t harness_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		crash_signals_default();
		_exit(fn(arg));
	}
	return pid;
}

/* In a child before exec: clean signal state, stdin from /dev/null. */
static void child_reset(void)
{
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (*dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void dump_log(const struct harness_daemon *d, const char *why)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(d->log, "r");

	fprintf(stderr, "harness: arenad %s; its log %s:\n", why, d->log);
	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

/* Index of the value after option opt in args, or -1. */
static int find_opt(const char *const args[], const char *opt)
{
	int i;

	for (i = 0; args && args[i]; i++)
		if (!strcmp(args[i], opt) && args[i + 1])
			return i + 1;
	return -1;
}

static int put(char *buf, size_t cap, const char *a, const char *b)
{
	int n = snprintf(buf, cap, "%s%s", a, b);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int daemon_paths(struct harness_daemon *d, const char *const extra[])
{
	const char *tmp = getenv("TMPDIR");
	int i = find_opt(extra, "--socket");

	if (put(d->dir, sizeof(d->dir), tmp && *tmp ? tmp : "/tmp",
		"/arenad-XXXXXX")) {
		d->dir[0] = 0; /* never remove a truncated path */
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(d->dir)) {
		d->dir[0] = 0;
		return -errno;
	}
	if (put(d->log, sizeof(d->log), d->dir, "/arenad.log") ||
	    put(d->sock, sizeof(d->sock), i < 0 ? d->dir : extra[i],
		i < 0 ? "/arenad.sock" : "") ||
	    strlen(d->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

/* argv for the daemon into av (MAX_ARGS + 1 entries); path is caller's. */
static int daemon_argv(const struct harness_daemon *d, const char *path,
		       const char *const extra[], const char **av)
{
	int n = 0, i;

	av[n++] = path;
	if (find_opt(extra, "--size") < 0) {
		av[n++] = "--size";
		av[n++] = "64M";
	}
	if (find_opt(extra, "--socket") < 0) {
		av[n++] = "--socket";
		av[n++] = d->sock;
	}
	for (i = 0; extra && extra[i]; i++) {
		if (n >= MAX_ARGS)
			return -E2BIG;
		av[n++] = extra[i];
	}
	av[n] = NULL;
	return 0;
}

static void daemon_exec(const struct harness_daemon *d, const char **av,
			pid_t parent)
{
	int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);

	if (fd < 0)
		_exit(127);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	child_reset();
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	execv(av[0], (char *const *)av);
	(void)!write(2, "harness: cannot execute arenad\n", 31);
	_exit(127);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	close(fd);
	return ret;
}

/* Poll until the socket accepts; fail at once if the daemon exits. */
static int await_daemon(struct harness_daemon *d)
{
	long long end = now_ms() + START_TIMEOUT_MS;
	int status;

	for (;;) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			dump_log(d, "exited during start-up");
			return -ECHILD;
		}
		if (!try_connect(d->sock))
			return 0;
		if (now_ms() >= end)
			break;
		sleep_ms(5);
	}
	kill_reap(d->pid, &status);
	d->pid = -1;
	dump_log(d, "did not answer within 10 s");
	return -ETIMEDOUT;
}

static int spawn_daemon(struct harness_daemon *d, const char *const extra[])
{
	const char *av[MAX_ARGS + 1];
	char path[512];
	pid_t parent = getpid();
	int ret;

	if (put(path, sizeof(path), harness_build_dir(), "/arenad"))
		return -ENAMETOOLONG;
	ret = daemon_argv(d, path, extra, av);
	if (ret)
		return ret;
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0)
		daemon_exec(d, av, parent);
	return await_daemon(d);
}

int harness_daemon_start(struct harness_daemon *d,
			 const char *const extra_args[])
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	ret = daemon_paths(d, extra_args);
	if (!ret)
		ret = spawn_daemon(d, extra_args);
	if (!ret)
		ret = setenv("ARENA_SOCKET", d->sock, 1) ? -errno : 0;
	if (ret) {
		if (d->pid > 0)
			harness_daemon_kill(d);
		rm_tree(d->dir);
	}
	return ret;
}

static void forget(struct harness_daemon *d)
{
	const char *env = getenv("ARENA_SOCKET");

	if (env && !strcmp(env, d->sock))
		unsetenv("ARENA_SOCKET");
	rm_tree(d->dir);
	d->pid = -1;
}

int harness_daemon_stop(struct harness_daemon *d)
{
	int status = 0, ret;

	if (d->pid <= 0) {
		forget(d);
		return -1;
	}
	kill(d->pid, SIGTERM);
	if (reap(d->pid, STOP_TIMEOUT_MS, &status)) {
		kill_reap(d->pid, &status);
		dump_log(d, "ignored SIGTERM for 10 s and was killed");
		forget(d);
		return -1;
	}
	ret = exit_code(status);
	if (ret)
		dump_log(d, "ended badly after SIGTERM");
	forget(d);
	return ret;
}

int harness_daemon_kill(struct harness_daemon *d)
{
	int status;

	if (d->pid <= 0) {
		forget(d);
		return -ESRCH;
	}
	kill_reap(d->pid, &status);
	forget(d);
	return 0;
}

/* The whole file, NUL-terminated, in malloc'ed memory; NULL on error. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	size_t cap = 4096, n;
	char *buf = malloc(cap), *p;

	*len = 0;
	while (f && buf && (n = fread(buf + *len, 1, cap - *len - 1, f)) > 0) {
		*len += n;
		if (cap - *len > 1)
			continue;
		p = realloc(buf, cap * 2);
		if (!p)
			break;
		buf = p;
		cap *= 2;
	}
	if (f)
		fclose(f);
	if (!f || !buf) {
		free(buf);
		return NULL;
	}
	buf[*len] = 0;
	return buf;
}

int harness_log_contains(const struct harness_daemon *d, const char *needle)
{
	size_t len;
	char *buf = slurp(d->log, &len);
	int found = buf && memmem(buf, len, needle, strlen(needle)) != NULL;

	free(buf);
	return found;
}

struct capture {
	int fd;
	char *buf;
	size_t cap;
	size_t len;
};

static void capture_init(struct capture *c, int fd, char *buf, size_t cap)
{
	c->fd = fd;
	c->buf = cap ? buf : NULL;
	c->cap = buf ? cap : 0;
	c->len = 0;
	if (c->buf)
		c->buf[0] = 0;
}

/* Read what is there; keep what fits.  Closes the fd at end of file. */
static void capture_read(struct capture *c)
{
	char tmp[4096];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));
	size_t room;

	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	room = c->cap ? c->cap - 1 - c->len : 0;
	if ((size_t)n < room)
		room = (size_t)n;
	memcpy(c->buf + c->len, tmp, room);
	c->len += room;
	if (c->buf)
		c->buf[c->len] = 0;
}

/* Drain both pipes until end of file or the deadline. */
static int capture_all(struct capture c[2], long long end)
{
	struct pollfd p[2];
	int i, ms;

	while (c[0].fd >= 0 || c[1].fd >= 0) {
		ms = (int)(end - now_ms());
		if (ms <= 0)
			return -ETIMEDOUT;
		for (i = 0; i < 2; i++)
			p[i] = (struct pollfd){ .fd = c[i].fd,
						.events = POLLIN };
		if (poll(p, 2, ms) < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < 2; i++)
			if (c[i].fd >= 0 && p[i].revents)
				capture_read(&c[i]);
	}
	return 0;
}

static void run_exec(const char *const argv[], int out, int err)
{
	static const char msg[] = "harness: cannot execute ";

	dup2(out, 1);
	dup2(err, 2);
	child_reset();
	execvp(argv[0], (char *const *)argv);
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, argv[0], strlen(argv[0]));
	(void)!write(2, "\n", 1);
	_exit(127);
}

static int run_wait(pid_t pid, struct capture c[2], int *status)
{
	long long end = now_ms() + RUN_TIMEOUT_MS;
	int ret, i;

	ret = capture_all(c, end);
	if (!ret)
		ret = reap(pid, (int)(end - now_ms()), status);
	if (ret)
		kill_reap(pid, status);
	for (i = 0; i < 2; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	return ret;
}

static void close_pipes(int po[2], int pe[2])
{
	close(po[0]);
	close(po[1]);
	close(pe[0]);
	close(pe[1]);
}

static int open_pipes(int po[2], int pe[2])
{
	int ret;

	if (pipe2(po, O_CLOEXEC))
		return -errno;
	if (!pipe2(pe, O_CLOEXEC))
		return 0;
	ret = -errno;
	close(po[0]);
	close(po[1]);
	return ret;
}

int harness_run(const char *const argv[], int *status, char *out, size_t outcap,
		char *err, size_t errcap)
{
	struct capture c[2];
	int po[2], pe[2], st = 0, ret;
	pid_t pid;

	ret = open_pipes(po, pe);
	if (ret)
		return ret;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close_pipes(po, pe);
		return ret;
	}
	if (pid == 0)
		run_exec(argv, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	capture_init(&c[0], po[0], out, outcap);
	capture_init(&c[1], pe[0], err, errcap);
	ret = run_wait(pid, c, &st);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return ret;
}
