// SPDX-License-Identifier: MIT
/*
 * Default control-socket path.  One function so that the daemon, the CLI
 * and the library can never disagree about where to meet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockpath.h"

static int put(char *buf, size_t cap, const char *a, const char *b)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = snprintf(buf, cap, "%s%s", a, b);

	if (n < 0 || (size_t)n >= cap || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}

int arena_proto_sockpath(const char *explicit_path, char *buf, size_t cap)
{
	const char *env;

	if (explicit_path)
		return *explicit_path ? put(buf, cap, explicit_path, "")
				      : -EINVAL;
	env = getenv("ARENA_SOCKET");
	if (env && *env)
		return put(buf, cap, env, "");
	env = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		return put(buf, cap, env, "/arenad.sock");
	return put(buf, cap, ARENA_PROTO_SYSTEM_SOCKET, "");
}
