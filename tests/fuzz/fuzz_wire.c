// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the control-socket decoder (proto/wire.c).  The
 * daemon runs arena_proto_hdr_decode() and arena_proto_payload_check()
 * on whatever a peer sends before it trusts a byte, and the library runs
 * them on the daemon's replies, so both must take arbitrary bytes without
 * reading past them, and must agree with the rules wire.h states.
 *
 * The input is a message as received: the header, then the payload.  The
 * payload is copied to a buffer of exactly its length, so that ASan sees
 * any read past it, and is checked under every type (the unknown 0 and
 * TYPE_MAX + 1 included), not only the one its header names, so that each
 * checker meets every length.  Beyond "no crash", the header decoder is
 * compared with a plain restatement of its rules and with the encoder,
 * and every accepted payload is checked against its type's invariants.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header rules of wire.h, restated. */
static int hdr_expect(const uint8_t *data, size_t size,
		      struct arena_proto_hdr *h)
{
	if (size < sizeof(*h))
		return -EAGAIN;
	memcpy(h, data, sizeof(*h));
	if (h->magic != ARENA_PROTO_WIRE_MAGIC)
		return -EBADMSG;
	if (h->version != ARENA_PROTO_WIRE_VERSION)
		return -EPROTO;
	if (h->type == 0 || h->type > ARENA_MSG_TYPE_MAX)
		return -EBADMSG;
	return h->len > ARENA_PROTO_MAX_PAYLOAD ? -EMSGSIZE : 0;
}

static void hdr_check(const uint8_t *data, size_t size)
{
	struct arena_proto_hdr got, want, enc;
	int rc, exp;

	memset(&got, 0xa5, sizeof(got));
	rc = arena_proto_hdr_decode(data, size, &got);
	exp = hdr_expect(data, size, &want);
	FUZZ_CHECK(rc == exp);
	if (rc)
		return;
	FUZZ_CHECK(!memcmp(&got, &want, sizeof(got)));
	/* what decodes, encodes back to the same bytes */
	FUZZ_CHECK(!arena_proto_hdr_encode(&enc, got.type, got.len, got.seq));
	FUZZ_CHECK(!memcmp(&enc, data, sizeof(enc)));
}

static void stats_check(const uint8_t *p, uint32_t len)
{
	struct arena_proto_stats s;
	struct arena_proto_buddy_stats b;
	struct arena_proto_arena_stats a;
	uint32_t i;

	FUZZ_CHECK(len >= sizeof(s));
	memcpy(&s, p, sizeof(s));
	FUZZ_CHECK(s.narenas <= ARENA_PROTO_MAX_ARENAS);
	FUZZ_CHECK(s.nbuddy <= ARENA_PROTO_MAX_BUDDY && !s.reserved);
	FUZZ_CHECK(len == arena_proto_stats_len_b(s.narenas, s.nbuddy));
	for (i = 0; i < s.nbuddy; i++) {
		memcpy(&b, p + arena_proto_stats_len_b(s.narenas, i),
		       sizeof(b));
		FUZZ_CHECK(b.index < s.narenas);
		FUZZ_CHECK(b.max_order <= ARENA_BUDDY_MAX_ORDER);
		memcpy(&a, p + arena_proto_stats_len(b.index), sizeof(a));
		FUZZ_CHECK(a.kind == ARENA_PROTO_KIND_BUDDY);
	}
}

/* An accepted CHAN_OPEN names a channel and asks a sane capacity. */
static void chan_open_check(const uint8_t *p, uint32_t len)
{
	struct arena_proto_chan_open m;
	size_t l;

	FUZZ_CHECK(len == sizeof(m));
	memcpy(&m, p, sizeof(m));
	l = strnlen(m.name, sizeof(m.name));
	FUZZ_CHECK(l > 0 && l < sizeof(m.name) && !m.flags);
	FUZZ_CHECK(m.capacity > 0 && m.capacity <= ARENA_PROTO_CHAN_MAX_CAP);
}

/* An accepted CHAN_STATS is exactly as long as the records it counts. */
static void chan_stats_check(const uint8_t *p, uint32_t len)
{
	struct arena_proto_chan_stats s;

	FUZZ_CHECK(len >= sizeof(s));
	memcpy(&s, p, sizeof(s));
	FUZZ_CHECK(s.nchan <= ARENA_PROTO_MAX_CHAN_RECS && s.nchan <= s.total);
	FUZZ_CHECK(len == arena_proto_chan_stats_len(s.nchan));
}

