// SPDX-License-Identifier: MIT
/*
 * A file server that never copies the file: it is read once into arena
 * blocks, and every client gets it with zero-copy sends straight from
 * those blocks (io_uring IORING_OP_SEND_ZC), one client after another.
 * The library holds a reference on a block while the kernel may still
 * read it, so the server could drop or replace the file at any time.
 *
 *   arenad --size 160M --fixed 1M:128 --socket /tmp/arenad.sock &
 *   ARENA_SOCKET=/tmp/arenad.sock ./zc_server FILE 9000 &
 *   nc 127.0.0.1 9000 | sha256sum        # the same as sha256sum FILE
 *
 *   cc -o zc_server zc_server.c $(pkg-config --cflags --libs arena)
 *   (or: cc ... -larena -luring)
 */
#include <arena/arena.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CHUNKS 4096 /* chunks of a file */
#define QUEUE 64	/* sends in flight per client */

struct file {
	arena_handle_t h[MAX_CHUNKS];
	size_t len[MAX_CHUNKS];
	unsigned n;
};

/* The largest fixed-slot class of the daemon: one send per block. */
static size_t chunk_size(struct arena_client *c)
{
	struct arena_info in;
	size_t best = 0;
	unsigned i;

	for (i = 0; arena_info(c, i, &in) == 0; i++)
		if (in.kind == ARENA_KIND_FIXED && in.block_size > best)
			best = in.block_size;
	return best;
}

/* Read the file into blocks of chunk bytes. */
static int load(struct arena_client *c, const char *path, struct file *f)
{
	size_t chunk = chunk_size(c);
	int fd = open(path, O_RDONLY), err = 0;
	ssize_t got;

	if (fd < 0)
		return -errno;
	for (f->n = 0; f->n < MAX_CHUNKS; f->n++) {
		err = arena_alloc(c, ARENA_KIND_FIXED, chunk, &f->h[f->n]);
		if (err)
			break; /* -ENOMEM: the daemon has no room for it */
		got = read(fd, arena_ptr(c, f->h[f->n]), chunk);
		if (got <= 0) {
			arena_unref(c, f->h[f->n]);
			err = got < 0 ? -errno : 0;
			break;
		}
		f->len[f->n] = (size_t)got; /* a short read: go on reading */
	}
	close(fd);
	return f->n == MAX_CHUNKS ? -EFBIG : err;
}

/* Collect finished sends; returns how many, counting the failed ones. */
static int reap(struct arena_zc *z, unsigned *copied, unsigned *failed)
{
	struct arena_zc_result r[QUEUE];
	int i, n = arena_zc_complete(z, r, QUEUE, -1);

	for (i = 0; i < n; i++) {
		if (r[i].res < 0 || r[i].flags & ARENA_ZC_SHORT) {
			fprintf(stderr, "chunk %llu: %s\n",
				(unsigned long long)r[i].tag,
				r[i].res < 0 ? strerror((int)-r[i].res)
					     : "cut short");
			(*failed)++;
		} else if (r[i].flags & ARENA_ZC_COPIED) {
			(*copied)++;
		}
	}
	return n;
}

/*
 * Send the whole file to one client, QUEUE chunks in flight; stop
 * queueing at the first failure, but collect every send started.
 */
static int serve(struct arena_zc *z, int sock, const struct file *f)
{
	unsigned next = 0, done = 0, copied = 0, failed = 0;
	int n, err = 0;

	while (done < next || (next < f->n && !failed && !err)) {
		while (next < f->n && !failed && !err) {
			err = arena_zc_queue(z, sock, f->h[next], 0,
					     f->len[next], next);
			if (err == -EBUSY) {
				err = 0;
				break; /* QUEUE in flight: collect first */
			}
			if (!err)
				next++;
		}
		n = reap(z, &copied, &failed); /* starts what was queued */
		if (n < 0)
			return n;
		done += (unsigned)n;
	}
	printf("sent %u of %u chunks, %u copied by the kernel, mode %#x\n",
	       next - failed, f->n, copied, arena_zc_mode(z));
	return failed ? -EIO : err;
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16))
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	static struct file f;
	struct arena_client *c;
	struct arena_zc *z;
	int lfd, sock, err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE PORT\n", argv[0]);
		return 2;
	}
	err = arena_connect(NULL, &c);
	if (!err)
		err = load(c, argv[1], &f);
	if (!err)
		err = arena_zc_open(c, QUEUE, &z);
	if (err) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	lfd = listen_on(atoi(argv[2]));
	if (lfd < 0) {
		perror("listen");
		return 1;
	}
	printf("serving %s (%u chunks) on 127.0.0.1:%s\n", argv[1], f.n,
	       argv[2]);
	fflush(stdout);
	while ((sock = accept(lfd, NULL, NULL)) >= 0) {
		if (serve(z, sock, &f))
			fprintf(stderr, "client dropped\n");
		close(sock);
		fflush(stdout);
	}
	perror("accept");
	return 1;
}
