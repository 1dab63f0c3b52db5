// SPDX-License-Identifier: MIT
/*
 * Zero-copy sends of blocks: IORING_OP_SEND_ZC from the region's memory.
 *
 * Every send is a request slot with a life of its own: QUEUED (behind an
 * earlier send on the same socket), SENDING (an SQE in the kernel), then
 * DRAINING (all bytes taken, notifications due) and DONE (result ready).
 * The library's reference on the block is taken at arena_zc_send() and
 * dropped only when the slot has no SQE in flight and no notification
 * due: a zero-copy send's first CQE says the socket took the bytes, not
 * that the kernel stopped reading the pages, so it alone never frees a
 * block.  One request per stream socket is SENDING at a time, because two
 * sends in flight on one stream may interleave when the first is taken in
 * part; the rest of a partial send is submitted again at once, before the
 * next queued one.  Datagrams, which are never partial, may go together
 * when the socket's type was read while none was in flight on it.
 *
 * The block memory of every arena is registered as fixed buffers, in
 * pieces of at most 1 GiB that end on block boundaries, so a block lies
 * inside one buffer: the arena's first plus its offset over the piece
 * length (a range that does not, in a buddy block over 1 GiB, goes
 * unregistered).  Each way of failing has a way out that the results and
 * the mode say: no registration (memlock), a socket that refuses
 * zero-copy (AF_UNIX: -EOPNOTSUPP at completion), a kernel without
 * SEND_ZC or usage reports (-EINVAL), no io_uring at all (setup fails, or
 * ARENA_ZC_FORCE=copy): then send(2) runs in arena_zc_send() itself.
 *
 * The ring is SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them:
 * completions run only inside our own calls, never as task work breaking
 * into the application's system calls, and the object belongs to the
 * thread that opened it, so nothing here locks.  arena_zc_queue() leaves
 * SQEs in the ring for one io_uring_enter() per batch: per-call system
 * call overhead is what keeps one zero-copy send from costing much less
 * CPU than a copying one.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

/* liburing 2.3 predates these; values from the kernel's uapi header */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define ZC_PIECE (1ull << 30)	  /* largest fixed buffer the kernel takes */
#define ZC_MAX_BUFS (1u << 14)	  /* IORING_MAX_REG_BUFFERS */
#define ZC_NONE UINT32_MAX	  /* end of a list */
#define ZC_CANCEL_DATA UINT64_MAX /* user_data of close's cancel */
#define ZC_CLOSE_MS 1000
#define ZC_EXIT_MS 100
#define ZC_FLAGS MSG_NOSIGNAL

enum zc_state { ZC_FREE, ZC_QUEUED, ZC_SENDING, ZC_DRAINING, ZC_DONE };
enum zc_how { HOW_FIXED, HOW_ZC, HOW_COPY, HOW_SYNC };

struct zc_req {
	uint64_t tag;
	arena_handle_t h;
	const uint8_t *buf;
	uint64_t len;
	uint64_t sent;
	int err; /* the error that ended the send, or 0 */
	int fd;
	uint32_t next;	/* in one of the lists, or ZC_NONE */
	uint32_t flags; /* ARENA_ZC_* of the result */
	int32_t notifs; /* notifications due */
	uint16_t buf_index;
	uint8_t state;
	uint8_t how;
	bool dgram; /* a SOCK_DGRAM socket: others may be in flight on it */
};

struct zc_list {
	uint32_t head, tail;
};

struct arena_zc {
	struct arena_client *c;
	pthread_t owner; /* the one thread that may use the ring */
	int last_fd;	 /* the socket checked last */
	struct io_uring ring;
	bool ring_ok;
	bool entered;	 /* this thread submitted: the teardown visits it */
	bool usage_seen; /* the kernel took REPORT_USAGE at least once */
	uint8_t how;	 /* of new sends */
	unsigned zc_flags;
	unsigned mode;
	uint32_t nreq;
	uint32_t nlive; /* slots not FREE */
	uint32_t ndone; /* slots DONE */
	uint32_t nsqe;	/* SQEs not yet submitted */
	struct zc_list free, queued, sending, done;
	uint32_t piece0[ARENA_PROTO_MAX_ARENAS];    /* first buffer */
	uint64_t piece_len[ARENA_PROTO_MAX_ARENAS]; /* bytes per buffer */
	struct zc_req req[];
};

