// SPDX-License-Identifier: MIT
/*
 * arenad under a service manager, without one running: the unit files
 * pass `systemd-analyze verify` and ask for what the issue promises; the
 * daemon makes no system call that the units' SystemCallFilter= forbids
 * (traced with strace); socket activation by systemd-socket-activate
 * serves clients and leaves the socket in place; a bad fd 3 is refused
 * and a LISTEN_PID of another process ignored; and a datagram socket of
 * our own standing in for $NOTIFY_SOCKET (a path, or an abstract name)
 * receives READY=1, STATUS=, WATCHDOG=1 at half of $WATCHDOG_USEC and
 * STOPPING=1.  A test whose tool is missing is skipped and says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "svc.h"

#define OUT_CAP 65536
#define START_MS 10000
#define NOTE_CAP 65536

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

static const char *const units[] = { "arenad.service", "arenad.socket",
				     "arenad@.service", "arenad@.socket" };

#define NUNITS (sizeof(units) / sizeof(units[0]))

static char dir[256]; /* this file's scratch directory */
static char out[OUT_CAP], err[OUT_CAP];

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/systemd-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? -1 : 0;
}

/* A program of that name in $PATH. */
static int have(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	size_t len;

	while (path && *path) {
		len = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, name);
		if (!access(buf, X_OK))
			return 1;
		path += len + (path[len] == ':');
	}
	return 0;
}

static const char *srcdir(void)
{
	const char *s = getenv("ARENA_SRCDIR");

	return s && *s ? s : ".";
}

/* BUILD/name as an absolute path. */
static const char *build_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *p = buf[i++ % 4], rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/%s", harness_build_dir(), name);
	if (!realpath(rel, p))
		fail_msg("no %s: %s", rel, strerror(errno));
	return p;
}

static void in_dir(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

static int run(const char *const argv[], int *status)
{
	return harness_run(argv, status, out, sizeof(out), err, sizeof(err));
}

static char *slurp(const char *path, size_t *len)
{
	static char buf[OUT_CAP];
	FILE *f = fopen(path, "r");

	if (!f)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	*len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/* ---- the unit files ---- */

/* dst: src with every "from" replaced by "to". */
static void copy_replacing(const char *src, const char *dst, const char *from,
			   const char *to)
{
	size_t len, n = strlen(from);
	char *text = slurp(src, &len), *p;
	FILE *f = fopen(dst, "w");

	if (!f)
		fail_msg("cannot write %s", dst);
	while ((p = strstr(text, from))) {
		fwrite(text, 1, (size_t)(p - text), f);
		fputs(to, f);
		text = p + n;
	}
	fputs(text, f);
	if (fclose(f))
		fail_msg("cannot write %s", dst);
}

/* A verifiable copy of unit i: the built arenad, templates instantiated. */
static void unit_copy(size_t i, char *dst, size_t cap)
{
	char src[PATH_MAX], name[64];
	const char *at = strchr(units[i], '@');

	snprintf(src, sizeof(src), "%s/systemd/%s", srcdir(), units[i]);
	if (at)
		snprintf(name, sizeof(name), "%.*s@test%s",
			 (int)(at - units[i]), units[i], at + 1);
	else
		snprintf(name, sizeof(name), "%s", units[i]);
	in_dir(dst, cap, name);
	copy_replacing(src, dst, "/usr/local/sbin/arenad",
		       build_path("arenad"));
}

static void units_verify(void **state)
{
	char paths[NUNITS][PATH_MAX], manpath[PATH_MAX];
	const char *argv[NUNITS + 4] = { "systemd-analyze", "verify" };
	int n = 2, status;
	size_t i;

	if (!have("systemd-analyze"))
		SKIP_BECAUSE("systemd-analyze not found (package systemd)");
	if (have("man")) {
		/* Documentation=man:... must name our pages */
		snprintf(manpath, sizeof(manpath), "%s/man", srcdir());
		setenv("MANPATH", manpath, 1);
	} else {
		argv[n++] = "--man=no";
	}
	for (i = 0; i < NUNITS; i++) {
		unit_copy(i, paths[i], sizeof(paths[i]));
		argv[n++] = paths[i];
	}
	argv[n] = NULL;
	assert_int_equal(run(argv, &status), 0);
	unsetenv("MANPATH");
	if (status || strstr(err, "arenad"))
		fail_msg("systemd-analyze verify: status %d:\n%s%s", status,
			 out, err);
}

static void assert_has(const char *text, const char *unit, const char *line)
{
	size_t len = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') &&
		    (strchr("=/", line[len - 1]) || p[len] == '\n'))
			return;
		p += len;
	}
	fail_msg("%s has no line '%s'", unit, line);
}

