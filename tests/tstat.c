// SPDX-License-Identifier: MIT
/*
 * Statistics for the tests: over the wire, or through arenactl --json.
 *
 * The JSON reader is deliberately small: it finds each arena object by
 * its "index" key and reads the numbers after the keys it knows, so it
 * does not depend on key order or whitespace, only on the names.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tstat.h"
#include "wire.h"

#define TSTAT_TIMEOUT_S 10

void tstat_child_init(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	unsigned i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

long long tstat_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void tstat_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int sock_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TSTAT_TIMEOUT_S };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int recv_all(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_WAITALL);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EBADMSG;
}

static void buddy_from_wire(struct tstat_buddy *b,
			    const struct arena_proto_buddy_stats *w)
{
	b->index = w->index;
	b->max_order = w->max_order;
	b->free_bytes = w->free_bytes;
	b->alloc_bytes = w->alloc_bytes;
	b->largest_free = w->largest_free;
	b->splits = w->splits;
	b->coalesces = w->coalesces;
	memcpy(b->free_blocks, w->free_blocks, sizeof(b->free_blocks));
}

static void from_wire(struct tstat *out, const struct arena_proto_stats *st,
		      const struct arena_proto_arena_stats *as)
{
	struct arena_proto_buddy_stats b;
	uint32_t i;

	memset(out, 0, sizeof(*out));
	if (st->nbuddy) {
		memcpy(&b, (const char *)as + st->narenas * sizeof(*as),
		       sizeof(b));
		buddy_from_wire(&out->buddy, &b);
		out->nbuddy = 1;
	}
	out->narenas = st->narenas;
	out->nclients = st->nclients;
	for (i = 0; i < st->narenas; i++) {
		out->a[i].kind = as[i].kind;
		out->a[i].index = as[i].index;
		out->a[i].block_size = as[i].block_size;
		out->a[i].capacity = as[i].capacity;
		out->a[i].in_use = as[i].in_use;
		out->a[i].cached = as[i].cached;
		out->a[i].allocs = as[i].allocs;
		out->a[i].frees = as[i].frees;
		out->a[i].failures = as[i].fail_full + as[i].fail_big;
		out->a[i].chunks_free = as[i].chunks_free;
		out->a[i].bytes = as[i].bytes;
	}
}

int tstat_get(const char *sock, struct tstat *out)
{
	static _Thread_local union {
		uint8_t b[ARENA_PROTO_MAX_PAYLOAD];
		struct arena_proto_stats st;
	} buf;
	struct arena_proto_hdr h;
	int fd, err;

	fd = sock_connect(sock);
	if (fd < 0)
		return fd;
	arena_proto_hdr_encode(&h, ARENA_MSG_STATS_REQ, 0, 7);
	err = send(fd, &h, sizeof(h), MSG_NOSIGNAL) == sizeof(h) ? 0 : -EIO;
	if (!err)
		err = recv_all(fd, &h, sizeof(h));
	if (!err)
		err = arena_proto_hdr_decode(&h, sizeof(h), &h);
	if (!err && (h.type != ARENA_MSG_STATS || h.len > sizeof(buf)))
		err = -EBADMSG;
	if (!err)
		err = recv_all(fd, buf.b, h.len);
	if (!err)
		err = arena_proto_payload_check(h.type, buf.b, h.len);
	if (!err)
		from_wire(out, &buf.st, (const void *)(buf.b + sizeof(buf.st)));
	close(fd);
	return err;
}

/* The number after "key": in [p, end), or -1 when absent. */
static int json_num(const char *p, const char *end, const char *key,
		    uint64_t *out)
{
	char pat[64];
	const char *q;
	size_t n = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);

	q = memmem(p, (size_t)(end - p), pat, n);
	if (!q)
		return -1;
	q += n;
	while (q < end && (*q == ' ' || *q == ':' || *q == '\t'))
		q++;
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	*out = strtoull(q, NULL, 10);
	return 0;
}

/* The "kind" of an arena: a number or a name. */
static uint32_t json_kind(const char *p, const char *end)
{
	uint64_t v;
	const char *q = memmem(p, (size_t)(end - p), "\"kind\"", 6);

	if (!json_num(p, end, "kind", &v))
		return (uint32_t)v;
	if (!q)
		return 0;
	q += 6;
	while (q < end && *q != '"')
		q++;
	if (end - q > 6 && !strncmp(q, "\"fixed\"", 7))
		return ARENA_PROTO_KIND_FIXED;
	if (end - q > 6 && !strncmp(q, "\"buddy\"", 7))
		return ARENA_PROTO_KIND_BUDDY;
	if (end - q > 5 && !strncmp(q, "\"bump\"", 6))
		return ARENA_PROTO_KIND_BUMP;
	return 0;
}

/* The numbers of the array after "key": in [p, end); how many, or -1. */
static int json_nums(const char *p, const char *end, const char *key,
		     uint64_t *out, int max)
{
	const char *q = memmem(p, (size_t)(end - p), key, strlen(key));
	char *next;
	int n = 0;

	if (!q || !(q = memchr(q, '[', (size_t)(end - q))))
		return -1;
	for (q++; q < end && *q != ']' && n < max; n++) {
		out[n] = strtoull(q, &next, 10);
		if (next == q)
			return -1;
		q = next + (*next == ',');
	}
	return n;
}

