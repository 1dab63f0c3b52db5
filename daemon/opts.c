// SPDX-License-Identifier: MIT
/*
 * Option parsing for arenad, driven by one table: each entry names the
 * option, says whether it takes a value, points at the handler that
 * validates it, and carries its --help line.  Every handler either stores
 * a fully validated value or prints exactly one line explaining what is
 * wrong with which argument, so main() only maps the result to an exit
 * status.  Long options only, "--name value" or "--name=value".
 *
 * The config file (config.c) goes through the same table, so it takes
 * exactly what the command line takes.  The command line is walked twice:
 * first for --config, --help and --version, then, after the file, for
 * everything else, so that the command line wins over the file.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arena/arena.h>

#include "bump.h"
#include "opts.h"
#include "size.h"
#include "sockpath.h"
#include "wire.h"

/* An option; metavar NULL means it takes no value. */
struct opt_def {
	const char *name;
	const char *metavar;
	int (*handler)(struct opts *o, const char *arg);
	const char *help; /* '\n' starts an indented continuation line */
};

static int bad(const struct opts *o, const char *name, const char *arg,
	       const char *why)
{
	if (o->config_line)
		fprintf(stderr, "arenad: %s:%u: %s '%s': %s\n", o->config,
			o->config_line, name, arg, why);
	else
		fprintf(stderr, "arenad: --%s '%s': %s\n", name, arg, why);
	return -EINVAL;
}

/* Plain decimal, no sign or spaces. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

static int opt_size(struct opts *o, const char *arg)
{
	int rc = parse_size(arg, &o->req.size);

	if (rc == -ERANGE)
		return bad(o, "size", arg, "too large");
	if (rc)
		return bad(o, "size", arg,
			   "not a positive size (digits, then K, M, G or T)");
	return 0;
}

static int opt_socket(struct opts *o, const char *arg)
{
	if (!*arg)
		return bad(o, "socket", arg, "empty path");
	o->socket = arg;
	return 0;
}

static const char *slot_size_error(const char *s, uint64_t *size)
{
	int rc = parse_size(s, size);

	if (rc == -ERANGE || (!rc && *size > ARENA_PROTO_MAX_FIXED))
		return "slot size must be at most 1 GiB";
	if (rc)
		return "slot size is not a positive size";
	if (*size < ARENA_PROTO_MIN_BLOCK)
		return "slot size must be at least 16 bytes";
	if (*size % 16)
		return "slot size must be a multiple of 16";
	return NULL;
}

static const char *count_error(const char *s, uint64_t *count)
{
	int rc = parse_u64(s, count);

	if (rc == -EINVAL)
		return "count must be a decimal number";
	if (rc || *count > UINT32_MAX)
		return "count must be at most 4294967295";
	if (*count < 1)
		return "count must be at least 1";
	return NULL;
}

static const char *class_add(struct layout_req *req, uint64_t size,
			     uint64_t count)
{
	uint32_t i;

	for (i = 0; i < req->nfixed; i++)
		if (req->fixed[i].block_size == size)
			return "slot size given twice";
	if (req->nfixed == ARENA_PROTO_MAX_ARENAS)
		return "too many classes (at most 64)";
	if (req->buddy_size && req->nfixed == ARENA_PROTO_MAX_ARENAS - 1)
		return "too many classes (at most 63 with --buddy)";
	if (req->nfixed + (req->buddy_size ? 1 : 0) +
		    (req->bump_size ? 1 : 0) >=
	    ARENA_PROTO_MAX_ARENAS)
		return "too many classes (64 arenas at most, --buddy and "
		       "--bump included)";
	req->fixed[req->nfixed].block_size = size;
	req->fixed[req->nfixed].count = count;
	req->nfixed++;
	return NULL;
}

static int opt_fixed(struct opts *o, const char *arg)
{
	char buf[64];
	const char *why = "expected SIZE:COUNT, e.g. 4K:1000";
	char *colon;
	uint64_t size = 0, count = 0;

	if (!o->config_line && o->fixed_in_file) {
		/* the command line's classes replace the file's */
		o->req.nfixed = 0;
		o->fixed_in_file = false;
	}
	if (strlen(arg) >= sizeof(buf))
		return bad(o, "fixed", arg, why);
	strcpy(buf, arg);
	colon = strchr(buf, ':');
	if (!colon)
		return bad(o, "fixed", arg, why);
	*colon = '\0';
	why = slot_size_error(buf, &size);
	if (!why)
		why = count_error(colon + 1, &count);
	if (!why)
		why = class_add(&o->req, size, count);
	if (why)
		return bad(o, "fixed", arg, why);
	o->fixed_in_file = o->config_line > 0;
	return 0;
}

