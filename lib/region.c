// SPDX-License-Identifier: MIT
/*
 * Mapping and validating the region.
 *
 * Nothing in the header is used before it is checked against the size of
 * the mapping: every offset and count, with overflow-safe arithmetic.
 * What passes is copied into the client's private struct lib_arena
 * table, and the hot paths only ever use those copies.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* off + n * unit lies inside [0, size) without overflow. */
static bool span_ok(uint64_t off, uint64_t n, uint64_t unit, uint64_t size)
{
	uint64_t len;

	if (__builtin_mul_overflow(n, unit, &len))
		return false;
	return off <= size && len <= size - off;
}

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/*
 * A buddy arena: 1 << max_order leaves of a power-of-two minimum block,
 * data aligned to its whole size, one state word and one order byte per
 * leaf, and the tree.
 */
static bool buddy_desc_ok(const struct arena_proto_arena *d, uint64_t size)
{
	uint64_t n = d->nblocks;

	if (d->max_order > ARENA_BUDDY_MAX_ORDER || n != 1ull << d->max_order ||
	    n > UINT32_MAX)
		return false;
	if (!pow2(d->block_size) || d->block_size < ARENA_PROTO_MIN_BLOCK ||
	    d->block_size > (1ull << 40))
		return false;
	if (d->data_len != n * d->block_size || d->data_len > size ||
	    d->data_off % d->data_len || d->state_off % 8)
		return false;
	if (d->tree_len != 2 * n || d->nwords || d->bitmap_off)
		return false;
	return span_ok(d->data_off, n, d->block_size, size) &&
	       span_ok(d->state_off, n, 8, size) &&
	       span_ok(d->order_off, n, 1, size) &&
	       span_ok(d->tree_off, d->tree_len, 1, size);
}

/*
 * A bump arena: nchunks chunks of a power-of-two size, headers in the
 * data (state_off is data_off), handle indexes in 8-byte units, the
 * cursor and chunk records at bump_off.
 */
static bool bump_desc_ok(const struct arena_proto_arena *d, uint64_t size)
{
	uint64_t n = d->nchunks;

	if (!pow2(d->block_size) || d->block_size < ARENA_BUMP_CHUNK_MIN ||
	    d->block_size > ARENA_BUMP_CHUNK_MAX || n == 0 || n > UINT32_MAX)
		return false;
	if (d->data_len != n * d->block_size || d->data_len / 8 > UINT32_MAX ||
	    d->nblocks != d->data_len / 8 || d->state_off != d->data_off ||
	    d->data_off % ARENA_PROTO_PAGE || d->bump_off % 64)
		return false;
	return span_ok(d->data_off, n, d->block_size, size) &&
	       span_ok(d->bump_off, n + 4, sizeof(struct arena_bump_chunk),
		       size);
}

