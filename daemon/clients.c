// SPDX-License-Identifier: MIT
/*
 * Client tables.  Which ids are taken is decided by the daemon's private
 * slot array, not by the state word in the region, which any client could
 * overwrite; the region's state is only published for the library and
 * reclaim to read (FREE -> LIVE with release order once the table is
 * ready, DEAD while reclaim runs, FREE when the id can be reused).  An id
 * is also skipped if its table does not say FREE, so a scribbled table is
 * never handed to a new client.  Counters are hints: the daemon sums them
 * for STATS and folds a leaving client's share into private totals so
 * that the numbers do not drop when a client goes away, and publishes
 * those totals in the region (struct arena_proto_wait) for the library's
 * arena_stats(), bumping fold_seq around each fold so readers retry.  A
 * leaving client's wait tickets are finished before its id is reused.  When the last
 * client has gone, the buddy trees are rebuilt from the block records
 * (reclaim_buddy_rebuild): only then can nobody be in the middle of a
 * buddy operation.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "journal.h"
#include "log.h"
#include "reclaim.h"
#include "waitq.h"

static uint8_t *table(const struct clients *c, uint32_t id)
{
	return c->region->base + layout_client_off(c->layout, id);
}

static struct arena_proto_client *head(const struct clients *c, uint32_t id)
{
	return (struct arena_proto_client *)table(c, id);
}

static uint64_t ctr_len(const struct layout *l)
{
	return (uint64_t)ARENA_PROTO_STAT_SLOTS * l->narenas *
	       sizeof(struct arena_proto_ctr);
}

static struct arena_proto_bctr *bctr(const struct clients *c, uint32_t id)
{
	return (struct arena_proto_bctr *)(table(c, id) + c->layout->bctr_off);
}

#define BCTR_LEN (ARENA_PROTO_STAT_SLOTS * sizeof(struct arena_proto_bctr))

/* Counter row (stat slot s, arena a) of client id. */
static const struct arena_proto_ctr *ctr(const struct clients *c, uint32_t id,
					 uint32_t s, uint32_t a)
{
	const struct arena_proto_ctr *rows =
		(const void *)(table(c, id) + c->layout->ctr_off);

	return &rows[(uint64_t)s * c->layout->narenas + a];
}

void clients_init(struct clients *c, const struct region *r,
		  const struct layout *l)
{
	memset(c, 0, sizeof(*c));
	c->region = r;
	c->layout = l;
}

static uint32_t id_find(const struct clients *c)
{
	uint32_t id;

	for (id = 1; id <= c->layout->max_clients; id++)
		if (c->slot[id] == CLIENT_SLOT_FREE &&
		    __atomic_load_n(&head(c, id)->state, __ATOMIC_ACQUIRE) ==
			    ARENA_PROTO_CLIENT_FREE)
			return id;
	return 0;
}

static void table_clear(const struct clients *c, uint32_t id)
{
	const struct layout *l = c->layout;

	memset(table(c, id) + l->ctr_off, 0, ctr_len(l));
	memset(bctr(c, id), 0, BCTR_LEN);
	memset(table(c, id) + l->ledger_off, 0,
	       (uint64_t)l->ledger_entries * sizeof(uint64_t));
	memset(table(c, id) + l->jnl_off, 0, ARENA_PROTO_JNL_ENTRIES * 8);
}

/*
 * The header is the daemon's alone after start-up.  One that a client
 * overwrote is put back from the daemon's own layout before a new client
 * maps it or a reclaim reads it, so a scribble costs no client id and
 * strands no block.
 */
static void header_repair(const struct clients *c)
{
	const struct arena_proto_region *r = (const void *)c->region->base;

	if (layout_verify(c->layout, r) < 0 &&
	    r->instance == c->region->instance &&
	    r->daemon_pid == (uint64_t)getpid())
		return;
	layout_header_write(c->layout, c->region->base, c->region->instance,
			    (uint64_t)getpid());
	LOG(LOG_WARN, "region header overwritten by a client: restored");
}

int clients_attach(struct clients *c, pid_t pid, uid_t uid)
{
	struct arena_proto_client *h;
	uint32_t id;

	header_repair(c);
	id = id_find(c);

	if (!id)
		return -EUSERS;
	table_clear(c, id);
	h = head(c, id);
	h->id = id;
	h->pid = pid;
	h->uid = uid;
	h->incarnation++;
	__atomic_store_n(&h->state, ARENA_PROTO_CLIENT_LIVE, __ATOMIC_RELEASE);
	c->slot[id] = CLIENT_SLOT_LIVE;
	c->nlive++;
	return (int)id;
}

