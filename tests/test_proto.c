// SPDX-License-Identifier: MIT
/*
 * proto/ is the ABI between arenad and every libarena ever built against
 * it, so these tests pin it: exact sizes and offsets, bit positions of the
 * handle, state word and ledger entry, wire constants, and every way a
 * header or payload can be rejected.  A change that moves a byte must
 * fail here and come with a version bump.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "buddy.h"
#include "handle.h"
#include "journal.h"
#include "layout.h"
#include "ledger.h"
#include "sockpath.h"
#include "wire.h"

#define PIN(expr, val) assert_int_equal((uint64_t)(expr), (uint64_t)(val))
#define OFF(type, field, val) PIN(offsetof(struct type, field), val)

/* ---- wire header ---- */

static void hdr_round_trip(void **state)
{
	struct arena_proto_hdr h, out;
	uint16_t type;

	for (type = 1; type <= ARENA_MSG_TYPE_MAX; type++) {
		assert_int_equal(arena_proto_hdr_encode(&h, type,
							ARENA_PROTO_MAX_PAYLOAD,
							0xdeadbeef),
				 0);
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(arena_proto_hdr_decode(&h, sizeof(h), &out),
				 0);
		assert_memory_equal(&h, &out, sizeof(h));
		PIN(out.magic, ARENA_PROTO_WIRE_MAGIC);
		PIN(out.version, ARENA_PROTO_WIRE_VERSION);
		PIN(out.type, type);
		PIN(out.len, ARENA_PROTO_MAX_PAYLOAD);
		PIN(out.seq, 0xdeadbeef);
	}
	assert_int_equal(arena_proto_hdr_encode(&h, ARENA_MSG_PING, 0, 0), 0);
	assert_int_equal(arena_proto_hdr_decode(&h, sizeof(h) + 100, &out), 0);
	PIN(out.len, 0);
}

static void hdr_encode_rejects(void **state)
{
	struct arena_proto_hdr h;

	assert_int_equal(arena_proto_hdr_encode(&h, 0, 0, 0), -EINVAL);
	assert_int_equal(
		arena_proto_hdr_encode(&h, ARENA_MSG_TYPE_MAX + 1, 0, 0),
		-EINVAL);
	assert_int_equal(arena_proto_hdr_encode(&h, ARENA_MSG_HELLO,
						ARENA_PROTO_MAX_PAYLOAD + 1, 0),
			 -EINVAL);
}

/* Decode h as given; out must stay untouched on failure. */
static int decode(const struct arena_proto_hdr *h, size_t len)
{
	struct arena_proto_hdr out, before;
	int ret;

	memset(&out, 0x5a, sizeof(out));
	before = out;
	ret = arena_proto_hdr_decode(h, len, &out);
	if (ret)
		assert_memory_equal(&out, &before, sizeof(out));
	return ret;
}

static void hdr_good(struct arena_proto_hdr *h)
{
	assert_int_equal(
		arena_proto_hdr_encode(h, ARENA_MSG_HELLO,
				       sizeof(struct arena_proto_hello), 7),
		0);
}

static void hdr_decode_short(void **state)
{
	struct arena_proto_hdr h;
	size_t n;

	hdr_good(&h);
	for (n = 0; n < sizeof(h); n++)
		assert_int_equal(decode(&h, n), -EAGAIN);
	assert_int_equal(decode(&h, sizeof(h)), 0);
}

static void hdr_decode_bad_magic(void **state)
{
	struct arena_proto_hdr h;

	hdr_good(&h);
	h.magic ^= 1;
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
	h.magic = 0;
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
	h.version = ARENA_PROTO_WIRE_VERSION + 1; /* magic is checked first */
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
}

static void hdr_decode_bad_version(void **state)
{
	struct arena_proto_hdr h;

	hdr_good(&h);
	h.version = ARENA_PROTO_WIRE_VERSION + 1;
	assert_int_equal(decode(&h, sizeof(h)), -EPROTO);
	h.version = 0;
	assert_int_equal(decode(&h, sizeof(h)), -EPROTO);
	h.version = 0xffff;
	assert_int_equal(decode(&h, sizeof(h)), -EPROTO);
}

static void hdr_decode_bad_type(void **state)
{
	struct arena_proto_hdr h;

	hdr_good(&h);
	h.type = 0;
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
	h.type = ARENA_MSG_TYPE_MAX + 1;
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
	h.type = 0xffff;
	assert_int_equal(decode(&h, sizeof(h)), -EBADMSG);
}

static void hdr_decode_bad_len(void **state)
{
	struct arena_proto_hdr h;

	hdr_good(&h);
	h.len = ARENA_PROTO_MAX_PAYLOAD;
	assert_int_equal(decode(&h, sizeof(h)), 0);
	h.len = ARENA_PROTO_MAX_PAYLOAD + 1;
	assert_int_equal(decode(&h, sizeof(h)), -EMSGSIZE);
	h.len = UINT32_MAX;
	assert_int_equal(decode(&h, sizeof(h)), -EMSGSIZE);
}

/* ---- payloads ---- */

static int check(uint16_t type, const void *p, uint32_t len)
{
	return arena_proto_payload_check(type, p, len);
}

/* A fixed-size payload is accepted at its size only. */
static void check_lengths(uint16_t type, const void *p, uint32_t size)
{
	uint32_t n;

	assert_int_equal(check(type, p, size), 0);
	for (n = 0; n < size; n++)
		assert_int_equal(check(type, p, n), -EBADMSG);
	assert_int_equal(check(type, p, size + 1), -EBADMSG);
	assert_int_equal(check(type, p, size + 8), -EBADMSG);
}

static void payload_hello(void **state)
{
	char buf[64] = { 0 };
	struct arena_proto_hello h = {
		.layout_version = ARENA_PROTO_LAYOUT_VERSION,
	};

	memcpy(buf, &h, sizeof(h));
	check_lengths(ARENA_MSG_HELLO, buf, sizeof(h));
	h.flags = 1;
	assert_int_equal(check(ARENA_MSG_HELLO, &h, sizeof(h)), -EBADMSG);
	h.flags = 0;
	h.reserved[0] = 1;
	assert_int_equal(check(ARENA_MSG_HELLO, &h, sizeof(h)), -EBADMSG);
	h.reserved[0] = 0;
	h.reserved[1] = 1ULL << 63;
	assert_int_equal(check(ARENA_MSG_HELLO, &h, sizeof(h)), -EBADMSG);
}

