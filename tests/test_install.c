// SPDX-License-Identifier: MIT
/*
 * make install and make uninstall, as a packager runs them: a fresh
 * build of the tree (its own build directory, so whatever this run's
 * build is, sanitized or not, the installed files are plain) installed
 * with PREFIX=/opt/arena into a temporary DESTDIR that already holds
 * files of others.  The installed tree must be complete (library with
 * soname and links, header, pkg-config file, man pages, units rewritten
 * to the prefix); a consumer built with nothing but pkg-config against
 * it, as C, as C++ and statically, must run against a live daemon; every
 * public function has a man page that groff reads without a warning;
 * and make uninstall must remove exactly what make install put.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

#include "harness.h"
#include "svc.h"

#define PREFIX "/opt/arena"
#define MAKE_MS 300000
#define OUT_CAP 65536

static char root[256];		     /* scratch: build/, dest/, logs */
static char dest[PATH_MAX];	     /* DESTDIR */
static char make_vars[PATH_MAX * 2]; /* DESTDIR= BUILD= PREFIX= */
static char out[OUT_CAP], err[OUT_CAP];

static const char *srcdir(void)
{
	static char buf[PATH_MAX];
	const char *s = getenv("ARENA_SRCDIR");

	if (!realpath(s && *s ? s : ".", buf))
		snprintf(buf, sizeof(buf), "%s", s && *s ? s : ".");
	return buf;
}

/* A path in the installed tree: dest + PREFIX-relative or absolute. */
static const char *installed(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *p = buf[i++ % 4];
	int n;

	n = snprintf(p, PATH_MAX, "%s%s%s", dest,
		     rel[0] == '/' ? "" : PREFIX "/", rel);
	if (n < 0 || n >= PATH_MAX)
		fail_msg("path too long: %s%s", dest, rel);
	return p;
}

struct job {
	const char *cmd;
	const char *log;
};

/* In a child: sh -c cmd, its output appended to log. */
static int sh_exec(void *arg)
{
	const struct job *j = arg;
	int fd = open(j->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0)
		return 127;
	dup2(fd, 1);
	dup2(fd, 2);
	execl("/bin/sh", "sh", "-c", j->cmd, (char *)NULL);
	return 127;
}

/* Run cmd with sh, output to log, within ms.  Its status, or -1. */
static int sh_logged(const char *cmd, const char *log, int ms)
{
	struct job j = { cmd, log };
	pid_t pid;

	fflush(stdout);
	pid = harness_fork(sh_exec, &j);
	return pid > 0 ? harness_wait(pid, ms) : -1;
}

/* Run cmd with sh into out and err (10 s at most).  Its status. */
static int sh(const char *cmd)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };
	int status, ret;

	ret = harness_run(argv, &status, out, sizeof(out), err, sizeof(err));
	if (ret)
		fail_msg("sh -c '%s': %s", cmd, strerror(-ret));
	return status;
}

static void dump(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	if (f)
		fclose(f);
}

/* make -C SRC target with this file's variables; 0 or its status. */
static int make(const char *target)
{
	char cmd[PATH_MAX * 4], log[PATH_MAX];
	int status;

	snprintf(log, sizeof(log), "%s/make-%s.log", root, target);
	snprintf(cmd, sizeof(cmd),
		 "make -C '%s' -j4 --no-print-directory %s %s", srcdir(),
		 target, make_vars);
	status = sh_logged(cmd, log, MAKE_MS);
	if (status) {
		fprintf(stderr, "'%s' failed (%d); its output:\n", cmd, status);
		dump(log);
	}
	return status;
}

static void write_file(const char *path, const char *text)
{
	char dir[PATH_MAX], cmd[PATH_MAX + 16];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	f = system(cmd) ? NULL : fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		fail_msg("cannot write %s", path);
}

/* Files of others, in directories the install also uses. */
static const char *const foreign[] = { PREFIX "/lib/libother.so.1",
				       "/etc/arenad/other.conf",
				       PREFIX "/share/man/man3/other.3" };