static void ctr_add(struct arena_proto_ctr *to,
		    const struct arena_proto_ctr *from)
{
	to->allocs += __atomic_load_n(&from->allocs, __ATOMIC_RELAXED);
	to->frees += __atomic_load_n(&from->frees, __ATOMIC_RELAXED);
	to->fail_full += __atomic_load_n(&from->fail_full, __ATOMIC_RELAXED);
	to->fail_big += __atomic_load_n(&from->fail_big, __ATOMIC_RELAXED);
	to->alloc_bytes +=
		__atomic_load_n(&from->alloc_bytes, __ATOMIC_RELAXED);
	to->free_bytes += __atomic_load_n(&from->free_bytes, __ATOMIC_RELAXED);
	to->waits += __atomic_load_n(&from->waits, __ATOMIC_RELAXED);
	to->wait_ns += __atomic_load_n(&from->wait_ns, __ATOMIC_RELAXED);
}

static void bctr_add(struct arena_proto_bctr *to,
		     const struct arena_proto_bctr *from)
{
	to->splits += __atomic_load_n(&from->splits, __ATOMIC_RELAXED);
	to->coalesces += __atomic_load_n(&from->coalesces, __ATOMIC_RELAXED);
}

/* Readers of the region's totals retry while a fold is under way. */
static void fold_mark(const struct clients *c)
{
	uint32_t a;

	for (a = 0; a < c->layout->narenas; a++)
		__atomic_fetch_add(
			&layout_wait(c->layout, c->region->base, a)->fold_seq,
			1, __ATOMIC_SEQ_CST);
}

/*
 * Write the departed clients' totals where the library reads them
 * (struct arena_proto_wait), from the daemon's own copy: what a client
 * scribbled there is put right at the next fold or STATS.
 */
void clients_publish(const struct clients *c)
{
	struct arena_proto_wait *w;
	uint32_t a;

	fold_mark(c);
	for (a = 0; a < c->layout->narenas; a++) {
		w = layout_wait(c->layout, c->region->base, a);
		if (memcmp(&w->gone, &c->totals[a], sizeof(w->gone)))
			memcpy(&w->gone, &c->totals[a], sizeof(w->gone));
	}
	fold_mark(c);
}

static void counters_fold(struct clients *c, uint32_t id)
{
	uint32_t s, a;

	fold_mark(c);
	for (s = 0; s < ARENA_PROTO_STAT_SLOTS; s++) {
		for (a = 0; a < c->layout->narenas; a++)
			ctr_add(&c->totals[a], ctr(c, id, s, a));
		bctr_add(&c->btotals, &bctr(c, id)[s]);
	}
	memset(table(c, id) + c->layout->ctr_off, 0, ctr_len(c->layout));
	memset(bctr(c, id), 0, BCTR_LEN);
	for (a = 0; a < c->layout->narenas; a++)
		memcpy(&layout_wait(c->layout, c->region->base, a)->gone,
		       &c->totals[a], sizeof(c->totals[a]));
	fold_mark(c);
}

static bool alive(void *ctx, uint32_t id)
{
	const struct clients *c = ctx;

	return id >= 1 && id <= c->layout->max_clients &&
	       c->slot[id] == CLIENT_SLOT_LIVE;
}

/*
 * Client id is gone: finish the tickets it held in the wait queues and
 * wake the waiters (reclaim may have freed what they wait for), before
 * the id can be reused.
 */
static void waits_reap(struct clients *c, uint32_t id)
{
	struct arena_proto_wait *w;
	uint32_t a, n = 0;

	for (a = 0; a < c->layout->narenas; a++) {
		w = layout_wait(c->layout, c->region->base, a);
		n += arena_waitq_reap(w, id, alive, c);
		if (arena_waitq_waiting(
			    __atomic_load_n(&w->queue, __ATOMIC_SEQ_CST)))
			arena_waitq_kick(w);
	}
	if (n)
		LOG(LOG_INFO, "client %u: %u waits ended with it", id, n);
}

