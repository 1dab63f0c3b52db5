// SPDX-License-Identifier: MIT
/*
 * arenactl: ask a running arenad for its statistics, or whether it is
 * alive.  It speaks the control protocol without attaching (no HELLO), so
 * it takes no client id and maps nothing.  Replies go through the same
 * proto decoders as everywhere else: a daemon that answers nonsense gets
 * an error message, never a misprinted table.  Exit status: 0, 1 when the
 * daemon cannot be reached or answers badly, 64 for a usage error.
 *
 * stats prints a table for people, JSON for scripts, or the Prometheus
 * text exposition format for a node exporter's textfile collector or a
 * scrape wrapper: every arena's numbers are samples labelled with the
 * arena, its kind and its block size.  A buddy arena's row counts in its
 * minimum blocks; what its tree shows (free bytes, the largest free
 * block, free blocks per order, splits, coalesces) follows the table, is
 * part of its JSON object, and has metrics of its own.  The live metrics
 * (what arena_stats() says: live blocks and bytes, high-water marks,
 * failures by cause, waits, free space) come from a second request,
 * METRICS, and follow as a second table, as a "metrics" object last in
 * each arena's JSON object, and as arenad_arena_* metrics.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <arena/arena.h>

#include "size.h"
#include "sockpath.h"
#include "wire.h"

#define EX_USAGE_ 64
#define TIMEOUT_S 5

enum format {
	FMT_TABLE,
	FMT_JSON,
	FMT_PROMETHEUS,
};

struct ctl {
	const char *socket; /* --socket, or NULL */
	enum format fmt;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
};

/* The METRICS records of a stats request. */
struct live {
	uint32_t n;
	struct arena_proto_metrics m[ARENA_PROTO_MAX_ARENAS];
};

struct cmd {
	const char *name;
	bool takes_format; /* --json, --prometheus */
	int (*run)(struct ctl *c);
	const char *help;
};

static int ctl_fail(const struct ctl *c, const char *what, int err)
{
	fprintf(stderr, "arenactl: %s arenad at %s: %s\n", what, c->path,
		strerror(err));
	return 1;
}

static int bad_reply(const struct ctl *c, const char *why)
{
	fprintf(stderr, "arenactl: bad reply from arenad at %s: %s\n", c->path,
		why);
	return 1;
}

static int ctl_connect(struct ctl *c)
{
	struct timeval tv = { .tv_sec = TIMEOUT_S };
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	strcpy(a.sun_path, c->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return ctl_fail(c, "cannot reach", errno);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
		return ctl_fail(c, "cannot reach", errno);
	return 0;
}

static int send_req(struct ctl *c, uint16_t type)
{
	struct arena_proto_hdr h;
	ssize_t n;

	arena_proto_hdr_encode(&h, type, 0, 1);
	n = send(c->fd, &h, sizeof(h), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(h))
		return ctl_fail(c, "cannot send to", n < 0 ? errno : EIO);
	return 0;
}

/* Read exactly len bytes; 0, or the errno (EPIPE for an early EOF). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int error_print(const struct ctl *c, const uint8_t *payload)
{
	struct arena_proto_error e;

	memcpy(&e, payload, sizeof(e));
	fprintf(stderr, "arenactl: arenad at %s refused: %s\n", c->path,
		strerror(-e.err));
	return 1;
}

/* Receive the reply of type want into payload (ARENA_PROTO_MAX_PAYLOAD). */
static int recv_reply(struct ctl *c, uint16_t want, uint8_t *payload,
		      uint32_t *len)
{
	struct arena_proto_hdr h;
	uint8_t raw[sizeof(h)];
	int err;

	err = read_full(c->fd, raw, sizeof(raw));
	if (err)
		return ctl_fail(c, "no reply from",
				err == EAGAIN ? ETIMEDOUT : err);
	if (arena_proto_hdr_decode(raw, sizeof(raw), &h))
		return bad_reply(c, "malformed header");
	err = read_full(c->fd, payload, h.len);
	if (err)
		return ctl_fail(c, "truncated reply from", err);
	if (arena_proto_payload_check(h.type, payload, h.len))
		return bad_reply(c, "malformed payload");
	if (h.type == ARENA_MSG_ERROR)
		return error_print(c, payload);
	if (h.type != want || h.seq != 1)
		return bad_reply(c, "unexpected message");
	*len = h.len;
	return 0;
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case ARENA_PROTO_KIND_FIXED:
		return "fixed";
	case ARENA_PROTO_KIND_BUDDY:
		return "buddy";
	case ARENA_PROTO_KIND_BUMP:
		return "bump";
	default:
		return "unknown";
	}
}