#define NFOREIGN (sizeof(foreign) / sizeof(foreign[0]))

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	size_t i;

	snprintf(root, sizeof(root), "%s/install-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		return -1;
	snprintf(dest, sizeof(dest), "%s/dest", root);
	snprintf(make_vars, sizeof(make_vars),
		 "DESTDIR='%s' BUILD='%s/build' PREFIX=" PREFIX, dest, root);
	for (i = 0; i < NFOREIGN; i++)
		write_file(installed(foreign[i]), "not arenad's\n");
	/*
	 * The outer make's jobserver is not ours to use, and the variables
	 * given on its command line (SANITIZE=... in a sanitizer run) reach
	 * us as environment variables: the install under test is a plain
	 * build, as a user would make it.
	 */
	unsetenv("MAKEFLAGS");
	unsetenv("MFLAGS");
	unsetenv("MAKELEVEL");
	unsetenv("SANITIZE");
	unsetenv("CFLAGS");
	unsetenv("LDFLAGS");
	setenv("PKG_CONFIG_PATH", installed("lib/pkgconfig"), 1);
	setenv("PKG_CONFIG_SYSROOT_DIR", dest, 1);
	return make("install") ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static int group_teardown(void **state)
{
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- what is installed ---- */

static void assert_kind(const char *rel, mode_t kind, mode_t perm)
{
	const char *path = installed(rel);
	struct stat st;

	if (lstat(path, &st))
		fail_msg("not installed: %s: %s", path, strerror(errno));
	if ((st.st_mode & S_IFMT) != kind ||
	    (perm && (st.st_mode & 0777) != perm))
		fail_msg("%s: mode %o", path, (unsigned)st.st_mode);
}

static void assert_link(const char *rel, const char *target)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(installed(rel), buf, sizeof(buf) - 1);

	if (n < 0)
		fail_msg("%s: not a symbolic link", installed(rel));
	buf[n] = '\0';
	assert_string_equal(buf, target);
}

static void assert_file_has(const char *rel, const char *needle)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), "grep -F -q -e '%s' '%s'", needle,
		 installed(rel));
	if (sh(cmd))
		fail_msg("%s lacks '%s'", installed(rel), needle);
}

static void programs_and_library(void **state)
{
	char cmd[PATH_MAX * 2];

	assert_kind("sbin/arenad", S_IFREG, 0755);
	assert_kind("bin/arenactl", S_IFREG, 0755);
	assert_kind("lib/libarena.so.0.1.0", S_IFREG, 0755);
	assert_link("lib/libarena.so.0", "libarena.so.0.1.0");
	assert_link("lib/libarena.so", "libarena.so.0");
	assert_kind("lib/libarena.a", S_IFREG, 0644);
	assert_kind("include/arena/arena.h", S_IFREG, 0644);
	snprintf(cmd, sizeof(cmd), "cmp '%s/include/arena/arena.h' '%s'",
		 srcdir(), installed("include/arena/arena.h"));
	assert_int_equal(sh(cmd), 0);
	snprintf(cmd, sizeof(cmd), "'%s' --version", installed("sbin/arenad"));
	assert_int_equal(sh(cmd), 0);
	if (sh("command -v readelf >/dev/null"))
		return;
	snprintf(cmd, sizeof(cmd), "readelf -d '%s'",
		 installed("lib/libarena.so.0.1.0"));
	assert_int_equal(sh(cmd), 0);
	if (!strstr(out, "Library soname: [libarena.so.0]"))
		fail_msg("no soname libarena.so.0:\n%s", out);
}

static void units_and_docs(void **state)
{
	assert_kind("lib/pkgconfig/arena.pc", S_IFREG, 0644);
	assert_file_has("lib/pkgconfig/arena.pc", "prefix=" PREFIX);
	assert_file_has("lib/systemd/system/arenad.service",
			"ExecStart=" PREFIX "/sbin/arenad --config "
			"/etc/arenad/arenad.conf");
	assert_file_has("lib/systemd/system/arenad@.service",
			"ExecStart=" PREFIX "/sbin/arenad --config "
			"/etc/arenad/%i.conf");
	assert_kind("lib/systemd/system/arenad.socket", S_IFREG, 0644);
	assert_kind("lib/systemd/system/arenad@.socket", S_IFREG, 0644);
	assert_file_has("lib/sysusers.d/arenad.conf", "u arenad");
	assert_kind("share/doc/arenad/arenad.conf.example", S_IFREG, 0644);
	assert_kind("/etc/arenad/arenad.conf", S_IFREG, 0644);
	assert_kind("share/man/man8/arenad.8", S_IFREG, 0644);
	assert_kind("share/man/man1/arenactl.1", S_IFREG, 0644);
	assert_kind("share/man/man3/libarena.3", S_IFREG, 0644);
	assert_kind("share/man/man3/arena_alloc.3", S_IFREG, 0644);
}

