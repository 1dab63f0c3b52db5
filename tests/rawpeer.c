// SPDX-License-Identifier: MIT
/*
 * Raw control-socket peers for the hostile-input tests.  libarena hides
 * the region's descriptor and never sends a bad or partial message; these
 * tests need to do both, so they speak the wire format themselves with
 * the proto encoders.  Replies are read with poll() against a deadline,
 * never with a blocking read, so a daemon that stops answering fails a
 * test instead of hanging it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "rawpeer.h"

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int raw_connect(const char *path, int nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX,
		    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
		    0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Wait until s is readable or the deadline passes. */
static int await_in(int s, long long end)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	long long left = end - ms_now();
	int n;

	if (left < 0)
		left = 0;
	n = poll(&p, 1, (int)left);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/* Exactly len bytes into buf (and a passed fd into *fd, if any). */
static int recv_all(int s, void *buf, size_t len, int *fd, long long end)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	size_t got = 0;
	ssize_t n;
	int err;

	while (got < len) {
		err = await_in(s, end);
		if (err)
			return err;
		iov = (struct iovec){ (char *)buf + got, len - got };
		mh.msg_control = fd ? cbuf : NULL;
		mh.msg_controllen = fd ? sizeof(cbuf) : 0;
		n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		cm = n > 0 && fd ? CMSG_FIRSTHDR(&mh) : NULL;
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
		got += n > 0 ? (size_t)n : 0;
	}
	return 0;
}

static int send_msg(int s, uint16_t type, const void *payload, uint32_t len)
{
	uint8_t buf[sizeof(struct arena_proto_hdr) + 64];
	struct arena_proto_hdr h;

	if (len > 64 || arena_proto_hdr_encode(&h, type, len, 1))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	if (send(s, buf, sizeof(h) + len, MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(h) + len))
		return errno ? -errno : -EIO;
	return 0;
}

int raw_attach(int s, struct arena_proto_welcome *w, int *fd, int ms)
{
	struct arena_proto_hello hello = { .layout_version =
						   ARENA_PROTO_LAYOUT_VERSION };
	union {
		struct arena_proto_welcome w;
		struct arena_proto_error e;
	} p;
	struct arena_proto_hdr h;
	long long end = ms_now() + ms;
	int err;

	*fd = -1;
	err = send_msg(s, ARENA_MSG_HELLO, &hello, sizeof(hello));
	if (!err)
		err = recv_all(s, &h, sizeof(h), fd, end);
	if (!err &&
	    (h.len > sizeof(p) || arena_proto_hdr_decode(&h, sizeof(h), &h)))
		err = -EBADMSG;
	if (!err)
		err = recv_all(s, &p, h.len, NULL, end);
	if (!err && h.type == ARENA_MSG_ERROR && h.len == sizeof(p.e))
		err = p.e.err;
	else if (!err && (h.type != ARENA_MSG_WELCOME || *fd < 0))
		err = -EBADMSG;
	if (!err)
		*w = p.w;
	else if (*fd >= 0)
		close(*fd);
	return err;
}

int raw_ping(int s, int ms)
{
	struct arena_proto_hdr h;
	int err = send_msg(s, ARENA_MSG_PING, NULL, 0);

	if (!err)
		err = recv_all(s, &h, sizeof(h), NULL, ms_now() + ms);
	if (!err && h.type != ARENA_MSG_PONG)
		err = -EBADMSG;
	return err == -EPIPE ? -ECONNRESET : err;
}

int raw_await_close(int s, int ms)
{
	long long end = ms_now() + ms;
	char buf[4096];
	ssize_t n;
	int err;

	for (;;) {
		err = await_in(s, end);
		if (err)
			return err;
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

int proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

long proc_status_kb(pid_t pid, const char *name)
{
	char path[64], line[256];
	size_t len = strlen(name);
	long kb = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ':' &&
		    sscanf(line + len + 1, "%ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}
