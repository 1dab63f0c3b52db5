// SPDX-License-Identifier: MIT
/*
 * Peer authorisation from kernel-supplied credentials only: SO_PEERCRED
 * for the uid and primary gid, SO_PEERGROUPS for supplementary groups.
 * Nothing the peer sends is trusted for this.  Supplementary groups are
 * fetched only when the cheaper checks fail and a group is configured.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

int auth_peer_cred(int fd, struct ucred *out)
{
	socklen_t len = sizeof(*out);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, out, &len))
		return -errno;
	return len == sizeof(*out) ? 0 : -EPROTO;
}

static bool groups_contain(const gid_t *g, size_t n, gid_t want)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (g[i] == want)
			return true;
	return false;
}

/* Supplementary groups of the peer include want. */
static bool peer_in_group(int fd, gid_t want)
{
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	bool in;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len)) {
		if (errno != ERANGE)
			return false;
		g = malloc(len);
		if (!g || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len)) {
			free(g);
			return false;
		}
	}
	in = groups_contain(g, len / sizeof(gid_t), want);
	if (g != small)
		free(g);
	return in;
}

bool auth_allowed(const struct auth_policy *pol, int fd,
		  const struct ucred *cred)
{
	if (cred->uid == pol->euid || cred->uid == 0)
		return true;
	if (!pol->has_group)
		return false;
	return cred->gid == pol->group || peer_in_group(fd, pol->group);
}
