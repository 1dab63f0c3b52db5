// SPDX-License-Identifier: MIT
/*
 * The reference ledger (format in proto/ledger.h): this client's
 * references beyond the implicit first reference of blocks it allocated.
 *
 * An operation first announces itself in the ledger (pending + 1, and for
 * an unref count - 1), then changes the block's state word, then settles
 * (pending - 1, and count + 1 for a ref that landed).  So at every
 * instruction the ledger either already records the reference or shows
 * the operation as pending, which is what lets the daemon compute a dead
 * client's share of a block exactly.  All changes are CAS on one word, so
 * the client's threads need no lock among themselves either.
 */
#include "internal.h"

static inline bool idle(uint64_t e)
{
	return arena_ledger_count(e) == 0 && arena_ledger_pending(e) == 0;
}

/* Add delta to the word in e if pred holds; false when it does not. */
static bool entry_add(_Atomic uint64_t *e, uint64_t key, uint64_t delta,
		      bool need_count)
{
	uint64_t v = atomic_load_explicit(e, memory_order_acquire);

	for (;;) {
		if (arena_ledger_key_of(v) != key)
			return false;
		if (arena_ledger_pending(v) == ARENA_LEDGER_PENDING_MAX)
			return false;
		if (need_count
			    ? arena_ledger_count(v) == 0
			    : arena_ledger_count(v) == ARENA_LEDGER_COUNT_MAX)
			return false;
		if (atomic_compare_exchange_weak_explicit(e, &v, v + delta,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return true;
	}
}

/* Take an empty or idle entry over for key, already pending. */
static bool entry_adopt(_Atomic uint64_t *e, uint64_t key)
{
	uint64_t v = atomic_load_explicit(e, memory_order_acquire);

	while (arena_ledger_key_of(v) == 0 || idle(v)) {
		if (atomic_compare_exchange_weak_explicit(
			    e, &v, key | ARENA_LEDGER_PENDING_ONE,
			    memory_order_acq_rel, memory_order_acquire))
			return true;
	}
	return false;
}

/*
 * One probe of key's chain: an entry of key gets pending + 1; else the
 * first empty or idle entry is adopted.  Chains only grow (an entry never
 * becomes empty again), so every entry of a key lies before the first
 * empty entry of its chain, where ledger_take looks.
 */
static _Atomic uint64_t *acquire_once(struct arena_client *c, uint64_t key,
				      bool *full)
{
	uint32_t mask = c->ledger_mask, i = arena_ledger_hash(key, mask), n;
	_Atomic uint64_t *free_e = NULL, *e;
	uint64_t v;

	for (n = 0; n <= mask; n++, i = (i + 1) & mask) {
		e = &c->ledger[i];
		if (entry_add(e, key, ARENA_LEDGER_PENDING_ONE, false))
			return e;
		v = atomic_load_explicit(e, memory_order_relaxed);
		if (!free_e && (v == 0 || idle(v)))
			free_e = e;
		if (v == 0)
			break;
	}
	*full = !free_e;
	if (free_e && entry_adopt(free_e, key))
		return free_e;
	return NULL;
}

_Atomic uint64_t *ledger_acquire(struct arena_client *c, uint64_t key)
{
	_Atomic uint64_t *e;
	bool full = false;
	int tries;

	for (tries = 0; tries < 64 && !full; tries++) {
		e = acquire_once(c, key, &full);
		if (e)
			return e;
	}
	return NULL;
}

_Atomic uint64_t *ledger_take(struct arena_client *c, uint64_t key)
{
	uint32_t mask = c->ledger_mask, i = arena_ledger_hash(key, mask), n;
	const uint64_t delta =
		ARENA_LEDGER_PENDING_ONE - ARENA_LEDGER_COUNT_ONE;
	_Atomic uint64_t *e;

	for (n = 0; n <= mask; n++, i = (i + 1) & mask) {
		e = &c->ledger[i];
		if (entry_add(e, key, delta, true))
			return e;
		if (atomic_load_explicit(e, memory_order_relaxed) == 0)
			break;
	}
	return NULL;
}

void ledger_settle(_Atomic uint64_t *e, int64_t count_delta)
{
	uint64_t d = (uint64_t)count_delta * ARENA_LEDGER_COUNT_ONE -
		     ARENA_LEDGER_PENDING_ONE;

	atomic_fetch_add_explicit(e, d, memory_order_acq_rel);
}

bool ledger_holds(struct arena_client *c, uint64_t key)
{
	uint32_t mask = c->ledger_mask, i = arena_ledger_hash(key, mask), n;
	uint64_t v;

	for (n = 0; n <= mask; n++, i = (i + 1) & mask) {
		v = atomic_load_explicit(&c->ledger[i], memory_order_acquire);
		if (v == 0)
			break;
		if (arena_ledger_key_of(v) == key && arena_ledger_count(v))
			return true;
	}
	return false;
}