static int opt_group(struct opts *o, const char *arg)
{
	struct group *g = getgrnam(arg);
	uint64_t gid;

	if (!g && !parse_u64(arg, &gid) && gid <= UINT32_MAX - 1)
		g = getgrgid((gid_t)gid);
	if (!g)
		return bad(o, "group", arg, "no such group");
	o->has_group = true;
	o->group = g->gr_gid;
	o->group_name = arg;
	return 0;
}

static int opt_log_level(struct opts *o, const char *arg)
{
	if (log_level_parse(arg, &o->level))
		return bad(o, "log-level", arg,
			   "expected error, warn, info or debug");
	return 0;
}

static int opt_max_clients(struct opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v < 1 || v > ARENA_PROTO_MAX_CLIENTS)
		return bad(o, "max-clients", arg,
			   "expected a number in 1..4095");
	o->req.max_clients = (uint32_t)v;
	return 0;
}

static int opt_ledger(struct opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v < 64 || v > (1u << 20) || (v & (v - 1)))
		return bad(o, "ledger", arg,
			   "expected a power of two in 64..1048576");
	o->req.ledger_entries = (uint32_t)v;
	return 0;
}

static int opt_channels(struct opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v > ARENA_PROTO_CHAN_MAX)
		return bad(o, "channels", arg, "expected a number in 0..1024");
	o->req.channels = (uint32_t)v;
	return 0;
}

static int opt_chan_cells(struct opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v < 2 || v > ARENA_PROTO_CHAN_MAX_CELLS)
		return bad(o, "chan-cells", arg,
			   "expected a number in 2..16777216");
	o->req.chan_cells = (uint32_t)v;
	return 0;
}

static int opt_idle_timeout(struct opts *o, const char *arg)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v < 1 || v > 3600)
		return bad(o, "idle-timeout", arg,
			   "expected seconds in 1..3600");
	o->idle_timeout = (unsigned)v;
	return 0;
}

/* A power of two of bytes, or why not. */
static const char *pow2_error(const char *s, uint64_t *v, const char *what)
{
	int rc = parse_size(s, v);

	if (rc == -ERANGE)
		return "too large";
	if (rc)
		return "expected SIZE[:MIN], sizes with K, M, G or T";
	if (*v & (*v - 1))
		return what;
	return NULL;
}

static int opt_buddy(struct opts *o, const char *arg)
{
	const char *why = "expected SIZE[:MIN], e.g. 256M:4K";
	uint64_t size = 0, min = LAYOUT_BUDDY_MIN;
	char buf[64], *colon;

	if (strlen(arg) >= sizeof(buf))
		return bad(o, "buddy", arg, why);
	strcpy(buf, arg);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	why = pow2_error(buf, &size, "SIZE must be a power of two");
	if (!why && colon)
		why = pow2_error(colon + 1, &min, "MIN must be a power of two");
	if (!why && min < ARENA_PROTO_MIN_BLOCK)
		why = "MIN must be at least 16 bytes";
	if (!why && size < min)
		why = "SIZE must be at least MIN";
	if (!why && size / min > (1ull << 31))
		why = "at most 2^31 blocks of MIN bytes";
	if (!why && o->req.nfixed == ARENA_PROTO_MAX_ARENAS)
		why = "no room for it after 64 --fixed classes";
	if (why)
		return bad(o, "buddy", arg, why);
	o->req.buddy_size = size;
	o->req.buddy_min = min;
	return 0;
}