static unsigned long long free_of(const struct arena_proto_arena_stats *a)
{
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		return a->chunks_free; /* cached: retired, still referenced */
	return a->in_use < a->capacity ? a->capacity - a->in_use : 0;
}

static unsigned long long failures(const struct arena_proto_arena_stats *a)
{
	return a->fail_full + a->fail_big;
}

static void table_row(const struct arena_proto_arena_stats *a)
{
	printf("%5u  %-6s %10llu %10llu %10llu %10llu %10llu %12llu %12llu "
	       "%8llu\n",
	       a->index, kind_name(a->kind), (unsigned long long)a->block_size,
	       (unsigned long long)a->capacity, (unsigned long long)a->in_use,
	       free_of(a), (unsigned long long)a->cached,
	       (unsigned long long)a->allocs, (unsigned long long)a->frees,
	       failures(a));
}

/* The buddy record of arena index, or NULL. */
static const struct arena_proto_buddy_stats *
buddy_of(const struct arena_proto_stats *s,
	 const struct arena_proto_buddy_stats *b, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < s->nbuddy; i++)
		if (b[i].index == index)
			return &b[i];
	return NULL;
}

static void table_buddy(const struct arena_proto_buddy_stats *b)
{
	char x[SIZE_HUMAN_MAX], y[SIZE_HUMAN_MAX], z[SIZE_HUMAN_MAX];
	uint32_t o;

	printf("buddy arena %u: %s free, %s held, largest free block %s; "
	       "%llu splits, %llu coalesces\n  free blocks:",
	       b->index, size_human(b->free_bytes, x),
	       size_human(b->alloc_bytes, y), size_human(b->largest_free, z),
	       (unsigned long long)b->splits, (unsigned long long)b->coalesces);
	for (o = 0; o <= b->max_order; o++)
		printf("%s %s:%llu", o && o % 6 == 0 ? "\n              " : "",
		       size_human(b->min_block << o, x),
		       (unsigned long long)b->free_blocks[o]);
	putchar('\n');
}

static void table_bump(const struct arena_proto_arena_stats *a)
{
	char x[SIZE_HUMAN_MAX], y[SIZE_HUMAN_MAX];

	printf("bump arena %u: %llu chunks of %s: %llu free, %llu in use, "
	       "%llu retired but referenced; %s allocated\n",
	       a->index, (unsigned long long)a->capacity,
	       size_human(a->block_size, x), (unsigned long long)a->chunks_free,
	       (unsigned long long)a->in_use, (unsigned long long)a->cached,
	       size_human(a->bytes, y));
}

/* The live metrics of every arena, a second table. */
static void table_live(const struct live *l)
{
	const struct arena_proto_metrics *m;
	uint32_t i;

	printf("%5s %10s %12s %10s %12s %9s %8s %8s %10s %12s %12s\n", "arena",
	       "live", "live_bytes", "peak", "peak_bytes", "fail_full",
	       "fail_big", "waits", "wait_ms", "free_bytes", "largest_free");
	for (i = 0; i < l->n; i++) {
		m = &l->m[i];
		printf("%5u %10llu %12llu %10llu %12llu %9llu %8llu %8llu "
		       "%10llu %12llu %12llu\n",
		       m->index, (unsigned long long)m->live_blocks,
		       (unsigned long long)m->live_bytes,
		       (unsigned long long)m->peak_blocks,
		       (unsigned long long)m->peak_bytes,
		       (unsigned long long)m->fail_full,
		       (unsigned long long)m->fail_big,
		       (unsigned long long)m->waits,
		       (unsigned long long)(m->wait_ns / 1000000u),
		       (unsigned long long)m->free_bytes,
		       (unsigned long long)m->largest_free);
	}
}

