// SPDX-License-Identifier: MIT
/*
 * arenactl: ask a running arenad for its statistics, or whether it is
 * alive.  It speaks the control protocol without attaching (no HELLO), so
 * it takes no client id and maps nothing.  Replies go through the same
 * proto decoders as everywhere else: a daemon that answers nonsense gets
 * an error message, never a misprinted table.  Exit status: 0, 1 when the
 * daemon cannot be reached or answers badly, 64 for a usage error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <arena/arena.h>

#include "sockpath.h"
#include "wire.h"

#define EX_USAGE_ 64
#define TIMEOUT_S 5

struct ctl {
	const char *socket; /* --socket, or NULL */
	bool json;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
};

struct cmd {
	const char *name;
	bool takes_json;
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

static void table_print(const struct arena_proto_stats *s,
			const struct arena_proto_arena_stats *a)
{
	uint32_t i;

	printf("%5s  %-6s %10s %10s %10s %10s %10s %12s %12s %8s\n", "arena",
	       "kind", "block", "capacity", "in_use", "free", "cached",
	       "allocs", "frees", "failures");
	for (i = 0; i < s->narenas; i++)
		table_row(&a[i]);
	printf("clients: %u\n", s->nclients);
}

static void json_arena(const struct arena_proto_arena_stats *a)
{
	printf("{\"index\":%u,\"kind\":\"%s\",\"block_size\":%llu,"
	       "\"capacity\":%llu,\"in_use\":%llu,\"free\":%llu,"
	       "\"cached\":%llu,\"allocs\":%llu,\"frees\":%llu,"
	       "\"failures\":%llu,\"fail_full\":%llu,\"fail_big\":%llu}",
	       a->index, kind_name(a->kind), (unsigned long long)a->block_size,
	       (unsigned long long)a->capacity, (unsigned long long)a->in_use,
	       free_of(a), (unsigned long long)a->cached,
	       (unsigned long long)a->allocs, (unsigned long long)a->frees,
	       failures(a), (unsigned long long)a->fail_full,
	       (unsigned long long)a->fail_big);
}

static void json_print(const struct arena_proto_stats *s,
		       const struct arena_proto_arena_stats *a)
{
	uint32_t i;

	printf("{\"clients\":%u,\"arenas\":[", s->nclients);
	for (i = 0; i < s->narenas; i++) {
		if (i)
			putchar(',');
		json_arena(&a[i]);
	}
	printf("]}\n");
}

static int cmd_stats(struct ctl *c)
{
	static uint8_t buf[ARENA_PROTO_MAX_PAYLOAD];
	struct arena_proto_arena_stats a[ARENA_PROTO_MAX_ARENAS];
	struct arena_proto_stats s;
	uint32_t len;

	if (ctl_connect(c) || send_req(c, ARENA_MSG_STATS_REQ) ||
	    recv_reply(c, ARENA_MSG_STATS, buf, &len))
		return 1;
	memcpy(&s, buf, sizeof(s));
	memcpy(a, buf + sizeof(s), len - sizeof(s));
	if (c->json)
		json_print(&s, a);
	else
		table_print(&s, a);
	return 0;
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
	  "per-arena statistics and attached clients (--json: one object)" },
	{ "ping", false, cmd_ping, "check that arenad answers" },
	{ "version", false, cmd_version, "print the version" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static int help(void)
{
	size_t i;

	printf("Usage: arenactl [--socket PATH] COMMAND [--json]\n"
	       "Talk to a running arenad.\n\nCommands:\n");
	for (i = 0; i < NCMDS; i++)
		printf("  %-9s %s\n", cmds[i].name, cmds[i].help);
	printf("\nOptions:\n"
	       "  --socket PATH  arenad's socket (default $ARENA_SOCKET, else\n"
	       "                 $XDG_RUNTIME_DIR/arenad.sock, else "
	       "%s)\n"
	       "  --json         stats as JSON\n"
	       "  --help         print this help\n"
	       "\nExit status: 0, 1 when arenad cannot be reached, 64 for a "
	       "usage error.\n",
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

/* One argument; *cmd is set by the first non-option. -1: go on. */
static int arg_one(struct ctl *c, const struct cmd **cmd, char **argv, int *i,
		   int argc)
{
	const char *a = argv[*i];

	if (!strcmp(a, "--help") || !strcmp(a, "-h"))
		return help();
	if (!strcmp(a, "--json"))
		return c->json = true, -1;
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
	if (c->json && !(*cmd)->takes_json)
		return usage("--json does not apply to '%s'", (*cmd)->name);
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
