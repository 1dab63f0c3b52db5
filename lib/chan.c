// SPDX-License-Identifier: MIT
/*
 * Zero-copy channels: named, bounded, many-producer many-consumer queues
 * of handles in the shared region.  Only the 8-byte handle moves; the
 * block it names stays where it is, and the reference moves with it.
 *
 * Opening and closing go through the daemon (CHAN_OPEN, CHAN_CLOSE): it
 * owns the table, so creation needs no agreement among clients, and it
 * counts endpoints, so it knows when to release what is still queued.
 * Sending and receiving never involve the daemon.  The ring is a bounded
 * MPMC queue after Vyukov's, changed so that a crash at any instruction
 * costs nobody anything (proto/ring.h has the cell word):
 *
 *  - A sender claims a position by one CAS on the cell, FREE(p) ->
 *    WRITING(p, me), not by a CAS on tail: the claim names its claimer.
 *    It then writes the handle and publishes with a store FULL(p).
 *  - A receiver takes by one CAS FULL(p) -> FREE(p + capacity), having
 *    read the handle before: claiming the message and freeing the cell
 *    are the same instruction, so no cell is ever held by a receiver.
 *  - tail and head are only hints of where to start looking.  Positions
 *    are claimed (taken) in order, so every position before the hint is
 *    claimed (taken); a walk passes cells it finds claimed or already on
 *    a later lap.  A dead client's hint that was never moved is passed
 *    over the same way.
 *  - When a client dies, the daemon turns each WRITING(p, dead) cell of
 *    the channels it had open into FREE(p + capacity): receivers pass it
 *    as if it had been taken, senders reuse it on the next lap.  Then it
 *    wakes both sides, since the dead client may have died after making
 *    the other side's condition true and before waking it.
 *
 * Each message reaches exactly one receiver (one CAS takes it), in order
 * per sender (a sender's next claim is past its last one).  Waiting spins
 * a little, then sleeps on a futex word of the channel (shared, not
 * FUTEX_PRIVATE): a side that makes the other side's condition true bumps
 * the word and wakes it when the waiter count says someone sleeps.
 *
 * References (docs/blocks.md, "Channels"): a FULL cell is one reference
 * the channel holds; the daemon counts FULL cells as part of the living's
 * share.  A move is announced in the mover's ledger first (pending),
 * exactly as arena_ref/arena_unref do, and settled last:
 *
 *   send (owner's reference): ledger pending -> CAS the block word,
 *         owner me -> 0 -> claim the cell -> handle -> publish FULL ->
 *         settle
 *   send (ledger reference):  ledger count - 1, pending -> claim ->
 *         handle -> publish FULL -> CAS the block word (version) ->
 *         settle
 *   recv: read FULL(p) and its handle -> ledger pending for it -> CAS
 *         FULL(p) -> FREE(p + cap) -> CAS the block word (version) ->
 *         settle, count + 1
 *
 * The block's count never changes on the way.  Why a crash anywhere is
 * exact: the daemon reconciles a block the dead client held (owner, or
 * any entry in its ledger, pending included) by setting its count to the
 * living's share, live owner + live ledgers + FULL cells.  At every
 * instruction above, the reference being moved is in exactly one of: the
 * mover's owner field or ledger count, a FULL cell, or nowhere while the
 * mover's ledger shows it pending.  If the mover died, the first and the
 * last are the dead's share and are dropped; a FULL cell is the channel's
 * and is kept, to be received by a live receiver or dropped when the
 * channel is released.  A WRITING cell holds no reference (the sender's
 * is still in its owner field or ledger, pending), so skipping it loses
 * nothing; a receiver that died after its CAS took the reference out of
 * the ring and is pending in its ledger, so the daemon drops it once,
 * and one that died before its CAS left it FULL, counted once, for the
 * next receiver.  While a live mover is between its pending and its
 * settle, the daemon sees the pending entry (or the word's version move)
 * and tries again, so its snapshot never sees a reference twice or not
 * at all.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "internal.h"
#include "ring.h"
#include "wire.h"

#define CHAN_SPIN 256 /* polls before sleeping */