static void table_print(const struct arena_proto_stats *s,
			const struct arena_proto_arena_stats *a,
			const struct arena_proto_buddy_stats *b,
			const struct live *l)
{
	uint32_t i;

	printf("%5s  %-6s %10s %10s %10s %10s %10s %12s %12s %8s\n", "arena",
	       "kind", "block", "capacity", "in_use", "free", "cached",
	       "allocs", "frees", "failures");
	for (i = 0; i < s->narenas; i++)
		table_row(&a[i]);
	table_live(l);
	for (i = 0; i < s->nbuddy; i++)
		table_buddy(&b[i]);
	for (i = 0; i < s->narenas; i++)
		if (a[i].kind == ARENA_PROTO_KIND_BUMP)
			table_bump(&a[i]);
	printf("clients: %u\n", s->nclients);
}

/* A buddy arena's tree, inside its JSON object. */
static void json_buddy(const struct arena_proto_buddy_stats *b)
{
	uint32_t o;

	printf(",\"free_bytes\":%llu,\"alloc_bytes\":%llu,"
	       "\"largest_free\":%llu,\"splits\":%llu,\"coalesces\":%llu,"
	       "\"free_blocks\":[",
	       (unsigned long long)b->free_bytes,
	       (unsigned long long)b->alloc_bytes,
	       (unsigned long long)b->largest_free,
	       (unsigned long long)b->splits, (unsigned long long)b->coalesces);
	for (o = 0; o <= b->max_order; o++)
		printf("%s%llu", o ? "," : "",
		       (unsigned long long)b->free_blocks[o]);
	putchar(']');
}

/* The live metrics (METRICS), last in an arena's JSON object. */
static void json_metrics(const struct arena_proto_metrics *m)
{
	printf(",\"metrics\":{\"live_blocks\":%llu,\"live_bytes\":%llu,"
	       "\"peak_blocks\":%llu,\"peak_bytes\":%llu,\"allocs\":%llu,"
	       "\"frees\":%llu,\"fail_full\":%llu,\"fail_big\":%llu,"
	       "\"waits\":%llu,\"wait_ns\":%llu,\"free_bytes\":%llu,"
	       "\"largest_free\":%llu}",
	       (unsigned long long)m->live_blocks,
	       (unsigned long long)m->live_bytes,
	       (unsigned long long)m->peak_blocks,
	       (unsigned long long)m->peak_bytes, (unsigned long long)m->allocs,
	       (unsigned long long)m->frees, (unsigned long long)m->fail_full,
	       (unsigned long long)m->fail_big, (unsigned long long)m->waits,
	       (unsigned long long)m->wait_ns,
	       (unsigned long long)m->free_bytes,
	       (unsigned long long)m->largest_free);
}

static void json_arena(const struct arena_proto_arena_stats *a,
		       const struct arena_proto_buddy_stats *b,
		       const struct arena_proto_metrics *m)
{
	printf("{\"index\":%u,\"kind\":\"%s\",\"block_size\":%llu,"
	       "\"capacity\":%llu,\"in_use\":%llu,\"free\":%llu,"
	       "\"cached\":%llu,\"allocs\":%llu,\"frees\":%llu,"
	       "\"failures\":%llu,\"fail_full\":%llu,\"fail_big\":%llu",
	       a->index, kind_name(a->kind), (unsigned long long)a->block_size,
	       (unsigned long long)a->capacity, (unsigned long long)a->in_use,
	       free_of(a), (unsigned long long)a->cached,
	       (unsigned long long)a->allocs, (unsigned long long)a->frees,
	       failures(a), (unsigned long long)a->fail_full,
	       (unsigned long long)a->fail_big);
	if (b)
		json_buddy(b);
	if (a->kind == ARENA_PROTO_KIND_BUMP)
		printf(",\"chunks_free\":%llu,\"chunks_in_use\":%llu,"
		       "\"chunks_retired\":%llu,\"bytes\":%llu",
		       (unsigned long long)a->chunks_free,
		       (unsigned long long)a->in_use,
		       (unsigned long long)a->cached,
		       (unsigned long long)a->bytes);
	if (m)
		json_metrics(m);
	putchar('}');
}

