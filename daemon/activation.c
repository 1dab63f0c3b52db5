// SPDX-License-Identifier: MIT
/*
 * Socket activation, the protocol of sd_listen_fds(3) without libsystemd:
 * the service manager (systemd, or systemd-socket-activate for a test)
 * binds the socket, starts us with it open at fd 3, and says so in
 * $LISTEN_FDS, naming the process it meant in $LISTEN_PID.  A LISTEN_PID
 * that is not ours was meant for a parent and is ignored.
 *
 * The fd is checked before it is trusted: a listening AF_UNIX stream
 * socket, or the daemon refuses to start, since anything else would only
 * fail later in accept().  Its file belongs to the service manager, which
 * keeps listening while the daemon restarts, so the daemon never unlinks
 * it.  The variables are removed once read, as sd_listen_fds() does, so
 * nothing started later mistakes them for its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "log.h"

#define LISTEN_FDS_START 3

/* A plain decimal environment value; 0 when unset or not a number. */
static unsigned long env_ul(const char *name)
{
	const char *s = getenv(name);
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	return errno || *end ? 0 : v;
}

static int sockopt(int fd, int opt)
{
	socklen_t len = sizeof(int);
	int v;

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) || len != sizeof(int))
		return -1;
	return v;
}

static bool listening_unix_stream(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISSOCK(st.st_mode) &&
	       sockopt(fd, SO_DOMAIN) == AF_UNIX &&
	       sockopt(fd, SO_TYPE) == SOCK_STREAM &&
	       sockopt(fd, SO_ACCEPTCONN) == 1;
}

/* The socket's address as text: a path, "@name" (abstract), or "?". */
static void name_get(int fd, char *path)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	size_t n;

	memset(&a, 0, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &len) ||
	    len <= offsetof(struct sockaddr_un, sun_path)) {
		strcpy(path, "?");
		return;
	}
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (a.sun_path[0]) {
		memcpy(path, a.sun_path, sizeof(a.sun_path));
		path[sizeof(a.sun_path) - 1] = '\0';
		return;
	}
	path[0] = '@';
	memcpy(path + 1, a.sun_path + 1, n - 1);
	path[n < sizeof(a.sun_path) ? n : sizeof(a.sun_path) - 1] = '\0';
}

/* Only fd 3 is used; more would be a socket unit with extra Listen=. */
static void extra_close(unsigned long nfds)
{
	unsigned long i;

	LOG(LOG_WARN,
	    "socket activation passed %lu sockets; using fd %d, "
	    "closing the others",
	    nfds, LISTEN_FDS_START);
	for (i = 1; i < nfds && i < 1024; i++)
		close(LISTEN_FDS_START + (int)i);
}

int activation_adopt(struct ctlsock *s, char *path)
{
	unsigned long nfds = env_ul("LISTEN_FDS");
	int fd = LISTEN_FDS_START;

	if (env_ul("LISTEN_PID") != (unsigned long)getpid() || !nfds)
		return 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!listening_unix_stream(fd)) {
		fprintf(stderr,
			"arenad: socket activation: fd %d is not a "
			"listening Unix stream socket\n",
			fd);
		return -ENOTSOCK;
	}
	if (nfds > 1)
		extra_close(nfds);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	name_get(fd, path);
	s->fd = fd;
	s->path = path;
	s->adopted = true;
	return 1;
}
