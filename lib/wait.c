// SPDX-License-Identifier: MIT
/*
 * Waiting for a block: arena_alloc_wait().
 *
 * Design.  Every arena has a wait queue in the region (struct
 * arena_proto_wait, proto/waitq.h): a ticket FIFO whose cells record
 * which client holds which ticket, and a futex word.  A caller that finds
 * the arena full takes a ticket and sleeps on the futex; only the waiter
 * whose ticket is at the head tries to allocate, so waiters of one arena
 * are served in the order they took their tickets, and none can starve
 * while later ones succeed.  A plain arena_alloc() does not queue: it may
 * still take a block that a waiter was woken for (waiting is for
 * capacity, not a reservation), and arena_alloc_wait() with timeout 0 is
 * such a plain try.  The head waiter of a buddy arena holds back those
 * behind it even when they want smaller blocks: strict order is what
 * keeps a large request from starving.
 *
 * Wake-ups.  Whoever gives a block back to the shared arena checks, with
 * one load of the queue word (a line written only while somebody waits),
 * whether anybody waits; only then does it bump the futex word and wake
 * the sleepers.  The free is a seq_cst CAS or is followed by a seq_cst
 * fence, and a waiter takes its ticket with a seq_cst CAS before it reads
 * the futex word and tries, so either the waiter's try sees the block or
 * the free sees the waiter (no lost wake-up).
 *
 * Magazines.  A block freed into a thread's magazine is invisible to
 * other processes.  So a thread that frees while somebody waits empties
 * its magazine of that arena (all orders for buddy) into the arena and
 * wakes the waiters, and a waiter empties its own thread's magazines
 * before it sleeps.  Blocks that other threads cached before anybody
 * waited stay cached until those threads free in that arena, exit or
 * detach; a waiter cannot take them (a MAG block is its live owner's
 * alone, DESIGN.md rule 3), and asking them would need a signal or a
 * check on every allocation.
 *
 * Death.  A killed waiter's cell still says WAITING(ticket, client).
 * arenad marks a dead client's cells DONE when it reclaims the client
 * (before the id can be reused), and waiters skip, at the head, a cell
 * whose client's table no longer says LIVE, so the queue moves on
 * without the daemon too.  A waiter holds no block while it waits; one
 * killed right after its allocation holds an ordinary allocated block,
 * reclaimed as any other.  Every step on the queue is one CAS that
 * anybody can finish (waitq.c), with a crash point between steps.
 *
 * Counting.  fail_full counts a call's final -ETIMEDOUT, not the tries
 * on the way (each failed try's count is taken back at once); waits
 * counts calls that went to sleep, when they first do (so a test can see
 * a waiter queued), and wait_ns their time from the ticket to the end.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "buddyfast.h"
#include "bumpfast.h"
#include "crashpoint.h"
#include "waitq.h"

#define FIELD(f) offsetof(struct arena_proto_ctr, f)
#define SPIN 256	      /* polls of the futex word before sleeping */
#define FOREVER_S (1ll << 40) /* a deadline nobody reaches */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Queues of a daemon that has none: nobody ever waits in them. */
struct arena_proto_wait lib_no_wait[ARENA_PROTO_MAX_ARENAS];

struct waiter {
	struct arena_client *c;
	struct lib_arena *a;
	struct arena_proto_wait *w;
	size_t size;
	struct timespec deadline;
	uint64_t t0; /* ns, CLOCK_MONOTONIC */
	uint32_t ticket;
	bool queued;
	bool slept;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void deadline_set(struct waiter *wt, int timeout_ms)
{
	uint64_t t = wt->t0;

	if (timeout_ms < 0) {
		wt->deadline.tv_sec = FOREVER_S;
		wt->deadline.tv_nsec = 0;
		return;
	}
	t += (uint64_t)timeout_ms * 1000000u;
	wt->deadline.tv_sec = (time_t)(t / 1000000000u);
	wt->deadline.tv_nsec = (long)(t % 1000000000u);
}

static bool past(const struct waiter *wt)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec > wt->deadline.tv_sec ||
	       (ts.tv_sec == wt->deadline.tv_sec &&
		ts.tv_nsec >= wt->deadline.tv_nsec);
}

