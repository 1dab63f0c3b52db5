// SPDX-License-Identifier: MIT
/*
 * The config file: the command line's options without their dashes, one
 * per line, as "name value" or "name = value"; blank lines are skipped and
 * '#' at the start of a line or after white space starts a comment.
 * Every option goes through the command line's own table (opts_set), so
 * the file takes exactly what the command line takes, with the same
 * checks, and a bad line is reported as "arenad: FILE:LINE: reason".
 *
 * The file is read whole into memory that lives as long as the process,
 * like argv, because options keep pointers to their values (a socket
 * path, a group name).  It is small by nature; anything past
 * CONFIG_MAX_BYTES is refused rather than read.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opts.h"

#define CONFIG_MAX_BYTES (1 << 20)

static char *text; /* the file, NUL-terminated, for the process's life */

static int file_fail(const struct opts *o, const char *what, int err)
{
	fprintf(stderr, "arenad: %s: %s: %s\n", o->config, what, strerror(err));
	return -EINVAL;
}

static int file_bad(const struct opts *o, const char *why)
{
	fprintf(stderr, "arenad: %s: %s\n", o->config, why);
	return -EINVAL;
}

static int fd_slurp(const struct opts *o, int fd, size_t len)
{
	size_t got = 0;
	ssize_t n;

	text = malloc(len + 1);
	if (!text)
		return file_fail(o, "cannot read", ENOMEM);
	while (got < len) {
		n = read(fd, text + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return file_fail(o, "cannot read", errno);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	text[got] = '\0';
	if (strlen(text) != got)
		return file_bad(o, "contains a NUL byte; not a text file");
	return 0;
}

static int file_load(const struct opts *o)
{
	struct stat st;
	int fd, rc;

	fd = open(o->config, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return file_fail(o, "cannot open", errno);
	if (fstat(fd, &st))
		rc = file_fail(o, "cannot read", errno);
	else if (!S_ISREG(st.st_mode))
		rc = file_bad(o, "not a regular file");
	else if (st.st_size > CONFIG_MAX_BYTES)
		rc = file_bad(o, "larger than 1 MiB; not a config file");
	else
		rc = fd_slurp(o, fd, (size_t)st.st_size);
	close(fd);
	return rc;
}

/* Cut a comment off and trim white space; the line's first character. */
static char *line_trim(char *s)
{
	char *p, *end;

	for (p = s; *p; p++)
		if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* "name value", "name = value" or "name=value", split in place. */
static int line_apply(struct opts *o, char *s)
{
	char *name = line_trim(s), *value;
	size_t len;

	if (!*name)
		return 0;
	len = strcspn(name, " \t=");
	value = name + len;
	value += strspn(value, " \t");
	if (*value == '=')
		value += 1 + strspn(value + 1, " \t");
	name[len] = '\0';
	if (!len) {
		fprintf(stderr, "arenad: %s:%u: expected 'option value'\n",
			o->config, o->config_line);
		return -EINVAL;
	}
	return opts_set(o, name, value);
}

int config_read(struct opts *o)
{
	char *line, *next;
	int rc;

	rc = file_load(o);
	for (line = text; !rc && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		o->config_line++;
		rc = line_apply(o, line);
	}
	o->config_line = 0;
	return rc;
}