/* A buddy arena's tree, inside its arena object. */
static int parse_buddy(const char *p, const char *end, uint64_t idx,
		       struct tstat_buddy *b)
{
	int n;

	memset(b, 0, sizeof(*b));
	b->index = (uint32_t)idx;
	if (json_num(p, end, "free_bytes", &b->free_bytes) ||
	    json_num(p, end, "alloc_bytes", &b->alloc_bytes) ||
	    json_num(p, end, "largest_free", &b->largest_free) ||
	    json_num(p, end, "splits", &b->splits) ||
	    json_num(p, end, "coalesces", &b->coalesces))
		return -EBADMSG;
	n = json_nums(p, end, "\"free_blocks\"", b->free_blocks, 32);
	if (n < 1)
		return -EBADMSG;
	b->max_order = (uint32_t)n - 1;
	return 0;
}

/* One arena object, from its opening brace to its closing one. */
static int parse_arena(const char *p, const char *end, struct tstat *out)
{
	struct tstat_arena a = { .cached = (uint64_t)-1 };
	uint64_t idx, v, full = 0, big = 0;

	if (json_num(p, end, "index", &idx) || idx >= ARENA_PROTO_MAX_ARENAS)
		return -EBADMSG;
	a.index = (uint32_t)idx;
	a.kind = json_kind(p, end);
	if (json_num(p, end, "block_size", &a.block_size) ||
	    json_num(p, end, "capacity", &a.capacity) ||
	    json_num(p, end, "in_use", &a.in_use) ||
	    (json_num(p, end, "allocations", &a.allocs) &&
	     json_num(p, end, "allocs", &a.allocs)) ||
	    json_num(p, end, "frees", &a.frees))
		return -EBADMSG;
	if (!json_num(p, end, "failures", &v)) {
		a.failures = v;
	} else {
		json_num(p, end, "fail_full", &full);
		json_num(p, end, "fail_big", &big);
		a.failures = full + big;
	}
	json_num(p, end, "cached", &a.cached);
	json_num(p, end, "chunks_free", &a.chunks_free);
	json_num(p, end, "bytes", &a.bytes);
	if (a.kind == ARENA_PROTO_KIND_BUDDY && !out->nbuddy &&
	    parse_buddy(p, end, idx, &out->buddy) == 0)
		out->nbuddy = 1;
	out->a[idx] = a;
	if (idx + 1 > out->narenas)
		out->narenas = (uint32_t)idx + 1;
	return 0;
}

static int parse_json(const char *s, struct tstat *out)
{
	const char *arr = strstr(s, "\"arenas\""), *p, *e, *end;
	uint64_t v;
	int err;

	memset(out, 0, sizeof(*out));
	if (!arr)
		return -EBADMSG;
	end = s + strlen(s);
	/* clients may come before or after the array */
	if (json_num(s, arr, "clients", &v) &&
	    json_num(arr, end, "clients", &v))
		return -EBADMSG;
	out->nclients = (uint32_t)v;
	p = strchr(arr, '[');
	if (!p)
		return -EBADMSG;
	for (;;) {
		p = strpbrk(p + 1, "{]");
		if (!p || *p == ']')
			break;
		e = strchr(p, '}');
		if (!e)
			return -EBADMSG;
		err = parse_arena(p, e, out);
		if (err)
			return err;
		p = e;
	}
	return out->narenas ? 0 : -EBADMSG;
}

int tstat_ctl(const char *sock, struct tstat *out)
{
	static char buf[256 << 10], err[4096];
	char path[512];
	const char *argv[] = {
		path, "--socket", sock, "stats", "--json", NULL
	};
	int status, ret;

	snprintf(path, sizeof(path), "%s/arenactl", harness_build_dir());
	ret = harness_run(argv, &status, buf, sizeof(buf), err, sizeof(err));
	if (ret)
		return ret;
	if (status) {
		fprintf(stderr, "arenactl exited %d: %s\n", status, err);
		return -ECHILD;
	}
	ret = parse_json(buf, out);
	if (ret)
		fprintf(stderr, "cannot parse arenactl --json output:\n%s\n",
			buf);
	return ret;
}

uint64_t tstat_in_use(const struct tstat *s)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < s->narenas; i++)
		n += s->a[i].in_use;
	return n;
}

uint64_t tstat_allocs(const struct tstat *s)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < s->narenas; i++)
		n += s->a[i].allocs;
	return n;
}

uint64_t tstat_frees(const struct tstat *s)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < s->narenas; i++)
		n += s->a[i].frees;
	return n;
}

uint64_t tstat_failures(const struct tstat *s)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < s->narenas; i++)
		n += s->a[i].failures;
	return n;
}

int tstat_wait(const char *sock, struct tstat *s,
	       int (*pred)(const struct tstat *s, void *arg), void *arg,
	       int timeout_ms)
{
	long long end = tstat_now_ms() + timeout_ms;
	int err, ms = 1;

	for (;;) {
		err = tstat_get(sock, s);
		if (err)
			return err;
		if (pred(s, arg))
			return 0;
		if (tstat_now_ms() >= end)
			return -ETIMEDOUT;
		tstat_sleep_ms(ms);
		ms = ms < 32 ? ms * 2 : ms;
	}
}