/* ---- lists of slots, linked by index ---- */

static void list_init(struct zc_list *l)
{
	l->head = l->tail = ZC_NONE;
}

static void list_push(struct arena_zc *z, struct zc_list *l, uint32_t i)
{
	z->req[i].next = ZC_NONE;
	if (l->tail == ZC_NONE)
		l->head = i;
	else
		z->req[l->tail].next = i;
	l->tail = i;
}

/* Unlink i, whose predecessor is prev (ZC_NONE: i is the head). */
static void list_unlink(struct arena_zc *z, struct zc_list *l, uint32_t prev,
			uint32_t i)
{
	uint32_t next = z->req[i].next;

	if (prev == ZC_NONE)
		l->head = next;
	else
		z->req[prev].next = next;
	if (l->tail == i)
		l->tail = prev;
	z->req[i].next = ZC_NONE;
}

static uint32_t list_pop(struct arena_zc *z, struct zc_list *l)
{
	uint32_t i = l->head;

	if (i != ZC_NONE)
		list_unlink(z, l, ZC_NONE, i);
	return i;
}

/* Remove and return the first slot for fd (or i itself if i != NONE). */
static uint32_t list_take(struct arena_zc *z, struct zc_list *l, int fd,
			  uint32_t want)
{
	uint32_t prev = ZC_NONE, i;

	for (i = l->head; i != ZC_NONE; prev = i, i = z->req[i].next) {
		if (want == ZC_NONE ? z->req[i].fd == fd : i == want) {
			list_unlink(z, l, prev, i);
			return i;
		}
	}
	return ZC_NONE;
}

/* A request that holds fd's socket, or NULL. */
static struct zc_req *fd_holder(struct arena_zc *z, int fd)
{
	uint32_t i;

	for (i = z->sending.head; i != ZC_NONE; i = z->req[i].next)
		if (z->req[i].fd == fd)
			return &z->req[i];
	return NULL;
}

static uint32_t req_index(const struct arena_zc *z, const struct zc_req *r)
{
	return (uint32_t)(r - z->req);
}

/* ---- the life of a request ---- */

static void req_done(struct arena_zc *z, struct zc_req *r)
{
	arena_unref(z->c, r->h);
	r->state = ZC_DONE;
	z->ndone++;
	list_push(z, &z->done, req_index(z, r));
}

static struct io_uring_sqe *zc_sqe(struct arena_zc *z)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&z->ring);

	z->entered = true; /* it will be submitted from this thread */
	if (!sqe && io_uring_submit(&z->ring) >= 0) {
		z->nsqe = 0;
		sqe = io_uring_get_sqe(&z->ring);
	}
	return sqe;
}

/* Queue an SQE for what is left of r; false when the ring has no room. */
static bool req_prep(struct arena_zc *z, struct zc_req *r)
{
	struct io_uring_sqe *sqe = zc_sqe(z);
	const uint8_t *p = r->buf + r->sent;
	size_t n = r->len - r->sent;

	if (!sqe)
		return false;
	if (n > ZC_PIECE)
		n = ZC_PIECE;
	if (r->how == HOW_FIXED)
		io_uring_prep_send_zc_fixed(sqe, r->fd, p, n, ZC_FLAGS,
					    z->zc_flags, r->buf_index);
	else if (r->how == HOW_ZC)
		io_uring_prep_send_zc(sqe, r->fd, p, n, ZC_FLAGS, z->zc_flags);
	else
		io_uring_prep_send(sqe, r->fd, p, n, ZC_FLAGS);
	io_uring_sqe_set_data64(sqe, req_index(z, r));
	z->nsqe++;
	return true;
}