bool wait_client_alive(void *ctx, uint32_t id)
{
	const struct arena_client *c = ctx;
	const struct arena_proto_client *h;

	if (id == 0 || id > c->max_clients)
		return false;
	h = (const void *)(c->tables + (uint64_t)(id - 1) * c->table_stride);
	return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) ==
	       ARENA_PROTO_CLIENT_LIVE;
}

void wait_given_back(struct arena_client *c, struct lib_arena *a)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (unlikely(wait_busy(c, a)))
		arena_waitq_kick(&c->wait[a->index]);
}

/* The caller's thread cache holds blocks of a somebody waits for. */
__attribute__((noinline)) void wait_hand_over(struct arena_client *c,
					      struct lib_tcache *tc,
					      struct lib_arena *a)
{
	if (a->kind == ARENA_PROTO_KIND_BUDDY)
		buddy_mags_flush(c, tc);
	else if (a->kind == ARENA_PROTO_KIND_FIXED)
		fixed_mag_flush(a, &tc->mags[a->index], 0);
	wait_given_back(c, a);
}

/* -E2BIG (counted) when size can never fit arena a, else 0. */
static int fits(struct arena_client *c, struct lib_arena *a, size_t size)
{
	bool big = false;

	if (a->kind == ARENA_PROTO_KIND_BUDDY)
		big = buddy_order_of(a, size) > a->max_order;
	else if (a->kind == ARENA_PROTO_KIND_BUMP)
		big = size > a->max_size;
	if (!big)
		return 0;
	ctr_bump(c, tc_get(c), a->index, FIELD(fail_big));
	return -E2BIG;
}

/* The arena arena_alloc() would use, or its errno (counted as it does). */
static int pick_beyond_fixed(struct arena_client *c, enum arena_kind kind,
			     size_t size, struct lib_arena **out)
{
	if (kind == ARENA_KIND_AUTO && c->buddy) {
		*out = c->buddy;
		return fits(c, c->buddy, size);
	}
	if (c->nfixed == 0)
		return -ENOTSUP;
	ctr_bump(c, tc_get(c), c->fixed_order[c->nfixed - 1], FIELD(fail_big));
	return -E2BIG;
}

static int pick(struct arena_client *c, enum arena_kind kind, size_t size,
		struct lib_arena **out)
{
	uint32_t k;

	if (kind == ARENA_KIND_BUMP)
		*out = c->bumpa;
	else if (kind == ARENA_KIND_BUDDY)
		*out = c->buddy;
	else if (kind != ARENA_KIND_AUTO && kind != ARENA_KIND_FIXED)
		return -EINVAL;
	else if (size > LIB_LUT_MAX || c->nfixed == 0)
		*out = NULL;
	else if ((k = c->lut[(size - 1) / 16]) != LIB_NO_ARENA)
		*out = &c->arenas[k];
	else
		*out = NULL;
	if (*out)
		return fits(c, *out, size);
	if (kind == ARENA_KIND_BUMP || kind == ARENA_KIND_BUDDY)
		return -ENOTSUP;
	for (k = 0; k < c->nfixed && size > LIB_LUT_MAX; k++)
		if (c->arenas[c->fixed_order[k]].block_size >= size) {
			*out = &c->arenas[c->fixed_order[k]];
			return 0;
		}
	return pick_beyond_fixed(c, kind, size, out);
}

/* One try in arena a, counted as arena_alloc() counts it. */
static int try_alloc(struct waiter *wt, arena_handle_t *out)
{
	struct arena_client *c = wt->c;

	if (wt->a->kind == ARENA_PROTO_KIND_BUMP)
		return bump_fast_alloc(c, wt->size, out);
	if (wt->a->kind == ARENA_PROTO_KIND_BUDDY)
		return buddy_fast_alloc(c, wt->a, wt->size, out);
	return fast_alloc(c, wt->a, out);
}

/* Take back the fail_full a failed try counted. */
static void uncount_full(struct waiter *wt)
{
	ctr_addf(wt->c, tc_get(wt->c), wt->a->index, FIELD(fail_full),
		 UINT64_MAX);
}

/* This thread's own cached blocks of the arena, for the head waiter. */
static void flush_own(struct waiter *wt)
{
	struct lib_tcache *tc = tc_get(wt->c);

	if (!tc || wt->a->kind == ARENA_PROTO_KIND_BUMP)
		return;
	wait_hand_over(wt->c, tc, wt->a);
}

