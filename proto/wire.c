// SPDX-License-Identifier: MIT
/*
 * Encode/decode for the control-socket messages.  Kept free of I/O so the
 * same code is unit-tested, fuzzed and used by both peers: a message is
 * either exactly what its type says or it is rejected whole.
 */
#include <errno.h>
#include <string.h>

#include "wire.h"

int arena_proto_hdr_encode(struct arena_proto_hdr *h, uint16_t type,
			   uint32_t len, uint32_t seq)
{
	if (type == 0 || type > ARENA_MSG_TYPE_MAX)
		return -EINVAL;
	if (len > ARENA_PROTO_MAX_PAYLOAD)
		return -EINVAL;
	h->magic = ARENA_PROTO_WIRE_MAGIC;
	h->version = ARENA_PROTO_WIRE_VERSION;
	h->type = type;
	h->len = len;
	h->seq = seq;
	return 0;
}

int arena_proto_hdr_decode(const void *buf, size_t len,
			   struct arena_proto_hdr *out)
{
	struct arena_proto_hdr h;

	if (len < sizeof(h))
		return -EAGAIN;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != ARENA_PROTO_WIRE_MAGIC)
		return -EBADMSG;
	if (h.version != ARENA_PROTO_WIRE_VERSION)
		return -EPROTO;
	if (h.type == 0 || h.type > ARENA_MSG_TYPE_MAX)
		return -EBADMSG;
	if (h.len > ARENA_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	*out = h;
	return 0;
}

static int fixed_len(uint16_t type)
{
	switch (type) {
	case ARENA_MSG_HELLO:
		return sizeof(struct arena_proto_hello);
	case ARENA_MSG_WELCOME:
		return sizeof(struct arena_proto_welcome);
	case ARENA_MSG_ERROR:
		return sizeof(struct arena_proto_error);
	case ARENA_MSG_STATS_REQ:
	case ARENA_MSG_PING:
	case ARENA_MSG_PONG:
	case ARENA_MSG_CHAN_STATS_REQ:
	case ARENA_MSG_AUDIT_REQ:
	case ARENA_MSG_METRICS_REQ:
		return 0;
	case ARENA_MSG_CHAN_OPEN:
		return sizeof(struct arena_proto_chan_open);
	case ARENA_MSG_CHAN_OK:
		return sizeof(struct arena_proto_chan_ok);
	case ARENA_MSG_CHAN_CLOSE:
		return sizeof(struct arena_proto_chan_close);
	default:
		return -1; /* variable (STATS) or unknown */
	}
}

static int check_arena_stats(const char *p)
{
	struct arena_proto_arena_stats a;
	uint64_t max;

	memcpy(&a, p, sizeof(a));
	if (a.reserved)
		return -EBADMSG;
	if (a.kind != ARENA_PROTO_KIND_BUMP)
		return a.chunks_free || a.bytes ? -EBADMSG : 0;
	if (a.in_use > a.capacity || a.cached > a.capacity - a.in_use ||
	    a.chunks_free != a.capacity - a.in_use - a.cached)
		return -EBADMSG; /* every chunk in exactly one state */
	if (__builtin_mul_overflow(a.capacity, a.block_size, &max))
		return -EBADMSG;
	return a.bytes > max ? -EBADMSG : 0;
}

/* A buddy record of a message whose arena records start at arenas. */
static int check_buddy_stats(const char *p, const char *arenas, uint32_t n)
{
	struct arena_proto_buddy_stats b;
	struct arena_proto_arena_stats a;
	uint32_t o;

	memcpy(&b, p, sizeof(b));
	if (b.reserved || b.index >= n || b.max_order > ARENA_BUDDY_MAX_ORDER)
		return -EBADMSG;
	for (o = b.max_order + 1; o < ARENA_BUDDY_ORDERS; o++)
		if (b.free_blocks[o])
			return -EBADMSG;
	memcpy(&a, arenas + b.index * sizeof(a), sizeof(a));
	return a.kind == ARENA_PROTO_KIND_BUDDY ? 0 : -EBADMSG;
}

static int check_stats(const void *payload, uint32_t len)
{
	const char *p = payload;
	struct arena_proto_stats s;
	uint32_t i;

	if (len < sizeof(s))
		return -EBADMSG;
	memcpy(&s, payload, sizeof(s));
	if (s.narenas > ARENA_PROTO_MAX_ARENAS ||
	    s.nbuddy > ARENA_PROTO_MAX_BUDDY || s.reserved)
		return -EBADMSG;
	if (len != arena_proto_stats_len_b(s.narenas, s.nbuddy))
		return -EBADMSG;
	for (i = 0; i < s.narenas; i++)
		if (check_arena_stats(p + arena_proto_stats_len(i)))
			return -EBADMSG;
	for (i = 0; i < s.nbuddy; i++)
		if (check_buddy_stats(p + arena_proto_stats_len_b(s.narenas, i),
				      p + sizeof(s), s.narenas))
			return -EBADMSG;
	return 0;
}

static int check_metrics(const void *payload, uint32_t len)
{
	const char *p = payload;
	struct arena_proto_metrics_hdr h;
	struct arena_proto_metrics m;
	uint32_t i;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, payload, sizeof(h));
	if (h.narenas > ARENA_PROTO_MAX_ARENAS || h.reserved ||
	    len != arena_proto_metrics_len(h.narenas))
		return -EBADMSG;
	for (i = 0; i < h.narenas; i++) {
		memcpy(&m, p + arena_proto_metrics_len(i), sizeof(m));
		if (m.index != i || m.reserved ||
		    m.kind < ARENA_PROTO_KIND_FIXED ||
		    m.kind > ARENA_PROTO_KIND_BUMP)
			return -EBADMSG;
	}
	return 0;
}

