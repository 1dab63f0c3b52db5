// SPDX-License-Identifier: MIT
/*
 * The channel table (proto/layout.h): the daemon names channels, carves
 * their rings out of the cell area, counts endpoints and releases what is
 * left queued when the last endpoint is gone.
 *
 * Opening and closing are control-path messages, so only this one thread
 * ever writes a slot's name, capacity and ring, always while no endpoint
 * exists: a client learns the slot from CHAN_OK after the slot is ready,
 * and a slot is reset only after its last endpoint closed or died.  What
 * the daemon decides by is its private copy (struct chan_slot); the table
 * in the region is what clients read, checked by them before use.
 *
 * Releasing a channel drains its ring as a receiver that no one races
 * (there are no endpoints left): every FULL cell holds one reference,
 * dropped with reclaim_chan_drop(), which frees blocks that reach zero.
 * A cell claimed by a sender that died before publishing it holds no
 * reference (the dead sender's reclaim settles that block without the
 * ring) and is left alone.  While a channel lives on, the cells a dead
 * client claimed are skipped when it dies (skip_dead), so that its
 * receivers do not wait forever at that position.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "reclaim.h"
#include "ring.h"
#include "wire.h"

int chans_init(struct chans *t, const struct region *r, const struct layout *l)
{
	memset(t, 0, sizeof(*t));
	t->base = r->base;
	t->size = r->size;
	t->nchan = l->nchan;
	t->ncells = l->chan_cells;
	t->max_clients = l->max_clients;
	if (!t->nchan)
		return 0;
	t->table = (struct arena_proto_chan *)(r->base + l->chan_off);
	t->cells = (struct arena_proto_cell *)(r->base + l->chan_cells_off);
	t->slot = calloc(t->nchan, sizeof(*t->slot));
	return t->slot ? 0 : -ENOMEM;
}

void chans_fini(struct chans *t)
{
	uint32_t i;

	for (i = 0; t->slot && i < t->nchan; i++)
		free(t->slot[i].opens);
	free(t->slot);
	t->slot = NULL;
}

static uint32_t cap_round(uint32_t cap)
{
	uint32_t c = 2;

	while (c < cap)
		c <<= 1;
	return c;
}

/* The first run of cap free cells, or UINT64_MAX. */
static uint64_t ring_find(const struct chans *t, uint32_t cap)
{
	uint64_t at = 0, lo, hi;
	uint32_t i;
	int moved = 1;

	while (moved) {
		moved = 0;
		if (at + cap > t->ncells)
			return UINT64_MAX;
		for (i = 0; i < t->nchan; i++) {
			if (!t->slot[i].capacity)
				continue;
			lo = t->slot[i].ring;
			hi = lo + t->slot[i].capacity;
			if (at < hi && lo < at + cap) {
				at = hi;
				moved = 1;
			}
		}
	}
	return at;
}

static void ring_init(struct chans *t, uint32_t i)
{
	struct arena_proto_chan *ch = &t->table[i];
	struct chan_slot *sl = &t->slot[i];
	uint32_t j;

	__atomic_store_n(&ch->state, ARENA_PROTO_CHAN_FREE, __ATOMIC_RELEASE);
	for (j = 0; j < sl->capacity; j++) {
		__atomic_store_n(&t->cells[sl->ring + j].handle, 0,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&t->cells[sl->ring + j].seq, j,
				 __ATOMIC_RELAXED);
	}
	memcpy(ch->name, sl->name, sizeof(ch->name));
	__atomic_store_n(&ch->capacity, sl->capacity, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->ring, sl->ring, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->tail, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->head, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->rx_futex, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->rx_waiters, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->tx_futex, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->tx_waiters, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ch->state, ARENA_PROTO_CHAN_LIVE, __ATOMIC_RELEASE);
}

