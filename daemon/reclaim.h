/* SPDX-License-Identifier: MIT */
#ifndef ARENAD_RECLAIM_H
#define ARENAD_RECLAIM_H

#include <stdint.h>

/*
 * Return to the region's arenas everything client id held, once that
 * client is known dead and its table is no longer marked LIVE: its
 * references (exactly its share of each block), and its reserved slots.
 * Returns the number of blocks freed, or -EUCLEAN when the region's
 * metadata fails validation (nothing past that point is touched) or the
 * client's table was overwritten (logged; the blocks its words name are
 * still settled), or -EAGAIN when some block stayed busy with a live
 * client's operation.
 */
int reclaim_client(uint8_t *base, uint64_t size, uint32_t id);

/*
 * Rebuild every buddy tree from its leaf state words and order bytes:
 * blocks whose first leaf is MAG or ALLOC taken, everything else free.
 * Only for when no client is attached: a live client may be between the
 * tree step and the word step of a claim or a release, which this would
 * undo.  Repairs what a client killed inside a tree operation left
 * (blocks taken in the tree that no word holds, marks nobody clears).
 * Returns the number of tree bytes changed (0: nothing to repair),
 * -EUCLEAN when the header, or the words of an arena, fail validation
 * (that arena's tree is left alone), or -ENOMEM.
 */
int reclaim_buddy_rebuild(uint8_t *base, uint64_t size);

/*
 * Drop one reference that a channel held to the block of handle h (the
 * channel is being released): its count goes down by one, and a block
 * whose count reaches zero goes back to its arena.  Buddy-tree counters
 * are charged to client id.  Returns 1 when the block was freed, 0 when
 * others still hold it, -ESTALE when h names no live block, -EUCLEAN
 * when the region's header fails validation.
 */
int reclaim_chan_drop(uint8_t *base, uint64_t size, uint64_t h, uint32_t id);

#endif