static void payload_welcome(void **state)
{
	char buf[64] = { 0 };
	struct arena_proto_welcome w = {
		.client_id = 1,
		.region_size = 1 << 20,
		.instance = 42,
	};

	memcpy(buf, &w, sizeof(w));
	check_lengths(ARENA_MSG_WELCOME, buf, sizeof(w));
	w.reserved[0] = 1;
	assert_int_equal(check(ARENA_MSG_WELCOME, &w, sizeof(w)), -EBADMSG);
	w.reserved[0] = 0;
	w.reserved[1] = 1;
	assert_int_equal(check(ARENA_MSG_WELCOME, &w, sizeof(w)), -EBADMSG);
}

static void payload_error(void **state)
{
	char buf[64] = { 0 };
	struct arena_proto_error e = { .err = -EACCES };

	memcpy(buf, &e, sizeof(e));
	check_lengths(ARENA_MSG_ERROR, buf, sizeof(e));
	e.err = -1;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), 0);
	e.err = -4095;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), 0);
	e.err = -4096;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), -EBADMSG);
	e.err = INT32_MIN;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), -EBADMSG);
	e.err = 0;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), -EBADMSG);
	e.err = EPROTO;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), -EBADMSG);
	e.err = -EPROTO;
	e.reserved = 1;
	assert_int_equal(check(ARENA_MSG_ERROR, &e, sizeof(e)), -EBADMSG);
}

static void payload_empty(void **state)
{
	static const uint16_t types[] = { ARENA_MSG_STATS_REQ, ARENA_MSG_PING,
					  ARENA_MSG_PONG,
					  ARENA_MSG_METRICS_REQ };
	char buf[16] = { 0 };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		assert_int_equal(check(types[i], NULL, 0), 0);
		check_lengths(types[i], buf, 0);
	}
}

static void payload_unknown_type(void **state)
{
	char buf[64] = { 0 };

	assert_int_equal(check(0, buf, 0), -EBADMSG);
	assert_int_equal(check(0, buf, 8), -EBADMSG);
	assert_int_equal(check(ARENA_MSG_TYPE_MAX + 1, buf, 0), -EBADMSG);
	assert_int_equal(check(0xffff, buf, 24), -EBADMSG);
}

/* METRICS: exact length, records in place, known kinds, reserved 0. */
static void payload_metrics(void **state)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_metrics_hdr h = { .narenas = 2 };
	struct arena_proto_metrics m[2] = {
		{ .index = 0,
		  .kind = ARENA_PROTO_KIND_FIXED,
		  .live_blocks = 3 },
		{ .index = 1, .kind = ARENA_PROTO_KIND_BUMP },
	};
	uint32_t len = arena_proto_metrics_len(2);

	PIN(sizeof(struct arena_proto_metrics), 112);
	PIN(sizeof(struct arena_proto_metrics_hdr), 8);
	OFF(arena_proto_metrics, live_blocks, 8);
	OFF(arena_proto_metrics, largest_free, 96);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), m, sizeof(m));
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len), 0);
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len - 1), -EBADMSG);
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len + 112), -EBADMSG);
	assert_int_equal(check(ARENA_MSG_METRICS, buf, 4), -EBADMSG);
	buf[sizeof(h) + 112] = 0; /* second record's index 0: out of place */
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len), -EBADMSG);
	buf[sizeof(h) + 112] = 1;
	buf[sizeof(h) + 4] = 9; /* first record's kind */
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len), -EBADMSG);
	buf[sizeof(h) + 4] = ARENA_PROTO_KIND_FIXED;
	buf[sizeof(h) + 104] = 1; /* reserved */
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len), -EBADMSG);
	buf[sizeof(h) + 104] = 0;
	h.narenas = ARENA_PROTO_MAX_ARENAS + 1;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(check(ARENA_MSG_METRICS, buf, len), -EBADMSG);
	h.narenas = 0;
	h.reserved = 1;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(check(ARENA_MSG_METRICS, buf, 8), -EBADMSG);
}

#define STATS_BUF                                                              \
	(sizeof(struct arena_proto_stats) +                                    \
	 (ARENA_PROTO_MAX_ARENAS + 2) *                                        \
		 sizeof(struct arena_proto_arena_stats))

/* Fill buf (STATS_BUF bytes) with a STATS payload announcing n arenas. */
static void stats_make(char *buf, uint32_t n)
{
	struct arena_proto_stats s = { .narenas = n, .nclients = 3 };
	struct arena_proto_arena_stats a = { .kind = ARENA_PROTO_KIND_FIXED,
					     .block_size = 64,
					     .capacity = 100 };
	uint32_t i;

	memset(buf, 0, STATS_BUF);
	memcpy(buf, &s, sizeof(s));
	for (i = 0; i < n && i < ARENA_PROTO_MAX_ARENAS + 2; i++) {
		a.index = i;
		memcpy(buf + arena_proto_stats_len(i), &a, sizeof(a));
	}
}

static void payload_stats(void **state)
{
	char buf[STATS_BUF];
	uint32_t n, len;

	for (n = 0; n <= ARENA_PROTO_MAX_ARENAS; n++) {
		stats_make(buf, n);
		len = arena_proto_stats_len(n);
		assert_int_equal(check(ARENA_MSG_STATS, buf, len), 0);
		assert_int_equal(check(ARENA_MSG_STATS, buf, len - 1),
				 -EBADMSG);
		assert_int_equal(check(ARENA_MSG_STATS, buf, len + 1),
				 -EBADMSG);
	}
	PIN(arena_proto_stats_len(0), 16);
	PIN(arena_proto_stats_len(1), 112);
	PIN(arena_proto_stats_len(ARENA_PROTO_MAX_ARENAS), 6160);
}

static void payload_stats_short(void **state)
{
	char buf[STATS_BUF];
	uint32_t n;

	stats_make(buf, 0);
	for (n = 0; n < sizeof(struct arena_proto_stats); n++)
		assert_int_equal(check(ARENA_MSG_STATS, buf, n), -EBADMSG);
}

