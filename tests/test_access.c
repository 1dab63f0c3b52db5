// SPDX-License-Identifier: MIT
/*
 * Access control on the file-system side and on the region: the control
 * socket is created where the configuration says, with mode 0660 whatever
 * umask the daemon was started with, owned by the daemon's user and by
 * --group when one is given; a socket directory that does not exist is
 * refused, not created (except the system one, /run/arenad, made 0755 as
 * systemd's RuntimeDirectory= would).  And the region's file descriptor,
 * as a client receives it, is sealed: no client can shrink or grow it
 * (ftruncate, fallocate and writes past the end fail with EPERM) or lift
 * the seals, so none can truncate the memory under the others' mappings
 * and have them die of SIGBUS.
 *
 * Who may attach (SO_PEERCRED, --group) is tested in test_uid.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <arena/arena.h>

#include "harness.h"
#include "rawpeer.h"
#include "svc.h"

#define IO_MS 10000
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void start(struct harness_daemon *d, const char *const *args)
{
	assert_int_equal(harness_daemon_start(d, args), 0);
}

static void stop(struct harness_daemon *d)
{
	assert_int_equal(harness_daemon_stop(d), 0);
}

/* The socket file at path: a socket of mode 0660 owned by uid and gid. */
static void socket_is(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	if ((st.st_mode & 07777) != 0660)
		fail_msg("%s has mode %04o, not 0660", path,
			 (unsigned)(st.st_mode & 07777));
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
}

/* Whatever the umask the daemon inherits, its socket is 0660. */
static void socket_mode(void **state)
{
	static const mode_t masks[] = { 0, 022, 077, 0777 };
	struct harness_daemon d;
	mode_t old;
	unsigned i;

	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		old = umask(masks[i]);
		start(&d, NULL);
		umask(old);
		socket_is(d.sock, geteuid(), getegid());
		stop(&d);
	}
}

static gid_t gid_of(const char *name)
{
	struct group *g = getgrnam(name);

	return g ? g->gr_gid : (gid_t)-1;
}

/* --group: the socket belongs to that group, still 0660. */
static void socket_group(void **state)
{
	const char *const args[] = { "--group", "nogroup", NULL };
	gid_t nogroup = gid_of("nogroup");
	struct harness_daemon d;

	if (geteuid() != 0)
		SKIP_BECAUSE("giving a file to a group needs root");
	if (nogroup == (gid_t)-1)
		SKIP_BECAUSE("no group \"nogroup\" on this system");
	start(&d, args);
	socket_is(d.sock, geteuid(), nogroup);
	stop(&d);
}

/* Run arenad with args and the environment env; its exit status. */
static int run_arenad(const char *const *args, const char *const *env,
		      const char *log)
{
	const char *argv[16] = { NULL };
	char path[512];
	struct svc s;
	int i;

	snprintf(path, sizeof(path), "%s/arenad", harness_build_dir());
	argv[0] = path;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	assert_int_equal(svc_start(&s, argv, env, log, -1), 0);
	return svc_wait(&s, IO_MS);
}

