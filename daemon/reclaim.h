/* SPDX-License-Identifier: MIT */
#ifndef ARENAD_RECLAIM_H
#define ARENAD_RECLAIM_H

#include <stdint.h>

/*
 * Return to the region's arenas everything client id held, once that
 * client is known dead and its table is no longer marked LIVE: its
 * references (exactly its share of each block), and its reserved slots.
 * Returns the number of blocks freed, or -EUCLEAN when the region's
 * metadata fails validation (nothing past that point is touched), or
 * -EAGAIN when some block stayed busy with a live client's operation.
 */
int reclaim_client(uint8_t *base, uint64_t size, uint32_t id);

#endif