static void req_over(struct arena_zc *z, struct zc_req *r);

/* Send (more of) r now; it holds its socket until it is over. */
static void req_start(struct arena_zc *z, struct zc_req *r)
{
	if (r->state != ZC_SENDING) {
		r->state = ZC_SENDING;
		list_push(z, &z->sending, req_index(z, r));
	}
	if (!req_prep(z, r)) {
		r->err = -EBUSY;
		req_over(z, r);
	}
}

/* r needs the socket no more: the next send on it may go. */
static void req_over(struct arena_zc *z, struct zc_req *r)
{
	uint32_t next;

	list_take(z, &z->sending, 0, req_index(z, r));
	r->state = ZC_DRAINING;
	next = list_take(z, &z->queued, r->fd, ZC_NONE);
	if (next != ZC_NONE)
		req_start(z, &z->req[next]);
	if (r->notifs == 0)
		req_done(z, r);
}

/*
 * Another way to send r after the kernel refused it with err, before any
 * byte went: without the usage report, without the fixed buffer, or with
 * a copy.  False when there is none left.
 */
static bool req_degrade(struct arena_zc *z, struct zc_req *r, int err)
{
	if (r->how == HOW_COPY || r->sent ||
	    (err != -EINVAL && err != -EOPNOTSUPP && err != -EFAULT))
		return false;
	if (err == -EINVAL && z->zc_flags && !z->usage_seen) {
		z->zc_flags = 0; /* a kernel older than 6.2 */
		z->mode |= ARENA_ZC_MODE_NOREPORT;
	} else if (err != -EOPNOTSUPP && r->how == HOW_FIXED) {
		r->how = HOW_ZC;
		r->flags |= ARENA_ZC_UNREG;
	} else if (err != -EFAULT) {
		r->how = HOW_COPY;
		r->flags |= ARENA_ZC_FALLBACK | ARENA_ZC_COPIED;
		z->mode |= ARENA_ZC_MODE_SOCK_COPY;
	} else {
		return false;
	}
	return true;
}

/* The first CQE of an SQE: bytes the socket took, or an error. */
static void on_result(struct arena_zc *z, struct zc_req *r, int res)
{
	if (r->state != ZC_SENDING)
		return;
	if (res > 0) {
		r->sent += (uint64_t)res;
		if (r->sent < r->len) {
			req_start(z, r); /* the rest, before anything else */
			return;
		}
	} else if (res < 0) {
		if (req_degrade(z, r, res)) {
			req_start(z, r);
			return;
		}
		r->err = res;
		if (res == -EBADF || res == -ENOTSOCK)
			z->last_fd = -1; /* closed since: check it again */
	}
	req_over(z, r); /* all sent, failed, or 0: the socket took no more */
}

static void on_notif(struct arena_zc *z, struct zc_req *r, int res)
{
	if (z->zc_flags)
		z->usage_seen = true;
	if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED) {
		r->flags |= ARENA_ZC_COPIED;
		z->mode |= ARENA_ZC_MODE_COPIED;
	}
	if (--r->notifs == 0 && r->state == ZC_DRAINING)
		req_done(z, r);
}

static void on_cqe(struct arena_zc *z, const struct io_uring_cqe *cqe)
{
	struct zc_req *r;

	if (cqe->user_data >= z->nreq)
		return; /* close's cancel */
	r = &z->req[cqe->user_data];
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		on_notif(z, r, cqe->res);
		return;
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		r->notifs++;
	on_result(z, r, cqe->res);
}

/* Handle every CQE the kernel has posted; no system call unless overflow. */
static void zc_reap(struct arena_zc *z)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;

	do {
		if (io_uring_cq_has_overflow(&z->ring))
			io_uring_get_events(&z->ring);
		n = 0;
		io_uring_for_each_cqe(&z->ring, head, cqe)
		{
			on_cqe(z, cqe);
			n++;
		}
		io_uring_cq_advance(&z->ring, n);
	} while (n);
}

