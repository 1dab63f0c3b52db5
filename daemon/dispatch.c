// SPDX-License-Identifier: MIT
/*
 * What the daemon does with each message.  Every handler decides from the
 * connection's own state (credentials, attached or not) whether the
 * message makes sense; anything that does not closes the connection with
 * one log line, and every refusal a client can act on (not allowed, wrong
 * layout version, no free id) is answered with ERROR first so that the
 * library can return the errno.  HELLO and STATS_REQ need an allowed
 * peer; PING does not, since it tells no more than connect() already did.
 */
#include <errno.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "server.h"
#include "stats.h"

static int proto_error(const struct peer *p, const char *why, unsigned v)
{
	LOG(LOG_WARN, "pid %d: %s %u; closing the connection", (int)p->cred.pid,
	    why, v);
	return -EPROTO;
}

/* Answer ERROR{err}; the caller closes the connection. */
static int reply_error(struct peer *p, uint32_t seq, int err)
{
	struct arena_proto_error e = { .err = err };

	peer_send(p, ARENA_MSG_ERROR, seq, &e, sizeof(e), -1);
	return err;
}

static int refuse(struct peer *p, uint32_t seq)
{
	LOG(LOG_WARN, "refused pid %d uid %u: not allowed", (int)p->cred.pid,
	    (unsigned)p->cred.uid);
	return reply_error(p, seq, -EACCES);
}

static int welcome(struct server *s, struct peer *p, uint32_t seq)
{
	struct arena_proto_welcome w = {
		.client_id = p->client_id,
		.region_id = 0,
		.region_size = s->region->size,
		.instance = s->region->instance,
	};
	int rc;

	rc = peer_send(p, ARENA_MSG_WELCOME, seq, &w, sizeof(w), s->region->fd);
	if (rc) {
		LOG(LOG_WARN, "client %u (pid %d): cannot send WELCOME: %s",
		    p->client_id, (int)p->cred.pid, strerror(-rc));
		return rc;
	}
	LOG(LOG_INFO, "client %u (pid %d uid %u) attached", p->client_id,
	    (int)p->cred.pid, (unsigned)p->cred.uid);
	return 0;
}

static int on_hello(struct server *s, struct peer *p,
		    const struct arena_proto_hdr *h, const uint8_t *payload)
{
	struct arena_proto_hello m;
	int id;

	if (p->client_id)
		return proto_error(p, "second HELLO, already client",
				   p->client_id);
	if (!p->allowed)
		return refuse(p, h->seq);
	memcpy(&m, payload, sizeof(m));
	if (m.layout_version != ARENA_PROTO_LAYOUT_VERSION) {
		LOG(LOG_WARN, "refused pid %d: layout version %u, not %u",
		    (int)p->cred.pid, m.layout_version,
		    ARENA_PROTO_LAYOUT_VERSION);
		return reply_error(p, h->seq, -EPROTO);
	}
	id = clients_attach(&s->clients, p->cred.pid, p->cred.uid);
	if (id < 0) {
		LOG(LOG_WARN, "refused pid %d: all %u client ids in use",
		    (int)p->cred.pid, s->layout->max_clients);
		return reply_error(p, h->seq, id);
	}
	p->client_id = (uint32_t)id;
	if (server_watch_pid(s, p)) {
		LOG(LOG_INFO, "client %u: pid %d has exited already", id,
		    (int)p->cred.pid);
		return -ESRCH;
	}
	return welcome(s, p, h->seq);
}

static int on_stats(struct server *s, struct peer *p,
		    const struct arena_proto_hdr *h)
{
	static uint8_t buf[STATS_MAX_LEN];
	uint32_t len;
	int rc;

	if (!p->allowed)
		return refuse(p, h->seq);
	len = stats_build(&s->clients, buf);
	rc = peer_send(p, ARENA_MSG_STATS, h->seq, buf, len, -1);
	if (rc)
		LOG(LOG_WARN, "pid %d: cannot send STATS: %s", (int)p->cred.pid,
		    strerror(-rc));
	return rc;
}

static int on_metrics(struct server *s, struct peer *p,
		      const struct arena_proto_hdr *h)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	uint32_t len;
	int rc;

	if (!p->allowed)
		return refuse(p, h->seq);
	len = stats_metrics_build(&s->clients, buf);
	rc = peer_send(p, ARENA_MSG_METRICS, h->seq, buf, len, -1);
	if (rc)
		LOG(LOG_WARN, "pid %d: cannot send METRICS: %s",
		    (int)p->cred.pid, strerror(-rc));
	return rc;
}

