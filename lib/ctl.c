// SPDX-License-Identifier: MIT
/*
 * Control round trips on an attached client's socket: one request, one
 * answer, one at a time per client (a mutex of this process, never of the
 * region).  Everything after arena_connect() that needs the daemon comes
 * through here, so this is where the daemon's death is turned into an
 * error instead of a hang.
 *
 * The daemon gone (EOF, a reset, a broken pipe) is for good: every later
 * control call of the client returns -ESHUTDOWN at once.  A daemon that
 * does not answer within the socket's timeout (it is stopped, or stuck)
 * gets -ETIMEDOUT, and nothing is lost: each request carries a sequence
 * number that the daemon echoes, so an answer that arrives after its
 * caller gave up is read and dropped by the next call.  Only a message
 * cut in the middle (a timeout after part of it went through) leaves the
 * stream out of step; the client's control calls then return -ENOTCONN.
 * The region stays mapped in all these cases: blocks already held stay
 * readable and writable, and the data path needs no daemon.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "wire.h"

/* A request's bytes, or an answer's; the largest of either. */
#define CTL_BUF (sizeof(struct arena_proto_hdr) + ARENA_PROTO_MAX_PAYLOAD)

/* The errno of a socket that failed; what the caller should see. */
static int io_error(int err, size_t done)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return done ? -ENOTCONN : -ETIMEDOUT;
	if (err == EPIPE || err == ECONNRESET || err == 0)
		return -ESHUTDOWN;
	return -err;
}

/* Move exactly len bytes; see io_error for what a failure returns. */
static int io_full(int fd, void *buf, size_t len, bool out)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if (out)
			n = send(fd, (char *)buf + done, len - done,
				 MSG_NOSIGNAL);
		else
			n = recv(fd, (char *)buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return io_error(n < 0 ? errno : 0, done);
		done += (size_t)n;
	}
	return 0;
}

/* One whole message, header first, into buf; its header in *h. */
static int read_msg(struct arena_client *c, struct arena_proto_hdr *h,
		    uint8_t *buf)
{
	int err = io_full(c->sock, h, sizeof(*h), false);

	if (err)
		return err;
	err = arena_proto_hdr_decode(h, sizeof(*h), h);
	if (err)
		return -ENOTCONN; /* not a header: the stream is lost */
	if (h->len > ARENA_PROTO_MAX_PAYLOAD)
		return -ENOTCONN;
	err = io_full(c->sock, buf, h->len, false);
	return err == -ETIMEDOUT ? -ENOTCONN : err;
}

static int round_trip(struct arena_client *c, uint16_t type, const void *req,
		      uint32_t len, struct arena_proto_hdr *h, uint8_t *buf)
{
	uint32_t seq = ++c->ctl_seq ? c->ctl_seq : ++c->ctl_seq;
	int err;

	arena_proto_hdr_encode((struct arena_proto_hdr *)buf, type, len, seq);
	memcpy(buf + sizeof(*h), req, len);
	err = io_full(c->sock, buf, sizeof(*h) + len, true);
	while (!err) {
		err = read_msg(c, h, buf);
		if (!err && h->seq == seq)
			return 0;
		/* else an answer to a call that timed out: drop it */
	}
	return err;
}

/* The answer's payload into reply, or the daemon's ERROR. */
static int answer(const struct arena_proto_hdr *h, const uint8_t *buf,
		  uint16_t want, void *reply, uint32_t cap)
{
	struct arena_proto_error e;

	if (arena_proto_payload_check(h->type, buf, h->len))
		return -EPROTO;
	if (h->type == ARENA_MSG_ERROR) {
		memcpy(&e, buf, sizeof(e));
		return e.err < 0 ? e.err : -EPROTO;
	}
	if (h->type != want || h->len > cap)
		return -EPROTO;
	memcpy(reply, buf, h->len);
	return (int)h->len;
}

int ctl_call(struct arena_client *c, uint16_t type, const void *req,
	     uint32_t len, uint16_t want, void *reply, uint32_t cap)
{
	uint8_t buf[CTL_BUF];
	struct arena_proto_hdr h;
	int err;

	if (len > ARENA_PROTO_MAX_PAYLOAD)
		return -EINVAL;
	pthread_mutex_lock(&c->ctl_lock);
	err = c->ctl_err;
	if (!err)
		err = round_trip(c, type, req, len, &h, buf);
	if (err == -ESHUTDOWN || err == -ENOTCONN)
		c->ctl_err = err;
	pthread_mutex_unlock(&c->ctl_lock);
	return err ? err : answer(&h, buf, want, reply, cap);
}
