// SPDX-License-Identifier: MIT
/*
 * The fuzzers' oracle for options and layouts.  The parsers are fuzzed
 * for more than crashes: whatever opts_parse() accepts must be a request
 * that layout_compute() takes (it returns -EINVAL only for requests the
 * parser should have refused), and every layout it computes must keep
 * each table and arena inside the region, page aligned, in order and
 * disjoint, with its sizes adding up.  Those are the properties the
 * daemon and every client rely on when they map the region.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buddy.h"
#include "journal.h"
#include "layout.h"
#include "oracle.h"

#define PAGE ((uint64_t)ARENA_PROTO_PAGE)

void fuzz_fail(const char *file, int line, const char *what)
{
	dprintf(STDERR_FILENO, "%s:%d: oracle failed: %s\n", file, line, what);
	__builtin_trap();
}

void fuzz_quiet(void)
{
	FILE *null = fopen("/dev/null", "w");

	if (!null)
		return;
	stdout = null;
	stderr = null;
}

static int pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static void req_check(const struct layout_req *r)
{
	uint32_t i, j;

	FUZZ_CHECK(r->size > 0);
	FUZZ_CHECK(r->max_clients >= 1 &&
		   r->max_clients <= ARENA_PROTO_MAX_CLIENTS);
	FUZZ_CHECK(pow2(r->ledger_entries) && r->ledger_entries >= 64 &&
		   r->ledger_entries <= (1u << 20));
	FUZZ_CHECK(r->nfixed <= ARENA_PROTO_MAX_ARENAS);
	for (i = 0; i < r->nfixed; i++) {
		const struct layout_class *c = &r->fixed[i];

		FUZZ_CHECK(c->block_size >= ARENA_PROTO_MIN_BLOCK &&
			   c->block_size <= ARENA_PROTO_MAX_FIXED &&
			   c->block_size % 16 == 0);
		FUZZ_CHECK(c->count >= 1 && c->count <= UINT32_MAX);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(r->fixed[j].block_size != c->block_size);
	}
}

/* off + n * unit, or trap on overflow. */
static uint64_t span_end(uint64_t off, uint64_t n, uint64_t unit)
{
	uint64_t len, end;

	FUZZ_CHECK(!__builtin_mul_overflow(n, unit, &len));
	FUZZ_CHECK(!__builtin_add_overflow(off, len, &end));
	return end;
}

static void clients_check(const struct layout *l)
{
	uint64_t ctr = (uint64_t)ARENA_PROTO_STAT_SLOTS * l->narenas *
		       sizeof(struct arena_proto_ctr);

	FUZZ_CHECK(l->hdr_len >= sizeof(struct arena_proto_region));
	FUZZ_CHECK(l->hdr_len % PAGE == 0 && l->clients_off % PAGE == 0);
	if (l->nchan) {
		/* the channel table and its cells sit between them */
		FUZZ_CHECK(l->chan_off == l->hdr_len);
		FUZZ_CHECK(l->chan_cells_off >=
			   l->chan_off +
				   (uint64_t)l->nchan *
					   sizeof(struct arena_proto_chan));
		FUZZ_CHECK(span_end(l->chan_cells_off, l->chan_cells,
				    sizeof(struct arena_proto_cell)) <=
			   l->wait_off);
	} else {
		FUZZ_CHECK(l->wait_off == l->hdr_len);
	}
	/* the wait queues, then the client tables */
	FUZZ_CHECK(l->wait_off % PAGE == 0);
	FUZZ_CHECK(span_end(l->wait_off, l->narenas,
			    sizeof(struct arena_proto_wait)) <= l->clients_off);
	FUZZ_CHECK(l->ctr_off >= sizeof(struct arena_proto_client));
	FUZZ_CHECK(l->bctr_off >= l->ctr_off + ctr);
	FUZZ_CHECK(l->jnl_off % 8 == 0 &&
		   l->jnl_off >=
			   l->bctr_off +
				   ARENA_PROTO_STAT_SLOTS *
					   sizeof(struct arena_proto_bctr));
	FUZZ_CHECK(l->ledger_off % 8 == 0 &&
		   l->ledger_off >= l->jnl_off + ARENA_PROTO_JNL_ENTRIES * 8);
	FUZZ_CHECK(l->client_stride % PAGE == 0);
	FUZZ_CHECK(span_end(l->ledger_off, l->ledger_entries, 8) <=
		   l->client_stride);
}

