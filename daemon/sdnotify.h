/* SPDX-License-Identifier: MIT */
/*
 * systemd's notification protocol (sd_notify(3)), without libsystemd:
 * readiness, status, stopping and the watchdog.
 */
#ifndef ARENAD_SDNOTIFY_H
#define ARENAD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
	int fd;		      /* -1: no service manager to tell */
	int timerfd;	      /* watchdog ticks; -1: no watchdog */
	uint64_t watchdog_us; /* $WATCHDOG_USEC, or 0 */
	bool warned;	      /* a failed send was logged once */
	socklen_t addrlen;
	struct sockaddr_un addr;
};

/*
 * Read $NOTIFY_SOCKET (a path, or '@' and an abstract name) and
 * $WATCHDOG_USEC / $WATCHDOG_PID.  Never fails: without them, or with a
 * value that makes no sense (logged), sends do nothing and there is no
 * watchdog.  The watchdog, when there is one, is a running timerfd at
 * half the interval; its fd is n->timerfd.
 */
void sdnotify_init(struct sdnotify *n);

/*
 * Send one notification, "KEY=VALUE" lines, formatted like printf.  Never
 * blocks; a failure is logged once and otherwise ignored.
 */
void sdnotify_send(struct sdnotify *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The watchdog timer fired: consume it and send WATCHDOG=1. */
void sdnotify_watchdog(struct sdnotify *n);

void sdnotify_close(struct sdnotify *n);

#endif
