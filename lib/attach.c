// SPDX-License-Identifier: MIT
/*
 * Attaching to arenad: connect to the control socket, say HELLO, receive
 * WELCOME and the region's file descriptor, map the region and validate
 * everything in its header before any of it is used.
 *
 * The client copies each arena descriptor into private memory after
 * checking it against the mapping's size, so a descriptor scribbled later
 * by a buggy peer cannot steer this process outside the region.  The
 * connection stays open for the client's lifetime: its EOF is how the
 * daemon learns that this client is gone and must be reclaimed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "sockpath.h"
#include "wire.h"

#define ATTACH_TIMEOUT_S 10

static _Atomic uint64_t next_serial = 1;
_Atomic uint64_t lib_fork_floor;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* In the child: every client connected so far belongs to the parent. */
static void fork_child(void)
{
	atomic_store(&lib_fork_floor, atomic_load(&next_serial));
	lib_tls_last.serial = 0;
	lib_tls_last.tc = NULL;
}

static void fork_hook(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

void fork_guard_init(void)
{
	pthread_once(&fork_once, fork_hook);
}

static int sock_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = ATTACH_TIMEOUT_S };
	int fd, err;

	strcpy(sa.sun_path, path); /* length checked by arena_proto_sockpath */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int send_hello(int fd)
{
	struct {
		struct arena_proto_hdr h;
		struct arena_proto_hello p;
	} m = { .p.layout_version = ARENA_PROTO_LAYOUT_VERSION };

	ssize_t n;

	arena_proto_hdr_encode(&m.h, ARENA_MSG_HELLO, sizeof(m.p), 1);
	do
		n = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m))
		return n < 0 ? -errno : -EIO;
	return 0;
}

/*
 * Read exactly len bytes.  A signal handled by the application must not
 * fail the attach: EINTR, and a MSG_WAITALL read cut short by a signal,
 * just read on.
 */
static int read_full(int sock, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(sock, (char *)buf + got, len - got, MSG_WAITALL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		got += (size_t)n;
	}
	return 0;
}

/* Keep the first descriptor passed with a message; close any others. */
static int take_fd(struct msghdr *mh)
{
	struct cmsghdr *cm;
	int fd = -1, n, i, fds[8];

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(cm), (size_t)n * sizeof(int));
		for (i = 0; i < n; i++) {
			if (fd < 0)
				fd = fds[i];
			else
				close(fds[i]);
		}
	}
	return fd;
}

/* Read one whole message (header + payload); *fd gets a passed fd. */
static int recv_msg(int sock, struct arena_proto_hdr *h, void *payload,
		    size_t cap, int *fd)
{
	char cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	int err;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	*fd = take_fd(&mh);
	if (n < 0)
		return -errno;
	if (n > 0 && (size_t)n < sizeof(*h)) {
		err = read_full(sock, (char *)h + n, sizeof(*h) - (size_t)n);
		if (err)
			return err;
		n = sizeof(*h);
	}
	err = arena_proto_hdr_decode(h, (size_t)n, h);
	if (err)
		return err == -EAGAIN ? -EBADMSG : err;
	if (h->len > cap)
		return -EBADMSG;
	err = read_full(sock, payload, h->len);
	if (err)
		return err;
	return arena_proto_payload_check(h->type, payload, h->len);
}

static int handshake(int sock, struct arena_proto_welcome *w, int *fd)
{
	union {
		struct arena_proto_welcome w;
		struct arena_proto_error e;
	} p;
	struct arena_proto_hdr h;
	int err;

	err = send_hello(sock);
	if (!err)
		err = recv_msg(sock, &h, &p, sizeof(p), fd);
	if (!err && h.type == ARENA_MSG_ERROR)
		err = p.e.err;
	else if (!err && (h.type != ARENA_MSG_WELCOME || *fd < 0))
		err = -EBADMSG;
	if (!err)
		*w = p.w;
	return err;
}

static struct arena_client *client_new(void)
{
	struct arena_client *c = calloc(1, sizeof(*c));

	if (c) {
		c->sock = -1;
		c->ctl_seq = 1; /* HELLO's */
		pthread_mutex_init(&c->ctl_lock, NULL);
	}
	return c;
}

static int attach(struct arena_client *c, const char *path)
{
	struct arena_proto_welcome w;
	int fd = -1, err;

	c->sock = sock_open(path);
	if (c->sock < 0)
		return c->sock;
	err = handshake(c->sock, &w, &fd);
	if (!err && (w.client_id == 0 ||
		     w.client_id > ARENA_PROTO_MAX_CLIENTS || w.region_id > 15))
		err = -EBADMSG;
	if (!err) {
		c->id = w.client_id;
		c->region_id = w.region_id;
		c->arena_base = w.region_id << 8;
		c->instance = w.instance;
		err = region_adopt(c, fd, w.region_size);
	}
	if (fd >= 0)
		close(fd);
	return err;
}

int arena_connect(const char *socket_path, struct arena_client **out)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct arena_client *c;
	int err;

	if (!out)
		return -EINVAL;
	err = arena_proto_sockpath(socket_path, path, sizeof(path));
	if (err)
		return err == -ENAMETOOLONG ? -EINVAL : err;
	fork_guard_init();
	c = client_new();
	if (!c)
		return -ENOMEM;
	err = attach(c, path);
	if (!err)
		err = tc_setup(c);
	if (err) {
		arena_disconnect(c);
		return err;
	}
	c->serial = atomic_fetch_add(&next_serial, 1);
	*out = c;
	return 0;
}

void arena_disconnect(struct arena_client *c)
{
	if (!c)
		return;
	if (client_inherited(c))
		c->narenas = 0; /* the magazines are the parent's: keep them */
	tc_teardown(c);
	region_release(c);
	if (c->sock >= 0)
		close(c->sock);
	pthread_mutex_destroy(&c->ctl_lock);
	free(c);
}

unsigned arena_client_id(const struct arena_client *c)
{
	return c ? c->id : 0;
}

const char *arena_version(void)
{
	return "0.1.0";
}
