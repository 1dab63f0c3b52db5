/* SPDX-License-Identifier: MIT */
/*
 * Control-socket peers without libarena, for the tests that play a
 * hostile or careless client: connect, attach by hand (to hold the
 * region's file descriptor itself), ping, wait for the daemon to hang
 * up; and what /proc says about the daemon's footprint.  Every function
 * returns an error instead of asserting, and every wait is bounded.
 */
#ifndef ARENA_TESTS_RAWPEER_H
#define ARENA_TESTS_RAWPEER_H

#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

/*
 * Connect to the socket at path: a blocking descriptor, or -errno.  With
 * nonblock, the descriptor is non-blocking and a full listen backlog
 * shows as -EAGAIN.
 */
int raw_connect(const char *path, int nonblock);

/*
 * HELLO, then WELCOME and the region's descriptor into *w and *fd.
 * Returns 0; the daemon's ERROR as its negative errno; -EBADMSG for any
 * other reply; -errno, or -ETIMEDOUT after ms.
 */
int raw_attach(int s, struct arena_proto_welcome *w, int *fd, int ms);

/* PING and its PONG within ms: 0, -ECONNRESET when closed, or -errno. */
int raw_ping(int s, int ms);

/*
 * Wait up to ms for the daemon to close s, reading and dropping what it
 * sends meanwhile.  Returns 0 once closed (EOF or a reset), -ETIMEDOUT,
 * or -errno.
 */
int raw_await_close(int s, int ms);

/* Open descriptors of process pid, or -errno. */
int proc_fd_count(pid_t pid);

/* A "Name:  N kB" field of /proc/pid/status ("VmRSS"...), or -errno. */
long proc_status_kb(pid_t pid, const char *name);

#endif