static void payload_stats_count_mismatch(void **state)
{
	char buf[STATS_BUF];

	stats_make(buf, 2);
	assert_int_equal(check(ARENA_MSG_STATS, buf, arena_proto_stats_len(1)),
			 -EBADMSG);
	assert_int_equal(check(ARENA_MSG_STATS, buf, arena_proto_stats_len(3)),
			 -EBADMSG);
	assert_int_equal(check(ARENA_MSG_STATS, buf, arena_proto_stats_len(0)),
			 -EBADMSG);
}

static void payload_stats_too_many(void **state)
{
	uint32_t n = ARENA_PROTO_MAX_ARENAS + 1;
	char buf[STATS_BUF];

	assert_true(arena_proto_stats_len(n) <= STATS_BUF);
	stats_make(buf, n);
	assert_int_equal(check(ARENA_MSG_STATS, buf, arena_proto_stats_len(n)),
			 -EBADMSG);
	stats_make(buf, UINT32_MAX);
	assert_int_equal(check(ARENA_MSG_STATS, buf, arena_proto_stats_len(1)),
			 -EBADMSG);
}

static void payload_stats_reserved(void **state)
{
	struct arena_proto_stats s = { .narenas = 1 };
	struct arena_proto_arena_stats a = { 0 };
	uint32_t len = arena_proto_stats_len(1);
	char buf[STATS_BUF];

	stats_make(buf, 1);
	s.reserved = 1;
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	s.reserved = 0;
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), 0);
	a.reserved = 1;
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	a.reserved = 0;
	a.bytes = 1; /* bump fields on a fixed arena */
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
}

/* A bump record: its chunks must add up, its bytes fit the chunks. */
static void payload_stats_bump(void **state)
{
	struct arena_proto_stats s = { .narenas = 1 };
	struct arena_proto_arena_stats a = { .kind = ARENA_PROTO_KIND_BUMP,
					     .block_size = 4096,
					     .capacity = 10,
					     .in_use = 2,
					     .cached = 3,
					     .chunks_free = 5,
					     .bytes = 4096 };
	uint32_t len = arena_proto_stats_len(1);
	char buf[STATS_BUF];

	stats_make(buf, 1);
	memcpy(buf, &s, sizeof(s));
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), 0);
	a.chunks_free = 4;
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	a.chunks_free = 5;
	a.in_use = 11;
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	a.in_use = 2;
	a.bytes = 10 * 4096 + 1;
	memcpy(buf + sizeof(s), &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
}

/*
 * A STATS payload of n arenas whose last is a buddy arena, with its
 * buddy record (max_order 10); buf holds arena_proto_stats_len_b(n, 1).
 */
static uint32_t stats_buddy_make(char *buf, uint32_t n)
{
	struct arena_proto_stats s = { .narenas = n, .nbuddy = 1 };
	struct arena_proto_arena_stats a = { .kind = ARENA_PROTO_KIND_FIXED };
	struct arena_proto_buddy_stats b = { .index = n - 1,
					     .max_order = 10,
					     .min_block = 4096 };
	uint32_t i;

	memcpy(buf, &s, sizeof(s));
	for (i = 0; i < n; i++) {
		a.index = i;
		a.kind = i == n - 1 ? ARENA_PROTO_KIND_BUDDY
				    : ARENA_PROTO_KIND_FIXED;
		memcpy(buf + arena_proto_stats_len(i), &a, sizeof(a));
	}
	b.free_blocks[10] = 1;
	memcpy(buf + arena_proto_stats_len(n), &b, sizeof(b));
	return arena_proto_stats_len_b(n, 1);
}

/* Patch the buddy record of a stats_buddy_make() payload. */
static void buddy_patch(char *buf, uint32_t n, size_t off, uint64_t v,
			size_t width)
{
	memcpy(buf + arena_proto_stats_len(n) + off, &v, width);
}

#define BOFF(f) offsetof(struct arena_proto_buddy_stats, f)

/* AUDIT: lines within the findings, known categories, sane text. */
static void payload_audit(void **state)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_audit a = { .checked = 10, .nlines = 1 };
	struct arena_proto_audit_line l = { .cat = ARENA_AUDIT_LEAK };
	uint32_t len = arena_proto_audit_len(1);

	a.found[ARENA_AUDIT_LEAK] = 2;
	strcpy(l.text, "fixed arena 0 slot 1: a leak");
	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), &l, sizeof(l));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), 0);
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len - 1), -EBADMSG);
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len + 128), -EBADMSG);
	buf[sizeof(a) + 8 + 3] = '\n'; /* a control character */
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), -EBADMSG);
	l.cat = ARENA_AUDIT_STATE; /* a line of a category with no count */
	memcpy(buf + sizeof(a), &l, sizeof(l));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), -EBADMSG);
	l.cat = ARENA_AUDIT_NCAT;
	memcpy(buf + sizeof(a), &l, sizeof(l));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), -EBADMSG);
	l.cat = ARENA_AUDIT_LEAK;
	memset(l.text, 'x', sizeof(l.text)); /* no NUL */
	memcpy(buf + sizeof(a), &l, sizeof(l));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), -EBADMSG);
	a.found[ARENA_AUDIT_LEAK] = 0; /* more lines than findings */
	memcpy(buf, &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, len), -EBADMSG);
	a.nlines = 0;
	a.found[ARENA_PROTO_AUDIT_CATS - 1] = 1; /* an unknown category */
	memcpy(buf, &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, sizeof(a)), -EBADMSG);
	a.found[ARENA_PROTO_AUDIT_CATS - 1] = 0;
	memcpy(buf, &a, sizeof(a));
	assert_int_equal(check(ARENA_MSG_AUDIT, buf, sizeof(a)), 0);
	assert_int_equal(check(ARENA_MSG_AUDIT_REQ, buf, 0), 0);
	assert_int_equal(check(ARENA_MSG_AUDIT_REQ, buf, 1), -EBADMSG);
}

