// SPDX-License-Identifier: MIT
/*
 * Control connections: non-blocking reads into a per-connection buffer,
 * framing with the proto decoders, and replies.
 *
 * The buffer holds one header plus the largest payload, and the header is
 * validated (magic, version, type, length cap) as soon as its 16 bytes are
 * in, so a peer can never make the daemon buffer more than that or wait
 * for a payload the protocol does not allow.  Replies are small and rare;
 * instead of queueing output for peers that do not read, a reply that
 * does not fit the socket buffer drops the connection.
 *
 * An attached client's process is also watched through a pidfd, because
 * the socket's EOF never comes while a copy of the descriptor lives on
 * in another process (a fork()ed child, an SCM_RIGHTS message).  The
 * pidfd names the process that connected: SO_PEERPIDFD takes it from the
 * socket (Linux 6.5), so a pid reused since connect() cannot be mistaken
 * for it; older kernels get pidfd_open() of the SO_PEERCRED pid.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "peer.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct peer *peer_new(int fd)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p) {
		close(fd);
		return NULL;
	}
	p->fd = fd;
	p->pidfd = -1;
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	close(p->fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
}

/* -ENOPROTOOPT on kernels before SO_PEERPIDFD. */
static int pidfd_of_socket(int fd)
{
	socklen_t len = sizeof(int);
	int pidfd = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len))
		return -errno;
	return len == sizeof(int) && pidfd >= 0 ? pidfd : -EPROTO;
}

int peer_pidfd_open(struct peer *p)
{
	int fd = pidfd_of_socket(p->fd);

	if (fd == -ENOPROTOOPT || fd == -EOPNOTSUPP) {
		if (p->cred.pid <= 0)
			return -EOPNOTSUPP; /* not in our pid namespace */
		fd = (int)syscall(SYS_pidfd_open, p->cred.pid, 0);
		if (fd < 0)
			fd = errno == EPERM ? -ENOSYS : -errno; /* seccomp */
	}
	if (fd == -EINVAL) /* SO_PEERPIDFD of a reaped process */
		fd = -ESRCH;
	if (fd < 0)
		return fd;
	p->pidfd = fd;
	return 0;
}

bool peer_pid_exited(const struct peer *p)
{
	struct pollfd f = { .fd = p->pidfd, .events = POLLIN };

	return p->pidfd >= 0 && poll(&f, 1, 0) > 0;
}

int peer_fill(struct peer *p)
{
	ssize_t n;

	do
		n = recv(p->fd, p->buf + p->len, sizeof(p->buf) - p->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	p->len += (uint32_t)n;
	return (int)n;
}

static const char *hdr_error(int rc)
{
	switch (rc) {
	case -EPROTO:
		return "wrong protocol version";
	case -EMSGSIZE:
		return "oversized message";
	default:
		return "bad header (magic or type)";
	}
}

int peer_next(struct peer *p, struct arena_proto_hdr *h,
	      const uint8_t **payload, const char **why)
{
	int rc = arena_proto_hdr_decode(p->buf, p->len, h);

	if (rc == -EAGAIN)
		return 0;
	if (rc) {
		*why = hdr_error(rc);
		return rc;
	}
	if (p->len - sizeof(*h) < h->len)
		return 0;
	*payload = p->buf + sizeof(*h);
	rc = arena_proto_payload_check(h->type, *payload, h->len);
	if (rc) {
		*why = "malformed payload";
		return rc;
	}
	return 1;
}

void peer_consume(struct peer *p, const struct arena_proto_hdr *h)
{
	uint32_t used = (uint32_t)sizeof(*h) + h->len;

	memmove(p->buf, p->buf + used, p->len - used);
	p->len -= used;
}

static void rights_attach(struct msghdr *m, void *cbuf, size_t clen, int fd)
{
	struct cmsghdr *c;

	m->msg_control = cbuf;
	m->msg_controllen = clen;
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

int peer_send(struct peer *p, uint16_t type, uint32_t seq, const void *payload,
	      uint32_t len, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct arena_proto_hdr h;
	uint8_t out[PEER_BUF];
	struct iovec iov = { out, sizeof(h) + len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	int rc;

	rc = arena_proto_hdr_encode(&h, type, len, seq);
	if (rc)
		return rc;
	memcpy(out, &h, sizeof(h));
	if (len)
		memcpy(out + sizeof(h), payload, len);
	if (pass_fd >= 0)
		rights_attach(&m, cbuf.buf, sizeof(cbuf.buf), pass_fd);
	do
		n = sendmsg(p->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return (size_t)n == iov.iov_len ? 0 : -EAGAIN;
}