/* Completions wait in the kernel for this task to come and run them. */
static bool taskrun_due(const struct arena_zc *z)
{
	return IO_URING_READ_ONCE(*z->ring.sq.kflags) & IORING_SQ_TASKRUN;
}

/*
 * Submit what was prepared, and run the completions the kernel deferred
 * for this task, in one system call.  An SQE the kernel did not take
 * stays in the ring and goes with the next call.
 */
static bool zc_flush(struct arena_zc *z)
{
	if (!z->nsqe && !taskrun_due(z))
		return true;
	if (io_uring_submit_and_get_events(&z->ring) < 0)
		return false;
	z->nsqe = 0;
	return true;
}

/*
 * Submit, and handle what completed at once, until no step is left that
 * the library has to take (the rest of a partial send, a send queued
 * behind it, a retry another way).  Steps that wait for the socket go on
 * in the kernel; what they lead to is taken up by the next call.
 */
static void zc_pump(struct arena_zc *z)
{
	zc_reap(z);
	if (!z->nsqe && taskrun_due(z)) { /* once: no loop for notifications */
		zc_flush(z);
		zc_reap(z);
	}
	while (z->nsqe && zc_flush(z)) /* each round sends or ends a send */
		zc_reap(z);
}

/* ---- sending without io_uring ---- */

static int wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return p.revents & POLLNVAL ? -EBADF : 0;
}