/*
 * Sleep until the futex word moves from v, the deadline passes or a
 * signal arrives: 0 (also for a spurious wake), -ETIMEDOUT or -EINTR.
 */
static int sleep_on(struct waiter *wt, uint32_t v)
{
	unsigned i;
	long r;

	for (i = 0; i < SPIN; i++) {
		if (__atomic_load_n(&wt->w->futex, __ATOMIC_ACQUIRE) != v)
			return 0;
		cpu_relax();
	}
	if (!wt->slept) {
		wt->slept = true;
		ctr_addf(wt->c, tc_get(wt->c), wt->a->index, FIELD(waits), 1);
	}
	r = syscall(SYS_futex, &wt->w->futex, FUTEX_WAIT_BITSET, v,
		    &wt->deadline, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0 || errno == EAGAIN)
		return 0;
	return errno == EINTR ? -EINTR : errno == ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* Take a ticket, sleeping while the queue is full. */
static int enter(struct waiter *wt)
{
	uint32_t v;
	int err;

	for (;;) {
		v = __atomic_load_n(&wt->w->futex, __ATOMIC_SEQ_CST);
		if (!arena_waitq_enter(wt->w, wt->c->id, &wt->ticket)) {
			wt->queued = true;
			return 0;
		}
		if (past(wt))
			return -ETIMEDOUT;
		err = sleep_on(wt, v);
		if (err == -EINTR)
			return err;
	}
}

static bool at_head(const struct waiter *wt)
{
	return arena_waitq_head(__atomic_load_n(
		       &wt->w->queue, __ATOMIC_SEQ_CST)) == wt->ticket;
}

/*
 * Wait in the queue: the head tries, everybody sleeps until the futex
 * word moves.  Returns 0 with *out, or the errno to return.
 */
static int queue_wait(struct waiter *wt, arena_handle_t *out)
{
	uint32_t v;
	int err;

	flush_own(wt);
	for (;;) {
		if (arena_waitq_advance(wt->w, wait_client_alive, wt->c))
			arena_waitq_kick(wt->w);
		v = __atomic_load_n(&wt->w->futex, __ATOMIC_SEQ_CST);
		if (at_head(wt)) {
			err = try_alloc(wt, out);
			if (err != -ENOMEM)
				return err;
			uncount_full(wt);
		}
		if (past(wt))
			return -ETIMEDOUT;
		err = sleep_on(wt, v);
		if (err == -EINTR)
			return err;
	}
}

/* Leave the queue and count the call's outcome. */
static int finish(struct waiter *wt, int err)
{
	struct lib_tcache *tc = tc_get(wt->c);

	if (wt->queued)
		arena_waitq_leave(wt->w, wt->ticket, wt->c->id,
				  wait_client_alive, wt->c);
	ARENA_CRASHPOINT();
	if (err == -ETIMEDOUT)
		ctr_bump(wt->c, tc, wt->a->index, FIELD(fail_full));
	if (wt->slept)
		ctr_addf(wt->c, tc, wt->a->index, FIELD(wait_ns),
			 now_ns() - wt->t0);
	return err;
}

int arena_alloc_wait(struct arena_client *c, enum arena_kind kind, size_t size,
		     int timeout_ms, arena_handle_t *out)
{
	struct waiter wt = { .c = c, .size = size };
	int err;

	if (!c || !out || size == 0 || timeout_ms < -1)
		return -EINVAL;
	if (client_inherited(c))
		return -ECHILD;
	err = pick(c, kind, size, &wt.a);
	if (err)
		return err;
	wt.w = &c->wait[wt.a->index];
	if (timeout_ms == 0 || !wait_busy(c, wt.a)) {
		err = try_alloc(&wt, out); /* nobody waits: no queue to join */
		if (err != -ENOMEM)
			return err;
		if (timeout_ms == 0 || c->wait == lib_no_wait)
			return timeout_ms == 0 ? -ETIMEDOUT : -ENOTSUP;
		uncount_full(&wt);
	}
	if (c->wait == lib_no_wait)
		return -ENOTSUP;
	wt.t0 = now_ns();
	deadline_set(&wt, timeout_ms);
	err = enter(&wt);
	if (!err)
		err = queue_wait(&wt, out);
	return finish(&wt, err);
}