static bool arena_desc_ok(const struct arena_proto_arena *d, uint64_t size)
{
	if (d->flags & ~ARENA_PROTO_ARENA_FLAGS)
		return false;
	if (d->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_desc_ok(d, size);
	if (d->kind == ARENA_PROTO_KIND_BUMP)
		return bump_desc_ok(d, size);
	if (d->kind != ARENA_PROTO_KIND_FIXED)
		return false;
	if (d->block_size < ARENA_PROTO_MIN_BLOCK ||
	    d->block_size > ARENA_PROTO_MAX_FIXED || d->block_size % 16)
		return false;
	if (d->nblocks == 0 || d->nblocks > UINT32_MAX)
		return false;
	if (d->nwords != (d->nblocks + 63) / 64)
		return false;
	if (d->state_off % 8 || d->bitmap_off % 64 ||
	    d->data_off % (d->block_size & -d->block_size))
		return false;
	return span_ok(d->data_off, d->nblocks, d->block_size, size) &&
	       span_ok(d->state_off, d->nblocks, 8, size) &&
	       span_ok(d->bitmap_off, d->nwords, 64, size);
}

static bool clients_ok(const struct arena_proto_region *r, uint64_t size,
		       uint32_t id)
{
	uint64_t ctr_len = (uint64_t)ARENA_PROTO_STAT_SLOTS * r->narenas *
			   sizeof(struct arena_proto_ctr);
	uint32_t le = r->ledger_entries;

	if (r->max_clients == 0 || r->max_clients > ARENA_PROTO_MAX_CLIENTS ||
	    id > r->max_clients)
		return false;
	if (le == 0 || le & (le - 1) || r->ledger_off % 8 || r->ctr_off % 8)
		return false;
	if (r->ctr_off < sizeof(struct arena_proto_client) ||
	    r->ctr_off + ctr_len > r->bctr_off || r->bctr_off % 8 ||
	    r->bctr_off + ARENA_PROTO_STAT_SLOTS *
				    sizeof(struct arena_proto_bctr) >
		    r->jnl_off ||
	    r->jnl_off % 8 ||
	    r->jnl_off + ARENA_PROTO_JNL_ENTRIES * 8 > r->ledger_off)
		return false;
	if (!span_ok(r->ledger_off, le, 8, r->client_stride))
		return false;
	return r->clients_off % 64 == 0 && r->client_stride % 64 == 0 &&
	       span_ok(r->clients_off, r->max_clients, r->client_stride, size);
}

static bool header_ok(const struct arena_proto_region *r, uint64_t size,
		      uint32_t id)
{
	if (r->magic != ARENA_PROTO_REGION_MAGIC)
		return false;
	if (r->region_size != size || r->narenas > ARENA_PROTO_MAX_ARENAS)
		return false;
	return clients_ok(r, size, id);
}

/* Slots one thread may keep reserved: bounded in bytes and by share. */
static uint32_t mag_cap_for(const struct arena_proto_arena *d,
			    uint32_t max_clients)
{
	uint64_t cap = LIB_MAG_MAX;
	uint64_t by_bytes = (256u << 10) / d->block_size;
	uint64_t by_share = d->nblocks / (8ull * max_clients);

	if (by_bytes < cap)
		cap = by_bytes;
	if (by_share < cap)
		cap = by_share;
	return cap < 2 ? 0 : (uint32_t)cap;
}

/*
 * Buddy blocks of one order that one thread may keep reserved: bounded in
 * bytes (so that large orders hoard nothing) and by share; one is enough
 * to serve alloc+free pairs from the cache.
 */
static uint8_t buddy_cap(const struct lib_arena *a, unsigned o,
			 uint32_t max_clients)
{
	uint64_t cap = LIB_MAG_MAX, by_bytes, by_share;

	if (o > a->max_order)
		return 0;
	by_bytes = (LIB_BUDDY_MAG_BYTES >> o) / a->block_size;
	by_share = ((uint64_t)a->nblocks >> o) / (8ull * max_clients);
	if (by_bytes < cap)
		cap = by_bytes;
	if (by_share < cap)
		cap = by_share;
	return (uint8_t)cap;
}

static void arena_adopt(struct arena_client *c, uint32_t i,
			const struct arena_proto_arena *d, uint32_t max_clients)
{
	struct lib_arena *a = &c->arenas[i];
	unsigned o;

	a->kind = d->kind;
	a->index = i;
	a->block_size = d->block_size;
	a->nblocks = (uint32_t)d->nblocks;
	a->nwords = (uint32_t)d->nwords;
	a->zero = (d->flags & ARENA_PROTO_ARENA_ZERO) != 0;
	a->data = c->base + d->data_off;
	a->state = (_Atomic uint64_t *)(c->base + d->state_off);
	if (d->kind == ARENA_PROTO_KIND_FIXED) {
		a->mag_cap = mag_cap_for(d, max_clients);
		a->bitmap = (struct arena_proto_bitmap_word *)(c->base +
							       d->bitmap_off);
		return;
	}
	if (d->kind == ARENA_PROTO_KIND_BUMP) {
		a->nwords = (uint32_t)d->nchunks; /* no bitmap: the chunks */
		a->shift = (uint8_t)__builtin_ctzll(d->block_size);
		a->bump = (struct arena_bump_hdr *)(c->base + d->bump_off);
		a->max_size = d->block_size - ARENA_BUMP_HDR;
		if (!c->bumpa)
			c->bumpa = a;
		return;
	}
	a->max_order = (uint8_t)d->max_order;
	a->shift = (uint8_t)__builtin_ctzll(d->block_size);
	a->tree = c->base + d->tree_off;
	a->order = c->base + d->order_off;
	if (!c->buddy) {
		c->buddy = a;
		for (o = 0; o < ARENA_BUDDY_ORDERS; o++)
			c->bcap[o] = buddy_cap(a, o, max_clients);
	}
}

/* Fixed arenas sorted by block size, and the size -> arena table. */
static void classes_build(struct arena_client *c)
{
	uint32_t i, j, n = 0, k = 0;
	uint8_t t;

	for (i = 0; i < c->narenas; i++)
		if (c->arenas[i].kind == ARENA_PROTO_KIND_FIXED)
			c->fixed_order[n++] = (uint8_t)i;
	for (i = 1; i < n; i++)
		for (j = i;
		     j > 0 && c->arenas[c->fixed_order[j - 1]].block_size >
				      c->arenas[c->fixed_order[j]].block_size;
		     j--) {
			t = c->fixed_order[j];
			c->fixed_order[j] = c->fixed_order[j - 1];
			c->fixed_order[j - 1] = t;
		}
	c->nfixed = n;
	for (i = 0; i < LIB_LUT_MAX / 16; i++) {
		while (k < n && c->arenas[c->fixed_order[k]].block_size <
					(uint64_t)(i + 1) * 16)
			k++;
		c->lut[i] = k < n ? c->fixed_order[k] : LIB_NO_ARENA;
	}
}

static int region_check(struct arena_client *c)
{
	const struct arena_proto_region *r = (const void *)c->base;
	struct arena_proto_arena d;
	uint32_t i;

	if (r->version != ARENA_PROTO_LAYOUT_VERSION)
		return -EPROTO;
	if (!header_ok(r, c->size, c->id))
		return -EBADMSG;
	for (i = 0; i < r->narenas; i++) {
		memcpy(&d, &r->arenas[i], sizeof(d));
		if (!arena_desc_ok(&d, c->size))
			return -EBADMSG;
		arena_adopt(c, i, &d, r->max_clients);
	}
	c->narenas = r->narenas;
	return 0;
}

/*
 * The wait queues: narenas records between the header (and channels)
 * and the client tables, or none from a daemon without them (then
 * nobody waits and arena_alloc_wait() says -ENOTSUP).
 */
static int wait_adopt(struct arena_client *c)
{
	const struct arena_proto_region *r = (const void *)c->base;
	uint64_t off = r->wait_off;

	if (!off) {
		c->wait = lib_no_wait;
		return 0;
	}
	if (off % ARENA_PROTO_CACHELINE || off < sizeof(*r) ||
	    !span_ok(off, r->narenas, sizeof(struct arena_proto_wait),
		     r->clients_off))
		return -EBADMSG;
	c->wait = (struct arena_proto_wait *)(c->base + off);
	return 0;
}

static void client_table_adopt(struct arena_client *c)
{
	const struct arena_proto_region *r = (const void *)c->base;
	uint8_t *t = c->base + r->clients_off +
		     (uint64_t)(c->id - 1) * r->client_stride;

	c->tables = c->base + r->clients_off;
	c->table_stride = r->client_stride;
	c->ctr_off = r->ctr_off;
	c->max_clients = r->max_clients;

	c->ctr = (struct arena_proto_ctr *)(t + r->ctr_off);
	c->bctr = (struct arena_proto_bctr *)(t + r->bctr_off);
	c->ledger = (_Atomic uint64_t *)(t + r->ledger_off);
	c->jnl = (_Atomic uint64_t *)(t + r->jnl_off);
	c->ledger_mask = r->ledger_entries - 1;
}

/*
 * The alignment the mapping needs so that every block is aligned to the
 * largest power of two dividing its size (the daemon aligns data_off as
 * much): read from the header before mapping.  Only a hint; what is
 * mapped is validated as always.
 */
static uint64_t region_align(int fd)
{
	struct arena_proto_region r;
	uint64_t align = ARENA_PROTO_PAGE, b;
	uint32_t i;

	if (pread(fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return align;
	for (i = 0; i < r.narenas && i < ARENA_PROTO_MAX_ARENAS; i++) {
		b = r.arenas[i].block_size & -r.arenas[i].block_size;
		if (r.arenas[i].kind == ARENA_PROTO_KIND_BUDDY)
			b = r.arenas[i].data_len & -r.arenas[i].data_len;
		if (b > align && b <= LIB_MAP_ALIGN_MAX)
			align = b;
	}
	return align;
}

/* Map size bytes of fd at an address that is a multiple of align. */
static void *map_aligned(int fd, uint64_t size, uint64_t align)
{
	uint64_t len = (size + ARENA_PROTO_PAGE - 1) &
		       ~(uint64_t)(ARENA_PROTO_PAGE - 1);
	uint64_t slack = align - ARENA_PROTO_PAGE, head;
	uint8_t *res;
	void *p;
	int err;

	if (!slack)
		return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    0);
	res = mmap(NULL, len + slack, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	head = -(uintptr_t)res & (align - 1);
	p = mmap(res + head, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		munmap(res, len + slack);
		errno = err;
		return MAP_FAILED;
	}
	if (head)
		munmap(res, head);
	if (slack > head)
		munmap(res + head + len, slack - head);
	return p;
}

int region_adopt(struct arena_client *c, int fd, uint64_t size)
{
	struct stat st;
	void *p;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (size < sizeof(struct arena_proto_region) ||
	    (uint64_t)st.st_size < size)
		return -EBADMSG;
	p = map_aligned(fd, size, region_align(fd));
	if (p == MAP_FAILED)
		return -errno;
	c->base = p;
	c->size = size;
	err = region_check(c);
	if (!err)
		err = wait_adopt(c);
	if (err)
		return err;
	client_table_adopt(c);
	classes_build(c);
	c->sole_body = arena_bs_body(0, ARENA_BS_ALLOC, c->id, 1);
	return 0;
}

void region_release(struct arena_client *c)
{
	if (c->base)
		munmap(c->base, c->size);
	c->base = NULL;
}

int arena_info(struct arena_client *c, unsigned idx, struct arena_info *out)
{
	const struct lib_arena *a;

	if (!c || !out)
		return -EINVAL;
	if (idx >= c->narenas)
		return -ENOENT;
	a = &c->arenas[idx];
	out->index = a->index;
	out->kind = a->kind;
	out->block_size = a->block_size;
	out->capacity = a->nblocks;
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		out->capacity = a->nwords; /* chunks */
	return 0;
}
