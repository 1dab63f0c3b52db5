// SPDX-License-Identifier: MIT
/*
 * Region layout (daemon/layout.c): offsets page aligned, every section
 * inside the region and disjoint from every other, counts as asked, and
 * the "does not fit" answers.  layout_write() is checked on a real
 * mapping: header, descriptors, bitmap bits and initial state words.
 * The buddy arena: a power of two aligned to its size, inside its share
 * by default, where --buddy puts it otherwise, and every bad request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../daemon/layout.h"
#include "handle.h"

#define PAGE 4096ULL
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

struct span {
	uint64_t off, len;
};

static void req_default(struct layout_req *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->max_clients = 64;
	r->ledger_entries = 4096;
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static size_t spans_collect(const struct layout *l, struct span *s)
{
	size_t n = 0;
	uint32_t i;

	s[n++] = (struct span){ 0, l->hdr_len };
	s[n++] = (struct span){ l->wait_off,
				l->narenas * sizeof(struct arena_proto_wait) };
	s[n++] = (struct span){ l->clients_off,
				l->max_clients * l->client_stride };
	for (i = 0; i < l->narenas; i++) {
		const struct layout_arena *a = &l->arenas[i];

		if (a->kind == ARENA_PROTO_KIND_BUMP) { /* headers in data */
			s[n++] = (struct span){ a->bump_off,
						64 + a->nchunks * 16 };
			s[n++] = (struct span){ a->data_off, a->data_len };
			continue;
		}
		if (a->kind == ARENA_PROTO_KIND_BUDDY) {
			s[n++] = (struct span){ a->order_off, a->nblocks };
			s[n++] = (struct span){ a->tree_off, a->tree_len };
		} else {
			s[n++] = (struct span){ a->bitmap_off, a->nwords * 64 };
		}
		s[n++] = (struct span){ a->state_off, a->nblocks * 8 };
		s[n++] = (struct span){ a->data_off, a->data_len };
	}
	/* the buddy arena lies in its share */
	if (l->buddy_len && !l->nbuddy)
		s[n++] = (struct span){ l->buddy_off, l->buddy_len };
	if (l->bump_len && !l->nbump)
		s[n++] = (struct span){ l->bump_off, l->bump_len };
	return n;
}

/* Every section page aligned, non-empty, inside, pairwise disjoint. */
static void check_spans(const struct layout *l)
{
	struct span s[4 * ARENA_PROTO_MAX_ARENAS + 5];
	size_t n = spans_collect(l, s), i;

	qsort(s, n, sizeof(s[0]), span_cmp);
	for (i = 0; i < n; i++) {
		assert_int_equal(s[i].off % PAGE, 0);
		assert_true(s[i].len > 0);
		assert_true(s[i].off + s[i].len <= l->size);
		if (i)
			assert_true(s[i - 1].off + s[i - 1].len <= s[i].off);
	}
}

static void check_clients(const struct layout *l)
{
	uint64_t ctr = (uint64_t)ARENA_PROTO_STAT_SLOTS * l->narenas *
		       sizeof(struct arena_proto_ctr);

	assert_int_equal(l->hdr_len, 3 * PAGE);
	assert_true(sizeof(struct arena_proto_region) <= l->hdr_len);
	/* without channels: the wait queues, then the client tables */
	assert_int_equal(l->wait_off, l->hdr_len);
	assert_int_equal(l->clients_off,
			 l->wait_off +
				 ((l->narenas * 512 + PAGE - 1) & ~(PAGE - 1)));
	assert_int_equal(l->ctr_off, 64);
	assert_int_equal(l->ledger_off % 64, 0);
	assert_true(l->ledger_off >= l->ctr_off + ctr);
	assert_int_equal(l->client_stride % PAGE, 0);
	assert_true(l->client_stride >=
		    l->ledger_off + (uint64_t)l->ledger_entries * 8);
	assert_int_equal(layout_client_off(l, 1), l->clients_off);
	assert_int_equal(layout_client_off(l, 2),
			 l->clients_off + l->client_stride);
}

static void check_arena(const struct layout_arena *a)
{
	uint64_t align = a->block_size & -a->block_size;

	/* blocks naturally aligned: data to the block size's low bit */
	assert_int_equal(a->data_off % (align > PAGE ? align : PAGE), 0);
	assert_true(a->nblocks > 0);
	assert_int_equal(a->nwords, (a->nblocks + 63) / 64);
	assert_int_equal(a->data_len, a->nblocks * a->block_size);
	assert_true(a->state_off >= a->bitmap_off + a->nwords * 64);
	assert_true(a->data_off >= a->state_off + a->nblocks * 8);
	assert_true(a->end >= a->data_off + a->data_len);
}