/* What the issue asks of the units, beyond their being valid. */
static void units_promise(void **state)
{
	static const char *const service[] = {
		"Type=notify",		 "User=arenad",
		"Group=arenad",		 "RuntimeDirectory=arenad",
		"LimitMEMLOCK=infinity", "NoNewPrivileges=yes",
		"ProtectSystem=strict",	 "ProtectHome=yes",
		"PrivateTmp=yes",	 "UMask=",
		"SystemCallFilter=",	 "WatchdogSec=",
		"Restart=on-failure",	 "ExecStart=",
	};
	static const char *const socket[] = { "ListenStream=/run/arenad/",
					      "SocketMode=0660",
					      "SocketGroup=arenad" };
	char path[PATH_MAX];
	const char *text;
	size_t i, j, len;

	for (i = 0; i < NUNITS; i++) {
		snprintf(path, sizeof(path), "%s/systemd/%s", srcdir(),
			 units[i]);
		text = slurp(path, &len);
		if (strstr(units[i], ".service"))
			for (j = 0; j < sizeof(service) / sizeof(*service); j++)
				assert_has(text, units[i], service[j]);
		else
			for (j = 0; j < sizeof(socket) / sizeof(*socket); j++)
				assert_has(text, units[i], socket[j]);
	}
	snprintf(path, sizeof(path), "%s/systemd/arenad@.service", srcdir());
	text = slurp(path, &len);
	assert_non_null(strstr(text, "--config /etc/arenad/%i.conf"));
	assert_non_null(strstr(text, "--socket /run/arenad/%i.sock"));
}

/* ---- system calls against SystemCallFilter= ---- */

/* Expand the filter's groups with systemd-analyze, one name a line. */
static const char expand_sh[] =
	"expand() {\n"
	"	systemd-analyze syscall-filter \"$1\" | while read -r w _; do\n"
	"		case $w in\n"
	"		\"$1\" | '' | '#'*) ;;\n"
	"		@*) expand \"$w\" ;;\n"
	"		*) echo \"$w\" ;;\n"
	"		esac\n"
	"	done\n"
	"}\n"
	"set -e\n"
	"f=$(sed -n 's/^SystemCallFilter=//p' \"$1\")\n"
	"[ -n \"$f\" ]\n"
	"for g in $f; do expand \"$g\"; done\n";

static void allowed_load(char *allowed)
{
	char unit[PATH_MAX];
	const char *argv[] = { "sh", "-c", expand_sh, "sh", unit, NULL };
	int status;

	snprintf(unit, sizeof(unit), "%s/systemd/arenad.service", srcdir());
	assert_int_equal(run(argv, &status), 0);
	if (status || strlen(out) < 100)
		fail_msg("expanding SystemCallFilter: status %d\n%s", status,
			 err);
	allowed[0] = '\n';
	strcpy(allowed + 1, out);
}

/* The daemon pid behind a socket: SO_PEERCRED of a connection. */
static pid_t peer_pid(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ucred cr = { 0 };
	socklen_t len = sizeof(cr);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		fail_msg("SO_PEERCRED on %s: %s", path, strerror(errno));
	close(fd);
	return cr.pid;
}