static void payload_stats_buddy(void **state)
{
	static char buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_stats s;
	uint32_t len, n;

	for (n = 1; n <= ARENA_PROTO_MAX_ARENAS; n += 21) {
		len = stats_buddy_make(buf, n);
		assert_int_equal(len, arena_proto_stats_len(n) + 320);
		assert_int_equal(check(ARENA_MSG_STATS, buf, len), 0);
		assert_int_equal(check(ARENA_MSG_STATS, buf, len - 1),
				 -EBADMSG);
		assert_int_equal(
			check(ARENA_MSG_STATS, buf, arena_proto_stats_len(n)),
			-EBADMSG);
	}
	n = 3;
	/* the record must name a buddy arena of the message */
	len = stats_buddy_make(buf, n);
	buddy_patch(buf, n, BOFF(index), 0, 4);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	buddy_patch(buf, n, BOFF(index), n, 4);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	buddy_patch(buf, n, BOFF(index), UINT32_MAX, 4);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	/* orders past the largest are empty; the largest is at most 31 */
	len = stats_buddy_make(buf, n);
	buddy_patch(buf, n, BOFF(free_blocks) + 11 * 8, 1, 8);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	len = stats_buddy_make(buf, n);
	buddy_patch(buf, n, BOFF(max_order), 32, 4);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	buddy_patch(buf, n, BOFF(max_order), 31, 4);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), 0);
	/* reserved fields */
	buddy_patch(buf, n, BOFF(reserved), 1, 8);
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	len = stats_buddy_make(buf, n);
	memcpy(&s, buf, sizeof(s));
	s.reserved = 1;
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	/* too many records, or more announced than sent */
	s.reserved = 0;
	s.nbuddy = ARENA_PROTO_MAX_BUDDY + 1;
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(check(ARENA_MSG_STATS, buf,
			       arena_proto_stats_len_b(n, s.nbuddy)),
			 -EBADMSG);
	s.nbuddy = 2;
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(check(ARENA_MSG_STATS, buf, len), -EBADMSG);
	PIN(ARENA_PROTO_MAX_BUDDY, 4);
	PIN(arena_proto_stats_len_b(ARENA_PROTO_MAX_ARENAS,
				    ARENA_PROTO_MAX_BUDDY),
	    6160 + 4 * 320);
}

/* ---- layout pinning ---- */

static void layout_wire(void **state)
{
	PIN(sizeof(struct arena_proto_hdr), 16);
	OFF(arena_proto_hdr, magic, 0);
	OFF(arena_proto_hdr, version, 4);
	OFF(arena_proto_hdr, type, 6);
	OFF(arena_proto_hdr, len, 8);
	OFF(arena_proto_hdr, seq, 12);

	PIN(sizeof(struct arena_proto_hello), 24);
	OFF(arena_proto_hello, flags, 0);
	OFF(arena_proto_hello, layout_version, 4);
	OFF(arena_proto_hello, reserved, 8);

	PIN(sizeof(struct arena_proto_welcome), 40);
	OFF(arena_proto_welcome, client_id, 0);
	OFF(arena_proto_welcome, region_id, 4);
	OFF(arena_proto_welcome, region_size, 8);
	OFF(arena_proto_welcome, instance, 16);
	OFF(arena_proto_welcome, reserved, 24);

	PIN(sizeof(struct arena_proto_error), 8);
	OFF(arena_proto_error, err, 0);
	OFF(arena_proto_error, reserved, 4);

	PIN(sizeof(struct arena_proto_stats), 16);
	OFF(arena_proto_stats, narenas, 0);
	OFF(arena_proto_stats, nclients, 4);
	OFF(arena_proto_stats, nbuddy, 8);
	OFF(arena_proto_stats, reserved, 12);
}

static void layout_arena_stats(void **state)
{
	PIN(sizeof(struct arena_proto_arena_stats), 96);
	OFF(arena_proto_arena_stats, kind, 0);
	OFF(arena_proto_arena_stats, index, 4);
	OFF(arena_proto_arena_stats, block_size, 8);
	OFF(arena_proto_arena_stats, capacity, 16);
	OFF(arena_proto_arena_stats, in_use, 24);
	OFF(arena_proto_arena_stats, cached, 32);
	OFF(arena_proto_arena_stats, allocs, 40);
	OFF(arena_proto_arena_stats, frees, 48);
	OFF(arena_proto_arena_stats, fail_full, 56);
	OFF(arena_proto_arena_stats, fail_big, 64);
	OFF(arena_proto_arena_stats, chunks_free, 72);
	OFF(arena_proto_arena_stats, bytes, 80);
	OFF(arena_proto_arena_stats, reserved, 88);
}

static void layout_buddy_stats(void **state)
{
	PIN(sizeof(struct arena_proto_buddy_stats), 320);
	OFF(arena_proto_buddy_stats, index, 0);
	OFF(arena_proto_buddy_stats, max_order, 4);
	OFF(arena_proto_buddy_stats, min_block, 8);
	OFF(arena_proto_buddy_stats, free_bytes, 16);
	OFF(arena_proto_buddy_stats, alloc_bytes, 24);
	OFF(arena_proto_buddy_stats, largest_free, 32);
	OFF(arena_proto_buddy_stats, splits, 40);
	OFF(arena_proto_buddy_stats, coalesces, 48);
	OFF(arena_proto_buddy_stats, reserved, 56);
	OFF(arena_proto_buddy_stats, free_blocks, 64);
}

/* The buddy tree's node bits and geometry are ABI too. */
static void layout_buddy_tree(void **state)
{
	struct arena_buddy_geom g = { .max_order = 0 };

	PIN(ARENA_BN_OCC_L, 0x01);
	PIN(ARENA_BN_OCC_R, 0x02);
	PIN(ARENA_BN_COAL_L, 0x04);
	PIN(ARENA_BN_COAL_R, 0x08);
	PIN(ARENA_BN_OCC, 0x10);
	PIN(ARENA_BN_BUSY, 0x13);
	PIN(ARENA_BUDDY_MAX_ORDER, 31);
	PIN(ARENA_BUDDY_ORDERS, 32);
	PIN(arena_buddy_tree_len(&g), 2);
	g.max_order = 31;
	PIN(arena_buddy_tree_len(&g), 1ULL << 32);
}