/* ---- pkg-config and consumers ---- */

/* In the calling test, so that the skip note names it. */
#define NEEDS_PKG_CONFIG()                                                     \
	do {                                                                   \
		if (sh("command -v pkg-config >/dev/null"))                    \
			SKIP_BECAUSE("pkg-config not found (package "          \
				     "pkg-config)");                           \
	} while (0)

static void pkg_config(void **state)
{
	char want[PATH_MAX * 2];

	NEEDS_PKG_CONFIG();
	assert_int_equal(sh("pkg-config --modversion arena"), 0);
	assert_string_equal(out, "0.1.0\n");
	assert_int_equal(sh("pkg-config --cflags --libs arena"), 0);
	if (snprintf(want, sizeof(want),
		     "-I%s" PREFIX "/include -L%s" PREFIX "/lib -larena", dest,
		     dest) >= (int)sizeof(want))
		fail_msg("DESTDIR too long");
	if (strncmp(out, want, strlen(want)))
		fail_msg("pkg-config --cflags --libs arena: '%s', expected "
			 "'%s'",
			 out, want);
	assert_int_equal(sh("pkg-config --static --libs arena"), 0);
	assert_non_null(strstr(out, "-pthread"));
}

/* Build the consumer with compiler, flags from pkg-config through sed. */
static void consumer_build(const char *exe, const char *compiler,
			   const char *libs_sed)
{
	char cmd[PATH_MAX * 3];

	snprintf(cmd, sizeof(cmd),
		 "set -e; cflags=$(pkg-config --cflags arena); "
		 "libs=$(pkg-config %s arena | sed '%s'); "
		 "%s -Wall -Wextra -Werror -o '%s/%s' "
		 "'%s/tests/install/consumer.c' $cflags $libs",
		 libs_sed[0] ? "--static --libs" : "--libs", libs_sed, compiler,
		 root, exe, srcdir());
	if (sh(cmd))
		fail_msg("building the consumer failed:\n%s\n%s", cmd, err);
}

/* Run it against a fresh daemon; dynamic: with the installed library. */
static void consumer_run(const char *exe, const char *lang, int dynamic)
{
	char cmd[PATH_MAX * 2], want[64];
	struct harness_daemon d;

	snprintf(cmd, sizeof(cmd), "readelf -d '%s/%s'", root, exe);
	if (!sh("command -v readelf >/dev/null")) {
		assert_int_equal(sh(cmd), 0);
		if ((strstr(out, "Shared library: [libarena.so.0]") != NULL) !=
		    dynamic)
			fail_msg("%s: libarena.so.0 %sexpected:\n%s", exe,
				 dynamic ? "" : "not ", out);
	}
	assert_int_equal(harness_daemon_start(&d, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s'%s/%s'",
		 dynamic ? "LD_LIBRARY_PATH=\"$PKG_CONFIG_SYSROOT_DIR" PREFIX
			   "/lib\" "
			 : "",
		 root, exe);
	if (sh(cmd))
		fail_msg("the %s consumer failed:\n%s%s", lang, out, err);
	snprintf(want, sizeof(want), "consumer ok: %s,", lang);
	assert_non_null(strstr(out, want));
	assert_int_equal(harness_daemon_stop(&d), 0);
}

static void consumer_c(void **state)
{
	NEEDS_PKG_CONFIG();
	consumer_build("consumer-c", "cc -std=c11", "");
	consumer_run("consumer-c", "C", 1);
}

static void consumer_cxx(void **state)
{
	NEEDS_PKG_CONFIG();
	if (sh("command -v g++ >/dev/null"))
		SKIP_BECAUSE("g++ not found (package g++)");
	consumer_build("consumer-cxx", "g++ -std=c++11 -x c++", "");
	consumer_run("consumer-cxx", "C++", 1);
}

/* libarena.a with Libs.private: what a static link needs is all there. */
static void consumer_static(void **state)
{
	NEEDS_PKG_CONFIG();
	consumer_build("consumer-static", "cc -std=c11",
		       "s/-larena/-Wl,-Bstatic -larena -Wl,-Bdynamic/");
	consumer_run("consumer-static", "C", 0);
}

/* ---- man pages ---- */

/* Every function the header exports has a page of its name. */
static void every_function_has_a_page(void)
{
	char path[PATH_MAX], line[512], page[PATH_MAX];
	char *p, *q;
	FILE *f;

	snprintf(path, sizeof(path), "%s/include/arena/arena.h", srcdir());
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "ARENA_API ");
		q = p ? strchr(p, '(') : NULL;
		if (!q || strstr(line, "#define"))
			continue;
		for (p = q; p > line &&
			    (p[-1] == '_' || isalnum((unsigned char)p[-1]));
		     p--)
			;
		snprintf(page, sizeof(page), "%s/man/man3/%.*s.3", srcdir(),
			 (int)(q - p), p);
		if (access(page, F_OK))
			fail_msg("no man page %s for %.*s()", page,
				 (int)(q - p), p);
	}
	fclose(f);
}