/*
 * With no client attached nobody can be between the tree step and the
 * word step of a buddy claim or release: make the trees what the words
 * say, repairing what a client killed inside a tree operation left.
 */
static void buddy_audit(const struct clients *c)
{
	int n;

	if (c->nlive || !c->layout->nbuddy)
		return;
	n = reclaim_buddy_rebuild(c->region->base, c->region->size);
	if (n > 0)
		LOG(LOG_WARN,
		    "buddy tree repaired: %d nodes did not match the "
		    "blocks held (a client died inside a tree operation)",
		    n);
	else if (n < 0)
		LOG(LOG_ERROR, "buddy tree not rebuilt: %s", strerror(-n));
}

/*
 * After a reclaim of an id in CLIENT_SLOT_RECLAIM: fold its counters
 * (reclaim may have counted in them), then free the id, leave it for a
 * retry, or quarantine it.
 */
static int reclaim_settle(struct clients *c, uint32_t id, int rc)
{
	counters_fold(c, id);
	if (rc == -EAGAIN && ++c->tries[id] < CLIENTS_RECLAIM_TRIES) {
		c->slot[id] = CLIENT_SLOT_RECLAIM;
	} else if (rc < 0) {
		c->slot[id] = CLIENT_SLOT_QUARANTINED;
	} else {
		__atomic_store_n(&head(c, id)->state, ARENA_PROTO_CLIENT_FREE,
				 __ATOMIC_RELEASE);
		c->slot[id] = CLIENT_SLOT_FREE;
	}
	if (c->slot[id] != CLIENT_SLOT_RECLAIM)
		c->npending--;
	return rc;
}

/* What the detach log reports, for bench/bench_reclaim.c. */
static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int clients_detach(struct clients *c, uint32_t id)
{
	uint64_t t0;
	int rc;

	if (id == 0 || id > c->layout->max_clients ||
	    c->slot[id] != CLIENT_SLOT_LIVE)
		return -EINVAL;
	__atomic_store_n(&head(c, id)->state, ARENA_PROTO_CLIENT_DEAD,
			 __ATOMIC_RELEASE);
	c->slot[id] = CLIENT_SLOT_RECLAIM;
	c->npending++;
	c->nlive--;
	c->tries[id] = 0;
	header_repair(c);
	t0 = mono_ns();
	rc = reclaim_client(c->region->base, c->region->size, id);
	c->reclaim_ns = mono_ns() - t0;
	rc = reclaim_settle(c, id, rc);
	waits_reap(c, id);
	buddy_audit(c);
	return rc;
}

static void retry_log(uint32_t id, int rc, uint8_t slot)
{
	if (rc >= 0)
		LOG(LOG_INFO, "client %u: deferred reclaim done, %d blocks", id,
		    rc);
	else if (slot == CLIENT_SLOT_QUARANTINED)
		LOG(LOG_ERROR, "client %u: reclaim failed (%s); id retired", id,
		    strerror(-rc));
}

uint32_t clients_retry(struct clients *c)
{
	uint32_t id;
	int rc;

	for (id = 1; c->npending && id <= c->layout->max_clients; id++) {
		if (c->slot[id] != CLIENT_SLOT_RECLAIM)
			continue;
		header_repair(c);
		rc = reclaim_client(c->region->base, c->region->size, id);
		reclaim_settle(c, id, rc);
		retry_log(id, rc, c->slot[id]);
		buddy_audit(c);
	}
	return c->npending;
}

void clients_bsum(const struct clients *c, struct arena_proto_bctr *out)
{
	uint32_t id, s;

	*out = c->btotals;
	for (id = 1; id <= c->layout->max_clients; id++) {
		if (c->slot[id] != CLIENT_SLOT_LIVE)
			continue;
		for (s = 0; s < ARENA_PROTO_STAT_SLOTS; s++)
			bctr_add(out, &bctr(c, id)[s]);
	}
}

void clients_sum(const struct clients *c, uint32_t a,
		 struct arena_proto_ctr *out)
{
	uint32_t id, s;

	*out = c->totals[a];
	for (id = 1; id <= c->layout->max_clients; id++) {
		if (c->slot[id] != CLIENT_SLOT_LIVE)
			continue;
		for (s = 0; s < ARENA_PROTO_STAT_SLOTS; s++)
			ctr_add(out, ctr(c, id, s, a));
	}
}
