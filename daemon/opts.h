/* SPDX-License-Identifier: MIT */
/*
 * arenad's command line.
 */
#ifndef ARENAD_OPTS_H
#define ARENAD_OPTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "layout.h"
#include "log.h"

#define OPTS_EX_USAGE 64 /* sysexits.h EX_USAGE */

struct opts {
	struct layout_req req; /* size, classes, client limits */
	const char *socket;    /* NULL: the default path */
	bool has_group;
	gid_t group;
	const char *group_name;
	enum log_level level;
};

/*
 * Parse argv into o, applying the defaults first.  Returns 0 to run the
 * daemon; 1 when --help or --version was printed (exit 0); -EINVAL after
 * printing one line on stderr (exit OPTS_EX_USAGE).
 */
int opts_parse(int argc, char **argv, struct opts *o);

#endif