/* A --socket in a directory that does not exist: refused, not made. */
static void socket_dir_missing(void **state)
{
	char dir[] = "/tmp/arenad-access-XXXXXX", sock[128], log[128];
	const char *const args[] = { "--size", "64M", "--socket", sock, NULL };
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/none/arenad.sock", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	assert_int_equal(run_arenad(args, NULL, log), 1);
	assert_int_equal(stat(sock, &st), -1);
	snprintf(sock, sizeof(sock), "%s/none", dir);
	assert_int_equal(stat(sock, &st), -1); /* not created */
	/* a file where the directory should be */
	assert_int_equal(close(open(sock, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(sock, sizeof(sock), "%s/none/arenad.sock", dir);
	assert_int_equal(run_arenad(args, NULL, log), 1);
	snprintf(sock, sizeof(sock), "%s/none", dir);
	unlink(sock);
	unlink(log);
	assert_int_equal(rmdir(dir), 0);
}

/* Wait for a socket file at path, for up to IO_MS. */
static void await_socket(struct svc *s, const char *path)
{
	assert_int_equal(svc_await(s, path, IO_MS), 0);
}

/* No --socket: $XDG_RUNTIME_DIR/arenad.sock; the directory untouched. */
static void socket_dir_xdg(void **state)
{
	char dir[] = "/tmp/arenad-access-XXXXXX", sock[128], log[128],
	     path[512], *old = getenv("XDG_RUNTIME_DIR");
	const char *argv[] = { path, "--size", "64M", NULL };
	struct stat st;
	struct svc s;

	old = old ? strdup(old) : NULL;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0710), 0);
	snprintf(sock, sizeof(sock), "%s/arenad.sock", dir);
	snprintf(log, sizeof(log), "%s.log", dir);
	snprintf(path, sizeof(path), "%s/arenad", harness_build_dir());
	unsetenv("ARENA_SOCKET");
	setenv("XDG_RUNTIME_DIR", dir, 1);
	assert_int_equal(svc_start(&s, argv, NULL, log, -1), 0);
	if (old)
		setenv("XDG_RUNTIME_DIR", old, 1);
	free(old);
	await_socket(&s, sock);
	socket_is(sock, geteuid(), getegid());
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0710);
	assert_int_equal(svc_stop(&s), 0);
	assert_int_equal(stat(sock, &st), -1); /* removed at exit */
	unlink(log);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * The system socket's directory is made 0755 when it is missing.  Run
 * only where this test can make it itself, and removed again by the
 * teardown even when an assertion fails half-way.
 */
static struct svc sys_daemon = { .pid = -1 };
static bool made_run_dir;

static void socket_dir_system(void **state)
{
	const char *dir = "/run/arenad", *sock = "/run/arenad/arenad.sock";
	char log[] = "/tmp/arenad-access-XXXXXX", path[512];
	const char *argv[] = { path, "--size", "64M", NULL };
	struct stat st;
	int fd;

	if (geteuid() != 0)
		SKIP_BECAUSE("creating %s needs root", dir);
	if (!stat(dir, &st))
		SKIP_BECAUSE("%s exists: it belongs to someone else", dir);
	fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/arenad", harness_build_dir());
	unsetenv("ARENA_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
	made_run_dir = true;
	assert_int_equal(svc_start(&sys_daemon, argv, NULL, log, -1), 0);
	unlink(log);
	await_socket(&sys_daemon, sock);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	socket_is(sock, 0, getegid());
	assert_int_equal(svc_stop(&sys_daemon), 0);
}

static int socket_dir_system_teardown(void **state)
{
	if (sys_daemon.pid > 0)
		svc_stop(&sys_daemon);
	if (made_run_dir) {
		unlink("/run/arenad/arenad.sock");
		rmdir("/run/arenad");
	}
	return 0;
}

/* Every way of changing the size of the region's fd fails with EPERM. */
static void resize_refused(int fd, off_t size)
{
	const off_t to[] = { 0, size - 4096, size + 4096, 2 * size };
	char c = 0;
	unsigned i;

	for (i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		errno = 0;
		if (ftruncate(fd, to[i]) != -1 || errno != EPERM)
			fail_msg("ftruncate to %lld: %s", (long long)to[i],
				 errno ? strerror(errno) : "succeeded");
	}
	errno = 0;
	assert_int_equal(fallocate(fd, 0, size, 4096), -1);
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_int_equal(pwrite(fd, &c, 1, size), -1);
	assert_int_equal(errno, EPERM);
}

static void region_sealed(void **state)
{
	struct arena_proto_welcome w;
	struct harness_daemon d;
	struct arena_client *c;
	arena_handle_t h;
	struct stat st;
	int s, fd, seals;
	uint64_t *base;

	start(&d, NULL);
	s = raw_connect(d.sock, 0);
	assert_true(s >= 0);
	assert_int_equal(raw_attach(s, &w, &fd, IO_MS), 0);
	seals = fcntl(fd, F_GET_SEALS);
	if ((seals & SEALS) != SEALS)
		fail_msg("region seals %#x, want at least %#x", seals, SEALS);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, w.region_size);
	resize_refused(fd, st.st_size);
	/* nor can the seals be lifted or a write seal added */
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, w.region_size);
	/* the whole region is still there, to its last page */
	base = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(base != MAP_FAILED);
	assert_int_equal(base[0], ARENA_PROTO_REGION_MAGIC);
	(void)((volatile uint8_t *)base)[st.st_size - 1]; /* no SIGBUS */
	munmap(base, st.st_size);
	close(fd);
	/* and the others carry on */
	assert_int_equal(arena_connect(d.sock, &c), 0);
	assert_int_equal(arena_alloc(c, ARENA_KIND_AUTO, 4096, &h), 0);
	memset(arena_ptr(c, h), 0x5a, 4096);
	assert_int_equal(arena_unref(c, h), 0);
	arena_disconnect(c);
	assert_int_equal(raw_ping(s, IO_MS), 0);
	close(s);
	stop(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(socket_mode),
		cmocka_unit_test(socket_group),
		cmocka_unit_test(socket_dir_missing),
		cmocka_unit_test(socket_dir_xdg),
		cmocka_unit_test_teardown(socket_dir_system,
					  socket_dir_system_teardown),
		cmocka_unit_test(region_sealed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
