/* SPDX-License-Identifier: MIT */
/*
 * The daemon's listening control socket.
 */
#ifndef ARENAD_CTLSOCK_H
#define ARENAD_CTLSOCK_H

#include <stdbool.h>
#include <sys/types.h>

struct ctlsock {
	int fd;
	const char *path;
	dev_t dev;    /* identity of the socket file we bound, */
	ino_t ino;    /* so that we only ever unlink our own */
	bool adopted; /* the service manager's (activation.c): never unlinked */
};

/*
 * Make sure path is free: no live daemon behind it (-EADDRINUSE), its
 * directory exists; a stale socket file is removed.  Returns 0 or a
 * negative errno after printing one line on stderr.
 */
int ctlsock_check(const char *path);

/*
 * Bind and listen on path (mode 0660; group-owned by group when has_group).
 * Returns 0 or a negative errno after printing one line; nothing is left
 * behind on failure.
 */
int ctlsock_listen(struct ctlsock *s, const char *path, bool has_group,
		   gid_t group);

/* Close the socket and remove its file if it is still ours. */
void ctlsock_close(struct ctlsock *s);

#endif
