/* SPDX-License-Identifier: MIT */
/*
 * Socket activation (sd_listen_fds(3)), without libsystemd.
 */
#ifndef ARENAD_ACTIVATION_H
#define ARENAD_ACTIVATION_H

#include "ctlsock.h"

/*
 * When $LISTEN_PID is this process and $LISTEN_FDS is at least 1, take
 * fd 3 as the listening socket: s is set up around it, never to be
 * unlinked, and path (sizeof sun_path bytes) is overwritten with the
 * socket's address for the logs.  The LISTEN_* variables are removed.
 *
 * Returns 1 when s now holds the service manager's socket, 0 when this
 * process was not socket-activated, or -ENOTSOCK after one line on
 * stderr when fd 3 is not a listening Unix stream socket.
 */
int activation_adopt(struct ctlsock *s, char *path);

#endif
