/* SPDX-License-Identifier: MIT */
/*
 * arenad's command line and config file.
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
	const char *config;   /* --config FILE, or NULL */
	unsigned config_line; /* the line being read, 0 outside the file */
	bool fixed_in_file;   /* the --fixed classes so far are the file's */
	/* seconds a connection has to complete a message it began */
	unsigned idle_timeout;
};

/*
 * Parse argv into o: the defaults, then the --config file if one is
 * given, then the rest of the command line, which wins over the file.
 * Returns 0 to run the daemon; 1 when --help or --version was printed
 * (exit 0); -EINVAL after printing one line on stderr (exit
 * OPTS_EX_USAGE).
 */
int opts_parse(int argc, char **argv, struct opts *o);

/*
 * Apply one option of the config file, at line o->config_line of
 * o->config: name as on the command line without the dashes, and its
 * value (which must outlive o).  Returns 0, or -EINVAL after printing
 * "arenad: FILE:LINE: reason".  Lives in opts.c, next to the table.
 */
int opts_set(struct opts *o, const char *name, const char *value);

/* Read o->config and apply each line with opts_set.  In config.c. */
int config_read(struct opts *o);

#endif
