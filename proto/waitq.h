/* SPDX-License-Identifier: MIT */
/*
 * The per-arena wait queue (struct arena_proto_wait in layout.h), shared
 * by libarena (waiters, frees) and arenad (a dead client's cells).
 *
 * A FIFO of tickets with no lock: every step is one CAS on the queue word
 * or on one cell, and every intermediate state can be finished by anyone
 * (a cell claimed but the tail not moved yet, a cell DONE or owned by a
 * dead client at the head), so a process killed between two steps never
 * blocks the others.  Tickets and heads are 32-bit and compared modulo
 * 2^32; at most ARENA_PROTO_WAIT_CELLS tickets are outstanding at once.
 * Nothing read from the region is trusted beyond its own word: the loops
 * are bounded and only the words of w are ever written.
 */
#ifndef ARENA_PROTO_WAITQ_H
#define ARENA_PROTO_WAITQ_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* Is client id alive?  Cells of a dead one are skipped at the head. */
typedef bool (*arena_waitq_alive_fn)(void *ctx, uint32_t id);

static inline uint32_t arena_waitq_head(uint64_t q)
{
	return (uint32_t)q;
}

static inline uint32_t arena_waitq_tail(uint64_t q)
{
	return (uint32_t)(q >> 32);
}

static inline uint32_t arena_waitq_cell_ticket(uint64_t c)
{
	return (uint32_t)(c >> 32);
}

static inline uint32_t arena_waitq_cell_owner(uint64_t c)
{
	return (uint32_t)(c >> 20) & 0xfffu;
}

static inline uint32_t arena_waitq_cell_state(uint64_t c)
{
	return (uint32_t)c & 3u;
}

/* Somebody holds a ticket (q is a load of w->queue). */
static inline bool arena_waitq_waiting(uint64_t q)
{
	return arena_waitq_head(q) != arena_waitq_tail(q);
}

/*
 * Take the next ticket for client id.  Returns 0 with *ticket set, or
 * -EAGAIN when ARENA_PROTO_WAIT_CELLS tickets are outstanding (or the
 * queue is unreadable): wait for the futex word to move and try again.
 */
int arena_waitq_enter(struct arena_proto_wait *w, uint32_t id,
		      uint32_t *ticket);

/*
 * Give ticket t of client id back (served, timed out, interrupted) and
 * move the head past every finished ticket.  Wakes the sleepers when
 * the head moved.
 */
void arena_waitq_leave(struct arena_proto_wait *w, uint32_t t, uint32_t id,
		       arena_waitq_alive_fn alive, void *ctx);

/*
 * Move the head past tickets that are finished or held by a dead client
 * (alive(ctx, owner) false).  Returns true when it moved.
 */
bool arena_waitq_advance(struct arena_proto_wait *w, arena_waitq_alive_fn alive,
			 void *ctx);

/* Something a sleeper may wait for happened: bump the futex, wake all. */
void arena_waitq_kick(struct arena_proto_wait *w);

/*
 * Client id is dead: finish every ticket it holds, move the head on and
 * wake the sleepers.  Returns the number of its tickets finished.
 */
uint32_t arena_waitq_reap(struct arena_proto_wait *w, uint32_t id,
			  arena_waitq_alive_fn alive, void *ctx);

#endif
