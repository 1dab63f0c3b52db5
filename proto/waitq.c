// SPDX-License-Identifier: MIT
/*
 * The per-arena wait queue: see waitq.h for the protocol and layout.h
 * for the words.  Order of steps, and why a kill between any two is
 * harmless:
 *
 *   enter   claim cell t (EMPTY(t) -> WAITING(t, me)), then move the tail
 *           past t: a claimed cell behind the tail is seen by the next
 *           enterer, who moves the tail for it
 *   leave   WAITING(t, me) -> DONE(t), then advance
 *   advance recycle the head's cell (DONE, or WAITING by a dead client)
 *           to EMPTY(h + CELLS), then move the head past h: a recycled
 *           cell at the head is seen by the next advance, which moves the
 *           head for it
 *
 * So a ticket is never lost or served twice, and a dead waiter's cell is
 * skipped by the next advance once its client is known dead (arenad's
 * reap, or a waiter that checks the client's state word).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crashpoint.h"
#include "waitq.h"

#define CELLS ARENA_PROTO_WAIT_CELLS
#define TRIES (1u << 16) /* CAS failures tolerated: others progressed */
#define HEAD_MASK 0xffffffffull

static uint64_t *cell(struct arena_proto_wait *w, uint32_t t)
{
	return &w->cell[t % CELLS];
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static bool cas(uint64_t *p, uint64_t old, uint64_t new)
{
	return __atomic_compare_exchange_n(p, &old, new, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/* Move the tail past ticket t, if nobody has yet. */
static void tail_past(struct arena_proto_wait *w, uint32_t t)
{
	uint64_t q = load(&w->queue);
	unsigned n;

	for (n = 0; n < TRIES && arena_waitq_tail(q) == t; n++)
		if (__atomic_compare_exchange_n(&w->queue, &q, q + (1ull << 32),
						false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
}

int arena_waitq_enter(struct arena_proto_wait *w, uint32_t id, uint32_t *ticket)
{
	uint64_t q, c;
	uint32_t t;
	unsigned n;

	for (n = 0; n < TRIES; n++) {
		q = load(&w->queue);
		t = arena_waitq_tail(q);
		if (t - arena_waitq_head(q) >= CELLS)
			return -EAGAIN;
		c = load(cell(w, t));
		if (arena_waitq_cell_ticket(c) != t)
			continue; /* a stale read: the cell is recycled */
		if (arena_waitq_cell_state(c) != ARENA_PROTO_WAIT_EMPTY) {
			tail_past(w, t); /* claimed, the tail not moved yet */
			continue;
		}
		if (!cas(cell(w, t), c,
			 arena_proto_wait_cell(t, id,
					       ARENA_PROTO_WAIT_WAITING)))
			continue;
		ARENA_CRASHPOINT();
		tail_past(w, t);
		*ticket = t;
		return 0;
	}
	return -EAGAIN;
}

/* The head's cell c is finished: the ticket was given back, or its owner
 * is dead. */
static bool finished(uint64_t c, arena_waitq_alive_fn alive, void *ctx)
{
	uint32_t st = arena_waitq_cell_state(c);

	if (st == ARENA_PROTO_WAIT_DONE)
		return true;
	return st == ARENA_PROTO_WAIT_WAITING &&
	       !alive(ctx, arena_waitq_cell_owner(c));
}

bool arena_waitq_advance(struct arena_proto_wait *w, arena_waitq_alive_fn alive,
			 void *ctx)
{
	bool moved = false;
	uint64_t q, c;
	uint32_t h;
	unsigned n;

	for (n = 0; n < 4 * CELLS + TRIES; n++) {
		q = load(&w->queue);
		h = arena_waitq_head(q);
		if (h == arena_waitq_tail(q))
			break;
		c = load(cell(w, h));
		if (arena_waitq_cell_ticket(c) == h + CELLS &&
		    arena_waitq_cell_state(c) == ARENA_PROTO_WAIT_EMPTY) {
			if (cas(&w->queue, q, (q & ~HEAD_MASK) | (h + 1u)))
				moved = true;
			continue;
		}
		if (arena_waitq_cell_ticket(c) != h || !finished(c, alive, ctx))
			break; /* a live waiter's turn (or a scribbled cell) */
		cas(cell(w, h), c,
		    arena_proto_wait_cell(h + CELLS, 0,
					  ARENA_PROTO_WAIT_EMPTY));
		ARENA_CRASHPOINT();
	}
	return moved;
}

void arena_waitq_kick(struct arena_proto_wait *w)
{
	__atomic_fetch_add(&w->futex, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &w->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void arena_waitq_leave(struct arena_proto_wait *w, uint32_t t, uint32_t id,
		       arena_waitq_alive_fn alive, void *ctx)
{
	cas(cell(w, t), arena_proto_wait_cell(t, id, ARENA_PROTO_WAIT_WAITING),
	    arena_proto_wait_cell(t, id, ARENA_PROTO_WAIT_DONE));
	ARENA_CRASHPOINT();
	if (arena_waitq_advance(w, alive, ctx) &&
	    arena_waitq_waiting(load(&w->queue)))
		arena_waitq_kick(w); /* the new head, if any, may try now */
}

uint32_t arena_waitq_reap(struct arena_proto_wait *w, uint32_t id,
			  arena_waitq_alive_fn alive, void *ctx)
{
	uint32_t i, n = 0;
	uint64_t c;

	for (i = 0; i < CELLS; i++) {
		c = load(&w->cell[i]);
		if (arena_waitq_cell_owner(c) != id ||
		    arena_waitq_cell_state(c) != ARENA_PROTO_WAIT_WAITING)
			continue;
		if (cas(&w->cell[i], c,
			arena_proto_wait_cell(arena_waitq_cell_ticket(c), id,
					      ARENA_PROTO_WAIT_DONE)))
			n++;
	}
	if (arena_waitq_advance(w, alive, ctx) || n)
		arena_waitq_kick(w);
	return n;
}
