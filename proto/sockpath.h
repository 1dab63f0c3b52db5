/* SPDX-License-Identifier: MIT */
/*
 * Where the control socket is, resolved the same way by arenad, arenactl
 * and libarena: an explicit path, else $ARENA_SOCKET, else
 * $XDG_RUNTIME_DIR/arenad.sock, else /run/arenad/arenad.sock.
 */
#ifndef ARENA_PROTO_SOCKPATH_H
#define ARENA_PROTO_SOCKPATH_H

#include <stddef.h>

#define ARENA_PROTO_SYSTEM_SOCKET "/run/arenad/arenad.sock"

/*
 * Write the resolved path into buf (cap bytes).  Returns 0, or
 * -ENAMETOOLONG when it does not fit buf or a sockaddr_un, -EINVAL for an
 * empty explicit path.
 */
int arena_proto_sockpath(const char *explicit_path, char *buf, size_t cap);

#endif