struct arena_chan {
	struct arena_client *c;
	struct arena_proto_chan *ch;
	struct arena_proto_cell *ring;
	uint32_t slot;
	uint32_t cap;
	int spin; /* polls before sleeping */
	uint64_t mask;
};

/* CHAN_OPEN or CHAN_CLOSE and its CHAN_OK (ctl.c). */
static int chan_ctl(struct arena_client *c, uint16_t type, const void *req,
		    uint32_t len, struct arena_proto_chan_ok *ok)
{
	int n = ctl_call(c, type, req, len, ARENA_MSG_CHAN_OK, ok, sizeof(*ok));

	return n < 0 ? n : 0;
}

/* The channel record of slot, checked against the mapping. */
static int chan_bind(struct arena_chan *q, uint32_t slot, uint32_t cap)
{
	const struct arena_proto_region *r = (const void *)q->c->base;
	uint64_t nchan = r->nchan, ncells = r->chan_cells, ring;
	uint64_t toff = r->chan_off, coff = r->chan_cells_off;
	uint64_t size = q->c->size;

	if (slot >= nchan || toff % 64 || coff % 16 || toff > size ||
	    nchan * sizeof(struct arena_proto_chan) > size - toff ||
	    coff > size ||
	    ncells * sizeof(struct arena_proto_cell) > size - coff)
		return -EPROTO;
	q->ch = (struct arena_proto_chan *)(q->c->base + toff) + slot;
	ring = __atomic_load_n(&q->ch->ring, __ATOMIC_ACQUIRE);
	if (cap < 2 || cap & (cap - 1) || ring > ncells ||
	    cap > ncells - ring ||
	    __atomic_load_n(&q->ch->capacity, __ATOMIC_RELAXED) != cap)
		return -EPROTO;
	q->ring = (struct arena_proto_cell *)(q->c->base + coff) + ring;
	q->slot = slot;
	q->cap = cap;
	q->mask = cap - 1;
	return 0;
}

/* ARENA_CHAN_SPIN=N (0..1000000) overrides the polls before a sleep. */
static int spin_polls(void)
{
	const char *e = secure_getenv("ARENA_CHAN_SPIN");
	char *end;
	long v;

	if (!e || !*e)
		return CHAN_SPIN;
	v = strtol(e, &end, 10);
	return *end || v < 0 || v > 1000000 ? CHAN_SPIN : (int)v;
}

int arena_chan_open(struct arena_client *c, const char *name, unsigned capacity,
		    struct arena_chan **out)
{
	struct arena_proto_chan_open m;
	struct arena_proto_chan_close cl = { 0 };
	struct arena_proto_chan_ok ok;
	struct arena_chan *q;
	size_t len;
	int err;

	if (!c || !name || !out)
		return -EINVAL;
	len = strnlen(name, ARENA_PROTO_CHAN_NAME);
	if (len == 0)
		return -EINVAL;
	if (len >= ARENA_PROTO_CHAN_NAME)
		return -ENAMETOOLONG;
	if (capacity == 0 || capacity > ARENA_PROTO_CHAN_MAX_CAP)
		return -EINVAL;
	if (client_inherited(c))
		return -ECHILD;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->c = c;
	q->spin = spin_polls();
	memset(&m, 0, sizeof(m));
	memcpy(m.name, name, len);
	m.capacity = capacity;
	err = chan_ctl(c, ARENA_MSG_CHAN_OPEN, &m, sizeof(m), &ok);
	if (!err) {
		err = chan_bind(q, ok.slot, ok.capacity);
		if (err) {
			cl.slot = ok.slot;
			chan_ctl(c, ARENA_MSG_CHAN_CLOSE, &cl, sizeof(cl), &ok);
		}
	}
	if (err) {
		free(q);
		return err;
	}
	*out = q;
	return 0;
}

int arena_chan_close(struct arena_chan *q)
{
	struct arena_proto_chan_close cl = { 0 };
	struct arena_proto_chan_ok ok;
	int err;

	if (!q)
		return -EINVAL;
	cl.slot = q->slot;
	err = client_inherited(q->c) ? 0
				     : chan_ctl(q->c, ARENA_MSG_CHAN_CLOSE, &cl,
						sizeof(cl), &ok);
	free(q);
	return err;
}