static int opt_bump(struct opts *o, const char *arg)
{
	const char *why = "expected SIZE[:CHUNK], e.g. 256M:1M";
	uint64_t size = 0, chunk = ARENA_BUMP_CHUNK_DEFAULT;
	char buf[64], *colon;
	int rc;

	if (strlen(arg) >= sizeof(buf))
		return bad(o, "bump", arg, why);
	strcpy(buf, arg);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	rc = parse_size(buf, &size);
	why = rc == -ERANGE ? "too large"
	      : rc	    ? "expected SIZE[:CHUNK], sizes with K, M, G or T"
			    : NULL;
	if (!why && colon)
		why = pow2_error(colon + 1, &chunk,
				 "CHUNK must be a power of two");
	if (!why &&
	    (chunk < ARENA_BUMP_CHUNK_MIN || chunk > ARENA_BUMP_CHUNK_MAX))
		why = "CHUNK must be in 4K..1G";
	if (!why && size < chunk)
		why = "SIZE must be at least one CHUNK";
	if (!why && size / chunk > UINT32_MAX)
		why = "too many chunks";
	if (!why && o->req.nfixed + (o->req.buddy_size ? 1 : 0) >=
			    ARENA_PROTO_MAX_ARENAS)
		why = "no room for it after 64 arenas";
	if (why)
		return bad(o, "bump", arg, why);
	o->req.bump_size = size;
	o->req.bump_chunk = chunk;
	return 0;
}

/* "zero" or "none"; -1 for anything else. */
static int init_mode(const char *s)
{
	if (!strcmp(s, "zero"))
		return 1;
	if (!strcmp(s, "none"))
		return 0;
	return -1;
}

/* One item of --init: MODE, or TARGET=MODE; why it is wrong, or NULL. */
static const char *init_item(struct layout_req *req, char *item)
{
	struct layout_init r = { 0 };
	char *eq = strchr(item, '=');
	const char *why;
	int mode;

	if (eq)
		*eq = '\0';
	mode = init_mode(eq ? eq + 1 : item);
	if (mode < 0)
		return "expected zero or none, or KIND=zero|none with KIND "
		       "fixed, buddy, bump or a fixed slot SIZE";
	r.zero = (uint32_t)mode;
	if (!eq)
		r.kind = 0;
	else if (!strcmp(item, "fixed"))
		r.kind = ARENA_PROTO_KIND_FIXED;
	else if (!strcmp(item, "buddy"))
		r.kind = ARENA_PROTO_KIND_BUDDY;
	else if (!strcmp(item, "bump"))
		r.kind = ARENA_PROTO_KIND_BUMP;
	else if ((why = slot_size_error(item, &r.size)) != NULL)
		return why;
	else
		r.kind = ARENA_PROTO_KIND_FIXED;
	if (req->ninit == LAYOUT_MAX_INIT)
		return "too many --init rules (at most 64)";
	req->init[req->ninit++] = r;
	return NULL;
}

static int opt_init(struct opts *o, const char *arg)
{
	struct layout_req save = o->req;
	char buf[256], *item, *next;
	const char *why = NULL;

	if (!*arg || strlen(arg) >= sizeof(buf))
		return bad(o, "init", arg, "expected zero or none");
	strcpy(buf, arg);
	for (item = buf; item && !why; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		why = init_item(&o->req, item);
	}
	if (why) {
		o->req.ninit = save.ninit; /* nothing half-applied */
		return bad(o, "init", arg, why);
	}
	return 0;
}

static int opt_config(struct opts *o, const char *arg)
{
	if (!*arg)
		return bad(o, "config", arg, "empty path");
	if (o->config)
		return bad(o, "config", arg,
			   "only one config file may be given");
	o->config = arg;
	return 0;
}