static void layout_arena(void **state)
{
	PIN(sizeof(struct arena_proto_arena), 128);
	OFF(arena_proto_arena, kind, 0);
	OFF(arena_proto_arena, flags, 4);
	OFF(arena_proto_arena, block_size, 8);
	OFF(arena_proto_arena, nblocks, 16);
	OFF(arena_proto_arena, data_off, 24);
	OFF(arena_proto_arena, data_len, 32);
	OFF(arena_proto_arena, state_off, 40);
	OFF(arena_proto_arena, bitmap_off, 48);
	OFF(arena_proto_arena, nwords, 56);
	OFF(arena_proto_arena, tree_off, 64);
	OFF(arena_proto_arena, tree_len, 72);
	OFF(arena_proto_arena, order_off, 80);
	OFF(arena_proto_arena, max_order, 88);
	OFF(arena_proto_arena, reserved32, 92);
	OFF(arena_proto_arena, bump_off, 96);
	OFF(arena_proto_arena, nchunks, 104);
	OFF(arena_proto_arena, reserved, 112);

	PIN(sizeof(struct arena_proto_bitmap_word), 64);
	PIN(alignof(struct arena_proto_bitmap_word), 64);
	OFF(arena_proto_bitmap_word, bits, 0);
	OFF(arena_proto_bitmap_word, pad, 8);
}

static void layout_region(void **state)
{
	PIN(sizeof(struct arena_proto_region), 256 + 64 * 128);
	OFF(arena_proto_region, magic, 0);
	OFF(arena_proto_region, version, 8);
	OFF(arena_proto_region, hdr_size, 12);
	OFF(arena_proto_region, region_size, 16);
	OFF(arena_proto_region, instance, 24);
	OFF(arena_proto_region, region_id, 32);
	OFF(arena_proto_region, narenas, 36);
	OFF(arena_proto_region, max_clients, 40);
	OFF(arena_proto_region, ledger_entries, 44);
	OFF(arena_proto_region, clients_off, 48);
	OFF(arena_proto_region, client_stride, 56);
	OFF(arena_proto_region, ctr_off, 64);
	OFF(arena_proto_region, ledger_off, 72);
	OFF(arena_proto_region, daemon_pid, 80);
	OFF(arena_proto_region, bctr_off, 88);
	OFF(arena_proto_region, jnl_off, 120);
	OFF(arena_proto_region, wait_off, 128);
	OFF(arena_proto_region, reserved, 136);
	OFF(arena_proto_region, arenas, 256);
	assert_true(sizeof(struct arena_proto_region) <= 3 * ARENA_PROTO_PAGE);
}

static void layout_client(void **state)
{
	PIN(sizeof(struct arena_proto_ctr), 64);
	OFF(arena_proto_ctr, allocs, 0);
	OFF(arena_proto_ctr, frees, 8);
	OFF(arena_proto_ctr, fail_full, 16);
	OFF(arena_proto_ctr, fail_big, 24);
	OFF(arena_proto_ctr, alloc_bytes, 32);
	OFF(arena_proto_ctr, free_bytes, 40);
	OFF(arena_proto_ctr, waits, 48);
	OFF(arena_proto_ctr, wait_ns, 56);

	PIN(sizeof(struct arena_proto_wait), 512);
	PIN(ARENA_PROTO_WAIT_CELLS, 32);
	OFF(arena_proto_wait, queue, 0);
	OFF(arena_proto_wait, futex, 8);
	OFF(arena_proto_wait, cell, 64);
	OFF(arena_proto_wait, gone, 320);
	OFF(arena_proto_wait, peak_blocks, 384);
	OFF(arena_proto_wait, peak_bytes, 392);
	OFF(arena_proto_wait, fold_seq, 400);
	PIN(arena_proto_wait_cell(7, 4095, ARENA_PROTO_WAIT_DONE),
	    (7ull << 32) | (4095ull << 20) | 2);

	PIN(sizeof(struct arena_proto_bctr), 16);
	OFF(arena_proto_bctr, splits, 0);
	OFF(arena_proto_bctr, coalesces, 8);

	PIN(sizeof(struct arena_proto_client), 64);
	OFF(arena_proto_client, state, 0);
	OFF(arena_proto_client, id, 4);
	OFF(arena_proto_client, pid, 8);
	OFF(arena_proto_client, uid, 12);
	OFF(arena_proto_client, incarnation, 16);
	OFF(arena_proto_client, reserved, 24);
}

/* The journal's entries: one word each, proto/journal.h. */
static void layout_journal(void **state)
{
	uint64_t e = arena_jnl_make(ARENA_JNL_BUNMARK, 31, 63, 0xfffffffeu);

	PIN(ARENA_PROTO_JNL_ENTRIES, 32);
	PIN(ARENA_PROTO_JNL_CACHES, 15);
	PIN(ARENA_JNL_BCLAIM, 1);
	PIN(ARENA_JNL_BUNDO, 2);
	PIN(ARENA_JNL_BRELEASE, 3);
	PIN(ARENA_JNL_BUNMARK, 4);
	PIN(ARENA_JNL_BPUT, 5);
	PIN(ARENA_JNL_BROLL, 6);
	PIN(ARENA_JNL_HELD, 15);
	assert_int_equal(e >> 60, ARENA_JNL_BUNMARK);
	assert_int_equal(arena_jnl_op(e), ARENA_JNL_BUNMARK);
	assert_int_equal(arena_jnl_top(e), 31);
	assert_int_equal(arena_jnl_arena(e), 63);
	assert_int_equal(arena_jnl_pos(e), 0xfffffffeu);
	assert_int_equal((e >> 32) & 0x3fff, 0);
	PIN(arena_jnl_make(ARENA_JNL_BPUT, 0, 2, 7),
	    5ull << 60 | 2ull << 46 | 7);
}