static int slot_find(const struct chans *t, const char *name, uint32_t *free)
{
	uint32_t i;

	*free = UINT32_MAX;
	for (i = 0; i < t->nchan; i++) {
		if (!t->slot[i].capacity) {
			if (*free == UINT32_MAX)
				*free = i;
			continue;
		}
		if (!strncmp(t->slot[i].name, name, ARENA_PROTO_CHAN_NAME))
			return (int)i;
	}
	return -1;
}

static int endpoint_add(struct chans *t, uint32_t i, uint32_t id)
{
	struct chan_slot *sl = &t->slot[i];

	if (!sl->opens) {
		sl->opens = calloc(t->max_clients + 1, sizeof(*sl->opens));
		if (!sl->opens)
			return -ENOMEM;
	}
	if (sl->opens[id] == UINT16_MAX)
		return -EMFILE;
	sl->opens[id]++;
	sl->endpoints++;
	return 0;
}

int chans_open(struct chans *t, uint32_t id, const char *name, uint32_t cap,
	       uint32_t *cap_out)
{
	struct chan_slot *sl;
	uint32_t fr;
	uint64_t ring;
	int i, err;

	if (id == 0 || id > t->max_clients)
		return -EINVAL;
	if (cap == 0 || cap > ARENA_PROTO_CHAN_MAX_CAP)
		return -EINVAL;
	i = slot_find(t, name, &fr);
	if (i >= 0) {
		err = endpoint_add(t, (uint32_t)i, id);
		if (err)
			return err;
		*cap_out = t->slot[i].capacity;
		return i;
	}
	if (fr == UINT32_MAX)
		return -ENFILE;
	cap = cap_round(cap);
	ring = ring_find(t, cap);
	if (ring == UINT64_MAX)
		return -ENOSPC;
	sl = &t->slot[fr];
	memset(sl->name, 0, sizeof(sl->name));
	strncpy(sl->name, name, sizeof(sl->name) - 1);
	sl->ring = ring;
	sl->endpoints = 0;
	err = endpoint_add(t, fr, id);
	if (err)
		return err;
	sl->capacity = cap;
	ring_init(t, fr);
	LOG(LOG_INFO, "channel '%s' created by client %u: %u cells at %llu",
	    sl->name, id, cap, (unsigned long long)ring);
	*cap_out = cap;
	return (int)fr;
}