static void json_print(const struct arena_proto_stats *s,
		       const struct arena_proto_arena_stats *a,
		       const struct arena_proto_buddy_stats *b,
		       const struct live *l)
{
	uint32_t i;

	printf("{\"clients\":%u,\"arenas\":[", s->nclients);
	for (i = 0; i < s->narenas; i++) {
		if (i)
			putchar(',');
		json_arena(&a[i], buddy_of(s, b, a[i].index),
			   i < l->n ? &l->m[i] : NULL);
	}
	printf("]}\n");
}

/* A per-arena metric: the offset of its field, or FREE_BLOCKS. */
struct metric {
	const char *name;
	const char *type;
	const char *help;
	size_t field;
	const char *reason; /* label of the failure counters, or NULL */
};

#define FIELD(f) offsetof(struct arena_proto_arena_stats, f)
#define FREE_BLOCKS ((size_t)-1)

static const struct metric metrics[] = {
	{ "arenad_arena_capacity_blocks", "gauge", "Blocks in the arena.",
	  FIELD(capacity), NULL },
	{ "arenad_arena_in_use_blocks", "gauge", "Blocks allocated now.",
	  FIELD(in_use), NULL },
	{ "arenad_arena_free_blocks", "gauge",
	  "Blocks not allocated (cached ones included).", FREE_BLOCKS, NULL },
	{ "arenad_arena_cached_blocks", "gauge",
	  "Free blocks held in client caches.", FIELD(cached), NULL },
	{ "arenad_arena_allocs_total", "counter", "Allocations served.",
	  FIELD(allocs), NULL },
	{ "arenad_arena_frees_total", "counter", "Blocks freed.", FIELD(frees),
	  NULL },
	{ "arenad_arena_alloc_failures_total", "counter",
	  "Allocations refused: full (transient) or too_big (never fits).",
	  FIELD(fail_full), "full" },
	{ "arenad_arena_alloc_failures_total", "counter", NULL, FIELD(fail_big),
	  "too_big" },
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static unsigned long long metric_value(const struct metric *m,
				       const struct arena_proto_arena_stats *a)
{
	uint64_t v;

	if (m->field == FREE_BLOCKS)
		return free_of(a);
	memcpy(&v, (const char *)a + m->field, sizeof(v));
	return (unsigned long long)v;
}

static void prom_header(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_samples(const struct metric *m,
			 const struct arena_proto_arena_stats *a, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		printf("%s{arena=\"%u\",kind=\"%s\",block_size=\"%llu\"",
		       m->name, a[i].index, kind_name(a[i].kind),
		       (unsigned long long)a[i].block_size);
		if (m->reason)
			printf(",reason=\"%s\"", m->reason);
		printf("} %llu\n", metric_value(m, &a[i]));
	}
}

/* Buddy tree metrics, labelled with the arena (and order's size). */
static void prom_buddy(const struct arena_proto_stats *s,
		       const struct arena_proto_buddy_stats *b)
{
	static const struct {
		const char *name, *type, *help;
		size_t field;
	} m[] = {
		{ "arenad_buddy_free_bytes", "gauge",
		  "Bytes the buddy tree shows free.",
		  offsetof(struct arena_proto_buddy_stats, free_bytes) },
		{ "arenad_buddy_largest_free_bytes", "gauge",
		  "Bytes of the largest free buddy block.",
		  offsetof(struct arena_proto_buddy_stats, largest_free) },
		{ "arenad_buddy_splits_total", "counter",
		  "Free buddy blocks split to serve smaller ones.",
		  offsetof(struct arena_proto_buddy_stats, splits) },
		{ "arenad_buddy_coalesces_total", "counter",
		  "Free buddies merged into a larger block.",
		  offsetof(struct arena_proto_buddy_stats, coalesces) },
	};
	uint64_t v;
	uint32_t i, k, o;

	for (k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		prom_header(m[k].name, m[k].type, m[k].help);
		for (i = 0; i < s->nbuddy; i++) {
			memcpy(&v, (const char *)&b[i] + m[k].field, sizeof(v));
			printf("%s{arena=\"%u\"} %llu\n", m[k].name, b[i].index,
			       (unsigned long long)v);
		}
	}
	prom_header("arenad_buddy_free_blocks", "gauge",
		    "Free buddy blocks of each size.");
	for (i = 0; i < s->nbuddy; i++)
		for (o = 0; o <= b[i].max_order; o++)
			printf("arenad_buddy_free_blocks{arena=\"%u\","
			       "block_size=\"%llu\"} %llu\n",
			       b[i].index,
			       (unsigned long long)(b[i].min_block << o),
			       (unsigned long long)b[i].free_blocks[o]);
}

/* Live metrics (METRICS records), labelled like the arena's others. */
#define LFIELD(f) offsetof(struct arena_proto_metrics, f)

static const struct metric live_metrics[] = {
	{ "arenad_arena_live_blocks", "gauge", "Blocks allocated now.",
	  LFIELD(live_blocks), NULL },
	{ "arenad_arena_live_bytes", "gauge",
	  "Bytes of the blocks allocated now.", LFIELD(live_bytes), NULL },
	{ "arenad_arena_peak_blocks", "gauge",
	  "High-water mark of live blocks (sampled).", LFIELD(peak_blocks),
	  NULL },
	{ "arenad_arena_peak_bytes", "gauge",
	  "High-water mark of live bytes (sampled).", LFIELD(peak_bytes),
	  NULL },
	{ "arenad_arena_waits_total", "counter",
	  "Waiting allocations that slept.", LFIELD(waits), NULL },
	{ "arenad_arena_wait_nanoseconds_total", "counter",
	  "Time waiting allocations waited.", LFIELD(wait_ns), NULL },
	{ "arenad_arena_free_bytes", "gauge", "Bytes free now.",
	  LFIELD(free_bytes), NULL },
	{ "arenad_arena_largest_free_bytes", "gauge",
	  "Bytes of the largest block free now.", LFIELD(largest_free), NULL },
};

static void prom_live(const struct arena_proto_arena_stats *a,
		      const struct live *l)
{
	const struct arena_proto_metrics *m;
	uint64_t v;
	size_t k;
	uint32_t i;

	for (k = 0; k < sizeof(live_metrics) / sizeof(live_metrics[0]); k++) {
		prom_header(live_metrics[k].name, live_metrics[k].type,
			    live_metrics[k].help);
		for (i = 0; i < l->n; i++) {
			m = &l->m[i];
			memcpy(&v, (const char *)m + live_metrics[k].field,
			       sizeof(v));
			printf("%s{arena=\"%u\",kind=\"%s\",block_size=\"%"
			       "llu\"} "
			       "%llu\n",
			       live_metrics[k].name, m->index,
			       kind_name(m->kind),
			       (unsigned long long)a[i].block_size,
			       (unsigned long long)v);
		}
	}
}

static void prom_print(const struct arena_proto_stats *s,
		       const struct arena_proto_arena_stats *a,
		       const struct arena_proto_buddy_stats *b,
		       const struct live *l)
{
	size_t i;

	prom_header("arenad_clients", "gauge", "Clients attached now.");
	printf("arenad_clients %u\n", s->nclients);
	prom_header("arenad_arenas", "gauge", "Arenas in the region.");
	printf("arenad_arenas %u\n", s->narenas);
	for (i = 0; i < NMETRICS; i++) {
		if (metrics[i].help)
			prom_header(metrics[i].name, metrics[i].type,
				    metrics[i].help);
		prom_samples(&metrics[i], a, s->narenas);
	}
	prom_live(a, l);
	if (s->nbuddy)
		prom_buddy(s, b);
}

/* Channels, after the arenas in the table: a second request. */
static int chan_table(struct ctl *c)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_chan_stats s;
	struct arena_proto_chan_rec r;
	uint32_t len, i;

	if (send_req(c, ARENA_MSG_CHAN_STATS_REQ) ||
	    recv_reply(c, ARENA_MSG_CHAN_STATS, buf, &len))
		return 1;
	memcpy(&s, buf, sizeof(s)); /* validated: nchan agrees with len */
	printf("channels: %u\n", s.total);
	if (!s.nchan)
		return 0;
	printf("%-24s %8s %8s %12s %12s %9s\n", "channel", "capacity", "depth",
	       "sends", "receives", "endpoints");
	for (i = 0; i < s.nchan; i++) {
		memcpy(&r, buf + arena_proto_chan_stats_len(i), sizeof(r));
		printf("%-24s %8u %8llu %12llu %12llu %9u\n", r.name,
		       r.capacity, (unsigned long long)r.depth,
		       (unsigned long long)r.sends,
		       (unsigned long long)r.receives, r.endpoints);
	}
	if (s.total > s.nchan)
		printf("(%u more not listed)\n", s.total - s.nchan);
	return 0;
}

