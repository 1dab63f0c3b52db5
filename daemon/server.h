/* SPDX-License-Identifier: MIT */
/*
 * The control server: one thread, one epoll loop over the listening
 * socket, the connections and a signalfd.
 */
#ifndef ARENAD_SERVER_H
#define ARENAD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "chan.h"
#include "clients.h"
#include "ctlsock.h"
#include "layout.h"
#include "peer.h"
#include "region.h"
#include "sdnotify.h"

#define SERVER_EXTRA_CONNS 64 /* connections beyond max_clients */
#define SERVER_IDLE_MS 10000  /* default of struct server idle_ms */

struct server {
	int epfd;
	int sigfd;
	int spare_fd; /* given up to accept-and-close at the fd limit */
	struct ctlsock *sock;
	const struct region *region;
	const struct layout *layout;
	struct auth_policy auth;
	struct clients clients;
	struct chans chans; /* the channel table, chan.c */
	struct peer **peers;
	uint32_t max_peers;
	uint32_t npeers;
	uint64_t retry_at;  /* next deferred-reclaim pass, CLOCK_MONOTONIC ms */
	uint64_t sample_at; /* next high-water mark sample, the same clock */
	struct sdnotify *notify; /* NULL: tell no service manager */
	uint32_t status_clients; /* the client count last announced */
	/*
	 * A message must be complete within idle_ms of its first byte, or
	 * its connection is closed; idle_next is the earliest such
	 * deadline (CLOCK_MONOTONIC ms), 0 when no message is incomplete.
	 */
	uint32_t idle_ms;
	uint64_t idle_next;
	bool stop;
};

/*
 * Block SIGTERM and SIGINT (they are read from a signalfd) and ignore
 * SIGPIPE.  Called before the socket exists, so that a signal can never
 * end the daemon without its clean-up.
 */
void server_signals_block(void);

/*
 * Set up the loop around a listening socket and an initialised region.
 * Returns 0, or a negative errno after printing one line on stderr.
 */
int server_init(struct server *s, struct ctlsock *sock, const struct region *r,
		const struct layout *l, const struct auth_policy *pol);

/*
 * Keep the service manager informed while serving: STATUS= when the
 * number of clients changes, WATCHDOG=1 on n's timer.  Returns 0, or a
 * negative errno after printing one line on stderr.
 */
int server_notify(struct server *s, struct sdnotify *n);

/* Serve until SIGTERM or SIGINT.  Returns 0, or a negative errno. */
int server_run(struct server *s);

/* Close every connection and the loop's descriptors (not the socket). */
void server_fini(struct server *s);

/*
 * Watch the process that connected p, an attached client, through a
 * pidfd in the loop: its exit drops p as its socket's EOF would.
 * Returns 0 (also when no pidfd can be had: that is logged once, and
 * EOF alone is watched), or -ESRCH when the process is gone already.
 */
int server_watch_pid(struct server *s, struct peer *p);

/*
 * Handle one validated message from p.  Returns 0 to keep the
 * connection, or a negative errno to close it (the reason is logged).
 * Lives in dispatch.c.
 */
int server_dispatch(struct server *s, struct peer *p,
		    const struct arena_proto_hdr *h, const uint8_t *payload);

#endif