static void layout_constants(void **state)
{
	PIN(ARENA_PROTO_WIRE_MAGIC, 0x414e5241);
	PIN(ARENA_PROTO_WIRE_VERSION, 1);
	PIN(ARENA_PROTO_MAX_PAYLOAD, 8192);
	PIN(ARENA_PROTO_REGION_MAGIC, 0x414e455241524731ULL);
	PIN(ARENA_PROTO_LAYOUT_VERSION, 3);
	PIN(ARENA_PROTO_CACHELINE, 64);
	PIN(ARENA_PROTO_PAGE, 4096);
	PIN(ARENA_PROTO_MAX_ARENAS, 64);
	PIN(ARENA_PROTO_MAX_CLIENTS, 4095);
	PIN(ARENA_PROTO_STAT_SLOTS, 16);
	PIN(ARENA_PROTO_MIN_BLOCK, 16);
	PIN(ARENA_PROTO_MAX_FIXED, 1u << 30);
	PIN(ARENA_MSG_HELLO, 1);
	PIN(ARENA_MSG_WELCOME, 2);
	PIN(ARENA_MSG_ERROR, 3);
	PIN(ARENA_MSG_STATS_REQ, 4);
	PIN(ARENA_MSG_STATS, 5);
	PIN(ARENA_MSG_PING, 6);
	PIN(ARENA_MSG_PONG, 7);
	PIN(ARENA_MSG_CHAN_OPEN, 8);
	PIN(ARENA_MSG_CHAN_OK, 9);
	PIN(ARENA_MSG_CHAN_CLOSE, 10);
	PIN(ARENA_MSG_CHAN_STATS_REQ, 11);
	PIN(ARENA_MSG_CHAN_STATS, 12);
	PIN(ARENA_MSG_AUDIT_REQ, 13);
	PIN(ARENA_MSG_AUDIT, 14);
	PIN(ARENA_MSG_METRICS_REQ, 15);
	PIN(ARENA_MSG_METRICS, 16);
	PIN(ARENA_MSG_TYPE_MAX, 16);
	PIN(sizeof(struct arena_proto_audit), 160);
	PIN(sizeof(struct arena_proto_audit_line), 128);
	OFF(arena_proto_audit, nlines, 24);
	OFF(arena_proto_audit, found, 32);
	PIN(ARENA_AUDIT_HINT, 8);
	PIN(ARENA_PROTO_AUDIT_LINES, 60);
	PIN(ARENA_PROTO_CHAN_NAME, 48);
	PIN(ARENA_PROTO_CHAN_MAX_CAP, 65536);
	PIN(ARENA_PROTO_MAX_CHAN_RECS, 64);
	PIN(sizeof(struct arena_proto_chan), 256);
	OFF(arena_proto_chan, state, 48);
	OFF(arena_proto_chan, capacity, 52);
	OFF(arena_proto_chan, ring, 56);
	OFF(arena_proto_chan, tail, 64);
	OFF(arena_proto_chan, head, 128);
	OFF(arena_proto_chan, rx_futex, 192);
	OFF(arena_proto_chan, tx_futex, 200);
	OFF(arena_proto_region, chan_off, 96);
	OFF(arena_proto_region, chan_cells_off, 104);
	OFF(arena_proto_region, nchan, 112);
	OFF(arena_proto_region, chan_cells, 116);
	PIN(sizeof(struct arena_proto_chan_open), 56);
	PIN(sizeof(struct arena_proto_chan_ok), 16);
	PIN(sizeof(struct arena_proto_chan_rec), 80);
	PIN(ARENA_PROTO_KIND_FIXED, 1);
	PIN(ARENA_PROTO_KIND_BUDDY, 2);
	PIN(ARENA_PROTO_KIND_BUMP, 3);
	PIN(ARENA_PROTO_CLIENT_FREE, 0);
	PIN(ARENA_PROTO_CLIENT_LIVE, 1);
	PIN(ARENA_PROTO_CLIENT_DEAD, 2);
	PIN(ARENA_BS_FREE, 0);
	PIN(ARENA_BS_MAG, 1);
	PIN(ARENA_BS_ALLOC, 2);
	/* every arena number fits the handle */
	assert_true(ARENA_PROTO_MAX_ARENAS <= 1u << ARENA_HANDLE_ARENA_BITS);
	assert_true(ARENA_PROTO_MAX_CLIENTS <= ARENA_BS_OWNER_MAX);
}

/* ---- handles ---- */

static void handle_round_trip(uint32_t r, uint32_t a, uint32_t g, uint32_t i)
{
	struct arena_proto_handle h;

	arena_proto_handle_unpack(arena_proto_handle_pack(r, a, g, i), &h);
	PIN(h.region, r);
	PIN(h.arena, a);
	PIN(h.gen, g);
	PIN(h.index, i);
}

static void handle_pack_extremes(void **state)
{
	static const uint32_t rs[] = { 0, 1, 0xf };
	static const uint32_t as[] = { 0, 1, 63, 0xff };
	static const uint32_t gs[] = { 1, 2, 0x7ffff, 0xfffff };
	static const uint32_t is[] = { 0, 1, 0x7fffffff, 0xffffffff };
	size_t r, a, g, i;

	for (r = 0; r < 3; r++)
		for (a = 0; a < 4; a++)
			for (g = 0; g < 4; g++)
				for (i = 0; i < 4; i++)
					handle_round_trip(rs[r], as[a], gs[g],
							  is[i]);
	PIN(arena_proto_handle_pack(0xf, 0xff, 0xfffff, 0xffffffff),
	    UINT64_MAX);
	PIN(arena_proto_handle_pack(1, 0, 0, 0), 1ULL << 60);
	PIN(arena_proto_handle_pack(0, 1, 0, 0), 1ULL << 52);
	PIN(arena_proto_handle_pack(0, 0, 1, 0), 1ULL << 32);
	PIN(arena_proto_handle_pack(0, 0, 0, 1), 1);
}

static void handle_pack_masks(void **state)
{
	/* out-of-range fields never spill into their neighbours */
	PIN(arena_proto_handle_pack(0x1f, 0, 0, 0), 0xfULL << 60);
	PIN(arena_proto_handle_pack(0, 0x1ff, 0, 0), 0xffULL << 52);
	PIN(arena_proto_handle_pack(0, 0, 0x1fffff, 0), 0xfffffULL << 32);
	PIN(ARENA_HANDLE_INDEX_BITS + ARENA_HANDLE_GEN_BITS +
		    ARENA_HANDLE_ARENA_BITS + ARENA_HANDLE_REGION_BITS,
	    64);
	PIN(ARENA_HANDLE_GEN_MASK, 0xfffff);
}