/* A client's whole life and a stats request against sock. */
static void exercise(const char *sock)
{
	const char *argv[] = { build_path("arenactl"), "--socket", sock,
			       "stats", NULL };
	struct arena_client *c;
	arena_handle_t h;
	int status;

	assert_int_equal(arena_connect(sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 100, &h), 0);
	memcpy(arena_ptr(c, h), "hello", 6);
	assert_int_equal(arena_unref(c, h), 0);
	arena_disconnect(c);
	assert_int_equal(run(argv, &status), 0);
	assert_int_equal(status, 0);
}

/*
 * The system calls in strace's log that allowed ("\nname\n" each) lacks,
 * into bad as "\nname\n..."; bad is just "\n" when there are none.
 */
static void forbidden_find(const char *trace, const char *allowed, char *bad,
			   size_t cap)
{
	const char *p;
	char name[64], key[70];

	strcpy(bad, "\n");
	for (p = trace; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (sscanf(p, "%*d %63[a-z0-9_](", name) != 1)
			continue;
		snprintf(key, sizeof(key), "\n%s\n", name);
		if (!strstr(allowed, key) && !strstr(bad, key) &&
		    strlen(bad) + strlen(key) < cap)
			strcat(bad, key + 1);
	}
}

static void daemon_syscalls_allowed(void **state)
{
	static char allowed[OUT_CAP + 2], bad[4096];
	char sock[PATH_MAX], trace[PATH_MAX], log[PATH_MAX];
	const char *argv[] = { "strace", "-f",	"-qq",	    "-o", trace, NULL,
			       "--size", "64M", "--socket", sock, NULL };
	struct svc s;
	size_t len;

#ifdef SANITIZED
	SKIP_BECAUSE("the sanitizer runtimes make system calls of their own");
#endif
	if (!have("strace") || !have("systemd-analyze"))
		SKIP_BECAUSE("needs strace and systemd-analyze");
	allowed_load(allowed);
	in_dir(sock, sizeof(sock), "traced.sock");
	in_dir(trace, sizeof(trace), "strace.log");
	in_dir(log, sizeof(log), "traced.log");
	argv[5] = build_path("arenad");
	assert_int_equal(svc_start(&s, argv, NULL, log, -1), 0);
	if (svc_await(&s, sock, 4 * START_MS)) {
		if (svc_log_contains(&s, "PTRACE") ||
		    svc_log_contains(&s, "ptrace"))
			SKIP_BECAUSE("strace may not trace here (ptrace)");
		fail_msg("arenad under strace did not start");
	}
	exercise(sock);
	assert_int_equal(kill(peer_pid(sock), SIGTERM), 0);
	assert_int_equal(svc_wait(&s, START_MS), 0);
	forbidden_find(slurp(trace, &len), allowed, bad, sizeof(bad));
	if (bad[1])
		fail_msg("arenad made system calls that SystemCallFilter= "
			 "of arenad.service does not allow:\n%s",
			 bad);
}

/* ---- socket activation ---- */

static void socket_activation(void **state)
{
	char sock[PATH_MAX], log[PATH_MAX], own[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *argv[] = { "systemd-socket-activate",
			       "-l",
			       sock,
			       NULL,
			       "--size",
			       "64M",
			       NULL };
	const char *ping[] = { NULL, "--socket", sock, "ping", NULL };
	struct svc s;
	int status;

	if (!have("systemd-socket-activate"))
		SKIP_BECAUSE("systemd-socket-activate not found (package "
			     "systemd)");
	in_dir(sock, sizeof(sock), "activated.sock");
	in_dir(log, sizeof(log), "activated.log");
	argv[3] = build_path("arenad");
	ping[0] = build_path("arenactl");
	assert_int_equal(svc_start(&s, argv, NULL, log, -1), 0);
	assert_int_equal(svc_await(&s, sock, START_MS), 0);
	/* the first connection starts arenad, which then answers it */
	assert_int_equal(run(ping, &status), 0);
	if (status)
		fail_msg("arenactl ping: %s", err);
	exercise(sock);
	assert_int_equal(peer_pid(sock), s.pid);
	assert_int_equal(svc_stop(&s), 0);
	assert_true(svc_log_contains(&s, "(socket from the service manager)"));
	/* systemd's socket stays; arenad never bound one of its own */
	assert_int_equal(access(sock, F_OK), 0);
	snprintf(own, sizeof(own), "%s/arenad.sock", xdg ? xdg : dir);
	assert_int_not_equal(access(own, F_OK), 0);
}

/* A listening socket of family and type, bound to an address of its own. */
static int listener(int family, int type)
{
	struct sockaddr_storage a = { .ss_family = (sa_family_t)family };
	socklen_t len = sizeof(sa_family_t); /* AF_UNIX: autobind */
	int fd = socket(family, type, 0);

	if (family == AF_INET) {
		((struct sockaddr_in *)&a)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
		len = sizeof(struct sockaddr_in);
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) || listen(fd, 1))
		fail_msg("a listening socket (%d, %d): %s", family, type,
			 strerror(errno));
	return fd;
}