/* An accepted METRICS has its records in place, of known kinds. */
static void metrics_check(const uint8_t *p, uint32_t len)
{
	struct arena_proto_metrics_hdr h;
	struct arena_proto_metrics m;
	uint32_t i;

	FUZZ_CHECK(len >= sizeof(h));
	memcpy(&h, p, sizeof(h));
	FUZZ_CHECK(h.narenas <= ARENA_PROTO_MAX_ARENAS && !h.reserved);
	FUZZ_CHECK(len == arena_proto_metrics_len(h.narenas));
	for (i = 0; i < h.narenas; i++) {
		memcpy(&m, p + arena_proto_metrics_len(i), sizeof(m));
		FUZZ_CHECK(m.index == i && !m.reserved);
		FUZZ_CHECK(m.kind >= ARENA_PROTO_KIND_FIXED &&
			   m.kind <= ARENA_PROTO_KIND_BUMP);
	}
}

/* An accepted AUDIT: exact length, lines within the findings, text sane. */
static void audit_check(const uint8_t *p, uint32_t len)
{
	struct arena_proto_audit s;
	struct arena_proto_audit_line l;
	uint64_t total = 0;
	uint32_t i, k;

	FUZZ_CHECK(len >= sizeof(s));
	memcpy(&s, p, sizeof(s));
	FUZZ_CHECK(s.nlines <= ARENA_PROTO_AUDIT_LINES && !s.reserved);
	FUZZ_CHECK(len == arena_proto_audit_len(s.nlines));
	for (i = 0; i < ARENA_PROTO_AUDIT_CATS; i++) {
		FUZZ_CHECK(i < ARENA_AUDIT_NCAT || !s.found[i]);
		FUZZ_CHECK(total + s.found[i] >= total);
		total += s.found[i];
	}
	FUZZ_CHECK(s.nlines <= total);
	for (i = 0; i < s.nlines; i++) {
		memcpy(&l, p + arena_proto_audit_len(i), sizeof(l));
		FUZZ_CHECK(l.cat < ARENA_AUDIT_NCAT && s.found[l.cat]);
		FUZZ_CHECK(memchr(l.text, 0, sizeof(l.text)) != NULL);
		for (k = 0; k < sizeof(l.text) && l.text[k]; k++)
			FUZZ_CHECK(l.text[k] >= 0x20 && l.text[k] < 0x7f);
	}
}

/* What an accepted payload of type t must look like. */
static void payload_accepted(uint16_t t, const uint8_t *p, uint32_t len)
{
	struct arena_proto_hello h;
	struct arena_proto_error e;

	switch (t) {
	case ARENA_MSG_HELLO:
		FUZZ_CHECK(len == sizeof(h));
		memcpy(&h, p, sizeof(h));
		FUZZ_CHECK(!h.flags && !h.reserved[0] && !h.reserved[1]);
		break;
	case ARENA_MSG_WELCOME:
		FUZZ_CHECK(len == sizeof(struct arena_proto_welcome));
		break;
	case ARENA_MSG_ERROR:
		FUZZ_CHECK(len == sizeof(e));
		memcpy(&e, p, sizeof(e));
		FUZZ_CHECK(e.err < 0 && e.err >= -4095);
		break;
	case ARENA_MSG_STATS:
		stats_check(p, len);
		break;
	case ARENA_MSG_STATS_REQ:
	case ARENA_MSG_PING:
	case ARENA_MSG_PONG:
	case ARENA_MSG_CHAN_STATS_REQ:
	case ARENA_MSG_AUDIT_REQ:
	case ARENA_MSG_METRICS_REQ:
		FUZZ_CHECK(len == 0);
		break;
	case ARENA_MSG_METRICS:
		metrics_check(p, len);
		break;
	case ARENA_MSG_CHAN_OPEN:
		chan_open_check(p, len);
		break;
	case ARENA_MSG_CHAN_OK:
		FUZZ_CHECK(len == sizeof(struct arena_proto_chan_ok));
		break;
	case ARENA_MSG_CHAN_CLOSE:
		FUZZ_CHECK(len == sizeof(struct arena_proto_chan_close));
		break;
	case ARENA_MSG_CHAN_STATS:
		chan_stats_check(p, len);
		break;
	case ARENA_MSG_AUDIT:
		audit_check(p, len);
		break;
	default:
		FUZZ_CHECK(!"an unknown type was accepted");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hl = sizeof(struct arena_proto_hdr);
	uint32_t len = size > hl ? (uint32_t)(size - hl) : 0;
	uint8_t *payload = malloc(len ? len : 1);
	uint16_t t;
	int rc;

	if (!payload)
		return 0;
	hdr_check(data, size);
	if (len)
		memcpy(payload, data + hl, len);
	for (t = 0; t <= ARENA_MSG_TYPE_MAX + 1; t++) {
		rc = arena_proto_payload_check(t, payload, len);
		FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
		if (!rc)
			payload_accepted(t, payload, len);
	}
	free(payload);
	return 0;
}
