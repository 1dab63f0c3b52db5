// SPDX-License-Identifier: MIT
/*
 * systemd's readiness protocol, spoken directly (DESIGN.md: no
 * libsystemd): a notification is one datagram of "KEY=VALUE" lines sent
 * to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or, after a
 * leading '@', an abstract name.  Sends never block and never fail the
 * daemon, since a service manager that stopped listening must not stop
 * the service; the first failure is logged, later ones are not, so a
 * watchdog tick cannot flood the journal.
 *
 * The watchdog is a periodic timerfd at half of $WATCHDOG_USEC, read by
 * the event loop like any other event: a loop that wedges stops pinging
 * and the service manager restarts the daemon, which is the point.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

#define MSG_MAX 512

/* A plain decimal environment value; 0 when unset or not a number. */
static unsigned long long env_ull(const char *name)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	return errno || *end ? 0 : v;
}

/* $NOTIFY_SOCKET into n->addr; 0, or -EINVAL for a value we cannot use. */
static int addr_parse(struct sdnotify *n, const char *s)
{
	size_t len = strlen(s);

	if ((s[0] != '/' && s[0] != '@') || len < 2 ||
	    len >= sizeof(n->addr.sun_path))
		return -EINVAL;
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, s, len);
	if (s[0] == '@')
		n->addr.sun_path[0] = '\0'; /* abstract: no trailing NUL */
	else
		len++;
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	return 0;
}

static void socket_open(struct sdnotify *n)
{
	const char *s = getenv("NOTIFY_SOCKET");

	if (!s || !*s)
		return;
	if (addr_parse(n, s)) {
		LOG(LOG_WARN,
		    "ignoring NOTIFY_SOCKET '%s': not a path or "
		    "an abstract socket name",
		    s);
		return;
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0)
		LOG(LOG_WARN, "cannot notify the service manager: socket: %s",
		    strerror(errno));
}

/* The watchdog interval, 0 when there is none or it is someone else's. */
static uint64_t watchdog_usec(void)
{
	unsigned long long pid = env_ull("WATCHDOG_PID");

	if (getenv("WATCHDOG_PID") && pid != (unsigned long long)getpid())
		return 0;
	return env_ull("WATCHDOG_USEC");
}

static void timer_open(struct sdnotify *n)
{
	uint64_t half = n->watchdog_us / 2 ? n->watchdog_us / 2 : 1;
	struct itimerspec its = { 0 };

	its.it_interval.tv_sec = (time_t)(half / 1000000);
	its.it_interval.tv_nsec = (long)(half % 1000000) * 1000;
	its.it_value = its.it_interval;
	n->timerfd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->timerfd >= 0 && !timerfd_settime(n->timerfd, 0, &its, NULL)) {
		LOG(LOG_INFO, "watchdog: pinging every %llu us",
		    (unsigned long long)half);
		return;
	}
	LOG(LOG_WARN, "watchdog disabled: timerfd: %s", strerror(errno));
	if (n->timerfd >= 0)
		close(n->timerfd);
	n->timerfd = -1;
	n->watchdog_us = 0;
}

void sdnotify_init(struct sdnotify *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = n->timerfd = -1;
	socket_open(n);
	if (n->fd < 0)
		return;
	n->watchdog_us = watchdog_usec();
	if (n->watchdog_us)
		timer_open(n);
}

void sdnotify_send(struct sdnotify *n, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	int len;

	if (n->fd < 0)
		return;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		len = len < 0 ? 0 : (int)sizeof(msg) - 1;
	if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT,
		   (struct sockaddr *)&n->addr, n->addrlen) == len ||
	    n->warned)
		return;
	n->warned = true;
	LOG(LOG_WARN, "cannot notify the service manager: %s", strerror(errno));
}

void sdnotify_watchdog(struct sdnotify *n)
{
	uint64_t ticks;

	if (read(n->timerfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
		sdnotify_send(n, "WATCHDOG=1");
}

void sdnotify_close(struct sdnotify *n)
{
	if (n->timerfd >= 0)
		close(n->timerfd);
	if (n->fd >= 0)
		close(n->fd);
	n->fd = n->timerfd = -1;
}