static int opt_help(struct opts *o, const char *arg);

static int opt_version(struct opts *o, const char *arg)
{
	printf("arenad %d.%d.%d (wire protocol %u, region layout %u)\n",
	       ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR, ARENA_VERSION_PATCH,
	       ARENA_PROTO_WIRE_VERSION, ARENA_PROTO_LAYOUT_VERSION);
	return 1;
}

static const struct opt_def opt_table[] = {
	{ "size", "SIZE", opt_size,
	  "region size, required; suffixes K, M, G, T (x1024)" },
	{ "socket", "PATH", opt_socket,
	  "control socket (default $ARENA_SOCKET, else\n"
	  "$XDG_RUNTIME_DIR/arenad.sock, else\n" ARENA_PROTO_SYSTEM_SOCKET
	  ")" },
	{ "fixed", "SIZE:COUNT", opt_fixed,
	  "a class of COUNT slots of SIZE bytes (a multiple of\n"
	  "16, at most 1G); repeatable; replaces the default\nlayout" },
	{ "buddy", "SIZE[:MIN]", opt_buddy,
	  "the buddy arena: SIZE bytes in blocks of MIN bytes\n"
	  "and up, both powers of two (MIN default 4K); with\n"
	  "--fixed, adds one after the classes" },
	{ "bump", "SIZE[:CHUNK]", opt_bump,
	  "the bump arena: SIZE bytes in chunks of CHUNK bytes\n"
	  "(a power of two in 4K..1G, default 1M); default:\n"
	  "as many chunks as fit its 25% share; with --fixed,\n"
	  "adds one after the classes" },
	{ "init", "MODE", opt_init,
	  "what allocations hand out: none (the default:\n"
	  "whatever the block held) or zero (cleared by\n"
	  "the allocating client); per kind or fixed class\n"
	  "as a comma list, e.g. none,buddy=zero,4K=zero;\n"
	  "later items win; repeatable" },
	{ "group", "NAME", opt_group, "also admit members of group NAME" },
	{ "log-level", "LEVEL", opt_log_level,
	  "error, warn, info or debug (default info)" },
	{ "max-clients", "N", opt_max_clients,
	  "clients attached at once, 1..4095 (default 64)" },
	{ "ledger", "N", opt_ledger,
	  "reference-ledger entries per client, a power of\n"
	  "two in 64..1048576 (default 4096)" },
	{ "channels", "N", opt_channels,
	  "channel table slots, 0..1024 (default 64)" },
	{ "chan-cells", "N", opt_chan_cells,
	  "handle cells shared by all channel rings,\n"
	  "2..16777216 (default 16384)" },
	{ "idle-timeout", "SECONDS", opt_idle_timeout,
	  "close a connection that leaves a message\n"
	  "incomplete this long, 1..3600 (default 10)" },
	{ "config", "FILE", opt_config,
	  "read options from FILE, one per line: \"size 1G\";\n"
	  "the command line wins over the file" },
	{ "help", NULL, opt_help, "print this help and exit" },
	{ "version", NULL, opt_version, "print the version and exit" },
};

#define NOPTS (sizeof(opt_table) / sizeof(opt_table[0]))

static void help_line(const struct opt_def *d)
{
	char head[32];
	const char *h;

	snprintf(head, sizeof(head), "--%s %s", d->name,
		 d->metavar ? d->metavar : "");
	printf("  %-22s ", head);
	for (h = d->help; *h; h++) {
		putchar(*h);
		if (*h == '\n')
			printf("%25s", "");
	}
	putchar('\n');
}