/* The live metrics: a second request, after STATS on the same socket. */
static int live_get(struct ctl *c, uint32_t narenas, struct live *l)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_metrics_hdr h;
	uint32_t len;

	if (send_req(c, ARENA_MSG_METRICS_REQ) ||
	    recv_reply(c, ARENA_MSG_METRICS, buf, &len))
		return 1;
	memcpy(&h, buf, sizeof(h)); /* validated: narenas agrees with len */
	l->n = h.narenas < narenas ? h.narenas : narenas;
	memcpy(l->m, buf + sizeof(h), l->n * sizeof(l->m[0]));
	return 0;
}

static int cmd_stats(struct ctl *c)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_arena_stats a[ARENA_PROTO_MAX_ARENAS];
	struct arena_proto_buddy_stats b[ARENA_PROTO_MAX_BUDDY];
	static struct live l;
	struct arena_proto_stats s;
	uint32_t len;

	if (ctl_connect(c) || send_req(c, ARENA_MSG_STATS_REQ) ||
	    recv_reply(c, ARENA_MSG_STATS, buf, &len))
		return 1;
	/* validated: the counts fit the arrays and agree with len */
	memcpy(&s, buf, sizeof(s));
	memcpy(a, buf + sizeof(s), s.narenas * sizeof(a[0]));
	memcpy(b, buf + arena_proto_stats_len(s.narenas),
	       s.nbuddy * sizeof(b[0]));
	if (live_get(c, s.narenas, &l))
		return 1;
	if (c->fmt == FMT_JSON)
		json_print(&s, a, b, &l);
	else if (c->fmt == FMT_PROMETHEUS)
		prom_print(&s, a, b, &l);
	else
		table_print(&s, a, b, &l);
	if (c->fmt != FMT_JSON && c->fmt != FMT_PROMETHEUS)
		return chan_table(c);
	return 0;
}