static void req_sync(struct arena_zc *z, struct zc_req *r)
{
	ssize_t n;

	while (r->sent < r->len) {
		n = send(r->fd, r->buf + r->sent, r->len - r->sent, ZC_FLAGS);
		if (n > 0) {
			r->sent += (uint64_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		r->err = -errno;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		r->err = wait_writable(r->fd);
		if (r->err)
			break;
	}
	req_done(z, r);
}

/* ---- open ---- */

/* ARENA_ZC_FORCE: the HOW_* to start from, or -EINVAL. */
static int forced_how(void)
{
	const char *s = secure_getenv("ARENA_ZC_FORCE");

	if (!s || !*s)
		return HOW_FIXED;
	if (!strcmp(s, "unreg"))
		return HOW_ZC;
	if (!strcmp(s, "nozc"))
		return HOW_COPY;
	if (!strcmp(s, "copy"))
		return HOW_SYNC;
	return -EINVAL;
}

/*
 * Completions run only when this thread enters the kernel for them
 * (DEFER_TASKRUN, 6.1), so the ring never interrupts the application's
 * own system calls (with the default, a timed recv() may fail with
 * EINTR); COOP_TASKRUN (5.19) still may, less often.
 */
static const unsigned ring_flags[] = {
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
		IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		IORING_SETUP_TASKRUN_FLAG,
	0,
};

static int ring_init(struct arena_zc *z, unsigned entries)
{
	struct io_uring_params p;
	unsigned i;
	int err = -EINVAL;

	for (i = 0; i < 3 && err == -EINVAL; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = ring_flags[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_CLAMP;
		p.cq_entries = entries * 4; /* a result, notifications */
		err = io_uring_queue_init_params(entries, &z->ring, &p);
	}
	return err;
}

static bool send_zc_supported(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok = p && io_uring_opcode_supported(p, IORING_OP_SEND_ZC);

	if (p)
		io_uring_free_probe(p);
	return ok;
}

/*
 * Fixed buffers over the block memory of every arena: pieces of whole
 * blocks (fixed-slot) or leaves (buddy: its blocks are aligned to their
 * power-of-two size, so only one larger than a piece spans two), or
 * whole chunks (bump, at most 1 GiB each: no allocation spans two).
 */
static unsigned buf_plan(struct arena_zc *z, struct iovec *iov)
{
	const struct arena_client *c = z->c;
	uint64_t piece, total, off;
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < c->narenas; i++) {
		const struct lib_arena *a = &c->arenas[i];

		piece = ZC_PIECE / a->block_size * a->block_size;
		total = (uint64_t)a->nblocks * a->block_size;
		if (a->kind == ARENA_PROTO_KIND_BUMP) /* chunks; nblocks: 8 B */
			total = (uint64_t)a->nwords * a->block_size;
		z->piece0[i] = n;
		z->piece_len[i] = piece;
		for (off = 0; off < total; off += piece, n++)
			if (iov && n < ZC_MAX_BUFS)
				iov[n] = (struct iovec){
					.iov_base = a->data + off,
					.iov_len = total - off < piece
							   ? total - off
							   : piece,
				};
	}
	return n;
}

static int buf_register(struct arena_zc *z)
{
	unsigned n = buf_plan(z, NULL);
	struct iovec *iov;
	int err;

	if (n == 0 || n > ZC_MAX_BUFS)
		return -E2BIG;
	iov = calloc(n, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	buf_plan(z, iov);
	err = io_uring_register_buffers(&z->ring, iov, n);
	free(iov);
	return err;
}

/* The best way this process and kernel allow, from want down. */
static int zc_setup(struct arena_zc *z, int want, unsigned entries)
{
	if (want == HOW_SYNC || ring_init(z, entries) < 0)
		return HOW_SYNC;
	z->ring_ok = true;
	if (want == HOW_COPY || !send_zc_supported(&z->ring))
		return HOW_COPY;
	z->zc_flags = IORING_SEND_ZC_REPORT_USAGE;
	if (want == HOW_ZC || buf_register(z) < 0)
		return HOW_ZC;
	return HOW_FIXED;
}

static const unsigned how_mode[] = {
	[HOW_FIXED] = ARENA_ZC_MODE_FIXED,
	[HOW_ZC] = ARENA_ZC_MODE_ZC,
	[HOW_COPY] = ARENA_ZC_MODE_COPY,
	[HOW_SYNC] = ARENA_ZC_MODE_COPY | ARENA_ZC_MODE_NORING,
};

int arena_zc_open(struct arena_client *c, unsigned entries,
		  struct arena_zc **out)
{
	struct arena_zc *z;
	int want = forced_how();
	uint32_t i;

	if (!c || !out || entries == 0 || entries > ARENA_ZC_MAX_ENTRIES ||
	    want < 0)
		return -EINVAL;
	z = calloc(1, sizeof(*z) + entries * sizeof(z->req[0]));
	if (!z)
		return -ENOMEM;
	z->c = c;
	z->owner = pthread_self();
	z->last_fd = -1;
	z->nreq = entries;
	list_init(&z->free);
	list_init(&z->queued);
	list_init(&z->sending);
	list_init(&z->done);
	for (i = 0; i < entries; i++)
		list_push(z, &z->free, i);
	z->how = (uint8_t)zc_setup(z, want, entries);
	z->mode = how_mode[z->how];
	*out = z;
	return 0;
}

unsigned arena_zc_mode(const struct arena_zc *z)
{
	return z ? z->mode : 0;
}

/* ---- send ---- */

/* SO_TYPE of fd, or -errno. */
static int sock_type(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	if (fd < 0)
		return -EBADF;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) ? -errno : type;
}

/* The fixed buffer holding all of r's range; false when none does. */
static bool buf_index_of(struct arena_zc *z, uint32_t arena, struct zc_req *r)
{
	const struct lib_arena *a = &z->c->arenas[arena];
	uint64_t off = (uint64_t)(r->buf - a->data);
	uint64_t k = off / z->piece_len[arena];

	if ((off + r->len - 1) / z->piece_len[arena] != k)
		return false;
	r->buf_index = (uint16_t)(z->piece0[arena] + k);
	return true;
}

/* Fill r for a send of h; the caller holds a reference on h. */
static int req_fill(struct arena_zc *z, struct zc_req *r, arena_handle_t h,
		    size_t offset, size_t len)
{
	struct arena_proto_handle d;
	const uint8_t *p = arena_ptr(z->c, h);
	size_t size = arena_size(z->c, h);

	if (!p)
		return -ESTALE;
	if (offset > size || len > size - offset)
		return -ERANGE;
	arena_proto_handle_unpack(h, &d);
	r->h = h;
	r->buf = p + offset;
	r->len = len;
	r->sent = 0;
	r->err = 0;
	r->notifs = 0;
	r->how = z->how;
	r->buf_index = 0;
	if (r->how == HOW_FIXED && !buf_index_of(z, d.arena, r))
		r->how = HOW_ZC; /* across two fixed buffers */
	r->flags = r->how == HOW_ZC ? ARENA_ZC_UNREG : 0;
	if (r->how >= HOW_COPY)
		r->flags = ARENA_ZC_FALLBACK | ARENA_ZC_COPIED;
	return 0;
}

/*
 * Whether fd is a socket costs a system call, so it is not checked while
 * a send is in flight on it (it cannot have been closed and reopened as
 * another socket then), nor when it was the last socket checked (one
 * closed since fails in its result) unless a batch needs its type: only
 * a type read now lets datagrams go several at a time.
 */
static int fd_check(struct arena_zc *z, int fd, struct zc_req *holder,
		    bool batch, bool *dgram)
{
	int type;

	*dgram = holder && holder->dgram;
	if (fd < 0)
		return -EBADF;
	if (holder || (fd == z->last_fd && !batch))
		return 0;
	type = sock_type(fd);
	if (type < 0)
		return type;
	z->last_fd = fd;
	*dgram = type == SOCK_DGRAM;
	return 0;
}

static int zc_send(struct arena_zc *z, int fd, arena_handle_t h, size_t offset,
		   size_t len, uint64_t tag, bool batch)
{
	struct zc_req *r, *holder;
	bool dgram;
	int err;

	if (z->ring_ok)
		zc_reap(z);
	holder = fd_holder(z, fd);
	err = fd_check(z, fd, holder, batch, &dgram);
	if (err)
		return err;
	if (z->free.head == ZC_NONE)
		return -EBUSY;
	err = arena_ref(z->c, h);
	if (err)
		return err;
	r = &z->req[z->free.head];
	err = req_fill(z, r, h, offset, len);
	if (err) {
		arena_unref(z->c, h);
		return err;
	}
	list_pop(z, &z->free);
	z->nlive++;
	r->tag = tag;
	r->fd = fd;
	r->dgram = dgram;
	if (r->how == HOW_SYNC) {
		req_sync(z, r);
	} else if (holder && !dgram) { /* a stream goes one send at a time */
		r->state = ZC_QUEUED;
		list_push(z, &z->queued, req_index(z, r));
	} else {
		req_start(z, r);
	}
	return 0;
}

static int zc_usable(const struct arena_zc *z)
{
	if (!z)
		return -EINVAL;
	return pthread_equal(z->owner, pthread_self()) ? 0 : -EPERM;
}

int arena_zc_send(struct arena_zc *z, int sockfd, arena_handle_t h,
		  size_t offset, size_t len, uint64_t tag)
{
	int err = zc_usable(z);

	if (err || len == 0)
		return err ? err : -EINVAL;
	err = zc_send(z, sockfd, h, offset, len, tag, false);
	if (z->ring_ok)
		zc_pump(z);
	return err;
}

int arena_zc_queue(struct arena_zc *z, int sockfd, arena_handle_t h,
		   size_t offset, size_t len, uint64_t tag)
{
	int err = zc_usable(z);

	if (err || len == 0)
		return err ? err : -EINVAL;
	return zc_send(z, sockfd, h, offset, len, tag, true);
}

int arena_zc_flush(struct arena_zc *z)
{
	int err = zc_usable(z);

	if (!err && z->ring_ok)
		zc_pump(z);
	return err;
}

/* ---- completion ---- */

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Reap until a result is ready (or, with all, until no send is left in
 * the kernel), nothing is outstanding, or timeout_ms (negative: no limit)
 * has passed.  Returns 0, or -errno of the wait.
 */
static int zc_wait(struct arena_zc *z, int timeout_ms, bool all)
{
	long long end = now_ms() + timeout_ms, left = timeout_ms;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	for (;;) {
		zc_pump(z);
		if (z->nlive == z->ndone || (!all && z->ndone))
			return 0;
		if (timeout_ms >= 0 && (left = end - now_ms()) <= 0)
			return 0;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = left % 1000 * 1000000;
		ret = io_uring_submit_and_wait_timeout(
			&z->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
		if (ret >= 0)
			z->nsqe = 0;
		else if (ret != -ETIME)
			return ret;
	}
}

static void result_of(struct arena_zc *z, struct arena_zc_result *res,
		      struct zc_req *r)
{
	res->tag = r->tag;
	res->flags = r->flags;
	res->reserved = 0;
	if (r->sent == 0 && r->err) {
		res->res = r->err;
		res->flags &= ~(uint32_t)ARENA_ZC_COPIED;
	} else {
		res->res = (int64_t)r->sent;
		if (r->sent < r->len)
			res->flags |= ARENA_ZC_SHORT;
	}
}

int arena_zc_complete(struct arena_zc *z, struct arena_zc_result *results,
		      unsigned max, int timeout_ms)
{
	unsigned n = 0;
	uint32_t i;
	int err = 0;

	if (!z || (!results && max))
		return -EINVAL;
	if (zc_usable(z))
		return -EPERM;
	if (max == 0)
		return 0;
	if (z->ring_ok)
		err = zc_wait(z, timeout_ms, false);
	while (n < max && (i = list_pop(z, &z->done)) != ZC_NONE) {
		result_of(z, &results[n++], &z->req[i]);
		z->req[i].state = ZC_FREE;
		z->ndone--;
		z->nlive--;
		list_push(z, &z->free, i);
	}
	return n ? (int)n : err;
}

/* ---- close ---- */

/*
 * A closed ring is torn down by a kernel work item that then runs a
 * task_work (TWA_SIGNAL) in every thread that submitted to it, some
 * milliseconds later: a blocking call with a timeout that it lands in,
 * such as arena_connect()'s recv() with SO_RCVTIMEO, fails with EINTR.
 * Wait for it here, in epoll_wait(), which returns EINTR for it and is
 * never restarted; bounded, since the teardown also waits for requests
 * still in the kernel.
 */
static void absorb_teardown(void)
{
	struct epoll_event ev;
	int ep = epoll_create1(EPOLL_CLOEXEC), i;

	for (i = 0; ep >= 0 && i < ZC_EXIT_MS / 2; i++)
		if (epoll_wait(ep, &ev, 1, 2) < 0 && errno == EINTR)
			break;
	if (ep >= 0)
		close(ep);
}

static void cancel_queued(struct arena_zc *z)
{
	uint32_t i;

	while ((i = list_pop(z, &z->queued)) != ZC_NONE) {
		z->req[i].err = -ECANCELED;
		req_done(z, &z->req[i]);
	}
}

static void cancel_sending(struct arena_zc *z)
{
	struct io_uring_sqe *sqe = zc_sqe(z);

	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, ZC_CANCEL_DATA);
	z->nsqe++;
}

void arena_zc_close(struct arena_zc *z)
{
	bool mine;

	if (!z)
		return;
	mine = pthread_equal(z->owner, pthread_self());
	if (z->ring_ok && mine)
		zc_reap(z);
	cancel_queued(z); /* never in the kernel: any thread may */
	if (z->ring_ok && mine) {
		zc_wait(z, ZC_CLOSE_MS, true);
		if (z->nlive > z->ndone) {
			cancel_sending(z);
			zc_wait(z, ZC_CLOSE_MS, true);
		}
	}
	if (z->ring_ok) {
		io_uring_queue_exit(&z->ring);
		if (mine && z->entered)
			absorb_teardown();
	}
	free(z);
}