static int opt_help(struct opts *o, const char *arg)
{
	size_t i;

	printf("Usage: arenad --size SIZE [OPTION]...\n"
	       "Own a shared-memory region and serve it to libarena clients.\n"
	       "\nOptions:\n");
	for (i = 0; i < NOPTS; i++)
		help_line(&opt_table[i]);
	printf("\nDefault layout (--size alone): after the header and the "
	       "client tables,\n50%% of the rest is split in equal shares of "
	       "bytes between fixed-slot\nclasses of 64, 128, 256, 512 B, 1, "
	       "2, 4, 8, 16, 32 and 64 KiB (a class\nwhose share holds no "
	       "slot is left out); 25%% holds the buddy arena, the\nlargest "
	       "power of two that fits there in blocks of 4 KiB and up\n"
	       "(--buddy sets it instead); 25%% holds the bump arena, as "
	       "many 1 MiB\nchunks as fit (--bump sets it instead).\n"
	       "\nThe config file takes the options above without their "
	       "dashes, one per\nline, as \"name value\" or \"name = "
	       "value\"; '#' starts a comment.\n"
	       "\nExit status: 0 after SIGTERM or SIGINT, 1 on a runtime "
	       "error, 64 on a\nusage or config file error.\n");
	return 1;
}

static const struct opt_def *opt_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strlen(opt_table[i].name) == len &&
		    !strncmp(opt_table[i].name, name, len))
			return &opt_table[i];
	return NULL;
}

/* Handled before the config file is read: --config, --help, --version. */
static bool opt_early(const struct opt_def *d)
{
	return !d->metavar || d->handler == opt_config;
}

static int usage(const char *fmt, const char *what)
{
	fprintf(stderr, "arenad: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, " (try --help)\n");
	return -EINVAL;
}

/* One option at argv[*i], run if it belongs to this pass; eats its value. */
static int opt_one(struct opts *o, int argc, char **argv, int *i, bool early)
{
	const char *a = argv[*i], *eq, *val = NULL;
	const struct opt_def *d;

	if (strncmp(a, "--", 2) || !a[2])
		return usage("unexpected argument '%s'", a);
	eq = strchr(a + 2, '=');
	d = opt_find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
	if (!d)
		return usage("unknown option '%s'", a);
	if (d->metavar && eq)
		val = eq + 1;
	else if (d->metavar && *i + 1 < argc)
		val = argv[++*i];
	else if (d->metavar)
		return usage("option '%s' needs a value", a);
	else if (eq)
		return usage("option '%s' takes no value", a);
	return opt_early(d) == early ? d->handler(o, val) : 0;
}

static void opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->req.max_clients = 64;
	o->req.ledger_entries = 4096;
	o->req.channels = 64;
	o->req.chan_cells = 16384;
	o->level = LOG_INFO;
	o->idle_timeout = 10;
}

static int args_walk(struct opts *o, int argc, char **argv, bool early)
{
	int i, rc;

	for (i = 1; i < argc; i++) {
		rc = opt_one(o, argc, argv, &i, early);
		if (rc)
			return rc;
	}
	return 0;
}

int opts_parse(int argc, char **argv, struct opts *o)
{
	int rc;

	opts_defaults(o);
	rc = args_walk(o, argc, argv, true);
	if (!rc && o->config)
		rc = config_read(o);
	if (!rc)
		rc = args_walk(o, argc, argv, false);
	if (rc)
		return rc;
	if (!o->req.size)
		return usage("%s is required", "--size");
	return 0;
}

static int conf_bad(const struct opts *o, const char *fmt, const char *name)
{
	fprintf(stderr, "arenad: %s:%u: ", o->config, o->config_line);
	fprintf(stderr, fmt, name);
	fputc('\n', stderr);
	return -EINVAL;
}

int opts_set(struct opts *o, const char *name, const char *value)
{
	const struct opt_def *d = opt_find(name, strlen(name));

	if (!d)
		return conf_bad(o, "unknown option '%s'", name);
	if (opt_early(d))
		return conf_bad(o, "'%s' cannot be used in a config file",
				name);
	if (!*value)
		return conf_bad(o, "'%s' needs a value", name);
	return d->handler(o, value);
}