unsigned arena_chan_capacity(const struct arena_chan *q)
{
	return q ? q->cap : 0;
}

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

static void wake(uint32_t *word, uint32_t *waiters)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!__atomic_load_n(waiters, __ATOMIC_RELAXED))
		return;
	__atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
	futex(word, FUTEX_WAKE, INT_MAX, NULL);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * The next position to look at after pos, which is taken: pos + 1, or
 * the hint at if that is further on (pos is far behind).
 */
static inline uint64_t next_pos(uint64_t *at, uint64_t pos)
{
	uint64_t h = __atomic_load_n(at, __ATOMIC_RELAXED);

	return h > pos ? h : pos + 1;
}

/*
 * Claim the cell of the first free position, recording this client in
 * it (proto/ring.h): its position, or -EAGAIN when the ring is full.
 * Every position before tail is claimed, so the walk from tail can meet
 * a cell still on the previous lap (full) or on this lap and claimed, or
 * later (claimed and taken since): both are passed.
 */
static int64_t claim_tail(struct arena_chan *q)
{
	uint64_t pos = __atomic_load_n(&q->ch->tail, __ATOMIC_RELAXED), w;
	uint64_t mine = arena_cell_word(ARENA_CELL_WRITING, q->c->id, 0);
	struct arena_proto_cell *cell;
	int64_t dif;

	for (;;) {
		cell = &q->ring[pos & q->mask];
		w = __atomic_load_n(&cell->seq, __ATOMIC_ACQUIRE);
		dif = arena_cell_dist(w, pos);
		if (dif < 0)
			return -EAGAIN;
		if (dif > 0) {
			pos = next_pos(&q->ch->tail, pos);
		} else if (arena_cell_state(w) != ARENA_CELL_FREE) {
			pos++;
		} else if (__atomic_compare_exchange_n(
				   &cell->seq, &w, mine | arena_cell_pos(pos),
				   false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			return (int64_t)(pos & INT64_MAX);
		}
	}
}

/* Put h into the ring; -EAGAIN when full. */
static int enqueue(struct arena_chan *q, uint64_t h)
{
	struct arena_proto_cell *cell;
	int64_t pos = claim_tail(q);

	if (pos < 0)
		return (int)pos;
	ARENA_CRASHPOINT(); /* claimed: the daemon skips it if we die */
	__atomic_store_n(&q->ch->tail, (uint64_t)pos + 1, __ATOMIC_RELAXED);
	cell = &q->ring[(uint64_t)pos & q->mask];
	__atomic_store_n(&cell->handle, h, __ATOMIC_RELAXED);
	ARENA_CRASHPOINT();
	__atomic_store_n(&cell->seq,
			 arena_cell_word(ARENA_CELL_FULL, 0, (uint64_t)pos),
			 __ATOMIC_RELEASE);
	ARENA_CRASHPOINT(); /* published, nobody woken: the daemon wakes */
	wake(&q->ch->rx_futex, &q->ch->rx_waiters);
	return 0;
}

/*
 * The block word with the version bumped and, when swap, owner changed
 * from "from" to "to".  Returns false, changing nothing, when swap and
 * the owner is not from, or when the block is not live (a receiver
 * already dropped the last reference).
 */
static bool word_move(struct lib_arena *a, uint32_t idx, uint32_t gen,
		      bool swap, uint32_t from, uint32_t to)
{
	uint64_t s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	uint32_t owner;

	do {
		if (!arena_bs_is_live(s, gen))
			return false;
		owner = arena_bs_owner(s);
		if (swap && owner != from)
			return false;
		if (swap)
			owner = to;
	} while (!atomic_compare_exchange_weak_explicit(
		&a->state[idx], &s,
		arena_bs_next(s, gen, ARENA_BS_ALLOC, owner, arena_bs_count(s)),
		memory_order_acq_rel, memory_order_acquire));
	return true;
}

static struct lib_arena *chan_resolve(struct arena_client *c, uint64_t h,
				      uint32_t *idx)
{
	uint32_t ai = (uint32_t)(h >> 52) - c->arena_base;

	if (ai >= c->narenas)
		return NULL;
	/* bump blocks have no per-block word to move references with */
	if (c->arenas[ai].kind != ARENA_PROTO_KIND_FIXED &&
	    c->arenas[ai].kind != ARENA_PROTO_KIND_BUDDY)
		return NULL;
	*idx = (uint32_t)h;
	return *idx < c->arenas[ai].nblocks ? &c->arenas[ai] : NULL;
}

/*
 * The allocator's implicit reference leaves the owner field by CAS before
 * the cell is published (and comes back if the ring is full), so one
 * reference can never be queued twice; a ledger reference leaves the
 * ledger by ledger_take.  Either way the ledger shows the move pending
 * until the block word has moved on.
 */
static int try_send(struct arena_chan *q, arena_handle_t h)
{
	struct arena_client *c = q->c;
	uint32_t idx, gen = (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK;
	struct lib_arena *a = chan_resolve(c, h, &idx);
	_Atomic uint64_t *e = NULL;
	uint64_t s, key;
	bool ledger = false;
	int err;

	if (!a || gen == 0)
		return -EINVAL;
	s = atomic_load_explicit(&a->state[idx], memory_order_acquire);
	if (!arena_bs_is_live(s, gen))
		return -ESTALE;
	key = arena_ledger_key(a->index, idx);
	if (atomic_load_explicit(&c->ledger_refs, memory_order_relaxed)) {
		e = ledger_take(c, key);
		ledger = e != NULL;
	}
	if (!e) {
		if (arena_bs_owner(s) != c->id)
			return -EINVAL; /* not a reference this client holds */
		e = ledger_acquire(c, key);
		if (!e)
			return -ENOSPC;
		ARENA_CRASHPOINT();
		if (!word_move(a, idx, gen, true, c->id, 0)) {
			ledger_settle(e, 0);
			return arena_bs_is_live(atomic_load(&a->state[idx]),
						gen)
				       ? -EINVAL
				       : -ESTALE;
		}
	}
	ARENA_CRASHPOINT();
	err = enqueue(q, h);
	if (err) {
		if (!ledger) /* the owner field again, as before */
			word_move(a, idx, gen, true, 0, c->id);
		ARENA_CRASHPOINT();
		ledger_settle(e, ledger ? 1 : 0);
		return err;
	}
	if (ledger) {
		word_move(a, idx, gen, false, 0, 0);
		ARENA_CRASHPOINT();
		atomic_fetch_sub_explicit(&c->ledger_refs, 1,
					  memory_order_relaxed);
	}
	ledger_settle(e, 0);
	return 0;
}

/*
 * The handle of the first published position, taken by one CAS that
 * also frees its cell (proto/ring.h), with its move announced in this
 * client's ledger first: 0 with *e the pending entry (NULL for a handle
 * no sender could have queued), -EAGAIN when empty, -ENOSPC.  Every
 * position before head is taken; a cell already on a later lap was taken
 * by another receiver (or skipped by the daemon) and is passed.
 */
static int take_head(struct arena_chan *q, uint64_t *out, struct lib_arena **a,
		     uint32_t *idx, _Atomic uint64_t **e)
{
	struct arena_client *c = q->c;
	uint64_t pos = __atomic_load_n(&q->ch->head, __ATOMIC_RELAXED), w, h;
	struct arena_proto_cell *cell;
	int64_t dif;

	for (;;) {
		cell = &q->ring[pos & q->mask];
		w = __atomic_load_n(&cell->seq, __ATOMIC_ACQUIRE);
		dif = arena_cell_dist(w, pos);
		if (dif < 0 || (dif == 0 && !arena_cell_full(w)))
			return -EAGAIN; /* not published yet */
		if (dif > 0) {
			pos = next_pos(&q->ch->head, pos);
			continue;
		}
		h = __atomic_load_n(&cell->handle, __ATOMIC_RELAXED);
		*a = chan_resolve(c, h, idx);
		*e = *a ? ledger_acquire(c, arena_ledger_key((*a)->index, *idx))
			: NULL;
		if (*a && !*e)
			return -ENOSPC;
		ARENA_CRASHPOINT();
		if (__atomic_compare_exchange_n(
			    &cell->seq, &w,
			    arena_cell_word(ARENA_CELL_FREE, 0, pos + q->cap),
			    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			break;
		if (*e)
			ledger_settle(*e, 0);
	}
	ARENA_CRASHPOINT(); /* taken: the reference is ours, pending */
	__atomic_store_n(&q->ch->head, pos + 1, __ATOMIC_RELAXED);
	*out = h;
	return 0;
}

static int try_recv(struct arena_chan *q, arena_handle_t *out)
{
	struct arena_client *c = q->c;
	struct lib_arena *a;
	_Atomic uint64_t *e;
	uint32_t idx;
	uint64_t h;
	int err = take_head(q, &h, &a, &idx, &e);

	if (err)
		return err;
	ARENA_CRASHPOINT(); /* room made, nobody woken: the daemon wakes */
	wake(&q->ch->tx_futex, &q->ch->tx_waiters);
	if (!e)
		return -EBADMSG;
	word_move(a, idx, (uint32_t)(h >> 32) & ARENA_HANDLE_GEN_MASK, false, 0,
		  0);
	ARENA_CRASHPOINT();
	ledger_settle(e, 1);
	atomic_fetch_add_explicit(&c->ledger_refs, 1, memory_order_relaxed);
	*out = h;
	return 0;
}

static void deadline_of(int timeout_ms, struct timespec *d)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += timeout_ms / 1000;
	d->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

/* Time left until d into *left; false when it has passed. */
static bool time_left(const struct timespec *d, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = d->tv_sec - now.tv_sec;
	left->tv_nsec = d->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_nsec += 1000000000L;
		left->tv_sec--;
	}
	return left->tv_sec >= 0;
}

/*
 * Run op until it stops saying -EAGAIN or the time is up: spin, then
 * sleep on word.  The waiter count goes up before the last try, and the
 * other side bumps word after making op possible and before reading the
 * count (both with full fences), so a wake-up cannot be lost.
 */
static int wait_for(struct arena_chan *q, int timeout_ms, uint32_t *word,
		    uint32_t *waiters,
		    int (*op)(struct arena_chan *, uint64_t *), uint64_t *arg)
{
	struct timespec d, left;
	uint32_t v;
	int err, i;

	for (i = 0;; i++) {
		err = op(q, arg);
		if (err != -EAGAIN || timeout_ms == 0)
			return err;
		if (i >= q->spin)
			break;
		cpu_relax();
	}
	if (timeout_ms > 0)
		deadline_of(timeout_ms, &d);
	for (;;) {
		v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
		err = op(q, arg);
		if (err != -EAGAIN) {
			__atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
			return err;
		}
		if (timeout_ms > 0 && !time_left(&d, &left)) {
			__atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
			return -ETIMEDOUT;
		}
		futex(word, FUTEX_WAIT, v, timeout_ms > 0 ? &left : NULL);
		__atomic_fetch_sub(waiters, 1, __ATOMIC_RELAXED);
	}
}

static int send_op(struct arena_chan *q, uint64_t *h)
{
	return try_send(q, *h);
}

static int recv_op(struct arena_chan *q, uint64_t *h)
{
	return try_recv(q, h);
}

int arena_chan_send(struct arena_chan *q, arena_handle_t h)
{
	if (!q)
		return -EINVAL;
	if (client_inherited(q->c))
		return -ECHILD;
	return try_send(q, h);
}

int arena_chan_send_wait(struct arena_chan *q, arena_handle_t h, int timeout_ms)
{
	if (!q || timeout_ms < -1)
		return -EINVAL;
	if (client_inherited(q->c))
		return -ECHILD;
	return wait_for(q, timeout_ms, &q->ch->tx_futex, &q->ch->tx_waiters,
			send_op, &h);
}

int arena_chan_recv(struct arena_chan *q, arena_handle_t *h, int timeout_ms)
{
	uint64_t v = 0;
	int err;

	if (!q || !h || timeout_ms < -1)
		return -EINVAL;
	if (client_inherited(q->c))
		return -ECHILD;
	err = wait_for(q, timeout_ms, &q->ch->rx_futex, &q->ch->rx_waiters,
		       recv_op, &v);
	if (!err)
		*h = v;
	return err;
}
