/* SPDX-License-Identifier: MIT */
/*
 * Who may talk to the daemon: its own uid, root, and members of --group.
 */
#ifndef ARENAD_AUTH_H
#define ARENAD_AUTH_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

struct auth_policy {
	uid_t euid; /* the daemon's */
	bool has_group;
	gid_t group;
};

/* The peer's credentials (SO_PEERCRED).  Returns 0 or a negative errno. */
int auth_peer_cred(int fd, struct ucred *out);

/* Whether the peer on fd, with credentials cred, may attach and ask. */
bool auth_allowed(const struct auth_policy *pol, int fd,
		  const struct ucred *cred);

#endif