/* A fixed-slot arena from at least from; returns its end. */
static uint64_t fixed_check(const struct layout_arena *a, uint64_t from)
{
	FUZZ_CHECK(a->nblocks >= 1 && a->nblocks <= UINT32_MAX);
	FUZZ_CHECK(a->nwords == (a->nblocks + 63) / 64);
	FUZZ_CHECK(a->bitmap_off >= from && a->bitmap_off % PAGE == 0);
	FUZZ_CHECK(a->state_off % PAGE == 0 &&
		   a->state_off >= span_end(a->bitmap_off, a->nwords, 64));
	FUZZ_CHECK(a->data_off % PAGE == 0 &&
		   a->data_off >= span_end(a->state_off, a->nblocks, 8));
	FUZZ_CHECK(a->data_off % (a->block_size & -a->block_size) == 0);
	FUZZ_CHECK(a->data_len == a->nblocks * a->block_size);
	FUZZ_CHECK(a->end >= span_end(a->data_off, 1, a->data_len));
	return a->end;
}

/* A buddy arena from at least from; returns its end. */
static uint64_t buddy_check(const struct layout_arena *a, uint64_t from)
{
	uint64_t meta, meta_end;

	FUZZ_CHECK(a->max_order <= ARENA_BUDDY_MAX_ORDER);
	FUZZ_CHECK(a->nblocks == 1ull << a->max_order);
	FUZZ_CHECK(pow2(a->block_size) &&
		   a->block_size >= ARENA_PROTO_MIN_BLOCK);
	FUZZ_CHECK(a->data_len == a->nblocks * a->block_size);
	FUZZ_CHECK(a->data_off >= from && a->data_off % PAGE == 0);
	FUZZ_CHECK(a->data_off % a->data_len == 0);
	FUZZ_CHECK(a->tree_len == 2 * a->nblocks);
	FUZZ_CHECK(a->order_off >= span_end(a->state_off, a->nblocks, 8));
	FUZZ_CHECK(a->tree_off >= span_end(a->order_off, a->nblocks, 1));
	meta = a->state_off;
	meta_end = span_end(a->tree_off, a->tree_len, 1);
	/* the metadata sits in the gap before the data, or after it */
	FUZZ_CHECK(meta >= from);
	FUZZ_CHECK(meta_end <= a->data_off ||
		   meta >= a->data_off + a->data_len);
	FUZZ_CHECK(a->end >= meta_end && a->end >= a->data_off + a->data_len);
	return a->end;
}

static void layout_check(const struct layout *l)
{
	uint64_t end;
	uint32_t i;

	FUZZ_CHECK(l->narenas >= 1 && l->narenas <= ARENA_PROTO_MAX_ARENAS);
	FUZZ_CHECK(l->nbuddy <= 1);
	clients_check(l);
	end = span_end(l->clients_off, l->max_clients, l->client_stride);
	for (i = 0; i < l->narenas; i++) {
		const struct layout_arena *a = &l->arenas[i];

		/* fixed classes first, then the buddy arena, then bump */
		if (a->kind == ARENA_PROTO_KIND_BUMP) {
			FUZZ_CHECK(i == l->narenas - 1 && l->nbump == 1);
			FUZZ_CHECK(a->data_off >= end);
			end = span_end(a->data_off, 1, a->data_len);
		} else if (a->kind == ARENA_PROTO_KIND_BUDDY) {
			FUZZ_CHECK(i == l->narenas - 1 - l->nbump &&
				   l->nbuddy == 1);
			end = buddy_check(a, end);
		} else {
			FUZZ_CHECK(a->kind == ARENA_PROTO_KIND_FIXED);
			FUZZ_CHECK(i < l->narenas - l->nbuddy - l->nbump);
			end = fixed_check(a, end);
		}
	}
	FUZZ_CHECK(l->used == end && end <= l->size);
	if (l->bump_len && !l->nbump) /* a share kept, not yet an arena */
		FUZZ_CHECK(l->bump_off >= end &&
			   span_end(l->bump_off, 1, l->bump_len) <= l->size);
}

int fuzz_split(char *s, size_t len, char **av, int n)
{
	char *p = s, *end = s + len;

	while (p < end && n < FUZZ_MAX_ARGS) {
		if (!strncmp(p, "--config", 8))
			return -1;
		av[n++] = p;
		p += strlen(p) + 1;
	}
	av[n] = NULL;
	return n;
}

void fuzz_opts_check(int rc, const struct opts *o)
{
	static struct layout l; /* 7 KiB */
	int err;

	FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EINVAL);
	if (rc)
		return;
	req_check(&o->req);
	err = layout_compute(&o->req, &l);
	FUZZ_CHECK(err == 0 || err == -ENOSPC);
	if (!err)
		layout_check(&l);
}
