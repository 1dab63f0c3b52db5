// SPDX-License-Identifier: MIT
/*
 * Control-socket set-up.  A socket file can outlive its daemon (SIGKILL,
 * power loss), so an existing path is probed with connect(): a daemon
 * that answers owns it and we refuse to start; ECONNREFUSED means nobody
 * listens and the file is replaced.  Anything that is not a socket is
 * never removed.  At exit the file is unlinked only if it is still the one
 * we created, so a daemon never deletes a successor's socket.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlsock.h"
#include "log.h"
#include "sockpath.h"

#define CTLSOCK_BACKLOG 128

static int fail(const char *what, const char *path, int err)
{
	fprintf(stderr, "arenad: %s %s: %s\n", what, path, strerror(err));
	return -err;
}

static int addr_make(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

static int dir_check(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	const char *dir;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	/* our own runtime directory, as systemd's RuntimeDirectory= makes it */
	if (stat(dir, &st) && errno == ENOENT &&
	    !strcmp(path, ARENA_PROTO_SYSTEM_SOCKET) && !mkdir(dir, 0755))
		LOG(LOG_INFO, "created %s", dir);
	if (stat(dir, &st))
		return fail("cannot use socket directory", dir, errno);
	if (!S_ISDIR(st.st_mode))
		return fail("cannot use socket directory", dir, ENOTDIR);
	return 0;
}

/* 1: a daemon answers; 0: nobody listens; negative errno otherwise. */
static int probe(const char *path)
{
	struct sockaddr_un a;
	int fd, rc = 1;

	if (addr_make(path, &a))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		rc = errno == ECONNREFUSED ? 0 : -errno;
	close(fd);
	return rc;
}

int ctlsock_check(const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st))
		return errno == ENOENT ? dir_check(path)
				       : fail("cannot use socket", path, errno);
	if (!S_ISSOCK(st.st_mode))
		return fail("refusing to replace", path, EEXIST);
	rc = probe(path);
	if (rc > 0) {
		fprintf(stderr,
			"arenad: socket %s is in use by a running daemon\n",
			path);
		return -EADDRINUSE;
	}
	if (rc < 0)
		return fail("cannot probe socket", path, -rc);
	if (unlink(path) && errno != ENOENT)
		return fail("cannot remove stale socket", path, errno);
	LOG(LOG_INFO, "removed stale socket %s", path);
	return 0;
}

static int bind_0660(int fd, const char *path)
{
	struct sockaddr_un a;
	mode_t old;
	int rc;

	rc = addr_make(path, &a);
	if (rc)
		return rc;
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0;
	umask(old);
	return rc;
}

static void group_set(const char *path, gid_t group)
{
	if (chown(path, (uid_t)-1, group))
		LOG(LOG_WARN, "cannot give socket %s to gid %u: %s", path,
		    (unsigned)group, strerror(errno));
}

static void identity_save(struct ctlsock *s)
{
	struct stat st;

	if (!lstat(s->path, &st)) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
}

int ctlsock_listen(struct ctlsock *s, const char *path, bool has_group,
		   gid_t group)
{
	int rc;

	s->path = path;
	s->adopted = false;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return fail("cannot create socket", path, errno);
	rc = bind_0660(s->fd, path);
	if (rc) {
		close(s->fd);
		return fail("cannot bind socket", path, -rc);
	}
	identity_save(s);
	if (listen(s->fd, CTLSOCK_BACKLOG)) {
		rc = fail("cannot listen on socket", path, errno);
		ctlsock_close(s);
		return rc;
	}
	if (has_group)
		group_set(path, group);
	return 0;
}

void ctlsock_close(struct ctlsock *s)
{
	struct stat st;

	if (s->fd < 0)
		return;
	close(s->fd);
	s->fd = -1;
	if (s->adopted)
		return;
	if (!lstat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}
