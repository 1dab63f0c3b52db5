// SPDX-License-Identifier: MIT
/*
 * The event loop.  Single-threaded by design: the daemon is only on the
 * control path, so one thread and level-triggered epoll keep every state
 * change (attach, detach, reclaim) strictly ordered with no locking.
 *
 * epoll data holds a tag: the listening socket, the signalfd, the
 * systemd watchdog's timer, a peer's slot in s->peers, or TAG_PIDFD with
 * that slot for the pidfd of an attached client's process.  A peer is
 * closed while one of its own events is handled; its other event may
 * still be in the same batch and then reaches the slot's next tenant,
 * which is harmless: a socket event reads nothing (-EAGAIN), and a pidfd
 * event is checked against the tenant's own pidfd before anything is
 * done.  A pidfd that becomes readable means the client's process has
 * exited, whoever still holds a copy of its socket: it is handled
 * exactly like the socket's EOF.  Connections
 * are capped at max_clients plus a margin for arenactl and refused
 * connections; when the process runs out of file descriptors a spare one
 * is given up to accept and close the newcomer, so the listening socket
 * never spins.  A connection that begins a message and does not finish it
 * within idle_ms is closed by a sweep between batches (the epoll timeout
 * wakes it), so a peer that stalls mid-message cannot hold its slot and
 * buffer forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "size.h"
#include "stats.h"

#define TAG_LISTEN 0
#define TAG_SIGNAL 1
#define TAG_WATCHDOG 2
#define TAG_PEER 3
#define TAG_PIDFD (1ull << 32) /* | the peer's slot */
#define MAX_EVENTS 64
#define RETRY_MS 100 /* deferred reclaim */