/* A buddy arena: powers of two, data aligned to its whole size. */
static void check_buddy(const struct layout_arena *a)
{
	assert_int_equal(a->kind, ARENA_PROTO_KIND_BUDDY);
	assert_int_equal(a->block_size & (a->block_size - 1), 0);
	assert_true(a->block_size >= 16);
	assert_true(a->max_order <= 31);
	assert_int_equal(a->nblocks, 1ULL << a->max_order);
	assert_int_equal(a->data_len, a->nblocks * a->block_size);
	assert_int_equal(a->data_off % a->data_len, 0);
	assert_int_equal(a->tree_len, 2 * a->nblocks);
	assert_int_equal(a->nwords, 0);
	assert_true(a->end >= a->data_off + a->data_len);
	assert_true(a->end >= a->tree_off + a->tree_len);
}

/* The default layout's buddy arena, the largest that fits its share. */
static void check_default_buddy(const struct layout *l)
{
	const struct layout_arena *a = &l->arenas[l->narenas - 1 - l->nbump];

	assert_int_equal(l->nbuddy, 1);
	check_buddy(a);
	assert_int_equal(a->block_size, LAYOUT_BUDDY_MIN);
	assert_true(a->state_off >= l->buddy_off);
	assert_true(a->end <= l->buddy_off + l->buddy_len);
	assert_true(a->data_len * 4 > l->buddy_len);
}

/* A bump arena: power-of-two chunks, records before page-aligned data. */
static void check_bump(const struct layout_arena *a, uint64_t chunk)
{
	assert_int_equal(a->kind, ARENA_PROTO_KIND_BUMP);
	assert_int_equal(a->block_size, chunk);
	assert_true(a->nchunks > 0);
	assert_int_equal(a->data_len, a->nchunks * chunk);
	assert_int_equal(a->nblocks, a->data_len / 8);
	assert_int_equal(a->state_off, a->data_off);
	assert_int_equal(a->data_off % PAGE, 0);
	assert_true(a->data_off >= a->bump_off + 64 + a->nchunks * 16);
	assert_int_equal(a->end, a->data_off + a->data_len);
}

/* The default layout's bump arena: 1 MiB chunks filling its share. */
static void check_default_bump(const struct layout *l)
{
	const struct layout_arena *a = &l->arenas[l->narenas - 1];

	check_bump(a, 1 << 20);
	assert_int_equal(a->bump_off, l->bump_off);
	assert_true(a->end <= l->bump_off + l->bump_len);
	assert_true(a->end + (1 << 20) + PAGE > l->bump_off + l->bump_len);
}

static void check_default(const struct layout *l, uint32_t nfixed)
{
	uint64_t rest =
		l->size - l->clients_off - l->max_clients * l->client_stride;
	uint32_t i;

	assert_int_equal(l->narenas, nfixed + l->nbuddy + l->nbump);
	check_clients(l);
	check_spans(l);
	if (l->nbuddy)
		check_default_buddy(l);
	if (l->nbump)
		check_default_bump(l);
	for (i = 0; i < nfixed; i++) {
		check_arena(&l->arenas[i]);
		assert_int_equal(l->arenas[i].block_size, 64ULL << i);
	}
	/* fixed arenas within the first half, 25% + 25% reserved after */
	assert_true(l->arenas[nfixed - 1].end <= l->buddy_off);
	if (l->nbuddy)
		assert_true(l->arenas[nfixed].end <= l->bump_off);
	assert_true(l->buddy_off - l->arenas[0].bitmap_off <= rest / 2);
	assert_true(l->buddy_len + PAGE >= rest / 4);
	assert_true(l->bump_len + PAGE >= rest / 4);
	assert_int_equal(l->bump_off, l->buddy_off + l->buddy_len);
}

static void test_default_64m(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * MiB);
	assert_int_equal(layout_compute(&r, &l), 0);
	check_default(&l, LAYOUT_DEFAULT_CLASSES);
	assert_int_equal(l.nbuddy, 1);
	assert_int_equal(l.ndropped, 0);
	assert_int_equal(l.max_clients, 64);
	assert_int_equal(l.client_stride, 48 * 1024);
	/* equal shares: bytes of data per class within a page or so */
	assert_true(l.arenas[0].nblocks > 30000);
	assert_true(l.arenas[10].nblocks >= 40);
}

