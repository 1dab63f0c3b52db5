/* SPDX-License-Identifier: MIT */
/*
 * The shared region: an anonymous memfd, reserved, sealed and mapped.
 */
#ifndef ARENAD_REGION_H
#define ARENAD_REGION_H

#include <stdint.h>

#include "layout.h"

struct region {
	int fd;
	uint8_t *base;
	uint64_t size;
	uint64_t instance; /* random, tells daemon starts apart */
};

/*
 * Create the region for l and write its layout.  Returns 0, or a negative
 * errno after printing one line on stderr; nothing is left behind.
 */
int region_create(const struct layout *l, struct region *r);

void region_destroy(struct region *r);

#endif
