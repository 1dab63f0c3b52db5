// SPDX-License-Identifier: MIT
/*
 * arenad: owns one shared-memory region and serves it over a Unix socket.
 *
 * main() is the start-up sequence and nothing else, ordered so that every
 * check that can fail cheaply (options, layout, socket in use) runs before
 * anything is created, and each later step undoes what came before it on
 * failure: a failed start leaves no socket file and, the region being a
 * memfd, nothing in /dev/shm.  Exit status: 0 after SIGTERM/SIGINT, 64
 * for a usage error, 1 for anything else.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <arena/arena.h>

#include "activation.h"
#include "ctlsock.h"
#include "log.h"
#include "opts.h"
#include "region.h"
#include "sdnotify.h"
#include "server.h"
#include "size.h"
#include "sockpath.h"

#define SOCKPATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

static int sockpath_resolve(const struct opts *o, char *buf)
{
	int rc = arena_proto_sockpath(o->socket, buf, SOCKPATH_MAX);

	if (rc == -ENAMETOOLONG)
		fprintf(stderr,
			"arenad: socket path too long (at most %zu "
			"bytes)\n",
			SOCKPATH_MAX - 1);
	else if (rc)
		fprintf(stderr, "arenad: bad socket path\n");
	return rc;
}

static void nofit_print(const struct opts *o, const struct layout *l)
{
	unsigned long long size = o->req.size, need = l->need;

	if (o->req.nfixed && need)
		fprintf(stderr,
			"arenad: layout does not fit: the --fixed "
			"classes%s need %llu bytes with the header and "
			"%u client tables, --size is %llu\n",
			o->req.buddy_size ? " and the buddy arena" : "", need,
			l->max_clients, size);
	else if (!o->req.nfixed && o->req.buddy_size && !need)
		fprintf(stderr,
			"arenad: layout does not fit: a buddy arena of %llu "
			"bytes does not fit the second half of --size %llu\n",
			(unsigned long long)o->req.buddy_size, size);
	else if (o->req.nfixed)
		fprintf(stderr, "arenad: layout does not fit: the --fixed "
				"classes need more than 2^64 bytes\n");
	else
		fprintf(stderr,
			"arenad: layout does not fit: --size %llu is "
			"too small for the header, %u client tables "
			"and one slot; it needs at least %llu bytes\n",
			size, l->max_clients, need);
}

/* Layout for the options; 0, or the exit status after one line. */
static int plan(const struct opts *o, struct layout *l)
{
	int rc = layout_compute(&o->req, l);

	if (rc == -ENOSPC) {
		nofit_print(o, l);
		return 1;
	}
	if (rc == -ENOENT) {
		fprintf(stderr,
			"arenad: --init: the layout has no fixed class of "
			"%llu bytes\n",
			(unsigned long long)l->init_unmatched);
		return OPTS_EX_USAGE;
	}
	if (rc) {
		fprintf(stderr, "arenad: invalid layout request\n");
		return OPTS_EX_USAGE;
	}
	return 0;
}

static void start_log(const struct opts *o, const struct layout *l,
		      const struct ctlsock *sock)
{
	LOG(LOG_INFO, "arenad %d.%d.%d starting, pid %d", ARENA_VERSION_MAJOR,
	    ARENA_VERSION_MINOR, ARENA_VERSION_PATCH, (int)getpid());
	layout_log(l);
	if (o->has_group)
		LOG(LOG_INFO, "admitting uid %u, root and group %s",
		    (unsigned)geteuid(), o->group_name);
	LOG(LOG_INFO, "listening on %s%s", sock->path,
	    sock->adopted ? " (socket from the service manager)" : "");
}

/* Serve on a listening socket and a region until told to stop. */
static int run(const struct opts *o, const struct layout *l,
	       struct ctlsock *sock, const struct region *r)
{
	struct auth_policy pol = { geteuid(), o->has_group, o->group };
	static struct server s; /* large: a client table per id */
	struct sdnotify n;
	int rc = 1;

	sdnotify_init(&n);
	if (server_init(&s, sock, r, l, &pol))
		goto out;
	s.idle_ms = o->idle_timeout * 1000;
	if (!server_notify(&s, &n)) {
		start_log(o, l, sock);
		sdnotify_send(&n, "READY=1");
		rc = server_run(&s) ? 1 : 0;
		sdnotify_send(&n, "STOPPING=1");
	}
	server_fini(&s);
	LOG(LOG_INFO, "stopped");
out:
	sdnotify_close(&n);
	return rc;
}

/*
 * From a resolved path and layout to a stopped server; the exit status.
 * A socket-activated daemon takes the socket it is given, and path
 * becomes that socket's address.
 */
static int serve(const struct opts *o, const struct layout *l, char *path)
{
	struct ctlsock sock = { .fd = -1 };
	struct region r;
	int act, rc = 1;

	server_signals_block();
	act = activation_adopt(&sock, path);
	if (act < 0 || (!act && ctlsock_check(path)))
		return 1;
	if (region_create(l, &r)) {
		ctlsock_close(&sock);
		return 1;
	}
	if (act || !ctlsock_listen(&sock, path, o->has_group, o->group)) {
		rc = run(o, l, &sock, &r);
		ctlsock_close(&sock);
	}
	region_destroy(&r);
	return rc;
}

int main(int argc, char **argv)
{
	static struct layout layout;
	char path[SOCKPATH_MAX];
	struct opts o;
	int rc;

	rc = opts_parse(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : OPTS_EX_USAGE;
	log_threshold = o.level;
	if (sockpath_resolve(&o, path))
		return o.socket ? OPTS_EX_USAGE : 1;
	rc = plan(&o, &layout);
	if (rc)
		return rc;
	return serve(&o, &layout, path);
}
