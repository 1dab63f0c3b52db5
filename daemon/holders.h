/* SPDX-License-Identifier: MIT */
/*
 * Who holds a block: the arithmetic that reclaim (reclaim.c) and the audit
 * (audit.c) both rest on, kept in one place so that they cannot come to
 * disagree.  A block's count is
 *
 *   count = [owner is set] + sum over clients of their ledger counts
 *           + copies of its handle queued in channel rings
 *
 * and the share of the living is the same sum over live clients only.
 * A ledger entry with pending operations means its block is moving and
 * no sum that includes it proves anything.
 */
#ifndef ARENAD_HOLDERS_H
#define ARENAD_HOLDERS_H

#include <stdbool.h>
#include <stdint.h>

#include "handle.h"
#include "ledger.h"

/*
 * Does ring cell j of a ring of cap cells (a power of two) hold a
 * handle?  It does when its seq is one past a position it stands for
 * (proto/layout.h, channels).
 */
static inline bool holders_cell_full(uint64_t seq, uint32_t j, uint32_t cap)
{
	return ((seq - 1 - j) & (cap - 1)) == 0;
}

/* The ledger key of the block handle h names (region bits ignored). */
static inline uint64_t holders_handle_key(uint64_t h)
{
	return arena_ledger_key((uint32_t)(h >> 52) & 0xff, (uint32_t)h);
}

/* What a block's count must be, given its holders. */
static inline uint64_t holders_expected(bool owner_live, uint64_t ledgers,
					uint64_t copies)
{
	return (owner_live ? 1 : 0) + ledgers + copies;
}

#endif