/* fd 3 that is not a listening Unix stream socket: exit 1, one line. */
static void activation_bad_fd(void **state)
{
	char sock[PATH_MAX], log[PATH_MAX];
	const char *argv[] = { NULL, "--size", "64M", "--socket", sock, NULL };
	int fds[5], sv[2], i;
	struct svc s;

	argv[0] = build_path("arenad");
	in_dir(sock, sizeof(sock), "badfd.sock");
	in_dir(log, sizeof(log), "badfd.log");
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fds[0] = sv[0]; /* connected, not listening */
	fds[1] = socket(AF_UNIX, SOCK_DGRAM, 0);
	fds[2] = open("/dev/null", O_RDONLY);
	fds[3] = listener(AF_UNIX, SOCK_SEQPACKET);
	fds[4] = listener(AF_INET, SOCK_STREAM);
	for (i = 0; i < 5; i++) {
		unlink(log);
		assert_true(fds[i] >= 0);
		assert_int_equal(svc_start(&s, argv, NULL, log, fds[i]), 0);
		assert_int_equal(svc_wait(&s, START_MS), 1);
		assert_true(svc_log_contains(
			&s, "fd 3 is not a listening Unix stream socket"));
		assert_int_not_equal(access(sock, F_OK), 0);
		close(fds[i]);
	}
	close(sv[1]);
}

/* A LISTEN_PID that is not the daemon's was meant for someone else. */
static void activation_other_pid(void **state)
{
	char sock[PATH_MAX], log[PATH_MAX];
	const char *argv[] = { build_path("arenad"), "--size", "64M",
			       "--socket",	     sock,     NULL };
	const char *const env[] = { "LISTEN_PID=1", "LISTEN_FDS=1", NULL };
	struct svc s;

	in_dir(sock, sizeof(sock), "otherpid.sock");
	in_dir(log, sizeof(log), "otherpid.log");
	assert_int_equal(svc_start(&s, argv, env, log, -1), 0);
	assert_int_equal(svc_await(&s, sock, START_MS), 0);
	assert_int_equal(svc_stop(&s), 0);
	assert_true(svc_log_contains(&s, "listening on"));
	assert_false(svc_log_contains(&s, "service manager"));
	assert_int_not_equal(access(sock, F_OK), 0); /* its own: removed */
}

/* ---- sd_notify ---- */

struct notes {
	int fd;
	char text[NOTE_CAP]; /* every datagram so far, each ending in \n */
	size_t len;
};

static struct notes notes;

/* Bind name (a path, or '@' and an abstract name) and set NOTIFY_SOCKET. */
static void notes_open(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				    strlen(name) + (name[0] != '@'));

	memset(&notes, 0, sizeof(notes));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", name);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	notes.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(notes.fd >= 0);
	if (bind(notes.fd, (struct sockaddr *)&a, len))
		fail_msg("bind %s: %s", name, strerror(errno));
	setenv("NOTIFY_SOCKET", name, 1);
}