static int on_ping(struct peer *p, const struct arena_proto_hdr *h)
{
	int rc = peer_send(p, ARENA_MSG_PONG, h->seq, NULL, 0, -1);

	if (rc)
		LOG(LOG_WARN, "pid %d: cannot send PONG: %s", (int)p->cred.pid,
		    strerror(-rc));
	return rc;
}

/*
 * Channels: a refusal the client can act on (bad capacity, table full)
 * is answered with ERROR and keeps the connection.
 */
static int on_chan_open(struct server *s, struct peer *p,
			const struct arena_proto_hdr *h, const uint8_t *payload)
{
	struct arena_proto_chan_open m;
	struct arena_proto_chan_ok ok = { 0 };
	int slot;

	if (!p->client_id)
		return proto_error(p, "CHAN_OPEN before HELLO", h->type);
	memcpy(&m, payload, sizeof(m));
	slot = chans_open(&s->chans, p->client_id, m.name, m.capacity,
			  &ok.capacity);
	if (slot < 0) {
		reply_error(p, h->seq, slot);
		return 0;
	}
	ok.slot = (uint32_t)slot;
	return peer_send(p, ARENA_MSG_CHAN_OK, h->seq, &ok, sizeof(ok), -1);
}

static int on_chan_close(struct server *s, struct peer *p,
			 const struct arena_proto_hdr *h,
			 const uint8_t *payload)
{
	struct arena_proto_chan_close m;
	struct arena_proto_chan_ok ok = { 0 };
	int rc;

	if (!p->client_id)
		return proto_error(p, "CHAN_CLOSE before HELLO", h->type);
	memcpy(&m, payload, sizeof(m));
	rc = chans_close(&s->chans, p->client_id, m.slot);
	if (rc < 0) {
		reply_error(p, h->seq, rc);
		return 0;
	}
	ok.slot = m.slot;
	return peer_send(p, ARENA_MSG_CHAN_OK, h->seq, &ok, sizeof(ok), -1);
}

static int on_chan_stats(struct server *s, struct peer *p,
			 const struct arena_proto_hdr *h)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	uint32_t len;

	if (!p->allowed)
		return refuse(p, h->seq);
	len = chans_stats(&s->chans, buf);
	return peer_send(p, ARENA_MSG_CHAN_STATS, h->seq, buf, len, -1);
}

/*
 * AUDIT: the walk runs here, in the one thread, so it sees no attach,
 * detach or reclaim half done; everyone else waits for it (a few ms per
 * 100 MiB of region, see audit.c).  The pid of every attached id comes
 * from its connection's SO_PEERCRED, which no client can write.
 */
static int on_audit(struct server *s, struct peer *p,
		    const struct arena_proto_hdr *h)
{
	static int32_t pids[ARENA_PROTO_MAX_CLIENTS + 1];
	static struct audit_report r;
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct audit_src src = { s->region, s->layout, &s->clients, &s->chans,
				 pids };
	uint32_t i;
	int rc;

	if (!p->allowed)
		return refuse(p, h->seq);
	memset(pids, 0, sizeof(pids));
	for (i = 0; i < s->max_peers; i++)
		if (s->peers[i] && s->peers[i]->client_id)
			pids[s->peers[i]->client_id] = s->peers[i]->cred.pid;
	rc = audit_run(&src, &r);
	if (rc) {
		reply_error(p, h->seq, rc);
		return 0;
	}
	return peer_send(p, ARENA_MSG_AUDIT, h->seq, buf, audit_encode(&r, buf),
			 -1);
}

int server_dispatch(struct server *s, struct peer *p,
		    const struct arena_proto_hdr *h, const uint8_t *payload)
{
	switch (h->type) {
	case ARENA_MSG_HELLO:
		return on_hello(s, p, h, payload);
	case ARENA_MSG_STATS_REQ:
		return on_stats(s, p, h);
	case ARENA_MSG_PING:
		return on_ping(p, h);
	case ARENA_MSG_CHAN_OPEN:
		return on_chan_open(s, p, h, payload);
	case ARENA_MSG_CHAN_CLOSE:
		return on_chan_close(s, p, h, payload);
	case ARENA_MSG_CHAN_STATS_REQ:
		return on_chan_stats(s, p, h);
	case ARENA_MSG_AUDIT_REQ:
		return on_audit(s, p, h);
	case ARENA_MSG_METRICS_REQ:
		return on_metrics(s, p, h);
	default:
		return proto_error(p, "unexpected message type", h->type);
	}
}