static const char *const audit_cat[ARENA_AUDIT_NCAT] = {
	"header", "client",  "state", "leak", "count-low",
	"orphan", "overlap", "space", "hint",
};

/* Problems: every finding but stale hints. */
static uint64_t audit_problems(const struct arena_proto_audit *a)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < ARENA_AUDIT_NCAT; i++)
		if (i != ARENA_AUDIT_HINT)
			n += a->found[i];
	return n;
}

static uint64_t audit_total(const struct arena_proto_audit *a)
{
	return audit_problems(a) + a->found[ARENA_AUDIT_HINT];
}

static void audit_table(const struct arena_proto_audit *a,
			const struct arena_proto_audit_line *l)
{
	const char *sep = " ";
	uint32_t i;

	for (i = 0; i < a->nlines; i++)
		printf("%s: %s\n", audit_cat[l[i].cat], l[i].text);
	if (audit_total(a) > a->nlines)
		printf("(%llu more findings not listed)\n",
		       (unsigned long long)(audit_total(a) - a->nlines));
	printf("audit: %llu checked, %llu busy (not judged), %llu.%03llu ms:",
	       (unsigned long long)a->checked, (unsigned long long)a->busy,
	       (unsigned long long)(a->elapsed_us / 1000),
	       (unsigned long long)(a->elapsed_us % 1000));
	if (!audit_problems(a))
		printf(" clean");
	for (i = 0; i < ARENA_AUDIT_NCAT; i++) {
		if (!a->found[i])
			continue;
		printf("%s%s %llu", sep, audit_cat[i],
		       (unsigned long long)a->found[i]);
		sep = ", ";
	}
	putchar('\n');
}