static void handle_never_zero(void **state)
{
	uint32_t g;

	for (g = 1; g <= ARENA_HANDLE_GEN_MASK; g++)
		if (arena_proto_handle_pack(0, 0, g, 0) == 0)
			fail_msg("handle 0 for generation %u", g);
}

static void handle_gen_next(void **state)
{
	uint32_t g = 1, steps = 0;

	PIN(arena_proto_gen_next(1), 2);
	PIN(arena_proto_gen_next(0xffffe), 0xfffff);
	PIN(arena_proto_gen_next(0xfffff), 1);
	PIN(arena_proto_gen_next(0), 1);
	do {
		g = arena_proto_gen_next(g);
		if (g == 0 || g > ARENA_HANDLE_GEN_MASK)
			fail_msg("generation %u after %u steps", g, steps);
		steps++;
	} while (g != 1);
	PIN(steps, ARENA_HANDLE_GEN_MASK);
}

/* ---- block state word ---- */

static void bs_round_trip(uint32_t g, uint32_t v, uint32_t st, uint32_t o,
			  uint32_t c)
{
	uint64_t s = arena_bs_make(g, v, st, o, c);

	PIN(arena_bs_gen(s), g);
	PIN(arena_bs_version(s), v);
	PIN(arena_bs_state(s), st);
	PIN(arena_bs_owner(s), o);
	PIN(arena_bs_count(s), c);
}

static void bs_make_extremes(void **state)
{
	static const uint32_t gs[] = { 0, 1, 0xfffff };
	static const uint32_t vs[] = { 0, 1, ARENA_BS_VERSION_MASK };
	static const uint32_t os[] = { 0, 1, ARENA_BS_OWNER_MAX };
	static const uint32_t cs[] = { 0, 1, ARENA_BS_COUNT_MAX };
	size_t g, v, st, o, c;

	for (g = 0; g < 3; g++)
		for (v = 0; v < 3; v++)
			for (st = 0; st < 3; st++)
				for (o = 0; o < 3; o++)
					for (c = 0; c < 3; c++)
						bs_round_trip(gs[g], vs[v],
							      (uint32_t)st,
							      os[o], cs[c]);
	PIN(arena_bs_make(0xfffff, 0x3fff, 3, 0xfff, 0xffff), UINT64_MAX);
	PIN(arena_bs_make(1, 0, 0, 0, 0), 1ULL << 30);
	PIN(arena_bs_make(0, 1, 0, 0, 0), 1ULL << 50);
	PIN(arena_bs_make(0, 0, 1, 0, 0), 1ULL << 28);
	PIN(arena_bs_make(0, 0, 0, 1, 0), 1ULL << 16);
	PIN(arena_bs_make(0, 0, 0, 0, 1), 1);
	/* no spill between fields */
	PIN(arena_bs_make(0x1fffff, 0, 0, 0, 0), 0xfffffULL << 30);
	PIN(arena_bs_make(0, 0x7fff, 0, 0, 0), 0x3fffULL << 50);
	PIN(arena_bs_make(0, 0, 7, 0, 0), 3ULL << 28);
	PIN(arena_bs_make(0, 0, 0, 0x1fff, 0), 0xfffULL << 16);
	PIN(arena_bs_make(0, 0, 0, 0, 0x1ffff), 0xffff);
}

static void bs_next_bumps_version(void **state)
{
	uint64_t s = arena_bs_make(5, 7, ARENA_BS_FREE, 0, 0);
	uint64_t n = arena_bs_next(s, 6, ARENA_BS_ALLOC, 12, 1);

	PIN(arena_bs_version(n), 8);
	PIN(arena_bs_gen(n), 6);
	PIN(arena_bs_state(n), ARENA_BS_ALLOC);
	PIN(arena_bs_owner(n), 12);
	PIN(arena_bs_count(n), 1);
	s = arena_bs_make(0xfffff, ARENA_BS_VERSION_MASK, ARENA_BS_ALLOC,
			  ARENA_BS_OWNER_MAX, ARENA_BS_COUNT_MAX);
	n = arena_bs_next(s, 1, ARENA_BS_FREE, 0, 0);
	PIN(arena_bs_version(n), 0);
	PIN(n, 1ULL << 30);
}

static void bs_is_live(void **state)
{
	uint64_t s = arena_bs_make(9, 3, ARENA_BS_ALLOC, 4, 1);

	assert_true(arena_bs_is_live(s, 9));
	assert_false(arena_bs_is_live(s, 10));
	assert_false(
		arena_bs_is_live(arena_bs_make(9, 3, ARENA_BS_ALLOC, 4, 0), 9));
	assert_false(
		arena_bs_is_live(arena_bs_make(9, 3, ARENA_BS_MAG, 4, 1), 9));
	assert_false(
		arena_bs_is_live(arena_bs_make(9, 3, ARENA_BS_FREE, 0, 1), 9));
}

/* ---- ledger entries ---- */

static uint64_t ledger_entry(uint64_t key, uint32_t count, uint32_t pending)
{
	return key | count * ARENA_LEDGER_COUNT_ONE |
	       pending * ARENA_LEDGER_PENDING_ONE;
}

static void ledger_fields(uint32_t arena, uint32_t index, uint32_t count,
			  uint32_t pending)
{
	uint64_t key = arena_ledger_key(arena, index);
	uint64_t e = ledger_entry(key, count, pending);

	assert_true(key != 0);
	PIN(arena_ledger_key_of(e), key);
	PIN(arena_ledger_count(e), count);
	PIN(arena_ledger_pending(e), pending);
}

static void ledger_accessors(void **state)
{
	static const uint32_t as[] = { 0, 1, ARENA_PROTO_MAX_ARENAS - 1 };
	static const uint32_t is[] = { 0, 1, UINT32_MAX };
	static const uint32_t cs[] = { 0, 1, ARENA_LEDGER_COUNT_MAX };
	static const uint32_t ps[] = { 0, 1, ARENA_LEDGER_PENDING_MAX };
	size_t a, i, c, p;

	for (a = 0; a < 3; a++)
		for (i = 0; i < 3; i++)
			for (c = 0; c < 3; c++)
				for (p = 0; p < 3; p++)
					ledger_fields(as[a], is[i], cs[c],
						      ps[p]);
	PIN(arena_ledger_key(0, 0), 1ULL << 32);
	PIN(arena_ledger_key(2, 5), 3ULL << 32 | 5);
	PIN(ARENA_LEDGER_KEY_MASK, (1ULL << 40) - 1);
	PIN(ARENA_LEDGER_COUNT_ONE, 1ULL << 40);
	PIN(ARENA_LEDGER_PENDING_ONE, 1ULL << 56);
	PIN(ledger_entry(ARENA_LEDGER_KEY_MASK, 0xffff, 0xff), UINT64_MAX);
}