static void test_default_1g(void **state)
{
	struct layout_req r;
	static struct layout l;
	uint32_t i;

	req_default(&r, GiB);
	assert_int_equal(layout_compute(&r, &l), 0);
	check_default(&l, LAYOUT_DEFAULT_CLASSES);
	assert_int_equal(l.nbuddy, 1);
	assert_int_equal(l.arenas[11].data_len, 128 * MiB);
	for (i = 1; i < LAYOUT_DEFAULT_CLASSES; i++) {
		uint64_t a = l.arenas[i - 1].data_len, b = l.arenas[i].data_len;

		/* the same share of bytes, less the per-slot metadata */
		assert_true(a < b * 115 / 100 && b < a * 115 / 100);
	}
	assert_true(l.arenas[10].nblocks > 700);
}

static void test_default_drops_classes(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 4 * MiB);
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.ndropped, 2);
	assert_int_equal(l.dropped[0], 65536);
	assert_int_equal(l.dropped[1], 32768);
	check_default(&l, LAYOUT_DEFAULT_CLASSES - 2);
}

static void test_default_max_limits(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * GiB);
	r.max_clients = ARENA_PROTO_MAX_CLIENTS;
	r.ledger_entries = 1u << 20;
	assert_int_equal(layout_compute(&r, &l), 0);
	check_default(&l, LAYOUT_DEFAULT_CLASSES);
}

static void test_fixed_sorted(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * MiB);
	r.nfixed = 3;
	r.fixed[0] = (struct layout_class){ 4096, 100 };
	r.fixed[1] = (struct layout_class){ 64, 1000 };
	r.fixed[2] = (struct layout_class){ 48, 7 };
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.narenas, 3);
	assert_int_equal(l.arenas[0].block_size, 48);
	assert_int_equal(l.arenas[0].nblocks, 7);
	assert_int_equal(l.arenas[1].block_size, 64);
	assert_int_equal(l.arenas[1].nblocks, 1000);
	assert_int_equal(l.arenas[2].block_size, 4096);
	assert_int_equal(l.arenas[2].nblocks, 100);
	assert_int_equal(l.buddy_len + l.bump_len, 0);
	assert_true(l.used <= l.size);
	check_clients(&l);
	check_spans(&l);
	for (int i = 0; i < 3; i++)
		check_arena(&l.arenas[i]);
}

static void test_fixed_aligned(void **state)
{
	struct layout_req r;
	static struct layout l;
	uint32_t i;

	req_default(&r, 64 * MiB);
	r.nfixed = 4;
	r.fixed[0] = (struct layout_class){ 48, 3 };
	r.fixed[1] = (struct layout_class){ 3 * 64 * 1024, 2 };
	r.fixed[2] = (struct layout_class){ 1024 * 1024, 3 };
	r.fixed[3] = (struct layout_class){ 16, 1 };
	assert_int_equal(layout_compute(&r, &l), 0);
	for (i = 0; i < l.narenas; i++)
		check_arena(&l.arenas[i]);
	check_spans(&l);
	assert_int_equal(l.arenas[3].data_off % MiB, 0);
}

static void test_fixed_does_not_fit(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * MiB);
	r.nfixed = 1;
	r.fixed[0] = (struct layout_class){ MiB, 100 };
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);
	assert_true(l.need > 100 * MiB && l.need < 110 * MiB);
	r.fixed[0] = (struct layout_class){ ARENA_PROTO_MAX_FIXED, UINT32_MAX };
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);
}

static void test_default_does_not_fit(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * 1024);
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);
	assert_true(l.need > 64 * 32768);
	req_default(&r, l.need);
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.narenas - l.nbuddy, 1);
	check_default(&l, 1);
	req_default(&r, l.size - PAGE);
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);
}

static void test_bad_requests(void **state)
{
	struct layout_req r;
	static struct layout l;

	req_default(&r, 64 * MiB);
	r.nfixed = 2;
	r.fixed[0] = (struct layout_class){ 64, 10 };
	r.fixed[1] = (struct layout_class){ 64, 20 };
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.fixed[1] = (struct layout_class){ 100, 20 };
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.fixed[1] = (struct layout_class){ 128, 0 };
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	req_default(&r, 64 * MiB);
	r.ledger_entries = 100;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	req_default(&r, 64 * MiB);
	r.max_clients = 0;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	req_default(&r, 0);
	assert_int_equal(layout_compute(&r, &l), -EINVAL);

	/* buddy: powers of two, min >= 16, size >= min, <= 2^31 leaves */
	req_default(&r, 64 * MiB);
	r.buddy_size = 3 * MiB;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.buddy_size = 4 * MiB;
	r.buddy_min = 3000;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.buddy_min = 8;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.buddy_min = 8 * MiB;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.buddy_size = 1ULL << 40;
	r.buddy_min = 256;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.buddy_size = 0;
	r.buddy_min = 100;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
}