/* No endpoint left: drop what is queued and free the slot. */
static void release(struct chans *t, uint32_t i, uint32_t id)
{
	struct arena_proto_chan *ch = &t->table[i];
	struct chan_slot *sl = &t->slot[i];
	struct arena_proto_cell *ring = t->cells + sl->ring;
	uint32_t j, dropped = 0, freed = 0, lost = 0;
	uint64_t w, h;
	int rc;

	for (j = 0; j < sl->capacity; j++) {
		w = __atomic_load_n(&ring[j].seq, __ATOMIC_ACQUIRE);
		if (!arena_cell_full(w))
			continue; /* free, or claimed by a sender that died */
		h = __atomic_load_n(&ring[j].handle, __ATOMIC_RELAXED);
		if (!__atomic_compare_exchange_n(
			    &ring[j].seq, &w,
			    arena_cell_word(ARENA_CELL_FREE, 0,
					    arena_cell_pos(w) + sl->capacity),
			    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue; /* a client with no endpoint took it */
		rc = reclaim_chan_drop(t->base, t->size, h, id);
		dropped++;
		if (rc > 0)
			freed++;
		else if (rc < 0)
			lost++;
	}
	__atomic_store_n(&ch->state, ARENA_PROTO_CHAN_FREE, __ATOMIC_RELEASE);
	LOG(LOG_INFO,
	    "channel '%s' released: %u queued references dropped, %u blocks "
	    "freed%s",
	    sl->name, dropped, freed, lost ? ", some handles were stale" : "");
	free(sl->opens);
	memset(sl, 0, sizeof(*sl));
}

static void futex_wake(uint32_t *word)
{
	__atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Client id is dead: every cell of channel i it claimed and never
 * published becomes free for the next lap, as if a receiver had taken
 * it (proto/ring.h), so receivers go past it.  Such a cell holds no
 * reference: the sender's reference is still in its ledger or owner
 * field, pending, and reclaim settles it without the ring.  Then both
 * sides are woken, since the dead client may have died between making
 * the other side's condition true and waking it.  Returns the cells
 * skipped.
 */
static uint32_t skip_dead(struct chans *t, uint32_t i, uint32_t id)
{
	struct arena_proto_chan *ch = &t->table[i];
	struct chan_slot *sl = &t->slot[i];
	struct arena_proto_cell *ring = t->cells + sl->ring;
	uint32_t j, n = 0;
	uint64_t w;

	for (j = 0; j < sl->capacity; j++) {
		w = __atomic_load_n(&ring[j].seq, __ATOMIC_ACQUIRE);
		if (arena_cell_state(w) != ARENA_CELL_WRITING ||
		    arena_cell_claimer(w) != id)
			continue;
		if (__atomic_compare_exchange_n(
			    &ring[j].seq, &w,
			    arena_cell_word(ARENA_CELL_FREE, 0,
					    arena_cell_pos(w) + sl->capacity),
			    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			n++;
	}
	futex_wake(&ch->rx_futex);
	futex_wake(&ch->tx_futex);
	return n;
}

int chans_close(struct chans *t, uint32_t id, uint32_t slot)
{
	struct chan_slot *sl;

	if (slot >= t->nchan || id == 0 || id > t->max_clients)
		return -EBADF;
	sl = &t->slot[slot];
	if (!sl->capacity || !sl->opens || !sl->opens[id])
		return -EBADF;
	sl->opens[id]--;
	if (--sl->endpoints == 0)
		release(t, slot, id);
	return 0;
}

void chans_client_gone(struct chans *t, uint32_t id)
{
	uint32_t i, n;

	if (id == 0 || id > t->max_clients)
		return;
	for (i = 0; i < t->nchan; i++) {
		struct chan_slot *sl = &t->slot[i];

		if (!sl->capacity || !sl->opens || !sl->opens[id])
			continue;
		n = skip_dead(t, i, id);
		if (n)
			LOG(LOG_INFO,
			    "channel '%s': %u cells client %u claimed and "
			    "never filled are skipped",
			    sl->name, n, id);
		sl->endpoints -= sl->opens[id];
		sl->opens[id] = 0;
		if (sl->endpoints == 0)
			release(t, i, id);
	}
}

uint32_t chans_stats(const struct chans *t, void *buf)
{
	struct arena_proto_chan_stats h = { 0 };
	struct arena_proto_chan_rec r;
	const struct arena_proto_chan *ch;
	uint64_t head, tail;
	uint32_t i;

	for (i = 0; i < t->nchan; i++) {
		if (!t->slot[i].capacity)
			continue;
		h.total++;
		if (h.nchan == ARENA_PROTO_MAX_CHAN_RECS)
			continue;
		ch = &t->table[i];
		memset(&r, 0, sizeof(r));
		memcpy(r.name, t->slot[i].name, sizeof(r.name));
		r.capacity = t->slot[i].capacity;
		r.endpoints = t->slot[i].endpoints;
		head = __atomic_load_n(&ch->head, __ATOMIC_ACQUIRE);
		tail = __atomic_load_n(&ch->tail, __ATOMIC_ACQUIRE);
		if (head > tail) /* read apart, or scribbled */
			head = tail;
		r.sends = tail;
		r.receives = head;
		r.depth = tail - head > r.capacity ? r.capacity : tail - head;
		r.receives = r.sends - r.depth;
		memcpy((char *)buf + arena_proto_chan_stats_len(h.nchan), &r,
		       sizeof(r));
		h.nchan++;
	}
	memcpy(buf, &h, sizeof(h));
	return arena_proto_chan_stats_len(h.nchan);
}