/* Finding text is printable ASCII (checked): escape only " and \. */
static void json_str(const char *t)
{
	putchar('"');
	for (; *t; t++) {
		if (*t == '"' || *t == '\\')
			putchar('\\');
		putchar(*t);
	}
	putchar('"');
}

static void audit_json(const struct arena_proto_audit *a,
		       const struct arena_proto_audit_line *l)
{
	uint32_t i;

	printf("{\"clean\":%s,\"checked\":%llu,\"busy\":%llu,"
	       "\"elapsed_us\":%llu,\"problems\":%llu,\"found\":{",
	       audit_problems(a) ? "false" : "true",
	       (unsigned long long)a->checked, (unsigned long long)a->busy,
	       (unsigned long long)a->elapsed_us,
	       (unsigned long long)audit_problems(a));
	for (i = 0; i < ARENA_AUDIT_NCAT; i++)
		printf("%s\"%s\":%llu", i ? "," : "", audit_cat[i],
		       (unsigned long long)a->found[i]);
	printf("},\"findings\":[");
	for (i = 0; i < a->nlines; i++) {
		printf("%s{\"category\":\"%s\",\"text\":", i ? "," : "",
		       audit_cat[l[i].cat]);
		json_str(l[i].text);
		putchar('}');
	}
	printf("],\"unlisted\":%llu}\n",
	       (unsigned long long)(audit_total(a) - a->nlines));
}

static int cmd_audit(struct ctl *c)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	static struct arena_proto_audit_line l[ARENA_PROTO_AUDIT_LINES];
	struct arena_proto_audit a;
	uint32_t len;

	if (ctl_connect(c) || send_req(c, ARENA_MSG_AUDIT_REQ) ||
	    recv_reply(c, ARENA_MSG_AUDIT, buf, &len))
		return 1;
	/* validated: nlines agrees with len, categories and text are sane */
	memcpy(&a, buf, sizeof(a));
	memcpy(l, buf + sizeof(a), a.nlines * sizeof(l[0]));
	if (c->fmt == FMT_JSON)
		audit_json(&a, l);
	else
		audit_table(&a, l);
	return audit_problems(&a) ? 1 : 0;
}

static int cmd_ping(struct ctl *c)
{
	uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	uint32_t len;

	if (ctl_connect(c) || send_req(c, ARENA_MSG_PING) ||
	    recv_reply(c, ARENA_MSG_PONG, buf, &len))
		return 1;
	printf("arenad at %s is alive\n", c->path);
	return 0;
}

static int cmd_version(struct ctl *c)
{
	printf("arenactl %d.%d.%d (wire protocol %u, region layout %u)\n",
	       ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR, ARENA_VERSION_PATCH,
	       ARENA_PROTO_WIRE_VERSION, ARENA_PROTO_LAYOUT_VERSION);
	return 0;
}