static int check_hello(const void *payload)
{
	struct arena_proto_hello h;

	memcpy(&h, payload, sizeof(h));
	if (h.flags || h.reserved[0] || h.reserved[1])
		return -EBADMSG;
	return 0;
}

static int check_welcome(const void *payload)
{
	struct arena_proto_welcome w;

	memcpy(&w, payload, sizeof(w));
	if (w.reserved[0] || w.reserved[1])
		return -EBADMSG;
	return 0;
}

static int check_error(const void *payload)
{
	struct arena_proto_error e;

	memcpy(&e, payload, sizeof(e));
	if (e.err >= 0 || e.err < -4095 || e.reserved)
		return -EBADMSG;
	return 0;
}

/* A name of 1..47 bytes, NUL terminated, zero-padded. */
static int check_name(const char *n)
{
	size_t l = strnlen(n, ARENA_PROTO_CHAN_NAME), i;

	if (l == 0 || l == ARENA_PROTO_CHAN_NAME)
		return -EBADMSG;
	for (i = l; i < ARENA_PROTO_CHAN_NAME; i++)
		if (n[i])
			return -EBADMSG;
	return 0;
}

static int check_chan_open(const void *payload)
{
	struct arena_proto_chan_open m;

	memcpy(&m, payload, sizeof(m));
	if (m.flags || m.capacity == 0 || m.capacity > ARENA_PROTO_CHAN_MAX_CAP)
		return -EBADMSG;
	return check_name(m.name);
}

static int check_chan_stats(const void *payload, uint32_t len)
{
	const char *p = payload;
	struct arena_proto_chan_stats s;
	struct arena_proto_chan_rec r;
	uint32_t i;

	if (len < sizeof(s))
		return -EBADMSG;
	memcpy(&s, payload, sizeof(s));
	if (s.nchan > ARENA_PROTO_MAX_CHAN_RECS || s.nchan > s.total ||
	    len != arena_proto_chan_stats_len(s.nchan))
		return -EBADMSG;
	for (i = 0; i < s.nchan; i++) {
		memcpy(&r, p + arena_proto_chan_stats_len(i), sizeof(r));
		if (check_name(r.name) ||
		    r.capacity > ARENA_PROTO_CHAN_MAX_CAP ||
		    r.depth > r.capacity || r.receives > r.sends)
			return -EBADMSG;
	}
	return 0;
}

/* Printable ASCII up to a NUL inside the field, zeros after it. */
static int check_text(const char *t, size_t n)
{
	size_t l = strnlen(t, n), i;

	if (l == n)
		return -EBADMSG;
	for (i = 0; i < l; i++)
		if (t[i] < 0x20 || t[i] > 0x7e)
			return -EBADMSG;
	for (i = l; i < n; i++)
		if (t[i])
			return -EBADMSG;
	return 0;
}

static int check_audit(const void *payload, uint32_t len)
{
	const char *p = payload;
	struct arena_proto_audit s;
	struct arena_proto_audit_line l;
	uint64_t total = 0;
	uint32_t i;

	if (len < sizeof(s))
		return -EBADMSG;
	memcpy(&s, payload, sizeof(s));
	if (s.reserved || s.nlines > ARENA_PROTO_AUDIT_LINES ||
	    len != arena_proto_audit_len(s.nlines))
		return -EBADMSG;
	for (i = 0; i < ARENA_PROTO_AUDIT_CATS; i++) {
		if (i >= ARENA_AUDIT_NCAT && s.found[i])
			return -EBADMSG;
		if (__builtin_add_overflow(total, s.found[i], &total))
			return -EBADMSG;
	}
	if (s.nlines > total)
		return -EBADMSG;
	for (i = 0; i < s.nlines; i++) {
		memcpy(&l, p + arena_proto_audit_len(i), sizeof(l));
		if (l.cat >= ARENA_AUDIT_NCAT || l.reserved ||
		    !s.found[l.cat] || check_text(l.text, sizeof(l.text)))
			return -EBADMSG;
	}
	return 0;
}

int arena_proto_payload_check(uint16_t type, const void *payload, uint32_t len)
{
	int want;
	uint64_t rsv;

	if (type == ARENA_MSG_STATS)
		return check_stats(payload, len);
	if (type == ARENA_MSG_CHAN_STATS)
		return check_chan_stats(payload, len);
	if (type == ARENA_MSG_AUDIT)
		return check_audit(payload, len);
	if (type == ARENA_MSG_METRICS)
		return check_metrics(payload, len);
	want = fixed_len(type);
	if (want < 0 || len != (uint32_t)want)
		return -EBADMSG;
	if (type == ARENA_MSG_HELLO)
		return check_hello(payload);
	if (type == ARENA_MSG_WELCOME)
		return check_welcome(payload);
	if (type == ARENA_MSG_ERROR)
		return check_error(payload);
	if (type == ARENA_MSG_CHAN_OPEN)
		return check_chan_open(payload);
	if (type == ARENA_MSG_CHAN_OK) {
		memcpy(&rsv, (const char *)payload + 8, sizeof(rsv));
		return rsv ? -EBADMSG : 0;
	}
	if (type == ARENA_MSG_CHAN_CLOSE) {
		struct arena_proto_chan_close m;

		memcpy(&m, payload, sizeof(m));
		return m.reserved ? -EBADMSG : 0;
	}
	return 0;
}