static void ledger_hash_in_range(void **state)
{
	uint32_t mask = 4096 - 1, a, i;

	for (a = 0; a < ARENA_PROTO_MAX_ARENAS; a++)
		for (i = 0; i < 1000; i++)
			assert_true(arena_ledger_hash(arena_ledger_key(a, i),
						      mask) <= mask);
	PIN(arena_ledger_hash(arena_ledger_key(1, 1), 0), 0);
}

/* ---- socket path ---- */

struct env_save {
	char *sock;
	char *xdg;
};

static char *dup_env(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void set_env(const char *name, const char *v)
{
	if (v)
		setenv(name, v, 1);
	else
		unsetenv(name);
}

static int env_setup(void **state)
{
	struct env_save *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->sock = dup_env("ARENA_SOCKET");
	e->xdg = dup_env("XDG_RUNTIME_DIR");
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env_save *e = *state;

	set_env("ARENA_SOCKET", e->sock);
	set_env("XDG_RUNTIME_DIR", e->xdg);
	free(e->sock);
	free(e->xdg);
	free(e);
	return 0;
}

static void path_is(const char *explicit_path, const char *want)
{
	char buf[256];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(arena_proto_sockpath(explicit_path, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, want);
}

static void sockpath_precedence(void **state)
{
	set_env("ARENA_SOCKET", "/env/sock");
	set_env("XDG_RUNTIME_DIR", "/xdg");
	path_is("/explicit", "/explicit");
	path_is(NULL, "/env/sock");
	set_env("ARENA_SOCKET", "");
	path_is(NULL, "/xdg/arenad.sock");
	set_env("ARENA_SOCKET", NULL);
	path_is(NULL, "/xdg/arenad.sock");
	set_env("XDG_RUNTIME_DIR", "");
	path_is(NULL, "/run/arenad/arenad.sock");
	set_env("XDG_RUNTIME_DIR", NULL);
	path_is(NULL, "/run/arenad/arenad.sock");
	path_is("relative.sock", "relative.sock");
	assert_string_equal(ARENA_PROTO_SYSTEM_SOCKET,
			    "/run/arenad/arenad.sock");
}

static void sockpath_errors(void **state)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	char buf[256], path[256];

	set_env("ARENA_SOCKET", "/env/sock");
	assert_int_equal(arena_proto_sockpath("", buf, sizeof(buf)), -EINVAL);

	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[max - 1] = 0; /* the longest that fits sun_path */
	path_is(path, path);
	path[max - 1] = 'a';
	path[max] = 0;
	assert_int_equal(arena_proto_sockpath(path, buf, sizeof(buf)),
			 -ENAMETOOLONG);
	assert_int_equal(arena_proto_sockpath("/a/b", buf, 4), -ENAMETOOLONG);
	assert_int_equal(arena_proto_sockpath("/a/b", buf, 5), 0);

	set_env("ARENA_SOCKET", path);
	assert_int_equal(arena_proto_sockpath(NULL, buf, sizeof(buf)),
			 -ENAMETOOLONG);
	set_env("ARENA_SOCKET", NULL);
	path[max - 12] = 0; /* + "/arenad.sock" is one too long */
	set_env("XDG_RUNTIME_DIR", path);
	assert_int_equal(arena_proto_sockpath(NULL, buf, sizeof(buf)),
			 -ENAMETOOLONG);
	path[max - 13] = 0;
	set_env("XDG_RUNTIME_DIR", path);
	assert_int_equal(arena_proto_sockpath(NULL, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), max - 1);
}

#define ENV_TEST(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hdr_round_trip),
		cmocka_unit_test(hdr_encode_rejects),
		cmocka_unit_test(hdr_decode_short),
		cmocka_unit_test(hdr_decode_bad_magic),
		cmocka_unit_test(hdr_decode_bad_version),
		cmocka_unit_test(hdr_decode_bad_type),
		cmocka_unit_test(hdr_decode_bad_len),
		cmocka_unit_test(payload_hello),
		cmocka_unit_test(payload_welcome),
		cmocka_unit_test(payload_error),
		cmocka_unit_test(payload_empty),
		cmocka_unit_test(payload_unknown_type),
		cmocka_unit_test(payload_stats),
		cmocka_unit_test(payload_metrics),
		cmocka_unit_test(payload_stats_short),
		cmocka_unit_test(payload_stats_count_mismatch),
		cmocka_unit_test(payload_stats_too_many),
		cmocka_unit_test(payload_stats_reserved),
		cmocka_unit_test(payload_stats_bump),
		cmocka_unit_test(payload_stats_buddy),
		cmocka_unit_test(payload_audit),
		cmocka_unit_test(layout_wire),
		cmocka_unit_test(layout_arena_stats),
		cmocka_unit_test(layout_arena),
		cmocka_unit_test(layout_buddy_stats),
		cmocka_unit_test(layout_buddy_tree),
		cmocka_unit_test(layout_region),
		cmocka_unit_test(layout_client),
		cmocka_unit_test(layout_journal),
		cmocka_unit_test(layout_constants),
		cmocka_unit_test(handle_pack_extremes),
		cmocka_unit_test(handle_pack_masks),
		cmocka_unit_test(handle_never_zero),
		cmocka_unit_test(handle_gen_next),
		cmocka_unit_test(bs_make_extremes),
		cmocka_unit_test(bs_next_bumps_version),
		cmocka_unit_test(bs_is_live),
		cmocka_unit_test(ledger_accessors),
		cmocka_unit_test(ledger_hash_in_range),
		ENV_TEST(sockpath_precedence),
		ENV_TEST(sockpath_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