static void sigset_stop(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

void server_signals_block(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigset_stop(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static int ep_add(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Room for every connection we may hold, if the hard limit allows. */
static void nofile_raise(uint32_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want + 32)
		return;
	rl.rlim_cur = rl.rlim_max < want + 32 ? rl.rlim_max : want + 32;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static int init_fail(const char *what, int err)
{
	fprintf(stderr, "arenad: cannot set up the event loop: %s: %s\n", what,
		strerror(err));
	return -err;
}

static int fds_open(struct server *s)
{
	sigset_t set;

	sigset_stop(&set);
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sigfd < 0)
		return init_fail("signalfd", errno);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return init_fail("epoll_create1", errno);
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ep_add(s->epfd, s->sock->fd, TAG_LISTEN) ||
	    ep_add(s->epfd, s->sigfd, TAG_SIGNAL))
		return init_fail("epoll_ctl", errno);
	return 0;
}

int server_init(struct server *s, struct ctlsock *sock, const struct region *r,
		const struct layout *l, const struct auth_policy *pol)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->epfd = s->sigfd = s->spare_fd = -1;
	s->idle_ms = SERVER_IDLE_MS;
	s->sock = sock;
	s->region = r;
	s->layout = l;
	s->auth = *pol;
	clients_init(&s->clients, r, l);
	if (chans_init(&s->chans, r, l))
		return init_fail("channel table", ENOMEM);
	s->max_peers = l->max_clients + SERVER_EXTRA_CONNS;
	s->peers = calloc(s->max_peers, sizeof(*s->peers));
	if (!s->peers)
		return init_fail("connection table", ENOMEM);
	nofile_raise(s->max_peers);
	rc = fds_open(s);
	if (rc)
		server_fini(s);
	return rc;
}

int server_notify(struct server *s, struct sdnotify *n)
{
	s->notify = n;
	s->status_clients = UINT32_MAX;
	if (n->timerfd >= 0 && ep_add(s->epfd, n->timerfd, TAG_WATCHDOG))
		return init_fail("epoll_ctl", errno);
	return 0;
}

/* A one-line summary for `systemctl status`, when it changed. */
static void status_update(struct server *s)
{
	char size[SIZE_HUMAN_MAX];

	if (!s->notify || s->status_clients == s->clients.nlive)
		return;
	s->status_clients = s->clients.nlive;
	sdnotify_send(s->notify, "STATUS=%s region, %u arenas, %u client%s",
		      size_human(s->layout->size, size), s->layout->narenas,
		      s->status_clients, s->status_clients == 1 ? "" : "s");
}

static void detach_log(const struct server *s, const struct peer *p, int rc)
{
	if (rc >= 0)
		LOG(LOG_INFO,
		    "client %u (pid %d) detached, reclaimed %d blocks in "
		    "%llu us",
		    p->client_id, (int)p->cred.pid, rc,
		    (unsigned long long)(s->clients.reclaim_ns / 1000));
	else if (rc == -EAGAIN)
		LOG(LOG_WARN,
		    "client %u (pid %d) detached; a block is busy, "
		    "reclaim will be retried",
		    p->client_id, (int)p->cred.pid);
	else
		LOG(LOG_ERROR,
		    "client %u (pid %d) detached; reclaim failed "
		    "(%s), client id retired",
		    p->client_id, (int)p->cred.pid, strerror(-rc));
}

/* Close peer idx; an attached client is detached and reclaimed. */
static void peer_drop(struct server *s, uint32_t idx)
{
	struct peer *p = s->peers[idx];

	if (p->client_id) {
		chans_client_gone(&s->chans, p->client_id);
		detach_log(s, p, clients_detach(&s->clients, p->client_id));
	} else {
		LOG(LOG_DEBUG, "pid %d: connection closed", (int)p->cred.pid);
	}
	peer_free(p);
	s->peers[idx] = NULL;
	s->npeers--;
}

static int slot_find(const struct server *s)
{
	uint32_t i;

	for (i = 0; i < s->max_peers; i++)
		if (!s->peers[i])
			return (int)i;
	return -1;
}

static void peer_add(struct server *s, int fd)
{
	int idx = s->npeers < s->max_peers ? slot_find(s) : -1;
	struct peer *p;

	if (idx < 0) {
		LOG(LOG_WARN, "refusing a connection: %u already open",
		    s->npeers);
		close(fd);
		return;
	}
	p = peer_new(fd);
	if (!p || auth_peer_cred(fd, &p->cred) ||
	    ep_add(s->epfd, fd, TAG_PEER + (uint64_t)idx)) {
		LOG(LOG_WARN, "dropping a new connection: set-up failed");
		peer_free(p);
		return;
	}
	p->allowed = auth_allowed(&s->auth, fd, &p->cred);
	p->slot = (uint32_t)idx;
	s->peers[idx] = p;
	s->npeers++;
	LOG(LOG_DEBUG, "pid %d uid %u connected", (int)p->cred.pid,
	    (unsigned)p->cred.uid);
}

/* Out of descriptors: free the spare to accept the newcomer and close it. */
static void accept_shed(struct server *s)
{
	int fd;

	if (s->spare_fd < 0)
		return;
	close(s->spare_fd);
	fd = accept4(s->sock->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	LOG(LOG_WARN, "out of file descriptors: refused a connection");
}

static void on_accept(struct server *s)
{
	int fd = accept4(s->sock->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0)
		peer_add(s, fd);
	else if (errno == EMFILE || errno == ENFILE)
		accept_shed(s);
	else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		LOG(LOG_WARN, "accept: %s", strerror(errno));
}

static void on_signal(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		LOG(LOG_INFO, "received %s, shutting down",
		    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		s->stop = true;
	}
}

/* Run every complete message in p's buffer; 0, or negative to close. */
static int peer_drain(struct server *s, struct peer *p)
{
	struct arena_proto_hdr h;
	const uint8_t *payload;
	const char *why;
	int rc;

	while ((rc = peer_next(p, &h, &payload, &why)) > 0) {
		rc = server_dispatch(s, p, &h, payload);
		if (rc)
			return rc;
		peer_consume(p, &h);
		p->since_ms = 0;
	}
	if (rc < 0)
		LOG(LOG_WARN, "pid %d: %s; closing the connection",
		    (int)p->cred.pid, why);
	return rc;
}

static uint64_t now_ms(void);

/* Start the clock of a message p has begun and not finished. */
static void partial_mark(struct server *s, struct peer *p)
{
	if (!p->len || p->since_ms)
		return;
	p->since_ms = now_ms();
	if (!s->idle_next || p->since_ms + s->idle_ms < s->idle_next)
		s->idle_next = p->since_ms + s->idle_ms;
}

static void on_peer(struct server *s, uint32_t idx)
{
	struct peer *p = s->peers[idx];
	int rc = peer_fill(p);

	if (rc == -EAGAIN)
		return;
	if (rc < 0)
		LOG(LOG_WARN, "pid %d: receive failed: %s", (int)p->cred.pid,
		    strerror(-rc));
	else if (rc == 0 && p->len)
		LOG(LOG_WARN,
		    "pid %d: connection closed mid-message "
		    "(%u bytes); dropped",
		    (int)p->cred.pid, p->len);
	if (rc <= 0 || peer_drain(s, p))
		peer_drop(s, idx);
	else
		partial_mark(s, p);
}

static void pidfd_unavailable(int err)
{
	static bool said;

	if (err != -ENOSYS) {
		LOG(LOG_DEBUG, "no pidfd for a client: %s", strerror(-err));
		return;
	}
	if (!said)
		LOG(LOG_WARN, "pidfds are not available: a client's death is "
			      "noticed by its socket's EOF only");
	said = true;
}

int server_watch_pid(struct server *s, struct peer *p)
{
	int rc = peer_pidfd_open(p);

	if (rc == -ESRCH)
		return rc;
	if (rc) {
		pidfd_unavailable(rc);
		return 0;
	}
	rc = ep_add(s->epfd, p->pidfd, TAG_PIDFD | p->slot);
	if (rc) {
		LOG(LOG_WARN, "client %u: cannot watch its pidfd: %s",
		    p->client_id, strerror(-rc));
		close(p->pidfd);
		p->pidfd = -1;
	}
	return 0;
}

static void on_pid_exit(struct server *s, uint32_t idx)
{
	struct peer *p = idx < s->max_peers ? s->peers[idx] : NULL;

	if (!p || !peer_pid_exited(p))
		return; /* a stale event for the slot's previous tenant */
	LOG(LOG_INFO, "client %u (pid %d) exited", p->client_id,
	    (int)p->cred.pid);
	peer_drop(s, idx);
}

static void on_event(struct server *s, const struct epoll_event *ev)
{
	uint64_t tag = ev->data.u64;

	if (tag & TAG_PIDFD)
		on_pid_exit(s, (uint32_t)tag);
	else if (tag == TAG_LISTEN)
		on_accept(s);
	else if (tag == TAG_SIGNAL)
		on_signal(s);
	else if (tag == TAG_WATCHDOG)
		sdnotify_watchdog(s->notify);
	else if (tag - TAG_PEER < s->max_peers && s->peers[tag - TAG_PEER])
		on_peer(s, (uint32_t)(tag - TAG_PEER));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Deferred reclaims run at most every RETRY_MS; the epoll timeout. */
static int retry_tick(struct server *s)
{
	uint64_t now;

	if (!s->clients.npending)
		return -1;
	now = now_ms();
	if (now >= s->retry_at) {
		clients_retry(&s->clients);
		s->retry_at = now + RETRY_MS;
	}
	return s->clients.npending ? RETRY_MS : -1;
}

/* Close the connections whose message is overdue; the next deadline. */
static void idle_sweep(struct server *s, uint64_t now)
{
	struct peer *p;
	uint64_t due;
	uint32_t i;

	s->idle_next = 0;
	for (i = 0; i < s->max_peers; i++) {
		p = s->peers[i];
		if (!p || !p->since_ms)
			continue;
		due = p->since_ms + s->idle_ms;
		if (due > now) {
			if (!s->idle_next || due < s->idle_next)
				s->idle_next = due;
			continue;
		}
		LOG(LOG_WARN,
		    "pid %d: message incomplete for %u s (%u bytes); "
		    "closing the connection",
		    (int)p->cred.pid, s->idle_ms / 1000, p->len);
		peer_drop(s, i);
	}
}

/* High-water marks sampled every STATS_SAMPLE_MS while clients are on. */
static int sample_tick(struct server *s)
{
	uint64_t now;

	if (!s->clients.nlive)
		return -1;
	now = now_ms();
	if (now >= s->sample_at) {
		stats_sample(&s->clients);
		s->sample_at = now + STATS_SAMPLE_MS;
	}
	return (int)(s->sample_at - now);
}

static int sooner(int a, int b)
{
	return a < 0 || (b >= 0 && b < a) ? b : a;
}

/*
 * The epoll timeout for the timers: deferred reclaim, high-water mark
 * sampling and idle sweep.
 */
static int timers_tick(struct server *s)
{
	int retry = sooner(retry_tick(s), sample_tick(s)), idle;
	uint64_t now;

	if (!s->idle_next)
		return retry;
	now = now_ms();
	if (now >= s->idle_next)
		idle_sweep(s, now);
	if (!s->idle_next)
		return retry;
	idle = (int)(s->idle_next - now);
	return retry < 0 || idle < retry ? idle : retry;
}

int server_run(struct server *s)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, i, err;

	s->retry_at = now_ms() + RETRY_MS;
	while (!s->stop) {
		status_update(s);
		n = epoll_wait(s->epfd, ev, MAX_EVENTS, timers_tick(s));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			LOG(LOG_ERROR, "epoll_wait: %s", strerror(err));
			return -err;
		}
		for (i = 0; i < n; i++)
			on_event(s, &ev[i]);
	}
	return 0;
}

void server_fini(struct server *s)
{
	uint32_t i;

	if (s->clients.nlive)
		LOG(LOG_INFO, "%u clients still attached at shutdown",
		    s->clients.nlive);
	for (i = 0; s->peers && i < s->max_peers; i++)
		peer_free(s->peers[i]);
	free(s->peers);
	s->peers = NULL;
	chans_fini(&s->chans);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	s->epfd = s->sigfd = s->spare_fd = -1;
}