static const struct cmd cmds[] = {
	{ "stats", true, cmd_stats,
	  "per-arena statistics and attached clients (--json: one\n"
	  "            object; --prometheus: text exposition format)" },
	{ "audit", true, cmd_audit,
	  "check every invariant of the region; exit 1 when\n"
	  "            anything is wrong (--json: one object)" },
	{ "ping", false, cmd_ping, "check that arenad answers" },
	{ "version", false, cmd_version, "print the version" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static int help(void)
{
	size_t i;

	printf("Usage: arenactl [--socket PATH] COMMAND "
	       "[--json | --prometheus]\n"
	       "Talk to a running arenad.\n\nCommands:\n");
	for (i = 0; i < NCMDS; i++)
		printf("  %-9s %s\n", cmds[i].name, cmds[i].help);
	printf("\nOptions:\n"
	       "  --socket PATH  arenad's socket (default $ARENA_SOCKET, else\n"
	       "                 $XDG_RUNTIME_DIR/arenad.sock, else "
	       "%s)\n"
	       "  --json         stats or audit as JSON\n"
	       "  --prometheus   stats in Prometheus text format\n"
	       "  --help         print this help\n"
	       "\nExit status: 0, 1 when arenad cannot be reached (or the "
	       "audit found a\nproblem), 64 for a usage error.\n",
	       ARENA_PROTO_SYSTEM_SOCKET);
	return 0;
}

static int usage(const char *fmt, const char *what)
{
	fprintf(stderr, "arenactl: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, " (try --help)\n");
	return EX_USAGE_;
}

static const struct cmd *cmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* --json or --prometheus; -1: go on. */
static int format_set(struct ctl *c, const char *a)
{
	if (c->fmt != FMT_TABLE)
		return usage("%s", "--json and --prometheus: one format only");
	c->fmt = a[2] == 'j' ? FMT_JSON : FMT_PROMETHEUS;
	return -1;
}

/* One argument; *cmd is set by the first non-option. -1: go on. */
static int arg_one(struct ctl *c, const struct cmd **cmd, char **argv, int *i,
		   int argc)
{
	const char *a = argv[*i];

	if (!strcmp(a, "--help") || !strcmp(a, "-h"))
		return help();
	if (!strcmp(a, "--json") || !strcmp(a, "--prometheus"))
		return format_set(c, a);
	if (!strncmp(a, "--socket=", 9))
		return c->socket = a + 9, -1;
	if (!strcmp(a, "--socket")) {
		if (*i + 1 >= argc)
			return usage("option '%s' needs a value", a);
		return c->socket = argv[++*i], -1;
	}
	if (a[0] == '-')
		return usage("unknown option '%s'", a);
	if (*cmd)
		return usage("unexpected argument '%s'", a);
	*cmd = cmd_find(a);
	return *cmd ? -1 : usage("unknown command '%s'", a);
}

static int args_parse(struct ctl *c, const struct cmd **cmd, int argc,
		      char **argv)
{
	int i, rc;

	for (i = 1; i < argc; i++) {
		rc = arg_one(c, cmd, argv, &i, argc);
		if (rc >= 0)
			return rc;
	}
	if (!*cmd)
		return usage("%s", "missing command");
	if (c->fmt != FMT_TABLE && !(*cmd)->takes_format)
		return usage("--json and --prometheus do not apply to '%s'",
			     (*cmd)->name);
	if (c->fmt == FMT_PROMETHEUS && (*cmd)->run == cmd_audit)
		return usage("%s", "--prometheus does not apply to 'audit'");
	return -1;
}

int main(int argc, char **argv)
{
	struct ctl c = { .fd = -1 };
	const struct cmd *cmd = NULL;
	int rc;

	rc = args_parse(&c, &cmd, argc, argv);
	if (rc >= 0)
		return rc;
	if (cmd->run != cmd_version &&
	    arena_proto_sockpath(c.socket, c.path, sizeof(c.path)))
		return usage("%s", "bad or too long socket path");
	rc = cmd->run(&c);
	if (c.fd >= 0)
		close(c.fd);
	return rc;
}