static void test_buddy_asked(void **state)
{
	struct layout_req r;
	static struct layout l;
	const struct layout_arena *a;

	/* default layout: at the start of the second half */
	req_default(&r, 64 * MiB);
	r.buddy_size = 16 * MiB;
	r.buddy_min = 256;
	assert_int_equal(layout_compute(&r, &l), 0);
	a = &l.arenas[l.narenas - 1 - l.nbump];
	check_buddy(a);
	assert_int_equal(l.nbuddy, 1);
	assert_int_equal(a->block_size, 256);
	assert_int_equal(a->nblocks, 65536);
	assert_int_equal(a->max_order, 16);
	assert_true(a->state_off >= l.buddy_off);
	assert_int_equal(l.bump_off, l.buddy_off + l.buddy_len);
	assert_int_equal(l.bump_off, a->end);
	assert_int_equal(l.bump_off + l.bump_len, l.size);
	check_spans(&l);
	check_clients(&l);

	/* larger than the second half: does not fit */
	r.buddy_size = 64 * MiB;
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);

	/* after --fixed classes; the whole arena as one block */
	req_default(&r, 64 * MiB);
	r.nfixed = 1;
	r.fixed[0] = (struct layout_class){ 64, 1000 };
	r.buddy_size = 8 * MiB;
	r.buddy_min = 8 * MiB;
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.narenas, 2);
	a = &l.arenas[1];
	check_buddy(a);
	assert_int_equal(a->nblocks, 1);
	assert_int_equal(a->max_order, 0);
	assert_true(l.used <= l.size);
	check_spans(&l);
	check_clients(&l);
	r.buddy_size = 64 * MiB;
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);
	assert_true(l.need > 64 * MiB);

	/* no --buddy with --fixed: no buddy arena */
	r.buddy_size = 0;
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.nbuddy, 0);
	assert_int_equal(l.narenas, 1);
}

static void check_written_arena(const uint8_t *base,
				const struct layout_arena *a)
{
	const struct arena_proto_bitmap_word *bm =
		(const void *)(base + a->bitmap_off);
	const uint64_t *st = (const void *)(base + a->state_off);
	uint64_t i, rem = a->nblocks % 64;
	const uint64_t *cw = (const void *)(base + a->bump_off + 64);

	if (a->kind == ARENA_PROTO_KIND_BUMP) { /* chunks free, data zero */
		assert_int_equal(*(const uint64_t *)(base + a->bump_off), 0);
		for (i = 0; i < a->nchunks; i++) {
			assert_int_equal(cw[2 * i] >> 44, 1);
			assert_int_equal(cw[2 * i] & ((1ull << 44) - 1), 0);
		}
		for (i = 0; i < a->data_len; i += 4096)
			assert_int_equal(base[a->data_off + i], 0);
		return;
	}
	for (i = 0; i < a->nblocks; i++) {
		assert_int_equal(arena_bs_state(st[i]), ARENA_BS_FREE);
		assert_int_equal(arena_bs_gen(st[i]), 1);
		assert_int_equal(arena_bs_count(st[i]), 0);
	}
	if (a->kind == ARENA_PROTO_KIND_BUDDY) {
		for (i = 0; i < a->tree_len; i++)
			assert_int_equal(base[a->tree_off + i], 0);
		return;
	}
	for (i = 0; i + 1 < a->nwords; i++)
		assert_true(bm[i].bits == ~0ULL);
	assert_true(bm[a->nwords - 1].bits ==
		    (rem ? (1ULL << rem) - 1 : ~0ULL));
}

