/* SPDX-License-Identifier: MIT */
/*
 * A client's reference ledger: which blocks it holds references to beyond
 * the implicit first reference of blocks it allocated.  It lives in the
 * client's table in the region so that the daemon can see what a dead
 * client held.  Only the client's own threads write it, each entry with
 * one CAS of one 64-bit word:
 *
 *   63..56 pending   55..40 count   39..0 key
 *
 * key is ((arena + 1) << 32 | index), so 0 means an empty entry.  The
 * generation is not needed: a block cannot change generation while this
 * client holds a reference to it.  pending counts operations that have
 * announced themselves here but whose CAS on the block state word may or
 * may not have landed; the daemon defers reconciling a block while a live
 * client has one pending.  A key may occupy more than one entry (threads
 * racing to insert); the client's count for a block is their sum.
 *
 * Open addressing, linear probing; entries with count and pending 0 are
 * idle and may be taken over by any key.
 */
#ifndef ARENA_PROTO_LEDGER_H
#define ARENA_PROTO_LEDGER_H

#include <stdint.h>

#define ARENA_LEDGER_KEY_MASK ((1ULL << 40) - 1)
#define ARENA_LEDGER_COUNT_ONE (1ULL << 40)
#define ARENA_LEDGER_PENDING_ONE (1ULL << 56)
#define ARENA_LEDGER_COUNT_MAX 0xffffu
#define ARENA_LEDGER_PENDING_MAX 0xffu

static inline uint64_t arena_ledger_key(uint32_t arena, uint32_t index)
{
	return (uint64_t)(arena + 1) << 32 | index;
}

static inline uint64_t arena_ledger_key_of(uint64_t e)
{
	return e & ARENA_LEDGER_KEY_MASK;
}

static inline uint32_t arena_ledger_count(uint64_t e)
{
	return (uint32_t)(e >> 40) & 0xffff;
}

static inline uint32_t arena_ledger_pending(uint64_t e)
{
	return (uint32_t)(e >> 56);
}

static inline uint32_t arena_ledger_hash(uint64_t key, uint32_t mask)
{
	key *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(key >> 32) & mask;
}

#endif