static void notes_close(void)
{
	close(notes.fd);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (; (hay = strstr(hay, needle)); hay += strlen(needle))
		n++;
	return n;
}

/* Receive until needle occurs at least times times, or ms pass. */
static int notes_await(const char *needle, int times, int ms)
{
	long long end = now_ms() + ms;
	struct pollfd p = { .fd = notes.fd, .events = POLLIN };
	ssize_t n;

	while (count(notes.text, needle) < times) {
		if (now_ms() >= end)
			return 0;
		if (poll(&p, 1, (int)(end - now_ms())) <= 0)
			continue;
		n = recv(notes.fd, notes.text + notes.len,
			 sizeof(notes.text) - notes.len - 2, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		notes.len += (size_t)n;
		notes.text[notes.len++] = '\n';
		notes.text[notes.len] = '\0';
	}
	return 1;
}

static void expect(const char *needle, int times, int ms)
{
	if (!notes_await(needle, times, ms))
		fail_msg("no '%s' (x%d) within %d ms; received:\n%s", needle,
			 times, ms, notes.text);
}

static void notify_protocol(void **state)
{
	char name[PATH_MAX];
	struct harness_daemon d;
	struct arena_client *c;
	const char *stopping;

	in_dir(name, sizeof(name), "notify.sock");
	notes_open(name);
	setenv("WATCHDOG_USEC", "200000", 1);
	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	expect("READY=1\n", 1, START_MS);
	expect("STATUS=64.0 MiB region, ", 1, START_MS);
	expect(" arenas, 0 clients\n", 1, START_MS);
	/* every 100 ms: a few within a second, however busy the machine */
	expect("WATCHDOG=1\n", 3, 3000);
	assert_true(harness_log_contains(&d, "pinging every 100000 us"));
	assert_int_equal(arena_connect(d.sock, &c), 0);
	expect(" arenas, 1 client\n", 1, START_MS);
	arena_disconnect(c);
	expect(" arenas, 0 clients\n", 2, START_MS);
	assert_int_equal(harness_daemon_stop(&d), 0);
	expect("STOPPING=1\n", 1, START_MS);
	notes_close();
	assert_int_equal(count(notes.text, "READY=1\n"), 1);
	stopping = strstr(notes.text, "STOPPING=1\n");
	assert_true(stopping > strstr(notes.text, "READY=1\n"));
	assert_string_equal(stopping, "STOPPING=1\n"); /* nothing after it */
}

static void notify_abstract(void **state)
{
	char name[108];
	struct harness_daemon d;

	snprintf(name, sizeof(name), "@arenad-test-%d-%lld", (int)getpid(),
		 now_ms());
	notes_open(name);
	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	expect("READY=1\n", 1, START_MS);
	assert_int_equal(harness_daemon_stop(&d), 0);
	expect("STOPPING=1\n", 1, START_MS);
	notes_close();
	assert_int_equal(count(notes.text, "WATCHDOG=1"), 0);
}

/* WATCHDOG_PID names another process: the watchdog is not ours. */
static void watchdog_other_pid(void **state)
{
	char name[PATH_MAX];
	struct harness_daemon d;

	in_dir(name, sizeof(name), "notify-pid.sock");
	notes_open(name);
	setenv("WATCHDOG_USEC", "100000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	expect("READY=1\n", 1, START_MS);
	notes_await("WATCHDOG=1", 1, 500);
	assert_int_equal(harness_daemon_stop(&d), 0);
	notes_close();
	assert_int_equal(count(notes.text, "WATCHDOG=1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(units_verify),
		cmocka_unit_test(units_promise),
		cmocka_unit_test(daemon_syscalls_allowed),
		cmocka_unit_test(socket_activation),
		cmocka_unit_test(activation_bad_fd),
		cmocka_unit_test(activation_other_pid),
		cmocka_unit_test(notify_protocol),
		cmocka_unit_test(notify_abstract),
		cmocka_unit_test(watchdog_other_pid),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