static void man_pages(void **state)
{
	char cmd[PATH_MAX * 2];

	every_function_has_a_page();
	if (sh("command -v groff >/dev/null"))
		SKIP_BECAUSE("groff not found (package groff-base)");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/man' && for p in man*/*; do "
		 "groff -man -ww -z -t \"$p\" 2>&1 | sed \"s|^|$p: |\"; done",
		 srcdir());
	assert_int_equal(sh(cmd), 0);
	if (out[0] || err[0])
		fail_msg("groff warns:\n%s%s", out, err);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && for p in man3/*; do groff -man -ww -z \"$p\"; "
		 "done",
		 installed("share/man"));
	assert_int_equal(sh(cmd), 0);
	if (err[0])
		fail_msg("installed pages do not resolve:\n%s", err);
}

/* ---- uninstall ---- */

/* Every file or link left under DESTDIR, one "/path\n" each. */
static void leftovers(char *buf, size_t cap)
{
	char cmd[PATH_MAX + 64];

	snprintf(cmd, sizeof(cmd), "cd '%s' && find . ! -type d | sort", dest);
	assert_int_equal(sh(cmd), 0);
	if (strlen(out) >= cap)
		fail_msg("too much left under %s:\n%s", dest, out);
	strcpy(buf, out);
}

static void uninstall_exact(void **state)
{
	char left[4096], want[4096] = "";
	char cmd[PATH_MAX + 64];
	size_t i;

	assert_int_equal(make("uninstall"), 0);
	leftovers(left, sizeof(left));
	for (i = 0; i < NFOREIGN; i++)
		strcat(strcat(strcat(want, "."),
			      installed(foreign[i]) + strlen(dest)),
		       "\n");
	snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | sort", want);
	assert_int_equal(sh(cmd), 0);
	if (strcmp(left, out))
		fail_msg("after make uninstall:\n%sexpected only:\n%s", left,
			 out);
	/* a config file the admin changed is theirs: kept */
	assert_int_equal(make("install"), 0);
	write_file(installed("/etc/arenad/arenad.conf"), "size 2G\n");
	assert_int_equal(make("uninstall"), 0);
	assert_kind("/etc/arenad/arenad.conf", S_IFREG, 0);
	assert_int_not_equal(access(installed("sbin/arenad"), F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(programs_and_library),
		cmocka_unit_test(units_and_docs),
		cmocka_unit_test(pkg_config),
		cmocka_unit_test(consumer_c),
		cmocka_unit_test(consumer_cxx),
		cmocka_unit_test(consumer_static),
		cmocka_unit_test(man_pages),
		cmocka_unit_test(uninstall_exact),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