static void test_bump_asked(void **state)
{
	struct layout_req r;
	static struct layout l;
	const struct layout_arena *a;

	/* default layout: in the bump share, as many chunks as asked */
	req_default(&r, 64 * MiB);
	r.bump_size = 8 * MiB;
	r.bump_chunk = 64 << 10;
	assert_int_equal(layout_compute(&r, &l), 0);
	a = &l.arenas[l.narenas - 1];
	check_bump(a, 64 << 10);
	assert_int_equal(a->nchunks, 128);
	assert_int_equal(a->bump_off, l.bump_off);
	check_spans(&l);
	check_clients(&l);

	/* more than is left: does not fit */
	r.bump_size = 64 * MiB;
	assert_int_equal(layout_compute(&r, &l), -ENOSPC);

	/* bad chunks and sizes */
	r.bump_size = 8 * MiB;
	r.bump_chunk = 3 << 12;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.bump_chunk = 2048;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);
	r.bump_chunk = 1 << 20;
	r.bump_size = 1 << 19;
	assert_int_equal(layout_compute(&r, &l), -EINVAL);

	/* after --fixed classes, SIZE rounded down to chunks */
	req_default(&r, 64 * MiB);
	r.nfixed = 1;
	r.fixed[0] = (struct layout_class){ 64, 1000 };
	r.bump_size = 5 * MiB + 1;
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.narenas, 2);
	assert_int_equal(l.nbump, 1);
	check_bump(&l.arenas[1], 1 << 20);
	assert_int_equal(l.arenas[1].nchunks, 5);
	assert_true(l.arenas[1].bump_off >= l.arenas[0].end);
	check_spans(&l);

	/* no --bump with --fixed: no bump arena */
	r.bump_size = 0;
	assert_int_equal(layout_compute(&r, &l), 0);
	assert_int_equal(l.nbump, 0);
	assert_int_equal(l.narenas, 1);
}

static void check_written_desc(const struct arena_proto_arena *d,
			       const struct layout_arena *a)
{
	assert_int_equal(d->kind, a->kind);
	assert_int_equal(d->block_size, a->block_size);
	assert_int_equal(d->nblocks, a->nblocks);
	assert_int_equal(d->data_off, a->data_off);
	assert_int_equal(d->data_len, a->data_len);
	assert_int_equal(d->state_off, a->state_off);
	assert_int_equal(d->bitmap_off, a->bitmap_off);
	assert_int_equal(d->nwords, a->nwords);
	assert_int_equal(d->tree_off, a->tree_off);
	assert_int_equal(d->tree_len, a->tree_len);
	assert_int_equal(d->order_off, a->order_off);
	assert_int_equal(d->max_order, a->max_order);
	assert_int_equal(d->bump_off, a->bump_off);
	assert_int_equal(d->nchunks, a->nchunks);
}

static void test_write(void **state)
{
	struct layout_req r;
	static struct layout l;
	struct arena_proto_region *h;
	uint8_t *base;
	uint32_t i;

	req_default(&r, 64 * MiB);
	assert_int_equal(layout_compute(&r, &l), 0);
	base = mmap(NULL, l.size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(base != MAP_FAILED);
	layout_write(&l, base, 0x1234, 42);
	h = (void *)base;
	assert_true(h->magic == ARENA_PROTO_REGION_MAGIC);
	assert_int_equal(h->version, ARENA_PROTO_LAYOUT_VERSION);
	assert_int_equal(h->hdr_size, sizeof(*h));
	assert_int_equal(h->region_size, l.size);
	assert_int_equal(h->instance, 0x1234);
	assert_int_equal(h->daemon_pid, 42);
	assert_int_equal(h->narenas, l.narenas);
	assert_int_equal(h->client_stride, l.client_stride);
	assert_int_equal(h->bctr_off, l.bctr_off);
	assert_int_equal(l.narenas, LAYOUT_DEFAULT_CLASSES + 2);
	for (i = 0; i < l.narenas; i++) {
		check_written_desc(&h->arenas[i], &l.arenas[i]);
		check_written_arena(base, &l.arenas[i]);
	}
	assert_int_equal(layout_verify(&l, base), -1);
	h->arenas[3].nblocks++;
	assert_int_equal(layout_verify(&l, base), 3);
	h->clients_off = 0;
	assert_int_equal(layout_verify(&l, base), ARENA_PROTO_MAX_ARENAS);
	munmap(base, l.size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_64m),
		cmocka_unit_test(test_default_1g),
		cmocka_unit_test(test_default_drops_classes),
		cmocka_unit_test(test_default_max_limits),
		cmocka_unit_test(test_fixed_sorted),
		cmocka_unit_test(test_fixed_aligned),
		cmocka_unit_test(test_fixed_does_not_fit),
		cmocka_unit_test(test_default_does_not_fit),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_buddy_asked),
		cmocka_unit_test(test_bump_asked),
		cmocka_unit_test(test_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
